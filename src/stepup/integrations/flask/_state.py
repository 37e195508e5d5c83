"""One app's stepup: the core services built from its config, and the request-time glue.

Everything here reads the request, calls the core and writes a response; the core
makes every decision.
"""

from __future__ import annotations

import contextlib
import io
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast

from flask import (
    Flask,
    Response,
    abort,
    after_this_request,
    current_app,
    g,
    make_response,
    request,
    session,
    url_for,
)
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import Unauthorized
from werkzeug.formparser import FormDataParser

from ..._flow import run
from ...adapters.idp.password import PasswordReauth
from ...clock import Clock
from ...errors import ConfigurationError, StoreUnavailableError
from ...events import EventBus
from ...i18n import AppCatalog
from ...passkeys import Passkeys
from ...policy import Context, Policy
from ...reauth import (
    Decision,
    Reauth,
    ReauthRequired,
    SignInNotCounted,
    SignInOutcome,
    SignInReason,
)
from ...redirects import UnsafeRedirectError, safe_return_path, safe_return_path_or_default
from ...resume import ResumeOutcome, Suspended, Suspensions
from ...signin import SecondFactors, second_factors
from ...subject import Identity, LoginMethod, Subject
from ...tenants import TenantSettings
from ...twofactor import Channel, TwoFactor
from ..http import (
    SESSION_CHALLENGE,
    Client,
    RequestInfo,
    authentication_required,
    client_kind,
    decision_response,
    form_return_path,
    invalid_transaction,
)
from ..marks import actions_of
from ..pages import choose_locale
from ..passkey_endpoint import relying_party_from
from ..resume import (
    BROWSER_COOKIE,
    ResumeClaim,
    binding_cookie,
    browser_binding,
    presented_binding,
    resume_claim,
    with_resume,
)
from ..setting_readers import (
    clock_setting,
    dummy_password_hash,
    flag,
    non_empty_text,
    positive_seconds,
)
from ..transaction import (
    PENDING_TRANSACTIONS,
    ConfirmedReauth,
    InvalidTransactionError,
    PendingTransaction,
    Transaction,
    note_transaction,
    pending_transaction,
)
from ..views import (
    EARLIER_IDS,
    ENROLLING,
    OTP_PROOF,
    SESSION_ID,
    SIGNED_IN_WITH,
    FirstStep,
    abandon_waiting_sign_in,
    earlier_session_ids,
    full_access_arguments,
    held_sign_in_next,
    held_user,
    hold_waiting_sign_in,
    hook_says_yes,
    is_fresh,
    kept_user_id,
    note_renewal,
    note_sign_in,
    renew_session_id,
    session_identity,
    take_waiting_sign_in,
)
from ..views import session_id as session_id_of
from ._config import (
    default_tenant_from_config,
    oidc_providers_from_config,
    password_hasher_from_config,
    password_verifiers_from_config,
    policy_from_config,
    saml_providers_from_config,
    secret_box_from_config,
    secret_fields_from_config,
    store_from_config,
)
from ._csrf import FIELD, CsrfTokens
from ._hooks import ContextFunction, Hooks, ReturnTo, TransactionFunction
from ._web import home_path, request_info, to_response

if TYPE_CHECKING:
    from ...adapters.storage.base import Store

__all__ = ["AppState", "state"]

T = TypeVar("T")
_PENDING: Final = "_stepup_2fa_login"
#: Set on ``g`` while :meth:`AppState.hold_login` signs out a sign-in it holds again.
_KEEPS_WAITING: Final = "stepup_keeps_waiting_sign_in"
_FORM_TYPES: Final = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


@dataclass(frozen=True, slots=True)
class PendingLogin:
    """A sign-in that passed the password (or OIDC, SAML) and waits for the second factor."""

    user_id: str
    #: Where the second step sends the user: a same-origin path, or with
    #: ``STEPUP_SUBDOMAIN`` that path on the host the sign-in began on, an absolute URL
    #: (:meth:`AppState._where_begun`).
    next: str
    remember: bool
    proved: tuple[str, ...] = ("pwd",)
    authenticated_at: float | None = None
    #: This sign-in's random id: a passkey's challenge is bound to it (and the user).
    nonce: str = field(default="", repr=False)
    #: How the user signed in (``None``: a password), as the app gave it to
    #: ``begin_two_factor``: noted for the session once the second step passed.
    identity: Identity | None = None
    #: A sign-in that came in another way than ``begin_two_factor`` and was held for
    #: the second step (:meth:`AppState.hold_login`): what its first step proved is
    #: unknown, so it is never recorded as a re-authentication.
    held: bool = False


#: Set on ``g`` while stepup's second step signs the user in (its ``login_user`` is one
#: :meth:`AppState.hold_login` lets through), and when a sign-in was held (then its
#: answer is replaced, by a callback for this request only: no other request pays).
_SECOND_STEP_PASSED: Final = "stepup_second_step_passed"
HELD: Final = "stepup_sign_in_held"
#: The user this session's sign-in was let stand for (see :meth:`AppState.hold_login`).
_SIGNED_IN_AS: Final = "_stepup_signed_in_as"
#: ``[stepup id, machine]``: the machine (Flask-Login's session identifier) that session
#: protection flagged, and the session's stepup id since its grant was ended for it or
#: since it re-authenticated (see :meth:`AppState.session_protected`).
_FLAGGED_MACHINE: Final = "_stepup_flagged_machine"
#: Set on ``g``: the machine this request came from, when session protection flagged it.
_FLAGGED_NOW: Final = "stepup_flagged_machine"
#: Set on ``g``: the stepup id whose grant session protection ended in this request,
#: revoked in the store once the user is known (:meth:`AppState.subject`).
_GRANT_ENDED: Final = "stepup_grant_ended"
#: stepup's pages of the sign-in's second step (endpoints).
_SECOND_STEP_PAGES: Final = frozenset(
    {"stepup.two_factor_verify", "stepup.sign_in_passkey_begin", "stepup.sign_in_passkey_finish"}
)


class AppState:
    """Kept in ``app.extensions["stepup"]``."""

    def __init__(
        self,
        app: Flask,
        hooks: Hooks,
        *,
        policy: Policy | None,
        store: Store | None,
        clock: Clock,
        events: EventBus,
        subdomain: str | None = None,
    ) -> None:
        config = app.config
        secret_key = config["STEPUP_SECRET_KEY"] or app.secret_key
        if not secret_key:
            raise ConfigurationError("set STEPUP_SECRET_KEY or the app's SECRET_KEY")
        self.hooks = hooks
        #: ``STEPUP_SUBDOMAIN``: the subdomain of ``SERVER_NAME`` that serves stepup's
        #: pages (``None``: the app's default host), checked by ``init_app``.
        self.subdomain = subdomain
        #: Has the app a Flask-Login ``LoginManager`` (:func:`_check_session_protection`)?
        #: ``None`` until the first subject an app's own loader builds; ``False`` then
        #: spares every later request the look.
        self.has_login_manager: bool | None = None
        # Every setting is read here, so a wrong one stops init_app, named
        # (docs/getting-started-flask.md#configuration), never some later request.
        clock = clock_setting(config["STEPUP_CLOCK"], "STEPUP_CLOCK") or clock
        self.clock = clock
        self.events = events
        self.disable_action = non_empty_text(
            config["STEPUP_DISABLE_ACTION"], "STEPUP_DISABLE_ACTION"
        )
        self.recovery_action = non_empty_text(
            config["STEPUP_RECOVERY_ACTION"], "STEPUP_RECOVERY_ACTION"
        )
        rp_name = config["STEPUP_PASSKEYS_RP_NAME"]
        if not isinstance(rp_name, str | None):  # taken up the day an RP id is set
            raise ConfigurationError("STEPUP_PASSKEYS_RP_NAME must be the site's name (a string)")
        # Passkeys (docs/passkeys.md): off unless STEPUP_PASSKEYS_RP_ID is set; with
        # them, the policy offers a passkey first and guards adding and removing one.
        self.relying_party = relying_party_from(
            config["STEPUP_PASSKEYS_RP_ID"],
            rp_name or app.name,
            config["STEPUP_PASSKEYS_ORIGINS"],
            settings=(
                "STEPUP_PASSKEYS_RP_ID",
                "STEPUP_PASSKEYS_RP_NAME",
                "STEPUP_PASSKEYS_ORIGINS",
            ),
        )
        self.policy = policy_from_config(
            policy,
            config["STEPUP_POLICY_FILE"],
            recovery_action=self.recovery_action,
            disable_action=self.disable_action,
            relying_party=self.relying_party,
        )
        create_schema = flag(config["STEPUP_CREATE_SCHEMA"], "STEPUP_CREATE_SCHEMA")
        self.store: Store = (
            store
            if store is not None
            else store_from_config(config["STEPUP_STORE"], create_schema=create_schema)
        )
        self.default_tenant = default_tenant_from_config(config["STEPUP_DEFAULT_TENANT"])
        issuer = config["STEPUP_TOTP_ISSUER"]
        self.issuer = non_empty_text(app.name if issuer is None else issuer, "STEPUP_TOTP_ISSUER")
        self.login_ttl = positive_seconds(
            config["STEPUP_TWO_FACTOR_LOGIN_TTL"], "STEPUP_TWO_FACTOR_LOGIN_TTL"
        )
        #: Hold a Flask-Login sign-in that skipped the second step (:meth:`hold_login`).
        #: Exactly a bool: "False" would read as true, and off lowers protection.
        self.second_step_for_every_sign_in = flag(
            config["STEPUP_SECOND_STEP_FOR_EVERY_SIGN_IN"], "STEPUP_SECOND_STEP_FOR_EVERY_SIGN_IN"
        )
        self.oidc: Mapping[str, Any] = oidc_providers_from_config(
            config["STEPUP_OIDC_PROVIDERS"], self.store, clock
        )
        self.saml: Mapping[str, Any] = saml_providers_from_config(
            config["STEPUP_SAML_PROVIDERS"], self.store, clock
        )
        self.csrf = CsrfTokens(secret_key)
        cancel_url = config["STEPUP_CANCEL_URL"]
        if cancel_url is not None:
            try:
                safe_return_path(cancel_url)
            except UnsafeRedirectError:
                raise ConfigurationError("STEPUP_CANCEL_URL must be a path on this site") from None
        self.cancel_url: str | None = cancel_url
        self.app_catalog = AppCatalog.of(config["STEPUP_CATALOG"], "STEPUP_CATALOG")
        self.reauth = Reauth(self.store, self.policy, clock=clock, events=events)
        self.suspensions = Suspensions(
            self.store,
            clock=clock,
            secret_fields=secret_fields_from_config(config["STEPUP_RESUME_SECRET_FIELDS"]),
        )
        self.tenant_settings = TenantSettings(self.store, clock=clock, events=events)
        box = secret_box_from_config(
            config["STEPUP_ENCRYPTION_KEYS"], config["STEPUP_ENCRYPTION_KEY_ID"]
        )
        self.two_factor = TwoFactor(
            self.store, issuer=self.issuer, box=box, clock=clock, events=events
        )
        # Opaque user handles: a subkey of the secret key (and of the app's rotated
        # SECRET_KEY_FALLBACKS, still accepted), never the user id (docs/passkeys.md).
        handle_keys = [secret_key, *(config.get("SECRET_KEY_FALLBACKS") or ())]
        self.passkeys: Passkeys | None = (
            None
            if self.relying_party is None
            else Passkeys(
                self.store,
                self.relying_party,
                clock=clock,
                events=events,
                user_handle_key=handle_keys,
            )
        )
        verifiers = password_verifiers_from_config(config["STEPUP_PASSWORD_VERIFIERS"])
        self.passwords = PasswordReauth(
            self.store,
            hasher=password_hasher_from_config(config["STEPUP_PASSWORD_HASHER"]),
            verifiers=verifiers,
            dummy_hash=dummy_password_hash(
                config["STEPUP_PASSWORD_DUMMY_HASH"], "STEPUP_PASSWORD_DUMMY_HASH", verifiers
            ),
            clock=clock,
            events=events,
        )
        #: What a browser gets when the guard cannot decide (the store is down): the
        #: views' "try again" page, set when their blueprint is registered (this object
        #: has no pages of its own); ``None``: the JSON 503 every client gets.
        self.outage_page: Callable[[], Response] | None = None

    def locale(self) -> str:
        """The locale of this request's pages and JSON answers: the app's
        ``locale_selector``, else the ``Accept-Language`` header, else English."""
        selector = self.hooks.locale_selector
        selected = selector() if selector is not None else None
        return choose_locale(selected, request.headers.get("Accept-Language"))

    def answer_info(self, path: str | None = None) -> RequestInfo:
        """What an answer to this request reads (``path``: where to come back, default
        this request's URL), its JSON titles in :meth:`locale`, as the pages read. The
        locale hook is called only when a title is translated: never for a request that
        goes ahead, nor for a redirect."""
        return request_info(request, path=path).in_locale(self.locale)

    def __repr__(self) -> str:
        return f"AppState({self.policy!r}, store={type(self.store).__name__})"

    # who is asking --------------------------------------------------------------

    def subject(self) -> Subject | None:
        """This request's subject, loaded once per request."""
        kept = resolved(g)  # one context lookup, not one per access
        if "stepup_subject" not in kept:
            loader = self.hooks.subject_loader
            if loader is None:
                kept.stepup_subject = self._flask_login_subject()
            else:
                if self.has_login_manager is not False:  # before the loader reads the session
                    self.has_login_manager = _check_session_protection()
                kept.stepup_subject = loader()
            if _GRANT_ENDED in kept:  # session protection ended a grant while it loaded
                self._revoke_ended_grant(kept.pop(_GRANT_ENDED), kept.stepup_subject)
        subject: Subject | None = kept.stepup_subject
        return subject

    def _flask_login_subject(self) -> Subject | None:
        if getattr(current_app, "login_manager", None) is None:
            raise ConfigurationError(
                "stepup needs to know who is signed in: register a subject_loader"
                " or set up Flask-Login"
            )
        from flask_login import current_user

        if not current_user.is_authenticated:
            return None
        return Subject(str(current_user.get_id()), self.session_id(), session_identity(session))

    def session_id(self) -> str:
        """This browser session's stepup id (see :func:`stepup.integrations.views.session_id`)."""
        return session_id_of(resolved(session))  # one context lookup

    def note_sign_in(self, identity: Identity | None, *, by_a_person: bool = True) -> None:
        """A new stepup session id for the sign-in that just happened, which spends the
        sign-in this session had waiting from ``begin_two_factor`` (a copy of the cookie
        taken while it waited must not finish it now). A held one is left to
        :meth:`hold_login`, which runs next with Flask-Login and keeps it only for the
        same user signed in again. Not ``by_a_person`` (Flask-Login's remember-me cookie
        restoring an earlier user on some page load): the person's waiting sign-in
        stands, as it did before that load."""
        if by_a_person and not self._waiting_is_held():
            self.drop_waiting_sign_in()
        note_sign_in(session, identity)
        _renew_session_key()
        self.csrf.rotate()
        g.pop("stepup_subject", None)

    def record_sign_in(
        self,
        methods: list[str] | tuple[str, ...],
        authenticated_at: float | None = None,
        *,
        signed_in_with: Identity | None = None,
        level: str | None = None,
    ) -> SignInOutcome:
        """Let this sign-in count as the session's first re-authentication when the
        policy says so (``sign_in_counts``): call after the user is signed in.
        ``signed_in_with``: how the sign-in was made, when stepup knows it better than
        the subject loader (the second step's pending sign-in). A sign-in this request
        made that :meth:`hold_login` held for the user's second factor is not counted
        (``second_step``): nobody is signed in until that step passed."""
        if g.get(HELD):
            return SignInNotCounted(SignInReason.SECOND_STEP)
        g.pop("stepup_subject", None)
        subject = self.subject()
        if subject is None:
            raise ConfigurationError("record_sign_in needs the user signed in first")
        if signed_in_with is not None:
            subject = replace(subject, identity=signed_in_with)
        return self.reauth.record_sign_in(subject, methods, authenticated_at, level=level)

    def suspend(self, subject: Subject, action: str) -> tuple[str, str] | None:
        """Keep this browser form POST for after the re-authentication, bound to this
        browser; its token and the browser's binding value (for :meth:`bind_browser`), or
        ``None`` when it cannot be kept (see :mod:`stepup.resume`)."""
        if not self._may_keep():
            return None  # never read a body larger than could be kept
        path = request_info(request).path  # under the app's prefix (SCRIPT_NAME) too
        binding = browser_binding(request.cookies.get(BROWSER_COOKIE))
        fields, has_files = _fields_in_order()
        outcome = self.suspensions.suspend(
            subject,
            action,
            request.method,
            path,
            fields,
            has_files=has_files,
            drop=(FIELD, self.csrf.field),
            # Only a form whose own token held gets a fresh one on its replay: a forged
            # form must not come back through the detour with a valid token.
            csrf_checked=self.csrf.valid(self.csrf.submitted()),
            browser=binding,
        )
        return (outcome.token, binding) if isinstance(outcome, Suspended) else None

    def _may_keep(self) -> bool:
        """Is this a form POST small enough to be kept (its body at most twice
        ``max_bytes``, so a body larger than could be kept is never read)?"""
        if request.method != "POST" or request.mimetype not in _FORM_TYPES:
            return False
        length = request.content_length
        return length is not None and length <= 2 * self.suspensions.max_bytes

    def read_guarded_form(self) -> None:
        """Before anything parses the form of a guarded view (Flask-WTF's check, a
        decorator above the guard), read its body, so a form the guard keeps keeps its
        fields in the order they were sent (``request.form`` groups repeated names).
        ``request.form``, ``request.files`` and ``request.get_data()`` read the same body
        after it; ``request.stream`` is then empty."""
        view = current_app.view_functions.get(request.endpoint or "")
        if view is not None and actions_of(view) and self._may_keep():
            request.get_data(cache=True)

    def bind_browser(self, response: Response, binding: str) -> Response:
        """Set the cookie that binds a kept form to this browser (see
        :data:`~stepup.integrations.resume.BROWSER_COOKIE`) on the 303 that kept it."""
        cookie = binding_cookie(
            binding,
            root=request.script_root,
            secure=request.is_secure,
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
        subject = self.subject()
        if subject is None:
            return None
        earlier = earlier_session_ids(session, subject.session_id)
        browser = presented_binding(request.cookies.get(BROWSER_COOKIE))
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
        return pending_transaction(session, subject.session_id, action, digest, self.clock())

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
        """Record a successful re-authentication under a new session id, as at sign-in
        (OWASP ASVS 5.0 section 7.2.4): the grant is bound to the new id, the old id keeps
        none, and the CSRF token is renewed with it. Returns the subject under the new id
        and the old id (``None`` when nothing was renewed). A subject loader that does not build
        its Subject with :meth:`session_id` keeps its own id, and the grant is bound to it.
        ``level``: what a provider's signed answer proved; ``transaction``: the digest of
        the one action this re-authentication confirmed (it waits no longer); ``signed``:
        the transaction a passkey signed (``PasskeyResult.transaction``)."""
        renewed = renew_session_id(session)
        _renew_session_key()
        flagged = g.get(_FLAGGED_NOW)
        if flagged is not None:  # this machine proved itself: its grant is its own
            session[_FLAGGED_MACHINE] = [renewed, flagged]
        self.csrf.rotate()
        g.pop("stepup_subject", None)
        confirmed = ConfirmedReauth.after_renewal(
            subject, self.subject(), methods, at=at, level=level, transaction=transaction,
            signed=signed,
        )  # fmt: skip
        try:
            confirmed.record(self.reauth)
        except StoreUnavailableError:
            # Still one session: a form kept under the old id resumes on the next try.
            if confirmed.renewed_from is not None:
                note_renewal(session, confirmed.subject.session_id, confirmed.renewed_from)
            raise
        return confirmed.done(session)

    def is_tenant_admin(self, subject: Subject, tenant_id: str) -> bool:
        """The app's ``is_tenant_admin`` hook; only ``True`` means yes."""
        hook = self.hooks.is_tenant_admin
        return hook is not None and hook_says_yes(hook(subject, tenant_id))

    def account_name(self, user_id: str) -> str:
        """How authenticator apps and passkeys name this account: the app's
        ``account_name`` hook, when it gives text, else the user id."""
        hook = self.hooks.account_name
        name = hook(user_id) if hook is not None else None
        return name if isinstance(name, str) and name else user_id

    def has_full_access(self, subject: Subject, user_id: str) -> bool:
        """The app's ``has_full_access`` hook for acting on ``user_id``'s two-factor
        (:func:`full_access_arguments`); only ``True`` means yes."""
        hook = self.hooks.has_full_access
        return hook is not None and hook_says_yes(
            hook(*full_access_arguments(hook, subject, user_id))
        )

    def sign_out(self, user_id: str | None = None) -> None:
        """Revoke this session's grant and forget the session's stepup state. A store
        outage never stops a sign-out: the state is forgotten all the same, nothing is
        revoked (the grant ends at its lifetime; the outage is logged)."""
        sid = session.get(SESSION_ID)
        if user_id is None:
            subject = self.subject()
            user_id = subject.user_id if subject is not None else None
            sid = subject.session_id if subject is not None else sid
        if user_id is not None and isinstance(sid, str):
            with contextlib.suppress(StoreUnavailableError):
                self.reauth.sign_out(Subject(user_id, sid))
        if not g.get(_KEEPS_WAITING):
            self.drop_waiting_sign_in()
        for key in (
            SESSION_ID,
            EARLIER_IDS,
            SIGNED_IN_WITH,
            _PENDING,
            OTP_PROOF,
            PENDING_TRANSACTIONS,
            ENROLLING,
            _SIGNED_IN_AS,
            _FLAGGED_MACHINE,
        ):
            session.pop(key, None)
        self.csrf.rotate()
        g.pop("stepup_subject", None)

    def tenant_for(self, subject: Subject) -> str:
        loader = self.hooks.tenant_loader
        tenant = loader(subject) if loader is not None else None
        return tenant if tenant is not None else self.default_tenant

    def unauthenticated(self) -> Any:
        """Nobody is signed in: a script (JSON, a bearer token) gets the JSON 401
        ``authentication_required`` every framework answers; a browser gets Flask-Login's
        ``unauthorized()`` (its sign-in page) when the app has Flask-Login, else a 401."""
        if client_kind(request_info(request)) is not Client.BROWSER:
            return to_response(authentication_required(self.answer_info()))
        manager = getattr(current_app, "login_manager", None)
        if manager is not None:
            return manager.unauthorized()
        # RFC 9110 15.5.2: a 401 names a challenge (the session's; no browser prompts).
        answer = Unauthorized().get_response()
        answer.headers["WWW-Authenticate"] = SESSION_CHALLENGE
        return abort(answer)

    # the guard --------------------------------------------------------------------

    def check(
        self,
        action: str,
        context: Context | None = None,
        tenant_id: str | None = None,
        transaction: str | None = None,
    ) -> Decision | None:
        """The core's decision for this request's subject (``None``: nobody signed in),
        in ``tenant_id`` (default: the subject's tenant); ``transaction``: the digest of a
        transaction-bound action's target (checking spends its proof)."""
        subject = self.subject()
        if subject is None:
            return None
        tenant = tenant_id if tenant_id is not None else self.tenant_for(subject)
        return self.reauth.check(subject, action, tenant, context, transaction=transaction)

    def peek(self, action: str) -> Decision | None:
        """:meth:`check`'s decision, performing nothing (``Reauth.peek``: no sliding-window
        renewal, no proof spent): what the status endpoint answers."""
        subject = self.subject()
        if subject is None:
            return None
        return self.reauth.peek(subject, action, self.tenant_for(subject))

    def guard(
        self,
        action: str,
        context: ContextFunction | None,
        return_to: ReturnTo | None,
        tenant_id: str | None = None,
        transaction: TransactionFunction | None = None,
    ) -> Any:
        """``None`` to let the view run, else the response that refuses it. Nobody
        signed in is answered before the app's ``context`` and ``transaction`` are
        called: they may look the target up (a 404 would tell who exists)."""
        signed_in = self.subject()
        if signed_in is None:
            return self.unauthenticated()
        values = context(request) if context is not None else None
        target: Transaction | None = transaction(request) if transaction is not None else None
        if tenant_id is None:
            tenant_id = self.tenant_for(signed_in)
        digest = None
        if target is not None:
            # The target is named in its tenant: another tenant's "prod-eu" is another.
            try:
                digest = target.digest(action, tenant_id)
            except InvalidTransactionError:
                return to_response(invalid_transaction(self.answer_info()))
        decision = self.reauth.check(signed_in, action, tenant_id, values, transaction=digest)
        resolved(g).stepup_decision = decision  # one context lookup
        if decision.ok:
            return None
        subject = self.subject()
        if (
            target is not None
            and subject is not None
            and isinstance(decision, ReauthRequired)
            and decision.transaction
        ):
            # What the re-auth page shows, and what its grant is bound to.
            now = self.clock()
            note_transaction(session, subject.session_id, action, target, decision.transaction, now)
        handler = self.hooks.response_handler
        if handler is not None:
            custom = handler(decision, request)
            if custom is not None:
                return make_response(custom)
        back = form_return_path(
            request.method,
            request.referrer or "",
            return_to,
            request,
            origin=request.host_url,
            home=home_path(),
        )
        info = self.answer_info(back)
        refusal = decision_response(decision, info, reauth_url=url_for("stepup.reauth"))
        assert refusal is not None  # the decision was not ok
        page = self.outage_page
        if refusal.status == 503 and page is not None and client_kind(info) is Client.BROWSER:
            return page()  # a person reads a page, not JSON
        if refusal.status == 303 and isinstance(decision, ReauthRequired):
            subject = self.subject()
            kept = self.suspend(subject, action) if subject is not None else None
            if kept is not None:
                token, binding = kept
                return self.bind_browser(to_response(with_resume(refusal, token)), binding)
        return to_response(refusal)

    # the sign-in second factor ---------------------------------------------------------

    def begin_login(
        self,
        user_id: str,
        next_path: str,
        remember: bool,
        proved: tuple[str, ...] | None = None,
        authenticated_at: float | None = None,
        identity: Identity | None = None,
    ) -> Response:
        # Checked before anything is kept (a typed error, nothing changed): the second
        # step cannot fail on it once the user is signed in.
        first = FirstStep.checked(identity, proved, authenticated_at)
        self._keep_pending(user_id, next_path, remember, first, held=False)
        return make_response(current_app.redirect(url_for("stepup.two_factor_verify"), 303))

    def _keep_pending(
        self, user_id: str, next_path: str, remember: bool, first: FirstStep, *, held: bool
    ) -> None:
        nonce, now = secrets.token_urlsafe(24), self.clock()
        self.drop_waiting_sign_in()  # a new sign-in replaces it
        # In the store first (single use: the session cookie can be copied); an outage
        # raises and nothing waits.
        run(hold_waiting_sign_in(str(user_id), nonce, now, self.login_ttl), self.store)
        session[_PENDING] = {
            "user_id": user_id,
            "nonce": nonce,
            "next": self._where_begun(next_path),
            "remember": remember,
            "at": now,
            "held": held,
            **first.record(),
        }

    def _where_begun(self, path: str) -> str:
        """Where the sign-in's second step sends the person: ``path`` (a same-origin path)
        on the host this request, which begins the sign-in, came to. The second step is
        on stepup's host: with ``STEPUP_SUBDOMAIN``, a sign-in begun on another host (the
        app's default host, another blueprint's subdomain) comes back there by an absolute
        URL, whose host is built from ``SERVER_NAME`` and the subdomain of the view that
        answered this request, never from the request's ``Host`` (which may name any
        host). A view on a subdomain named by a variable (``<tenant>``) comes back to the
        default host."""
        subdomain = self.subdomain
        if subdomain is None:
            return path
        rule = request.url_rule
        began_on = rule.subdomain if rule is not None else None
        if began_on == subdomain:
            return path  # stepup's own host: a path, as without subdomains
        host = str(current_app.config["SERVER_NAME"])  # set: init_app checked
        if began_on and "<" not in began_on:
            host = f"{began_on}.{host}"
        return f"{request.scheme}://{host}{path}"

    @staticmethod
    def _waiting_is_held() -> bool:
        saved = session.get(_PENDING)
        return isinstance(saved, dict) and saved.get("held") is not False

    def drop_waiting_sign_in(self) -> None:
        """Spend the session's waiting sign-in in the store, if it has one, and take it
        off the session: signed out, or replaced by a new sign-in (of any user, with or
        without a second step), it is abandoned, and a copy of the session cookie must
        not finish it later. A store outage never stops the sign-out or the new sign-in
        (the record ends at its lifetime)."""
        run(abandon_waiting_sign_in(session.pop(_PENDING, None), self.clock()), self.store)

    def hold_login(
        self, user: Any, csrf: dict[str, Any] | None = None, *, from_cookie: bool = False
    ) -> None:
        """Called for every Flask-Login ``user_logged_in``. A sign-in that did not come
        through stepup's second step (a view that calls ``login_user`` without
        ``begin_two_factor``: another extension's login view, a password reset that signs
        the user in) of a user who has a second factor on the web is undone and held,
        waiting for that factor, as ``begin_two_factor`` would have held it; the response
        to this request becomes the second step (:meth:`held_response`). A store that
        cannot say whether the user has a second factor stops the sign-in (fail
        closed). Off with ``STEPUP_SECOND_STEP_FOR_EVERY_SIGN_IN = False``.

        Who signed in is the ``user`` Flask-Login reports, by ``user.get_id()``, on the
        web: a session sign-in, whatever other credentials (an API key, a bearer token)
        the request carries. ``remember=True`` is kept for after the second step. A
        sign-in made again while one of this user is held (an SSO hook that signs in on
        every request) keeps the held one, and on stepup's own second-step pages lets the
        page answer, so the person can finish it (with the session's CSRF token as it was
        before: ``csrf``, what :meth:`CsrfTokens.kept` read before the sign-in). The same
        user signed in again in a session whose sign-in already stood stays signed in.
        A sign-in that stands spends the sign-in the session still had waiting.
        Flask-Login's remember-me cookie is a way in too (``from_cookie``: its
        ``user_loaded_from_cookie``): a user with a second factor is asked for it, and the
        cookie is set again once it passed."""
        get_id = getattr(user, "get_id", None)
        user_id = get_id() if get_id is not None else None
        if user_id is None:
            return
        login_id = str(user_id)  # Flask-Login's; the marker is kept by it
        stood = session.get(_SIGNED_IN_AS) == login_id  # the same user, signed in again
        # The remember-me cookie restoring a user on some page load is no sign-in by a
        # person: a sign-in the session has waiting stands (see note_sign_in).
        spends = not from_cookie
        if g.get(_SECOND_STEP_PASSED) or stood:
            self._let_stand(login_id, spends=spends)
            return
        if not self.second_step_for_every_sign_in:
            if spends:
                self.drop_waiting_sign_in()  # this sign-in replaces it
            return
        from flask_login import logout_user

        try:
            user_id, needed = self._second_factors_of(login_id)
        except BaseException:  # a store outage, the app's loader refusing, a malformed id
            logout_user()  # whatever it was, the sign-in does not stand (fail closed)
            raise
        if not needed:
            self._let_stand(login_id, spends=spends)
            return
        waiting = self._held_login(user_id)
        # login_user(remember=True), or a sign-in from the remember-me cookie itself
        remember = from_cookie or session.get("_remember") == "set"
        # Its user_logged_out clears stepup's session state too; the same sign-in held
        # again keeps its record in the store (another user's is dropped).
        setattr(g, _KEEPS_WAITING, waiting is not None)
        try:
            logout_user()
        finally:
            g.pop(_KEEPS_WAITING, None)
        g.pop("stepup_subject", None)
        if waiting is not None:
            session[_PENDING] = waiting  # the same sign-in: its nonce and next
            if csrf is not None:  # and the same token: nobody signed in meanwhile
                self.csrf.restore(csrf)
            if request.endpoint in _SECOND_STEP_PAGES:
                return  # the page of the held sign-in answers
        else:
            self._keep_pending(user_id, home_path(), remember, FirstStep.checked(), held=True)
        if not g.get(HELD):  # this request's answer becomes the second step, once
            setattr(g, HELD, True)
            after_this_request(self.held_response)

    def _let_stand(self, login_id: str, *, spends: bool = True) -> None:
        """The sign-in of ``login_id`` stands: it ``spends`` the sign-in the session still
        had waiting (of anyone, held or not), and is noted, so that the same user signed
        in again stays signed in."""
        if spends:
            self.drop_waiting_sign_in()
        session[_SIGNED_IN_AS] = login_id

    def _second_factors_of(self, login_id: str) -> tuple[str, SecondFactors]:
        """The user's stepup id and second factors (:func:`~stepup.integrations.views.
        held_user`), with what the subject loader answers now that ``login_user`` ran."""
        g.pop("stepup_subject", None)  # who is signed in now, not before login_user
        subject = self.subject()
        g.pop("stepup_subject", None)
        return held_user(login_id, subject, self.second_factors)

    def session_protected(self, machine: str | None) -> None:
        """Flask-Login's session protection found this session's cookie used from another
        machine than the one that signed in (``machine``: this one, by Flask-Login's
        session identifier; ``None`` when Flask-Login gives none). "strong" signed the user
        out; "basic" (or "strong" with a permanent session) left them signed in, no longer
        fresh. Either way the sign-in no longer stands (the same user signing in again is
        a new sign-in), and the session's grant ends, as ``fresh_login_required`` refuses:
        the session gets a new stepup id, which the grant does not match, and the old id's
        grant is revoked in the store once the user is known (:meth:`subject`; a store
        outage leaves it to its lifetime, as at sign-out).

        Flask-Login says so on every request from that machine until the next
        ``login_user`` (after a sign-in from the remember-me cookie, on every request
        from the start): it never notes the new machine as the session's. The grant is
        ended once for the machine: the new id is noted with it, and so is the id a
        re-authentication on that machine renews to (:meth:`record_reauth`). So a person
        whose address or browser changed once is asked once and keeps what they then
        prove (an SSO trip or a transaction begun there is not cut short), while a grant
        got anywhere else (by the machine that signed in, or another one flagged) is ended
        again for this machine. Only one machine is noted: a client whose identifier
        changes from request to request (an address rotating behind a carrier's NAT,
        IPv4 and IPv6 in turn) has its grant ended at every change, as
        ``fresh_login_required`` refuses it at every change; carrying the grant over to
        the new machine would hand a flagged machine the grant (the guide says what an
        app can do)."""
        session.pop(_SIGNED_IN_AS, None)
        kept = resolved(g)
        setattr(kept, _FLAGGED_NOW, machine)
        old = session.get(SESSION_ID)
        if not isinstance(old, str):
            return  # no stepup id yet: no grant
        if machine is not None and session.get(_FLAGGED_MACHINE) == [old, machine]:
            return  # ended for this machine already, or re-authenticated on it since
        renewed = renew_session_id(session)
        session.pop(EARLIER_IDS, None)  # no form kept under the old id resumes here
        if machine is not None:
            session[_FLAGGED_MACHINE] = [renewed, machine]
        kept.pop("stepup_subject", None)  # one loaded under the old id
        setattr(kept, _GRANT_ENDED, old)

    def _revoke_ended_grant(self, session_id: str, subject: Subject | None) -> None:
        """Revoke the grant of ``subject``'s user under ``session_id``, the id session
        protection ended (:meth:`session_protected`). A store outage does not stop the
        request: the session no longer has that id, and the grant ends at its lifetime."""
        if subject is None:
            return  # signed out ("strong"): nobody's grant to find
        with contextlib.suppress(StoreUnavailableError):
            self.reauth.sign_out(Subject(subject.user_id, session_id))

    def _held_login(self, user_id: str) -> dict[str, Any] | None:
        """The session's held sign-in of ``user_id``, as it is kept, while it still waits."""
        waiting = self.pending_login()
        if waiting is None or not waiting.held or waiting.user_id != user_id:
            return None
        saved: dict[str, Any] = session[_PENDING]
        return saved

    def held_response(self, response: Response) -> Response:
        """The second step, for a request whose sign-in :meth:`hold_login` held: the
        view's own redirect (where it would have sent the user) becomes where the second
        step sends them; after a ``GET`` answered with a page (an SSO hook signed the user
        in on the way to it), that page; otherwise the app's root. None of the view's
        cookies is kept (the session's is set after this, by Flask)."""
        saved = session.get(_PENDING)
        asked = request.full_path if request.query_string else request.path
        location = held_sign_in_next(
            response.status_code, response.headers.get("Location"), request.method, asked,
            request.scheme, request.host,
        )  # fmt: skip
        if isinstance(saved, dict) and location:
            saved["next"] = self._where_begun(safe_return_path_or_default(location, home_path()))
            session.modified = True
        held = make_response(current_app.redirect(url_for("stepup.two_factor_verify"), 303))
        held.headers["Cache-Control"] = "no-store"
        return held  # none of the view's cookies: an auth token it issued signs nobody in

    def pending_login(self) -> PendingLogin | None:
        saved = session.get(_PENDING)
        if not isinstance(saved, dict):
            return None
        first = FirstStep.kept(saved)  # from the session only, never the request
        user_id, nonce, next_path = kept_user_id(saved), saved.get("nonce"), saved.get("next")
        if (
            first is None
            or not is_fresh(saved.get("at"), self.clock(), self.login_ttl)
            or not isinstance(user_id, str)
            or not user_id
        ):
            # Expired, or not of the shape stepup writes (another version's): a sign-in
            # that cannot finish is gone, never a 500 at the second step.
            session.pop(_PENDING, None)
            return None
        return PendingLogin(
            user_id,
            next_path if isinstance(next_path, str) else "/",
            bool(saved.get("remember")),
            first.proved,
            first.authenticated_at,
            nonce if isinstance(nonce, str) else "",
            first.identity,
            saved.get("held") is not False,  # one kept before the key: held, never recorded
        )

    def second_factors(self, user_id: str, channel: Channel = Channel.WEB) -> SecondFactors:
        """What ``user_id`` can prove after the password (TOTP, passkeys, recovery
        codes), on ``channel``: nothing off the interactive web."""
        return second_factors(self.two_factor, self.passkeys, user_id, channel)

    def complete_login(self, pending: PendingLogin, proved: tuple[str, ...]) -> bool:
        """Spend the waiting sign-in in the store, then sign the user in; then note how
        they signed in (the pending identity, over the password Flask-Login's
        ``user_logged_in`` noted) and, with the policy's ``sign_in_counts``, record what
        the sign-in ``proved`` as the session's first re-authentication. ``False``: the
        store no longer holds it (completed already, from a copy of this session's
        cookie; expired), answered as an expired sign-in, nobody signed in. A store
        outage raises, nobody signed in. An error once the user is signed in clears the
        session before it goes on: a sign-in that did not finish leaves nobody signed in."""
        taken = run(take_waiting_sign_in(pending.user_id, pending.nonce, self.clock()), self.store)
        session.pop(_PENDING, None)
        if not taken:
            return False
        setattr(g, _SECOND_STEP_PASSED, True)  # see hold_login
        try:
            self._sign_in(pending)
        finally:
            g.pop(_SECOND_STEP_PASSED, None)
        try:
            if pending.identity is not None:
                self.note_sign_in(pending.identity)
            # A held sign-in proved something unknown first: never a re-authentication.
            if self.policy.sign_in_counts and not pending.held:
                signed_in_with = pending.identity or Identity(LoginMethod.PASSWORD)
                self.record_sign_in(proved, pending.authenticated_at, signed_in_with=signed_in_with)
        except BaseException:
            session.clear()
            for kept in ("stepup_subject", "_login_user"):  # this request's signed-in user
                g.pop(kept, None)
            raise
        return True

    def _sign_in(self, pending: PendingLogin) -> None:
        completer = self.hooks.login_completer
        if completer is not None:
            completer(pending.user_id, pending.remember)
            return
        manager = getattr(current_app, "login_manager", None)
        load_user = getattr(manager, "_user_callback", None)
        if load_user is None:
            raise ConfigurationError(
                "register a login_completer (or a Flask-Login user_loader) to finish sign-ins"
            )
        from flask_login import login_user

        user = load_user(pending.user_id)
        if user is None or not login_user(user, remember=pending.remember):
            abort(403)


class _InOrder(MultiDict[str, Any]):
    """Werkzeug's form, also keeping its fields in the order they came."""

    def __init__(self, fields: Any = None) -> None:
        super().__init__(fields)
        self.in_order: list[tuple[str, Any]] = list(fields) if isinstance(fields, list) else []


def _fields_in_order() -> tuple[list[tuple[str, str]], bool]:
    """This form's fields in the order they were sent, and whether it carries files. The
    body read before the form was parsed (:meth:`AppState.read_guarded_form`, or right
    now) is parsed again by Werkzeug's own parser; without it (something parsed the
    form first), ``request.form``'s order, repeated names grouped."""
    raw = request.get_data(cache=True)
    if not raw:
        return list(request.form.items(multi=True)), bool(request.files)
    parser = FormDataParser(
        max_form_memory_size=request.max_form_memory_size,
        max_content_length=request.max_content_length,
        max_form_parts=request.max_form_parts,
        cls=_InOrder,
    )
    _, form, files = parser.parse(
        io.BytesIO(raw), request.mimetype, len(raw), request.mimetype_params
    )
    for upload in files.values():
        upload.close()
    pairs = form.in_order if isinstance(form, _InOrder) else list(form.items(multi=True))
    return [(str(name), str(value)) for name, value in pairs], bool(files)


def _check_session_protection() -> bool:
    """Have Flask-Login's session protection look at this request now, before an app's
    ``subject_loader`` reads the session (``session["_user_id"]``,
    :meth:`AppState.session_id`): it runs when ``current_user`` is first loaded, which may
    come only after the guard (in the view, in a template), and the grant it ends
    (:meth:`AppState.session_protected`: a new stepup id) must be ended before the
    decision. Loading ``current_user`` (Flask-Login's public proxy) runs the check, once
    per request. Nothing is loaded with its protection off (``SESSION_PROTECTION``
    ``None``: no user loaded for nothing). ``False``: the app has no ``LoginManager``
    (Flask-Login sets one up with the app, before any request: not looked for again)."""
    app = resolved(current_app)
    manager = getattr(app, "login_manager", None)
    if manager is None:
        return False
    mode = app.config.get("SESSION_PROTECTION", manager.session_protection)
    if mode in ("basic", "strong"):  # what Flask-Login checks; anything else is off
        from flask_login import current_user

        current_user._get_current_object()  # loads the user: the check runs, its signal fires
    return True


def _renew_session_key() -> None:
    """A server-side session gets a new key (the cookie's value), so that a copy of the
    cookie taken before no longer opens it: the app's session interface renews it when it
    offers ``regenerate(session)``, as Flask-Session's does (0.6 and later). Flask's own
    cookie session needs nothing: its content changed, and an old copy holds only what
    was there before (the stepup id no grant is bound to any more). Another server-side
    interface must renew its key at sign-in itself."""
    regenerate = getattr(current_app.session_interface, "regenerate", None)
    if callable(regenerate):
        regenerate(resolved(session))


def resolved(proxy: T) -> T:
    """The object behind one of Flask's context proxies (``current_app``, ``session``):
    one context lookup, where every attribute read through the proxy costs one."""
    found: T = cast(Any, proxy)._get_current_object()
    return found


def state() -> AppState:
    """The current app's stepup state."""
    try:
        # The proxy resolved once: each attribute read through it costs a context lookup
        # (this runs on every guarded request, and in apps' subject loaders).
        found: AppState = resolved(current_app).extensions["stepup"]
    except KeyError:
        raise ConfigurationError("stepup is not initialised on this app: call init_app") from None
    return found
