"""``request.stepup``: the project's services as seen from one request.

It reads the request through the app's hooks, asks the core, and writes responses;
every decision stays in the core. Async code calls the ``a``-prefixed twins, which run
the same sync code in Django's thread (hooks and the ORM are synchronous).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Final
from urllib.parse import parse_qsl

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import DisallowedHost, ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.request import RawPostDataException, UnreadablePostError
from django.middleware.csrf import rotate_token
from django.urls import get_script_prefix, reverse
from django.utils.encoding import force_str
from django.utils.http import parse_header_parameters

from ...adapters.idp.password import PasswordReauth
from ...errors import ConfigurationError, StoreUnavailableError
from ...policy import Context, Policy
from ...reauth import (
    Allowed,
    Decision,
    Reauth,
    ReauthRequired,
    ReauthRequiredError,
    ReauthUnavailable,
    ReauthUnavailableError,
    SignInNotCounted,
    SignInOutcome,
    SignInReason,
)
from ...redirects import safe_return_path_or_default
from ...resume import ResumeOutcome, Suspended, Suspensions
from ...signin import SecondFactors, second_factors
from ...subject import Identity, LoginMethod, Subject
from ...tenants import TenantSettings
from ...twofactor import Channel, TwoFactor
from ..http import (
    Client,
    RequestInfo,
    SignInRequiredError,
    authentication_required,
    client_kind,
    decision_response,
    form_return_path,
    invalid_transaction,
    retry_later,
)
from ..pages import choose_locale
from ..passkey_endpoint import message_response
from ..resume import (
    BROWSER_COOKIE,
    ResumeClaim,
    binding_cookie,
    browser_binding,
    presented_binding,
    resume_claim,
    with_resume,
)
from ..transaction import (
    ConfirmedReauth,
    InvalidTransactionError,
    PendingTransaction,
    Transaction,
    note_transaction,
    pending_transaction,
)
from ..views import (
    FirstStep,
    earlier_session_ids,
    full_access_arguments,
    held_sign_in_next,
    held_user,
    hook_says_yes,
    note_renewal,
    note_sign_in,
    renew_session_id,
)
from . import _session
from ._web import home_path, request_info, sign_in_response, to_response, uncacheable_response
from .hooks import SIGN_IN_BACKEND
from .services import Stepup, get_stepup

__all__ = ["ContextFunction", "RequestStepup", "TransactionFunction", "stepup_for"]

#: ``(request) -> context`` for rules with a condition (e.g. production workspaces).
ContextFunction = Callable[[HttpRequest], Context | None]
#: ``(request) -> Transaction``: what a transaction-bound view is about to do (the
#: parameters naming its target, e.g. from ``request.resolver_match.kwargs``).
TransactionFunction = Callable[[HttpRequest], Transaction]
_UNSET: Final = object()
_FORM_TYPES: Final = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
#: Django's CSRF form field: never kept with a suspended form (the replay gets a new one).
CSRF_FIELD: Final = "csrfmiddlewaretoken"


class RequestStepup:
    """Put on every request by :class:`~.middleware.StepupMiddleware`."""

    def __init__(self, request: HttpRequest, services: Stepup) -> None:
        self.request = request
        self.services = services
        self.decision: Decision | None = None
        #: A check of this request allowed an action: what it answers is this person's
        #: now, and no cache may keep it (see :func:`uncacheable_response`).
        self.let_through = False
        self._subject: Any = _UNSET

    def __repr__(self) -> str:
        return f"RequestStepup({self.request.method} {self.request.path!r})"

    # the services ---------------------------------------------------------------

    @property
    def policy(self) -> Policy:
        return self.services.policy

    @property
    def reauth(self) -> Reauth:
        return self.services.reauth

    @property
    def two_factor(self) -> TwoFactor:
        return self.services.two_factor

    @property
    def tenant_settings(self) -> TenantSettings:
        return self.services.tenant_settings

    @property
    def passwords(self) -> PasswordReauth:
        return self.services.passwords

    # who and where ----------------------------------------------------------------

    @property
    def subject(self) -> Subject | None:
        """Who is asking (``SUBJECT_LOADER``), loaded once per request."""
        if self._subject is _UNSET:
            loader = self.services.hooks.subject_loader
            if loader is None:
                raise ConfigurationError("set STEPUP['SUBJECT_LOADER']")
            self._subject = loader(self.request)
        subject: Subject | None = self._subject
        return subject

    @property
    def tenant_id(self) -> str:
        """The ``TENANT_LOADER``'s answer as it is (``DEFAULT_TENANT`` for ``None``): the
        core refuses anything but text, as in every framework. Never ``str()`` of it: a
        model instance would read as its display name, a tenant nobody configured, whose
        flag is off, and every sensitive action would go ahead (fail open)."""
        loader = self.services.hooks.tenant_loader
        tenant: str | None = loader(self.request) if loader is not None else None
        return tenant if tenant is not None else self.services.default_tenant

    def is_tenant_admin(self, tenant_id: str) -> bool:
        """The ``IS_TENANT_ADMIN`` hook; only ``True`` means yes."""
        hook, subject = self.services.hooks.is_tenant_admin, self.subject
        return hook is not None and subject is not None and hook_says_yes(hook(subject, tenant_id))

    def has_full_access(self, user_id: str) -> bool:
        """The ``HAS_FULL_ACCESS`` hook for acting on ``user_id``'s two-factor
        (:func:`full_access_arguments`); only ``True`` means yes."""
        hook, subject = self.services.hooks.has_full_access, self.subject
        return (
            hook is not None
            and subject is not None
            and hook_says_yes(hook(*full_access_arguments(hook, subject, user_id)))
        )

    def url(self, view: str, **kwargs: str) -> str:
        """The path of a ready-made view (``"reauth"``, ``"two_factor"``...)."""
        return str(reverse(self.services.url_name(view), kwargs=kwargs or None))

    def locale(self) -> str:
        """The locale of this request's pages and JSON answers:
        ``STEPUP["LOCALE_SELECTOR"](request)`` when set and known; without one, the
        language Django's ``LocaleMiddleware`` activated (``request.LANGUAGE_CODE``: an
        ``i18n_patterns`` prefix, the language cookie, then ``Accept-Language``), as the
        project's own pages read it; else the request's ``Accept-Language``, else
        English."""
        selector = self.services.hooks.locale_selector
        if selector is not None:
            selected = selector(self.request)
        else:
            selected = getattr(self.request, "LANGUAGE_CODE", None)
        return choose_locale(selected, self.request.headers.get("Accept-Language"))

    def sign_in_response(self) -> HttpResponse:
        """Nobody is signed in: a browser goes to ``settings.LOGIN_URL``
        (:func:`._web.sign_in_response`), a script gets the 401 titled in :meth:`locale`."""
        if client_kind(request_info(self.request)) is Client.BROWSER:
            return sign_in_response(self.request)
        return to_response(authentication_required(self.answer_info()))

    def answer_info(self, path: str | None = None) -> RequestInfo:
        """What an answer to this request reads (``path``: where to come back, default
        this request's URL), its JSON titles in :meth:`locale`, as the pages read. The
        locale hook is called only when a title is translated: never for a request that
        goes ahead, nor for a redirect."""
        return request_info(self.request, path=path).in_locale(self.locale)

    # decisions ----------------------------------------------------------------------

    def check(
        self,
        action: str,
        context: Context | None = None,
        tenant_id: str | None = None,
        transaction: str | None = None,
    ) -> Decision | None:
        """The core's decision for this request (``None`` when nobody is signed in), in
        ``tenant_id`` (default: ``TENANT_LOADER``'s); ``transaction``: the digest of a
        transaction-bound action's target (checking spends its proof)."""
        subject = self.subject
        if subject is None:
            return None
        tenant = tenant_id if tenant_id is not None else self.tenant_id
        decision = self.reauth.check(subject, action, tenant, context, transaction=transaction)
        if decision.ok:
            self.let_through = True
        return decision

    def peek(self, action: str) -> Decision | None:
        """:meth:`check`'s decision, performing nothing (``Reauth.peek``: no sliding-window
        renewal, no proof spent): what the status endpoint answers."""
        subject = self.subject
        if subject is None:
            return None
        return self.reauth.peek(subject, action, self.tenant_id)

    def require(self, action: str, context: Context | None = None) -> Allowed:
        """Like :meth:`check`, but raise ``ReauthRequiredError`` / ``ReauthUnavailableError``
        / :class:`SignInRequiredError`; the middleware turns them into responses."""
        decision = self.check(action, context)
        if decision is None:
            raise SignInRequiredError("sign in first")
        if isinstance(decision, ReauthRequired):
            raise ReauthRequiredError(decision)
        if isinstance(decision, ReauthUnavailable):
            raise ReauthUnavailableError(decision)
        return decision

    def guard(
        self,
        action: str,
        context: ContextFunction | None = None,
        return_to: str | Callable[[HttpRequest], str] | None = None,
        tenant_id: str | None = None,
        transaction: TransactionFunction | None = None,
    ) -> HttpResponse | None:
        """``None`` when the view may run, else the response that refuses it.
        ``transaction(request)``: what a transaction-bound action is about to do. Nobody
        signed in is answered before ``context`` and ``transaction`` are called: they may
        look the target up (a 404 would tell who exists)."""
        signed_in = self.subject
        if signed_in is None:
            return self.sign_in_response()
        values = context(self.request) if context is not None else None
        target = transaction(self.request) if transaction is not None else None
        if tenant_id is None:
            tenant_id = self.tenant_id
        digest = None
        if target is not None:
            # The target is named in its tenant: another tenant's "prod-eu" is another.
            try:
                digest = target.digest(action, tenant_id)
            except InvalidTransactionError:
                return to_response(invalid_transaction(self.answer_info()))
        decision = self.reauth.check(signed_in, action, tenant_id, values, transaction=digest)
        self.decision = decision
        if decision.ok:
            self.let_through = True
            return None
        subject = self.subject
        if (
            target is not None
            and subject is not None
            and isinstance(decision, ReauthRequired)
            and decision.transaction
        ):
            # What the re-auth page shows, and what its grant is bound to.
            now = self.services.clock()
            session = self.request.session
            note_transaction(session, subject.session_id, action, target, decision.transaction, now)
        referer = self.request.headers.get("Referer", "")
        method = self.request.method or "GET"
        origin = f"{self.request.scheme}://{self.request.get_host()}"
        back = form_return_path(
            method, referer, return_to, self.request, origin=origin, home=home_path()
        )
        return self.respond(decision, back)

    def respond(self, decision: Decision, return_path: str | None = None) -> HttpResponse:
        """The answer to a refusal: the app's ``REAUTH_RESPONSE`` if it gives one, else
        303 to the re-auth page, 401 JSON, the RFC 9470 challenge or 503."""
        custom = self.services.hooks.reauth_response
        if custom is not None:
            answer = custom(self.request, decision)
            if answer is not None:
                return answer
        info = self.answer_info(return_path)
        refusal = decision_response(decision, info, reauth_url=self.url("reauth"))
        if refusal is None:
            raise ValueError("respond() needs a decision that does not allow the request")
        page = _OUTAGE_PAGES[-1] if _OUTAGE_PAGES else None
        if refusal.status == 503 and page is not None and client_kind(info) is Client.BROWSER:
            return page(self.request, "")  # a person reads a page, not JSON
        if refusal.status == 303 and isinstance(decision, ReauthRequired):
            kept = self.suspend(decision.action)
            if kept is not None:
                token, binding = kept
                return self.bind_browser(to_response(with_resume(refusal, token)), binding)
        return to_response(refusal)

    # resumed requests -----------------------------------------------------------------

    @property
    def suspensions(self) -> Suspensions:
        return self.services.suspensions

    def suspend(self, action: str) -> tuple[str, str] | None:
        """Keep this browser form POST for after the re-authentication, bound to this
        browser; its token and the browser's binding value (for :meth:`bind_browser`), or
        ``None`` when it cannot be kept (see :mod:`stepup.resume`)."""
        request, subject = self.request, self.subject
        content_type = (request.content_type or "").lower()
        if subject is None or request.method != "POST" or content_type not in _FORM_TYPES:
            return None
        suspensions = self.suspensions
        try:
            length = int(request.headers.get("Content-Length") or "")
        except ValueError:
            return None
        if length > 2 * suspensions.max_bytes:
            return None  # never read a body larger than could be kept
        fields = fields_in_order(request)
        if _carries_sensitive_post_parameters(request, fields):
            return None  # secret, as a password field is: never kept
        binding = browser_binding(request.COOKIES.get(BROWSER_COOKIE))
        outcome = suspensions.suspend(
            subject,
            action,
            "POST",
            request.get_full_path(),
            fields,
            has_files=bool(request.FILES),
            drop=(CSRF_FIELD,),
            # Django's CsrfViewMiddleware marks a request whose token it accepted: only
            # then may the replay carry a fresh one (a csrf_exempt view's forms get none).
            csrf_checked=getattr(request, "csrf_processing_done", False) is True,
            browser=binding,
        )
        return (outcome.token, binding) if isinstance(outcome, Suspended) else None

    def bind_browser(self, response: HttpResponse, binding: str) -> HttpResponse:
        """Set the cookie that binds a kept form to this browser (see
        :data:`~stepup.integrations.resume.BROWSER_COOKIE`) on the 303 that kept it."""
        cookie = binding_cookie(
            binding,
            root=get_script_prefix(),
            secure=self.request.is_secure(),
            ttl=self.suspensions.ttl,
        )
        cookie.set_on(response)
        return response

    def take_resumed(self, subject: Subject, token: str | None, action: str) -> ResumeClaim | None:
        """The kept form this re-authentication resumes, claimed (nothing is taken yet):
        :meth:`resume_claimed` takes it once the grant is stored, so a store failure
        while recording it loses nothing."""
        return resume_claim(subject, token, action)

    def resume_claimed(self, claim: ResumeClaim) -> ResumeOutcome | None:
        """Take the claimed form, once (after the grant is recorded: the session's id may
        be the renewed one). It resumes only in the browser that sent it (the one
        presenting its binding cookie): a form sent with a copy of the session cookie is
        taken and refused (``OTHER_BROWSER``)."""
        subject = self.subject
        if subject is None:
            return None
        earlier = earlier_session_ids(self.request.session, subject.session_id)
        browser = presented_binding(self.request.COOKIES.get(BROWSER_COOKIE))
        return self.suspensions.resume(
            subject,
            claim.token,
            claim.action,
            renewed_from=claim.session_id,
            earlier=earlier,
            browser=browser,
        )

    def pending_transaction(
        self, subject: Subject, action: str, digest: object
    ) -> PendingTransaction | None:
        """The transaction this session's guard kept for ``action`` under ``digest``."""
        now = self.services.clock()
        return pending_transaction(self.request.session, subject.session_id, action, digest, now)

    async def acheck(self, action: str, context: Context | None = None) -> Decision | None:
        return await sync_to_async(self.check)(action, context)

    async def arequire(self, action: str, context: Context | None = None) -> Allowed:
        return await sync_to_async(self.require)(action, context)

    async def aguard(
        self,
        action: str,
        context: ContextFunction | None = None,
        return_to: str | Callable[[HttpRequest], str] | None = None,
        transaction: TransactionFunction | None = None,
    ) -> HttpResponse | None:
        guard = self.guard
        return await sync_to_async(guard)(action, context, return_to, None, transaction)

    # sign-in, sign-out ----------------------------------------------------------------

    def begin_sign_in(
        self,
        user_id: str,
        *,
        next: str | None = None,
        channel: Channel = Channel.WEB,
        proved: tuple[str, ...] | None = None,
        authenticated_at: float | None = None,
        identity: Identity | None = None,
    ) -> HttpResponse | None:
        """Call from the login view once the password was right (or the OIDC or SAML
        answer checked), before signing in.

        ``None``: no second factor is needed, sign the user in yourself. Otherwise (the
        user has a confirmed TOTP device or a passkey, on the web channel) the sign-in
        waits in the session and the answer redirects to the second step, which calls
        ``COMPLETE_SIGN_IN(request, user_id)`` once the code or the passkey passed, then
        notes ``identity`` for the session (an OIDC or SAML sign-in:
        ``Identity(LoginMethod.OIDC, issuer=iss, subject=sub, provider="corp")``, so
        re-authentications go to that provider) and, with the policy's
        ``sign_in_counts``, records ``proved`` (default: what ``identity`` proves,
        ``("pwd",)`` without one) plus ``otp``, or plus the passkey's methods and
        ``mfa``, as the session's first re-authentication, dated ``authenticated_at``.
        ``proved`` with ``oidc`` or ``saml`` needs the ``identity``; what does not fit
        raises :class:`~stepup.errors.MalformedInputError` and nothing is kept. The
        waiting sign-in is kept in the store too, so that it completes once (a copy of
        a session cookie cannot finish it again). Either way, with or without a second
        factor, it spends the sign-in this session had waiting. A store failure raises
        and nothing waits: never sign in without asking (``StepupMiddleware`` answers it
        with the 503 "try again" when the view lets it through). ``next``: where the
        second step sends the user, a same-origin path (missing or unsafe: the
        project's root, Django's script prefix).
        """
        first = FirstStep.checked(identity, proved, authenticated_at)
        session = self.request.session
        if not self.second_factors(user_id, channel):
            _session.drop_waiting_sign_in(session, self.services)  # a new sign-in replaces it
            return None
        target = safe_return_path_or_default(next, home_path())
        now = self.services.clock()
        _session.start_pending_sign_in(session, self.services, user_id, target, now, first)
        return HttpResponseRedirect(self.url("two_factor_verify"), status=303)

    def second_factors(self, user_id: str, channel: Channel = Channel.WEB) -> SecondFactors:
        """What ``user_id`` can prove after the password (TOTP, passkeys, recovery
        codes), on ``channel``: nothing off the interactive web."""
        return second_factors(self.two_factor, self.services.passkeys, user_id, channel)

    def pending_sign_in(self) -> _session.PendingSignIn | None:
        return _session.pending_sign_in(
            self.request.session, self.services.clock(), self.services.sign_in_ttl
        )

    def complete_sign_in(self, pending: _session.PendingSignIn, proved: tuple[str, ...]) -> bool:
        """Spend the waiting sign-in in the store, then sign the user in
        (``COMPLETE_SIGN_IN``); then note how they signed in (the pending identity, over
        the password ``user_logged_in`` noted) and, with the policy's ``sign_in_counts``,
        record what the sign-in ``proved`` as the session's first re-authentication.
        ``False``: the store no longer holds it (completed already, from a copy of this
        session's cookie; expired; abandoned), answered as an expired sign-in, nobody
        signed in. A store outage raises, nobody signed in. An error once the user is
        signed in flushes the session before it goes on: a sign-in that did not finish
        leaves nobody signed in."""
        if not _session.end_pending_sign_in(self.request.session, self.services, pending):
            return False
        complete = self.services.hooks.complete_sign_in
        if complete is None:
            raise ConfigurationError("set STEPUP['COMPLETE_SIGN_IN'] to finish sign-ins")
        setattr(self.request, _SECOND_STEP_PASSED, True)
        setattr(self.request, SIGN_IN_BACKEND, pending.backend)  # for django_sign_in
        try:
            complete(self.request, pending.user_id)
        finally:
            delattr(self.request, _SECOND_STEP_PASSED)
            delattr(self.request, SIGN_IN_BACKEND)
        self._subject = _UNSET
        try:
            if pending.identity is not None:
                self.note_sign_in(pending.identity)
            # A held sign-in proved something unknown first: never a re-authentication.
            if self.policy.sign_in_counts and not pending.held:
                subject = self.subject
                if subject is None:
                    raise ConfigurationError("COMPLETE_SIGN_IN did not sign the user in")
                signed_in_with = pending.identity or Identity(LoginMethod.PASSWORD)
                subject = replace(subject, identity=signed_in_with)
                self.reauth.record_sign_in(subject, proved, pending.authenticated_at)
        except BaseException:
            self._undo_sign_in()
            raise
        return True

    def _undo_sign_in(self) -> None:
        """Sign out the user a failed completion signed in (the session, and
        ``request.user`` with ``django.contrib.auth``)."""
        self.request.session.flush()
        self._subject = _UNSET
        from django.apps import apps

        if apps.is_installed("django.contrib.auth"):
            from django.contrib.auth.models import AnonymousUser

            self.request.user = AnonymousUser()

    def note_sign_in(
        self,
        identity: Identity | None = None,
        *,
        methods: tuple[str, ...] | list[str] | None = None,
        authenticated_at: float | None = None,
        level: str | None = None,
    ) -> SignInOutcome | None:
        """Call right after signing a user in (``user_logged_in`` does it for you) and
        again with the identity when they signed in through OIDC or SAML. ``methods``
        (and ``level``, what the provider's signed ``acr`` proved): what the sign-in
        proved, recorded with :meth:`record_sign_in`."""
        note_sign_in(self.request.session, identity)
        self._subject = _UNSET
        if methods is None:
            return None
        return self.record_sign_in(methods, authenticated_at, level=level)

    def record_sign_in(
        self,
        methods: tuple[str, ...] | list[str] = ("pwd",),
        authenticated_at: float | None = None,
        *,
        level: str | None = None,
    ) -> SignInOutcome:
        """Let the sign-in that just happened count as the session's first
        re-authentication when the policy's ``sign_in_counts`` is on (off by default:
        the answer says ``policy_off`` and nothing is stored). ``("pwd", "otp")``,
        ``("oidc",)`` with the ID token's ``auth_time``, ``("saml",)`` with the
        ``AuthnInstant`` as ``authenticated_at``; ``level``: what the provider's signed
        ``acr`` proved (``Reauth.record_sign_in``). A sign-in this request made that
        :func:`hold_sign_in` held for the user's second factor is not counted
        (``second_step``): nobody is signed in until that step passed."""
        if getattr(_django_request(self.request), HELD, False):
            return SignInNotCounted(SignInReason.SECOND_STEP)
        self._subject = _UNSET
        subject = self.subject
        if subject is None:
            raise ConfigurationError("record_sign_in needs the user signed in first")
        return self.reauth.record_sign_in(subject, methods, authenticated_at, level=level)

    def sign_out(self) -> int:
        """Revoke this session's grant (``user_logged_out`` does it for you) and spend
        the sign-in it had waiting; how many grants went. A store outage never stops a
        sign-out: nothing is revoked (the grant ends at its lifetime; the outage is
        logged)."""
        subject = self.subject
        _session.drop_waiting_sign_in(self.request.session, self.services)
        _session.forget(self.request.session)
        self._subject = _UNSET
        if subject is None:
            return 0
        try:
            return self.reauth.sign_out(subject)
        except StoreUnavailableError:
            return 0

    def password_changed(self, user_id: str) -> int:
        """Revoke every grant of the user, in every session."""
        return self.reauth.password_changed(user_id)

    def record_reauth(
        self,
        subject: Subject,
        methods: list[str] | tuple[str, ...],
        at: float | None = None,
        *,
        level: str | None = None,
        transaction: str | None = None,
        signed: str | None = None,
    ) -> tuple[Subject, str | None]:
        """Record a successful re-authentication under a new session id, as ``login``
        does at sign-in (OWASP ASVS 5.0 section 7.2.4): a new session key, a new stepup
        session id with the grant bound to it (the old id keeps none), a new CSRF token. Returns the
        subject under the new id and the old id (``None`` when nothing was renewed).
        ``level``: what a provider's signed answer proved; ``transaction``: the digest of
        the one action this re-authentication confirmed (it waits no longer); ``signed``:
        the transaction a passkey signed (``PasskeyResult.transaction``)."""
        session = self.request.session
        renew_session_id(session)
        self._subject = _UNSET
        confirmed = ConfirmedReauth.after_renewal(
            subject, self.subject, methods, at=at, level=level, transaction=transaction,
            signed=signed,
        )  # fmt: skip
        try:
            confirmed.record(self.reauth)
        except StoreUnavailableError:
            # The session key is not cycled yet (cycle_key deletes the old one at once, and
            # Django saves no session of a 5xx answer: the user would be signed out). Still
            # one session: a form kept under the old id resumes on the next try.
            if confirmed.renewed_from is not None:
                note_renewal(session, confirmed.subject.session_id, confirmed.renewed_from)
            raise
        session.cycle_key()
        rotate_token(self.request)
        return confirmed.done(session)


#: What a browser gets when the guard cannot decide (the store is down): the views' "try
#: again" page, set by the app config when Django is ready (the views render pages and
#: build on this module, so it cannot import them); none: the JSON 503 every client gets.
_OUTAGE_PAGES: list[Callable[[HttpRequest, str], HttpResponse]] = []


def answer_outages_with(page: Callable[[HttpRequest, str], HttpResponse]) -> None:
    """Answer a browser with ``page(request, link)`` when the store is down."""
    _OUTAGE_PAGES[:] = [page]


def outage_response(request: HttpRequest, link: str = "") -> HttpResponse:
    """503 when the store could not answer (a view's, or one that escaped a view): the
    "try again" page for a browser (``link``: where to try again), the JSON
    ``unavailable`` for a script, both with ``Retry-After``."""
    info = request_info(request)
    page = _OUTAGE_PAGES[-1] if _OUTAGE_PAGES else None
    if page is not None and client_kind(info) is Client.BROWSER:
        return page(request, link)
    answer = message_response(503, "unavailable", answer_locale(request))
    return to_response(retry_later(answer))


def answer_locale(request: HttpRequest) -> str:
    """The locale of this request's pages and JSON answers (:meth:`RequestStepup.locale`),
    whether or not the middleware has put stepup on it yet."""
    bound = getattr(request, "stepup", None)
    if not isinstance(bound, RequestStepup):
        bound = RequestStepup(request, get_stepup())
    return bound.locale()


def read_form_body(request: HttpRequest, max_bytes: int) -> None:
    """Read a small multipart form POST's body before anything parses it (the CSRF
    middleware reads ``request.POST`` before the view), so a form the guard keeps keeps
    its fields in the order they were sent (``request.POST`` groups repeated names). A
    urlencoded body is kept by Django anyway. Django reads the parts from the kept body
    as it would from the request (``request.read()`` too)."""
    if request.method != "POST" or (request.content_type or "").lower() != "multipart/form-data":
        return
    try:
        length = int(request.headers.get("Content-Length") or "")
    except ValueError:
        return
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if length > 2 * max_bytes or (limit is not None and length > limit):
        return  # never read a body larger than could be kept, nor one Django refuses
    try:
        request.body  # noqa: B018 (read and kept by Django)
    except UnreadablePostError:
        # The client went away mid-body: as the CSRF middleware does, leave it to the
        # view's own read to answer (never an error from a middleware on any view).
        return


def fields_in_order(request: HttpRequest) -> list[tuple[str, str]]:
    """The form's fields in the order they were sent: Django's values, in the order of
    the names in the body (``request.POST`` groups repeated names). When the body is gone
    (parsed before it was kept) or its names do not match Django's, Django's order."""
    post = request.POST
    grouped = [(name, value) for name in post for value in post.getlist(name)]
    names = _names_sent(request)
    waiting = {name: list(post.getlist(name)) for name in post}
    ordered = []
    for name in names or ():
        values = waiting.get(name)
        if not values:
            return grouped
        ordered.append((name, values.pop(0)))
    if names is None or any(waiting.values()):
        return grouped
    return ordered


def _carries_sensitive_post_parameters(request: HttpRequest, fields: list[tuple[str, str]]) -> bool:
    """Does the form carry a field the view marked secret with Django's
    ``@sensitive_post_parameters`` (which sets ``request.sensitive_post_parameters``,
    the names or ``"__ALL__"``, before the guard runs when it sits above it)? Such a
    form is never kept, as one with a password field is not."""
    marked = getattr(_django_request(request), "sensitive_post_parameters", None)
    if not marked:
        return False
    sent = {name for name, _ in fields if name != CSRF_FIELD}
    if marked == "__ALL__":
        return bool(sent)
    return not sent.isdisjoint(marked)


def _names_sent(request: HttpRequest) -> list[str] | None:
    """The names of the form's fields, in the body's order, decoded as Django decodes
    them (``None``: the body is no longer there)."""
    try:
        raw = request.body
    except RawPostDataException:
        return None
    encoding = request.encoding or settings.DEFAULT_CHARSET
    if (request.content_type or "").lower() == "application/x-www-form-urlencoded":
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            text = raw.decode("iso-8859-1")
        return [name for name, _ in parse_qsl(text, keep_blank_values=True, encoding=encoding)]
    boundary = parse_header_parameters(request.META.get("CONTENT_TYPE", ""))[1].get("boundary")
    if not boundary:
        return None
    try:  # Django's own part reader, not a public API: without it, Django's order
        from django.http.multipartparser import FIELD, ChunkIter, LazyStream, Parser, exhaust
    except ImportError:
        return None
    names = []
    stream = LazyStream(ChunkIter(io.BytesIO(raw), 64 * 1024))
    try:
        for item_type, meta_data, field_stream in Parser(stream, boundary.encode("ascii")):
            try:
                name = meta_data["content-disposition"][1]["name"].strip()
            except (KeyError, IndexError, AttributeError):
                name = None
            if item_type == FIELD and name is not None:
                names.append(force_str(name, encoding, errors="replace"))
            exhaust(field_stream)
    except Exception:  # a body Django read one way and its parts another: Django's order
        return None
    return names


#: Set on the request while stepup's second step signs the user in: the sign-in that
#: ``user_logged_in`` then reports is one :func:`hold_sign_in` lets through.
_SECOND_STEP_PASSED: Final = "_stepup_second_step_passed"
#: Set on the request when :func:`hold_sign_in` held its sign-in: the middleware then
#: answers with the second step, whatever the view answered.
HELD: Final = "_stepup_sign_in_held"


def hold_sign_in(request: HttpRequest, user: Any) -> None:
    """Called for every ``user_logged_in``. A sign-in that did not come through stepup's
    second step (Django admin's login view, another app's, a password reset that signs
    the user in, a view that calls ``login()`` without ``begin_sign_in``) of a user who
    has a second factor on the web is undone and held, waiting for that factor, as
    ``begin_sign_in`` would have held it; :class:`StepupMiddleware` then sends the
    browser to the second step instead of the view's answer. A store that cannot say
    whether the user has a second factor stops the sign-in (fail closed). Off with
    ``STEPUP["SECOND_STEP_FOR_EVERY_SIGN_IN"] = False``.

    Who signed in is the ``user`` ``login()`` reports, by ``str(user.pk)`` (the id the
    default ``SUBJECT_LOADER`` and the sign-out receiver use), on the web: a session
    sign-in, whatever other credentials (an API key, a bearer token) the request
    carries. The same user signed in again in a session whose sign-in already stood
    (Django keeps that session's data) stays signed in. A sign-in made again while one
    of this user is held (an SSO middleware that signs in on every request) keeps the
    held one, and on stepup's own second-step pages lets the page answer, so the person
    can finish it. For the rest of the view ``request.user`` stays the user it signed in
    (another app's code after ``login()`` runs as it expects); the session no longer
    holds them, and the middleware replaces the view's answer. A sign-in that stands
    spends the sign-in the session still had waiting (of anyone)."""
    request = _django_request(request)  # not Django REST framework's wrapper
    session = request.session
    user_id = str(user.pk)
    if (
        getattr(request, _SECOND_STEP_PASSED, False)
        or session.get(_session.SIGNED_IN_AS) == user_id
    ):
        _let_stand(session, user_id)
        return
    services = get_stepup()
    if not services.second_step_for_every_sign_in:
        _session.drop_waiting_sign_in(session, services)  # this sign-in replaces it
        return
    bound = getattr(request, "stepup", None)
    if not isinstance(bound, RequestStepup):
        bound = attach(request)
    login_id = user_id  # Django's; the marker is kept by it
    try:
        user_id, needed = _second_factors_of(bound, user, login_id)
    except BaseException:  # a store outage, the app's loader refusing, a malformed id
        _undo_login(request)  # whatever it was, the sign-in does not stand (fail closed)
        raise
    if not needed:
        _let_stand(session, login_id)
        return
    from django.contrib.auth import BACKEND_SESSION_KEY

    now, ttl = services.clock(), services.sign_in_ttl
    waiting = _session.held_sign_in(session, user_id, now, ttl)
    backend = session.get(BACKEND_SESSION_KEY)
    # Its user_logged_out clears stepup's session state too; the same sign-in held
    # again keeps its record in the store (another's is spent: abandoned).
    setattr(request, _session.KEEPS_WAITING, waiting is not None)
    try:
        _undo_login(request)
    finally:
        delattr(request, _session.KEEPS_WAITING)
    bound._subject = _UNSET
    if waiting is not None:
        _session.keep_held_sign_in(request.session, waiting)
        if _on_second_step(request):
            return  # the page of the held sign-in answers
    else:
        first = FirstStep.checked()
        _session.start_pending_sign_in(
            request.session, services, user_id, None, now, first, held=True, backend=backend
        )
    setattr(request, HELD, True)
    # The rest of the view still sees the user it signed in (django-allauth asserts it
    # right after login()): the session is signed out, and the view's answer replaced.
    request.user = user


def _let_stand(session: Any, user_id: str) -> None:
    """The sign-in of ``user_id`` stands: it spends the sign-in the session still had
    waiting (of anyone: a copy of the cookie taken while it waited must not finish it
    now), and is noted, so that the same user signed in again stays signed in."""
    _session.drop_waiting_sign_in(session, get_stepup())
    session[_session.SIGNED_IN_AS] = user_id


def _second_factors_of(bound: RequestStepup, user: Any, login_id: str) -> tuple[str, SecondFactors]:
    """The user's stepup id and second factors (:func:`~stepup.integrations.views.
    held_user`), with what ``SUBJECT_LOADER`` answers now that ``login()`` ran."""
    if not hasattr(bound.request, "user"):  # a bare request (the test client's force_login)
        bound.request.user = user
    bound._subject = _UNSET  # who is signed in now, not before login()
    subject = bound.subject
    bound._subject = _UNSET
    return held_user(login_id, subject, lambda user_id: bound.second_factors(user_id))


def _django_request(request: Any) -> HttpRequest:
    """The ``HttpRequest`` itself: Django REST framework's ``Request`` wraps one (and a
    flag set on the wrapper would never reach the middleware)."""
    inner = getattr(request, "_request", None)
    return inner if isinstance(inner, HttpRequest) else request


#: stepup's pages of the sign-in's second step (names in its URLconf).
_SECOND_STEP_PAGES: Final = ("two_factor_verify", "sign_in_passkey_begin", "sign_in_passkey_finish")


def _on_second_step(request: HttpRequest) -> bool:
    """Is this request for one of stepup's second-step pages? (Read from the path: the
    URL is not resolved yet when a middleware signs the user in.)"""
    bound = stepup_for(request)
    return request.path in {bound.url(name) for name in _SECOND_STEP_PAGES}


def _undo_login(request: HttpRequest) -> None:
    """Sign out the user ``login()`` just signed in (its ``user_logged_out`` revokes the
    new session's grant, of which there is none yet)."""
    from django.contrib.auth import logout

    logout(request)


def held_sign_in_response(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """The second step, for a request whose sign-in :func:`hold_sign_in` held: the view's
    own redirect (where it would have sent the user) becomes where the second step
    sends them; after a ``GET`` answered with a page (an SSO middleware signed the user
    in on the way to it), that page; otherwise the project's root. Of the view's cookies
    only the CSRF cookie stays."""
    session = request.session
    saved = session.get(_session.PENDING)
    asked = None if _on_second_step(request) else request.get_full_path()
    try:
        host: str | None = request.get_host()
    except DisallowedHost:
        host = None
    location = held_sign_in_next(
        response.status_code, response.get("Location"), request.method or "", asked,
        request.scheme, host,
    )  # fmt: skip
    if isinstance(saved, dict) and location:
        saved["next"] = safe_return_path_or_default(location, home_path())
        session.modified = True
    # Middleware outside this one reads the user the session holds now: nobody.
    from django.contrib.auth.models import AnonymousUser

    request.user = AnonymousUser()
    held = HttpResponseRedirect(stepup_for(request).url("two_factor_verify"), status=303)
    csrf = response.cookies.get(settings.CSRF_COOKIE_NAME)
    if csrf is not None:  # the token login() rotated; no other cookie of the view's (an
        held.cookies[csrf.key] = csrf  # auth token it issued would sign nobody in yet)
    held["Cache-Control"] = "no-store"
    return held


def uncacheable_if_let_through(request: HttpRequest, response: Any) -> Any:
    """The middleware's last word: a response to a request whose check allowed an action
    (a view calling ``require``, ``arequire``, ``guard``, ``aguard`` or ``check``
    itself), or whose bearer token ``bearer_required`` accepted (``request.stepup_token``),
    is made :func:`uncacheable_response`: also one Django built from an exception the
    view raised after that (a 404, a 500)."""
    bound = getattr(request, "stepup", None)
    if (isinstance(bound, RequestStepup) and bound.let_through) or getattr(
        request, "stepup_token", None
    ) is not None:
        return uncacheable_response(response)
    return response


def stepup_for(request: HttpRequest) -> RequestStepup:
    """``request.stepup``, or a clear error when the middleware is missing."""
    found = getattr(request, "stepup", None)
    if isinstance(found, RequestStepup):
        return found
    raise ImproperlyConfigured(
        "add 'stepup.integrations.django.middleware.StepupMiddleware' to MIDDLEWARE"
    )


def attach(request: HttpRequest) -> RequestStepup:
    bound = RequestStepup(request, get_stepup())
    request.stepup = bound
    return bound
