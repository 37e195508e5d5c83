"""The configured stepup services of one Starlette (or FastAPI) app.

``Stepup(...)`` takes the store, the policy and the app's hooks as constructor
arguments and builds the async services on them. It reads requests (through the
hooks), asks the core, and writes responses; every decision stays in the core.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import secrets
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeAlias, TypeVar
from urllib.parse import urlencode

import jinja2
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates
from starlette.types import Scope
from starlette.websockets import WebSocket, WebSocketClose

from ..._flow import run_async
from ...adapters.idp.password import AsyncPasswordReauth
from ...adapters.storage.base import AsyncStore, Store
from ...clock import Clock, system_clock
from ...errors import ConfigurationError, StoreUnavailableError
from ...events import EventBus
from ...i18n import AppCatalog
from ...passkeys import AsyncPasskeys
from ...policy import Context, Policy, with_own_view_rules
from ...reauth import (
    Allowed,
    AsyncReauth,
    Decision,
    ReauthRequired,
    ReauthRequiredError,
    ReauthUnavailable,
    ReauthUnavailableError,
    SignInOutcome,
)
from ...redirects import UnsafeRedirectError, safe_return_path, safe_return_path_or_default
from ...resume import AsyncSuspensions, ResumeOutcome, Suspended
from ...sealing import SecretBox
from ...signin import SecondFactors, asecond_factors
from ...subject import Identity, LoginMethod, Subject
from ...tenants import AsyncTenantSettings
from ...twofactor import AsyncTwoFactor, Channel
from ..http import (
    FOR_GOOD,
    Client,
    SignInRequiredError,
    authentication_required,
    client_kind,
    decision_response,
    form_return_path,
    invalid_transaction,
    retry_later,
)
from ..marks import mark
from ..pages import choose_locale, environment
from ..passkey_endpoint import message_response, passkey_policy, relying_party_from
from ..resume import (
    BROWSER_COOKIE,
    binding_cookie,
    browser_binding,
    presented_binding,
    with_resume,
)
from ..transaction import (
    PENDING_TRANSACTIONS,
    ConfirmedReauth,
    InvalidTransactionError,
    PendingTransaction,
    Transaction,
    guard_transaction,
    note_transaction,
    pending_transaction,
)
from ..views import (
    EARLIER_IDS,
    ENROLLING,
    FirstStep,
    abandon_waiting_sign_in,
    app_root,
    declared_positional,
    default_policy,
    earlier_session_ids,
    hold_waiting_sign_in,
    is_fresh,
    note_renewal,
)
from ._util import (
    GUARDED,
    MaybeAwaitable,
    call_hook,
    is_awaitable,
    request_info,
    session_of,
    to_response,
    uncacheable_response,
)
from .csrf import FIELD_NAME, CsrfProtection
from .providers import OIDCAdapter, SAMLAdapter

logger = logging.getLogger(__name__)

__all__ = [
    "APP_ROOT",
    "GUARDED",
    "PATHS",
    "PENDING_SIGN_IN",
    "SERVED_BY",
    "ContextFunction",
    "StepupCore",
    "TransactionFunction",
    "websocket_refusal",
]

SubjectLoader: TypeAlias = Callable[[Request], MaybeAwaitable[Subject | None]]
TenantLoader: TypeAlias = Callable[[Request], MaybeAwaitable[str]]
PasswordHashLoader: TypeAlias = Callable[[str], MaybeAwaitable[str | None]]
PasswordRehashSaver: TypeAlias = Callable[[str, str], MaybeAwaitable[None]]
IsTenantAdmin: TypeAlias = Callable[[Subject, str], MaybeAwaitable[bool]]
#: ``(subject)``, or ``(subject, user_id)`` to answer for one user (see Flask's).
HasFullAccess: TypeAlias = (
    Callable[[Subject], MaybeAwaitable[bool]] | Callable[[Subject, str], MaybeAwaitable[bool]]
)
AccountNamer: TypeAlias = Callable[[str], MaybeAwaitable[str | None]]
#: ``(request, user_id)``, or ``(request, user_id, identity)`` to learn how the user signed
#: in (an OIDC or SAML sign-in needs it: see :meth:`StepupCore.begin_sign_in`).
CompleteSignIn: TypeAlias = (
    Callable[[Request, str], MaybeAwaitable[None]]
    | Callable[[Request, str, Identity], MaybeAwaitable[None]]
)
ReauthResponder: TypeAlias = Callable[[Request, Decision], MaybeAwaitable[Response | None]]
LocaleSelector: TypeAlias = Callable[[Request], MaybeAwaitable[str | None]]
RenewSession: TypeAlias = Callable[[Request], MaybeAwaitable[None]]
ContextFunction: TypeAlias = Callable[[Request], MaybeAwaitable[Context]]
#: ``(request) -> Transaction`` (or an awaitable of one): what a transaction-bound
#: endpoint is about to do, e.g. from ``request.path_params``.
TransactionFunction: TypeAlias = Callable[[Request], MaybeAwaitable[Transaction]]
E = TypeVar("E", bound=Callable[..., Any])

#: Where each ready-made view lives, under ``prefix``.
PATHS: Final = {
    "reauth": "/reauth",
    "reauth_status": "/reauth/status",
    "reauth_done": "/reauth/done",
    "reauth_resume": "/reauth/resume",
    "script": "/stepup-reauth.js",
    "codes_script": "/stepup-codes.js",
    "oidc_start": "/oidc/start",
    "oidc_callback": "/oidc/callback",
    "saml_start": "/saml/start",
    "saml_acs": "/saml/acs",
    "enrol": "/2fa/enrol",
    "confirm": "/2fa/confirm",
    "verify": "/2fa/verify",
    "recovery_codes": "/2fa/recovery-codes",
    "remove": "/2fa/remove",
    "admin_remove": "/2fa/users/{user_id}/remove",
    "tenant": "/tenants/{tenant_id}",
    "stylesheet": "/stepup.css",
    "passkeys": "/passkeys",
    "passkey_register_begin": "/passkeys/register/begin",
    "passkey_register_finish": "/passkeys/register/finish",
    "passkey_rename": "/passkeys/{credential_id}/rename",
    "passkey_remove": "/passkeys/{credential_id}/remove",
    "reauth_passkey_begin": "/reauth/passkey/begin",
    "reauth_passkey_finish": "/reauth/passkey/finish",
    "sign_in_passkey_begin": "/2fa/verify/passkey/begin",
    "sign_in_passkey_finish": "/2fa/verify/passkey/finish",
    "passkey_script": "/stepup-passkeys.js",
    "two_factor": "/2fa",
    "device_add": "/2fa/devices/add",
    "device_confirm": "/2fa/devices/confirm",
    "device_rename": "/2fa/devices/{device_id}/rename",
    "device_remove": "/2fa/devices/{device_id}/remove",
}
#: The session key of a sign-in that waits for its second factor.
PENDING_SIGN_IN: Final = "stepup.pending_sign_in"
#: The scope key where :class:`StepupMiddleware` keeps the ``root_path`` the app itself is
#: served under, as the request enters the app (before any ``Mount`` of the app's own).
APP_ROOT: Final = "stepup.app_root"
#: The scope key where :class:`StepupMiddleware` keeps the app it wraps (``scope["app"]``
#: as the request enters it): a guard that raises its refusals checks that the app
#: serving the request is that one (else :func:`unanswered`).
SERVED_BY: Final = "stepup.served_by"
#: Websocket close codes (RFC 6455 section 7.4.1, and IANA's registry for 1013).
POLICY_VIOLATION: Final = 1008
TRY_AGAIN_LATER: Final = 1013
_FORM_TYPES: Final = ("application/x-www-form-urlencoded", "multipart/form-data")


def _deny(*_: object) -> bool:
    return False


def _templates(app_templates: str | os.PathLike[str] | jinja2.BaseLoader | None) -> Jinja2Templates:
    """The app's templates first (to override ``stepup/*.html``), then the bundled ones."""
    loaders: list[jinja2.BaseLoader] = []
    if isinstance(app_templates, jinja2.BaseLoader):
        loaders.append(app_templates)
    elif app_templates is not None:
        loaders.append(jinja2.FileSystemLoader(app_templates))
    return Jinja2Templates(env=environment(*loaders))


def takes_identity(hook: Callable[..., object]) -> bool:
    """Does the app's ``complete_sign_in`` take ``(request, user_id, identity)``? It does
    when it names a third positional parameter (``identity=None`` too), as for
    ``has_full_access`` (:func:`~stepup.integrations.views.declared_positional`): a
    decorator's bare ``*args`` wrapper is never called with more than it asked for."""
    return declared_positional(hook) >= 3


def _mounted_at(request: Request) -> str:
    """The path the app itself is served under (a proxy's prefix, the ``Mount`` of an
    outer app the app is a sub-app of; not a ``Mount`` inside the app, stepup's own
    included): ``""`` at the top of the site. :class:`StepupMiddleware` notes it as the
    request enters the app; Starlette's ``app_root_path`` is the outermost app's root,
    which is not this app's when the app is mounted in another."""
    scope = request.scope
    mounted = scope.get(APP_ROOT)
    if mounted is None:  # no middleware (a view called directly): the best guess
        mounted = scope.get("app_root_path", scope.get("root_path", ""))
    return str(mounted)


def allowed(decision: Decision) -> Allowed:
    """``decision`` when it allows the request, else the core's ``ReauthRequiredError``
    or ``ReauthUnavailableError`` raised (:class:`StepupMiddleware` answers them)."""
    if isinstance(decision, ReauthRequired):
        raise ReauthRequiredError(decision)
    if isinstance(decision, ReauthUnavailable):
        raise ReauthUnavailableError(decision)
    return decision


#: What :data:`SERVED_BY` reads as in a scope the middleware never saw.
NOT_WRAPPED: Final = object()


def unanswered(scope: Scope, guard: str) -> None:
    """Raise the :class:`~stepup.errors.ConfigurationError` that names the fix when the
    refusals ``guard`` raises would not become stepup's answers: no
    :class:`StepupMiddleware` saw the request, or the app serving it is not the one the
    middleware wraps (a sub-app mounted in it, ``app.mount("/v1", v1)``), whose own error
    handling would answer each refusal with a 500 before the middleware sees it. The
    guards call it, before deciding anything, when ``scope[SERVED_BY]`` is not
    ``scope["app"]``. A websocket's refusal passes such a sub-app by (its error handling
    lets websockets through): nothing to raise then."""
    if "stepup" not in scope:
        raise ConfigurationError(f"{guard} needs StepupMiddleware (see Stepup.install)")
    if scope["type"] == "websocket":
        return
    raise ConfigurationError(
        f"{guard} guards a route of a mounted app (under {scope.get('root_path', '')!r}) that"
        " StepupMiddleware does not wrap: that app would answer every refusal with a 500."
        " Call stepup.install(sub_app) on the mounted app too"
    )


def websocket_refusal(refused: Decision | Exception) -> WebSocketClose:
    """How a websocket that may not go ahead is closed, before it is accepted: a browser's
    websocket can follow no redirect and show no page, so the client sends the user to
    the re-auth page (or the sign-in) over HTTP. 1013 "Try Again Later" when the store
    could not answer (the 503 of HTTP: nothing is wrong with the request, retry soon),
    else 1008 "Policy Violation"; the reason is the ``error`` of the JSON answers
    (``reauth_required``, ``authentication_required``...). Raises ``refused`` when it is
    an exception that is no refusal."""
    if isinstance(refused, ReauthRequiredError | ReauthUnavailableError):
        refused = refused.decision
    if isinstance(refused, ReauthRequired):
        return WebSocketClose(POLICY_VIOLATION, "reauth_required")
    if isinstance(refused, ReauthUnavailable):
        if refused.reason in FOR_GOOD:
            return WebSocketClose(POLICY_VIOLATION, "reauth_unreachable")
        return WebSocketClose(TRY_AGAIN_LATER, "reauth_unavailable")
    if isinstance(refused, SignInRequiredError):
        return WebSocketClose(POLICY_VIOLATION, "authentication_required")
    if isinstance(refused, InvalidTransactionError):
        return WebSocketClose(POLICY_VIOLATION, "invalid_transaction")
    if isinstance(refused, StoreUnavailableError):
        return WebSocketClose(TRY_AGAIN_LATER, "unavailable")
    if isinstance(refused, Exception):
        raise refused
    raise ValueError("websocket_refusal() needs a decision that does not allow the request")


# The public class is ``stepup.integrations.starlette.Stepup`` (module ``app``), which
# adds the views and the middleware: this module imports neither, so the pages, the
# routes and the middleware import it and nothing imports them back.
class StepupCore:
    """Everything stepup needs in a Starlette app, configured by constructor arguments.

    Hooks (sync or async callables; use async ones for I/O):

    - ``subject_loader(request) -> Subject | None``: who is signed in, in which session,
      how, on which channel (``None``: nobody).
    - ``tenant_loader(request) -> str``: the current tenant id.
    - ``password_hash_loader(user_id) -> str | None`` and
      ``password_rehash_saver(user_id, new_hash)``: for password re-authentication.
    - ``is_tenant_admin(subject, tenant_id) -> bool``, ``has_full_access(subject) -> bool``
      (or ``has_full_access(subject, user_id)``: may this admin act on that user?)
      (both ``False`` when not given).
    - ``account_name(user_id) -> str | None``: how an authenticator app and a passkey
      name the account (the user's e-mail address or username), so a person with
      several accounts can tell them apart (``None``, or not given: the user id).
    - ``complete_sign_in(request, user_id)``: finish the app's sign-in once the second
      factor passed (needed by :meth:`begin_sign_in`); ``complete_sign_in(request,
      user_id, identity)`` is also given how the user signed in (needed for OIDC and
      SAML sign-ins: keep it where your ``subject_loader`` reads it).
    - ``reauth_response(request, decision) -> Response | None``: replace the 303 / 401 /
      503 answers (``None`` keeps the default for that request).
    - ``locale_selector(request) -> str | None``: the locale of stepup's pages and of
      its JSON answers' titles (``None``, or one stepup has no catalog for: the
      request's ``Accept-Language``, then English). Never asked for a request the guard
      lets through.
    - ``renew_session(request)``: give the session a new id after a successful
      re-authentication, as your sign-in does (OWASP ASVS 5.0 section 7.2.4). Without
      it, the value in Starlette's session equal to the subject's session id (the usual
      ``request.session["sid"]``) is replaced by a new random one.

    ``cancel_url``: where Cancel on the re-auth page goes (default: the page the person
    came from, when it is on this site and is not the guarded page; else ``/``).
    ``catalog``: the app's own gettext catalog, ``(domain, localedir)``, for its action
    descriptions and transaction descriptions on the pages (docs/pages.md).

    Passkeys (docs/passkeys.md) are on when ``passkeys_rp_id`` is given, with
    ``passkeys_origins`` (the exact origins, e.g. ``("https://app.example.com",)``) and
    ``passkeys_rp_name`` (default: ``issuer``); checked here, so a typo stops start-up.

    ``resume_secret_fields``: your own names of secret form fields (``["kontonummer"]``),
    beside the ones stepup recognises: a form holding one is never kept for after a
    re-authentication (docs/reauth.md).
    """

    def __init__(
        self,
        *,
        store: AsyncStore | Store,
        secret_key: str | bytes,
        subject_loader: SubjectLoader,
        tenant_loader: TenantLoader,
        policy: Policy | None = None,
        password_hash_loader: PasswordHashLoader | None = None,
        password_rehash_saver: PasswordRehashSaver | None = None,
        is_tenant_admin: IsTenantAdmin | None = None,
        has_full_access: HasFullAccess | None = None,
        account_name: AccountNamer | None = None,
        complete_sign_in: CompleteSignIn | None = None,
        reauth_response: ReauthResponder | None = None,
        renew_session: RenewSession | None = None,
        login_url: str | None = None,
        locale_selector: LocaleSelector | None = None,
        cancel_url: str | None = None,
        catalog: AppCatalog | tuple[str, str] | None = None,
        prefix: str = "/stepup",
        templates: str | os.PathLike[str] | jinja2.BaseLoader | None = None,
        clock: Clock = system_clock,
        events: EventBus | None = None,
        issuer: str = "stepup",
        secret_box: SecretBox | None = None,
        two_factor: AsyncTwoFactor | None = None,
        passwords: AsyncPasswordReauth | None = None,
        oidc: OIDCAdapter | None = None,
        saml: SAMLAdapter | None = None,
        csrf_max_age: float = 8 * 3600,
        sign_in_ttl: float = 600,
        passkeys_rp_id: str | None = None,
        passkeys_rp_name: str | None = None,
        passkeys_origins: tuple[str, ...] | list[str] = (),
        resume_secret_fields: tuple[str, ...] | list[str] = (),
    ) -> None:
        if not secret_key or len(secret_key) < 16:
            raise ConfigurationError("Stepup secret_key must be at least 16 characters")
        if not prefix.startswith("/") or prefix.endswith("/"):
            raise ConfigurationError("Stepup prefix must start with '/' and not end with one")
        if login_url is not None:
            try:
                safe_return_path(login_url)
            except UnsafeRedirectError:
                raise ConfigurationError("Stepup login_url must be a path on this site") from None
        if cancel_url is not None:
            try:
                safe_return_path(cancel_url)
            except UnsafeRedirectError:
                raise ConfigurationError("Stepup cancel_url must be a path on this site") from None
        self.cancel_url = cancel_url
        self.app_catalog = AppCatalog.of(catalog, "Stepup catalog")
        self.locale_selector = locale_selector
        self.store = store
        self.relying_party = relying_party_from(
            passkeys_rp_id,
            passkeys_rp_name or issuer,
            passkeys_origins,
            settings=("passkeys_rp_id", "passkeys_rp_name", "passkeys_origins"),
        )
        # Named by the app, or added: a catch-all pattern never switches off what
        # stepup's own pages guard (removing two-factor, recovery codes, another app,
        # the tenant settings).
        self.policy = passkey_policy(
            with_own_view_rules(policy if policy is not None else default_policy()),
            self.relying_party,
        )
        self.clock = clock
        self.events = events or EventBus()
        self.passkeys: AsyncPasskeys | None = (
            None
            if self.relying_party is None
            else AsyncPasskeys(
                store,
                self.relying_party,
                clock=clock,
                events=self.events,
                # Opaque user handles: a subkey of secret_key, never the user id.
                user_handle_key=secret_key,
            )
        )
        self.two_factor = two_factor or AsyncTwoFactor(
            store, issuer=issuer, box=secret_box, clock=clock, events=self.events
        )
        # With TOTP secrets in a configuration file, the decision reads who has TOTP there
        # (the store holds no credential for them: it would say "enrol TOTP first").
        self.reauth = AsyncReauth(
            store,
            self.policy,
            clock=clock,
            events=self.events,
            totp_users=self.two_factor.config_users,
        )
        self.suspensions = AsyncSuspensions(store, clock=clock, secret_fields=resume_secret_fields)
        self.tenants = AsyncTenantSettings(store, clock=clock, events=self.events)
        self.passwords = passwords or AsyncPasswordReauth(store, clock=clock, events=self.events)
        self.oidc = oidc
        self.saml = saml
        self.csrf = CsrfProtection(secret_key, clock=clock, max_age=csrf_max_age)
        self.templates = _templates(templates)
        self.prefix = prefix
        self.login_url = login_url
        self.sign_in_ttl = sign_in_ttl
        self.subject_loader = subject_loader
        self.tenant_loader = tenant_loader
        self.password_hash_loader = password_hash_loader
        self.password_rehash_saver = password_rehash_saver
        self.is_tenant_admin: IsTenantAdmin = is_tenant_admin or _deny
        self.has_full_access: HasFullAccess = has_full_access or _deny
        self.account_name_hook = account_name
        self.complete_sign_in = complete_sign_in
        self.reauth_response = reauth_response
        self.renew_session = renew_session

    def __repr__(self) -> str:
        return f"Stepup(prefix={self.prefix!r}, {self.policy!r}, store={self.store!r})"

    # who and where ------------------------------------------------------------

    async def account_name(self, user_id: str) -> str:
        """How authenticator apps and passkeys name this account: the app's
        ``account_name`` hook, when it gives text, else the user id."""
        hook = self.account_name_hook
        name = await call_hook(hook, user_id) if hook is not None else None
        return name if isinstance(name, str) and name else user_id

    async def subject(self, request: Request) -> Subject | None:
        return await call_hook(self.subject_loader, request)

    async def locale(self, request: Request) -> str:
        """The locale of this request's pages and JSON answers: ``locale_selector``, else
        the ``Accept-Language`` header, else English."""
        selected = None
        if self.locale_selector is not None:
            try:
                selected = await call_hook(self.locale_selector, request)
            except Exception as exc:  # the app's hook: a language is not worth a 500
                logger.warning(
                    "the locale hook raised %s: this answer follows Accept-Language",
                    type(exc).__name__,
                )
        return choose_locale(selected, request.headers.get("accept-language"))

    async def tenant_id(self, request: Request) -> str:
        return await call_hook(self.tenant_loader, request)

    def url(self, request: Request, name: str, **params: str) -> str:
        """The path of a ready-made view, as the browser must request it."""
        return _mounted_at(request) + self.prefix + PATHS[name].format(**params)

    def home(self, request: Request) -> str:
        """The app's root, where a missing or unsafe return location goes: ``/`` under
        the app's ``root_path`` (a proxy's prefix, a ``Mount``), not under stepup's own
        mount."""
        return app_root(_mounted_at(request))

    def return_path(
        self, request: Request, return_to: str | Callable[[Request], str] | None = None
    ) -> str | None:
        """Where a refused request comes back after re-authenticating: ``None`` (this
        URL) for GET and HEAD; else ``return_to``, the page it came from (its
        ``Referer``, when it is on this request's own origin: scheme, host and port), or
        else the app's root (:meth:`home`)."""
        return form_return_path(
            request.method,
            request.headers.get("referer", ""),
            return_to,
            request,
            origin=f"{request.url.scheme}://{request.url.netloc}",
            home=self.home(request),
        )

    # decisions ----------------------------------------------------------------

    async def check(
        self,
        request: Request,
        action: str,
        context: Context | None = None,
        *,
        transaction: Transaction | None = None,
    ) -> Decision:
        """The core's decision for this request's subject and tenant.

        ``transaction``: what a transaction-bound action is about to do; checking spends
        its proof, and a refusal keeps it in the session for the re-auth page (which
        needs Starlette's ``SessionMiddleware``; parameters that cannot be hashed raise
        :class:`~stepup.integrations.transaction.InvalidTransactionError`, answered 400
        by the guards and the middleware). Raises :class:`SignInRequiredError`
        when nobody is signed in. A response to a request whose check allowed the action
        is sent ``Cache-Control: private, no-store`` by the middleware, as a guarded one
        is (and as in Flask and Django).
        """
        subject, tenant_id = await self._signed_in(request)
        if transaction is None:
            decision = await self.reauth.check(subject, action, tenant_id, context)
        else:
            decision = await self._decide(request, subject, tenant_id, action, context, transaction)
        if decision.ok:
            request.scope[GUARDED] = True
        return decision

    async def _signed_in(self, request: Request) -> tuple[Subject, str]:
        """The signed-in subject and its tenant, which the guards load before they call
        the app's ``context`` and ``transaction`` hooks (a look-up of the target, whose
        404 would tell a stranger what exists). Raises :class:`SignInRequiredError` when
        nobody is signed in."""
        # The hooks are called directly, and awaited only when they answer with an
        # awaitable (no coroutine of call_hook's): the hot path of every guarded request.
        subject = self.subject_loader(request)
        if is_awaitable(subject):
            subject = await subject  # type: ignore[misc]
        if subject is None:
            raise SignInRequiredError("sign in first")
        tenant_id = self.tenant_loader(request)
        if is_awaitable(tenant_id):
            tenant_id = await tenant_id  # type: ignore[misc]
        return subject, tenant_id  # type: ignore[return-value]

    async def _decide(
        self,
        request: Request,
        subject: Subject,
        tenant_id: str,
        action: str,
        context: Context | None,
        transaction: Transaction | None,
    ) -> Decision:
        """:meth:`check` for the subject and tenant :meth:`_signed_in` loaded."""
        if transaction is None:
            return await self.reauth.check(subject, action, tenant_id, context)
        digest = transaction.digest(action, tenant_id)
        decision = await self.reauth.check(subject, action, tenant_id, context, transaction=digest)
        if (
            isinstance(decision, ReauthRequired)
            and decision.transaction
            and "session" in request.scope  # what the re-auth page shows, and binds
        ):
            sid = subject.session_id
            note_transaction(request.session, sid, action, transaction, digest, self.clock())
        return decision

    async def require(
        self,
        request: Request,
        action: str,
        context: Context | None = None,
        *,
        transaction: Transaction | None = None,
    ) -> Allowed:
        """Like :meth:`check`, but raise the core's ``ReauthRequiredError`` /
        ``ReauthUnavailableError``; :class:`StepupMiddleware` turns them into responses,
        and sends the response of a request it allowed with ``Cache-Control: private,
        no-store``. A ``ConfigurationError`` when no middleware would answer them: none
        is installed, or it wraps the app a sub-app serving this request is mounted in
        (install stepup on that one too)."""
        scope = request.scope
        if scope.get(SERVED_BY, NOT_WRAPPED) is not scope.get("app"):
            unanswered(scope, "Stepup.require")
        subject, tenant_id = await self._signed_in(request)
        if transaction is None:
            decision = await self.reauth.check(subject, action, tenant_id, context)
        else:
            decision = await self._decide(request, subject, tenant_id, action, context, transaction)
        if isinstance(decision, ReauthRequired):
            raise ReauthRequiredError(decision)
        if isinstance(decision, ReauthUnavailable):
            raise ReauthUnavailableError(decision)
        scope[GUARDED] = True
        return decision

    def requires_reauth(
        self,
        action: str,
        *,
        context: ContextFunction | None = None,
        transaction: TransactionFunction | None = None,
        return_to: str | Callable[[Request], str] | None = None,
    ) -> Callable[[E], E]:
        """Guard a Starlette endpoint (a function, or an ``HTTPEndpoint`` method).

        The action name is checked now, so a typo fails when the app starts.
        ``context(request)`` gives the rule its context (e.g. the workspace type);
        ``transaction(request)`` what a rule with ``bind_transaction`` is about to do (a
        :class:`~stepup.integrations.transaction.Transaction`): the re-authentication
        then counts once, for that target only. Both are called only once someone is
        signed in (a signed-out request gets the sign-in answer first, never their 404).
        ``return_to`` (a path, or a function of the request) is where a browser comes
        back after re-authenticating for a request other than GET or HEAD, which a
        redirect cannot repeat; without it, the page the request came from (its
        same-site ``Referer``), else the app's root. As in Flask, Django and FastAPI. (A
        form POST that can be kept is sent again after it: see :meth:`suspend`.) The
        response of an endpoint it let through says ``Cache-Control: private, no-store``
        (what the app's own value adds that forbids more is kept): it was served for a
        grant a cache cannot see expire or be revoked.

        On a websocket endpoint (``WebSocketRoute``, ``WebSocketEndpoint.on_connect``)
        the hooks get the ``WebSocket``; a connection that may not go ahead is closed
        before it is accepted (:func:`websocket_refusal`).
        """
        self.policy.validate([action])
        guard_transaction(self.policy, action, transaction)

        def decorate(endpoint: E) -> E:
            is_async = inspect.iscoroutinefunction(endpoint)

            @functools.wraps(endpoint)
            async def guarded(*args: Any) -> Any:
                request: Request = args[-1]
                denied = await self.gate(request, action, context, transaction, return_to)
                if denied is not None:
                    if isinstance(denied, WebSocketClose):
                        assert isinstance(request, WebSocket)  # gate answers so to one only
                        await request.close(denied.code, denied.reason)
                        return None
                    return denied
                # Served for a fresh grant: no cache may keep the answer, nor one an
                # exception handler sends instead (the middleware marks both on their
                # way out; without it, the endpoint's own is marked here).
                scope = request.scope
                scope[GUARDED] = True
                if is_async:
                    response = await endpoint(*args)
                else:
                    response = await run_in_threadpool(endpoint, *args)
                if SERVED_BY not in scope:
                    uncacheable_response(response)
                return response

            mark(guarded, action)  # for stepup.testing.coverage
            return guarded  # type: ignore[return-value]

        return decorate

    async def gate(
        self,
        request: Request,
        action: str,
        context: ContextFunction | None = None,
        transaction: TransactionFunction | None = None,
        return_to: str | Callable[[Request], str] | None = None,
    ) -> Response | WebSocketClose | None:
        """``None`` when the request may go ahead, else the response to send instead
        (``return_to``: see :meth:`requires_reauth`); for a websocket, the close to send
        before accepting it (:func:`websocket_refusal`)."""
        try:
            # Who is signed in comes first: nobody is answered before the app's hooks
            # run, which may look the target up (a 404 would tell a stranger what exists).
            subject, tenant_id = await self._signed_in(request)
            values = await call_hook(context, request) if context is not None else None
            target = await call_hook(transaction, request) if transaction is not None else None
            if target is None:
                decision = await self.reauth.check(subject, action, tenant_id, values)
            else:
                decision = await self._decide(request, subject, tenant_id, action, values, target)
        except (SignInRequiredError, InvalidTransactionError) as exc:
            if request.scope["type"] == "websocket":
                return websocket_refusal(exc)
            return await self.error_response(request, exc)
        except StoreUnavailableError as exc:  # an app hook's outage: the middleware's 503
            if request.scope["type"] == "websocket":
                return websocket_refusal(exc)
            raise
        if decision.ok:
            return None
        if request.scope["type"] == "websocket":
            return websocket_refusal(decision)
        return await self.respond(request, decision, self.return_path(request, return_to))

    # responses ----------------------------------------------------------------

    async def respond(
        self, request: Request, decision: Decision, return_path: str | None = None
    ) -> Response:
        """The answer to a decision that does not allow the request (``return_path``:
        where to come back after re-authenticating, default this request's URL)."""
        if self.reauth_response is not None:
            custom = await call_hook(self.reauth_response, request, decision)
            if custom is not None:
                return custom
        # Titled as the pages read (the locale hook, asked now: only for a refusal).
        info = request_info(request, return_path).in_locale(await self.locale(request))
        answer = decision_response(decision, info, reauth_url=self.url(request, "reauth"))
        if answer is None:  # an Allowed decision reached here: nothing to replace
            raise ValueError("respond() needs a decision that does not allow the request")
        if answer.status == 503 and client_kind(info) is Client.BROWSER:
            page = await self.outage_page(request)  # a person reads a page, not JSON
            if page is not None:
                return page
        if answer.status == 303 and isinstance(decision, ReauthRequired):
            kept = await self.suspend(request, decision.action)
            if kept is not None:
                token, binding = kept
                return self.bind_browser(request, to_response(with_resume(answer, token)), binding)
        return to_response(answer)

    async def store_unavailable(self, request: Request) -> Response:
        """503 when the store could not answer and no view answered it (the middleware
        answers a :class:`~stepup.errors.StoreUnavailableError` that escapes a view or a
        dependency with it): a browser gets :meth:`outage_page` when there is one, a
        script the JSON ``unavailable``; both with ``Retry-After``."""
        if client_kind(request_info(request)) is Client.BROWSER:
            page = await self.outage_page(request)
            if page is not None:
                return page
        answer = message_response(503, "unavailable", await self.locale(request))
        return to_response(retry_later(answer))

    async def outage_page(self, request: Request) -> Response | None:
        """What a browser gets when the guard cannot decide (the store is down): the
        "try again" page of :class:`~stepup.integrations.starlette.Stepup`, which has
        the pages (``None`` here: the JSON 503 every client gets)."""
        return None

    # resumed requests ---------------------------------------------------------

    async def suspend(self, request: Request, action: str) -> tuple[str, str] | None:
        """Keep this browser form POST for after the re-authentication, bound to this
        browser; its token and the browser's binding value (for :meth:`bind_browser`), or
        ``None`` when it cannot be kept (see :mod:`stepup.resume`)."""
        content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if request.method != "POST" or content_type not in _FORM_TYPES:
            return None
        try:
            length = int(request.headers.get("content-length") or "")
        except ValueError:
            return None
        if length > 2 * self.suspensions.max_bytes:
            return None  # never read a body larger than could be kept
        subject = await self.subject(request)
        if subject is None:
            return None
        try:
            form = await request.form()
        except RuntimeError:
            # The middleware answers a FastAPI dependency's refusal after the body was
            # read, with a request that has no body left to read: nothing to keep.
            return None
        fields: list[tuple[str, str]] = []
        has_files = False
        for name, value in form.multi_items():
            if isinstance(value, str):
                fields.append((name, value))
            else:
                has_files = True
        query = request.url.query
        path = (
            request.url.path + (f"?{query}" if query else "")  # root_path included
        )
        binding = browser_binding(request.cookies.get(BROWSER_COOKIE))
        outcome = await self.suspensions.suspend(
            subject,
            action,
            "POST",
            path,
            fields,
            has_files=has_files,
            drop=(FIELD_NAME,),
            # Only a form whose own token held gets a fresh one on its replay: a forged
            # form must not come back through the detour with a valid token.
            csrf_checked=await self.csrf_ok(request, form),
            browser=binding,
        )
        return (outcome.token, binding) if isinstance(outcome, Suspended) else None

    def bind_browser(self, request: Request, response: Response, binding: str) -> Response:
        """Set the cookie that binds a kept form to this browser (see
        :data:`~stepup.integrations.resume.BROWSER_COOKIE`) on the 303 that kept it."""
        cookie = binding_cookie(
            binding,
            root=_mounted_at(request),
            secure=request.url.scheme == "https",
            ttl=self.suspensions.ttl,
        )
        cookie.set_on(response)
        return response

    async def take_resumed(
        self,
        subject: Subject,
        token: str | None,
        action: str,
        request: Request | None = None,
        *,
        renewed_from: str | None = None,
    ) -> ResumeOutcome | None:
        """The request suspended for this re-authentication, taken once (after the grant
        is recorded, so a store failure while recording it loses nothing): bound to this
        ``subject``'s session id, the id it was ``renewed_from``, or an id this
        ``request``'s session had before an earlier re-authentication renewed it. It
        resumes only in the browser that sent it (this ``request`` presents its binding
        cookie): a form sent with a copy of the session cookie is taken and refused
        (``OTHER_BROWSER``)."""
        if token is None:
            return None
        earlier: tuple[str, ...] = ()
        if request is not None and "session" in request.scope:
            earlier = earlier_session_ids(request.session, subject.session_id)
        browser = presented_binding(request.cookies.get(BROWSER_COOKIE) if request else None)
        return await self.suspensions.resume(
            subject, token, action, renewed_from=renewed_from, earlier=earlier, browser=browser
        )

    def pending_transaction(
        self, request: Request, subject: Subject, action: str, digest: object
    ) -> PendingTransaction | None:
        """The transaction this session's guard kept for ``action`` under ``digest``."""
        if "session" not in request.scope:
            return None
        now = self.clock()
        return pending_transaction(request.session, subject.session_id, action, digest, now)

    async def error_response(self, request: Request, exc: Exception) -> Response:
        """The response for the typed errors of :meth:`require` and for a store outage
        (used by the middleware)."""
        if isinstance(exc, ReauthRequiredError | ReauthUnavailableError):
            return await self.respond(request, exc.decision)
        if isinstance(exc, SignInRequiredError):
            return self.sign_in_response(request, locale=await self.locale(request))
        if isinstance(exc, InvalidTransactionError):
            info = request_info(request).in_locale(await self.locale(request))
            return to_response(invalid_transaction(info))
        if isinstance(exc, StoreUnavailableError):  # logged where it happened
            return await self.store_unavailable(request)
        raise exc

    def sign_in_response(self, request: Request, *, locale: str = "") -> Response:
        """Nobody is signed in: browsers go to ``login_url`` when there is one, others
        get 401, titled in ``locale`` (``await stepup.locale(request)``, the pages'
        locale, as stepup's own views pass it; ``""``: the ``Accept-Language``)."""
        info = request_info(request).in_locale(locale)
        kind = client_kind(info)
        if self.login_url is not None and kind is Client.BROWSER:
            query = urlencode({"next": safe_return_path_or_default(info.path)})
            joiner = "&" if "?" in self.login_url else "?"
            return RedirectResponse(f"{self.login_url}{joiner}{query}", status_code=303)
        return to_response(authentication_required(info))

    # sign-in, sign-out --------------------------------------------------------

    async def begin_sign_in(
        self,
        request: Request,
        user_id: str,
        *,
        next: str | None = None,
        channel: Channel = Channel.WEB,
        proved: tuple[str, ...] | None = None,
        authenticated_at: float | None = None,
        identity: Identity | None = None,
    ) -> Response | None:
        """Call from the app's login view once the password was right (or the OIDC or
        SAML answer checked).

        ``None``: no second factor is needed, finish the sign-in yourself. Otherwise (the
        user has a confirmed TOTP device or a passkey, on the web channel) the sign-in
        waits in the session and the answer is a redirect to the second step, which
        calls ``complete_sign_in(request, user_id)`` once the code or the passkey passed
        (``complete_sign_in(request, user_id, identity)`` when the hook takes it) and,
        with the policy's ``sign_in_counts``, records ``proved`` plus ``otp``, or plus
        the passkey's methods and ``mfa``, as the session's first re-authentication,
        dated ``authenticated_at``. ``identity``: an OIDC or SAML sign-in's
        ``Identity(LoginMethod.OIDC, issuer=iss, subject=sub, provider=...)``, handed to
        a ``complete_sign_in`` that takes it (one that does not is a
        ``ConfigurationError`` here). ``proved`` defaults to what ``identity`` proves
        (``("pwd",)`` without one); ``oidc`` or ``saml`` in it needs the ``identity``;
        what does not fit raises :class:`~stepup.errors.MalformedInputError` and
        nothing is kept. A store failure raises: never sign in without asking (the
        middleware answers it with the 503 "try again" when the view lets it through).
        ``next``: where the second step sends the user, a same-origin path (missing or
        unsafe: the app's root, :meth:`home`). Either way, with or without a second
        factor, it spends the sign-in this session had waiting (a copy of the cookie
        taken while it waited cannot finish it then).
        """
        if self.complete_sign_in is None:
            raise ConfigurationError("begin_sign_in needs the complete_sign_in hook")
        first = FirstStep.checked(identity, proved, authenticated_at)
        federated = first.signed_in_with.method is not LoginMethod.PASSWORD
        if federated and not takes_identity(self.complete_sign_in):
            raise ConfigurationError(
                "complete_sign_in must take (request, user_id, identity) to finish an OIDC"
                " or SAML sign-in: keep the identity where your subject_loader reads it"
            )
        if not await self.second_factors(user_id, channel):
            await self.drop_waiting_sign_in(request)  # the app signs this one in: it replaces it
            return None
        session = session_of(request)  # it waits there: no session, a ConfigurationError
        nonce, now = secrets.token_urlsafe(24), self.clock()
        await self.drop_waiting_sign_in(request)  # a new sign-in replaces it
        # In the store first (single use: the session cookie can be copied); an outage
        # raises and nothing waits.
        await run_async(hold_waiting_sign_in(user_id, nonce, now, self.sign_in_ttl), self.store)
        session[PENDING_SIGN_IN] = {
            "user_id": user_id,
            "nonce": nonce,
            "at": now,
            "next": safe_return_path_or_default(next, self.home(request)),
            **first.record(),
        }
        return RedirectResponse(self.url(request, "verify"), status_code=303)

    async def record_sign_in(
        self,
        request: Request,
        methods: tuple[str, ...] | list[str] = ("pwd",),
        authenticated_at: float | None = None,
        *,
        level: str | None = None,
    ) -> SignInOutcome:
        """Let the sign-in that just happened count as the session's first
        re-authentication, when the policy's ``sign_in_counts`` is on (off by default:
        the answer says ``policy_off`` and nothing is stored). Call after the session is
        signed in: ``("pwd",)``, ``("pwd", "otp")``, ``("oidc",)`` with the ID token's
        ``auth_time``, ``("saml",)`` with the ``AuthnInstant`` as ``authenticated_at``;
        ``level``: what the provider's signed ``acr`` proved (``Reauth.record_sign_in``)."""
        subject = await self.subject(request)
        if subject is None:
            raise ConfigurationError("record_sign_in needs the user signed in first")
        return await self.reauth.record_sign_in(subject, methods, authenticated_at, level=level)

    async def second_factors(self, user_id: str, channel: Channel = Channel.WEB) -> SecondFactors:
        """What ``user_id`` can prove after the password (TOTP, passkeys, recovery
        codes), on ``channel``: nothing off the interactive web."""
        return await asecond_factors(self.two_factor, self.passkeys, user_id, channel)

    def pending_sign_in(self, request: Request) -> Mapping[str, Any] | None:
        """The sign-in waiting for its second factor, as every page and endpoint of that
        step reads it: ``None`` when it expired, does not hold together, or lacks the
        user or the nonce its pages' CSRF tokens are bound to (a session kept by a
        version before the nonce, or a value that is not text). Flask and Django answer
        such a sign-in ``sign_in_expired`` too."""
        pending = session_of(request).get(PENDING_SIGN_IN)
        if not isinstance(pending, dict) or not is_fresh(
            pending.get("at"), self.clock(), self.sign_in_ttl
        ):
            return None
        if FirstStep.kept(pending) is None:  # what it proved does not hold together
            return None
        user_id, nonce = pending.get("user_id"), pending.get("nonce")
        if not (isinstance(user_id, str) and user_id and isinstance(nonce, str) and nonce):
            return None
        return pending

    async def sign_out(self, request: Request) -> int:
        """Revoke this session's grant (call from the app's sign-out view); how many
        grants went. A store outage never stops a sign-out: nothing is revoked (the
        grant ends at its lifetime, and the outage is logged) and the app's view goes
        on to end the session."""
        if "session" in request.scope:  # token-only apps have no session to clean
            await self.drop_waiting_sign_in(request)
            for key in (PENDING_SIGN_IN, PENDING_TRANSACTIONS, EARLIER_IDS, ENROLLING):
                request.session.pop(key, None)
        subject = await self.subject(request)
        if subject is None:
            return 0
        try:
            return await self.reauth.sign_out(subject)
        except StoreUnavailableError:
            return 0

    async def drop_waiting_sign_in(self, request: Request) -> None:
        """Spend the session's waiting sign-in in the store, if it has one, and take it off
        the session: signed out, or replaced by a new sign-in (of any user, with or
        without a second step), it is abandoned, and a copy of the session cookie must
        not finish it later. A store outage never stops the sign-out or the new sign-in
        (the record ends at its lifetime). Without a session nothing waits."""
        if "session" not in request.scope:
            return
        pending = request.session.pop(PENDING_SIGN_IN, None)
        await run_async(abandon_waiting_sign_in(pending, self.clock()), self.store)

    async def password_changed(self, user_id: str) -> int:
        """Revoke every grant of the user (call when their password changes)."""
        return await self.reauth.password_changed(user_id)

    async def record_reauth(
        self,
        request: Request,
        subject: Subject,
        methods: list[str] | tuple[str, ...],
        at: float | None = None,
        *,
        level: str | None = None,
        transaction: str | None = None,
        signed: str | None = None,
    ) -> tuple[Subject, str | None]:
        """Record a successful re-authentication under a new session id, as at sign-in
        (OWASP ASVS 5.0 section 7.2.4): the ``renew_session`` hook (or the default, see
        the class) renews it, the grant is bound to the new id and the old id keeps none.
        Forms signed for the old id stop working with it. Returns the
        subject under the new id and the old id (``None`` when nothing was renewed).
        ``level``: what a provider's signed answer proved; ``transaction``: the digest of
        the one action this re-authentication confirmed (it waits no longer); ``signed``:
        the transaction a passkey signed (``PasskeyResult.transaction``)."""
        if self.renew_session is not None:
            await call_hook(self.renew_session, request)
        elif "session" in request.scope and subject.session_id:
            session = request.session
            for key in [k for k, v in session.items() if v == subject.session_id]:
                session[key] = secrets.token_urlsafe(18)
        confirmed = ConfirmedReauth.after_renewal(
            subject, await self.subject(request), methods, at=at, level=level,
            transaction=transaction, signed=signed,
        )  # fmt: skip
        kept = request.session if "session" in request.scope else None
        try:
            await confirmed.record(self.reauth)
        except StoreUnavailableError:
            # Still one session: a form kept under the old id resumes on the next try.
            if confirmed.renewed_from is not None and kept is not None:
                note_renewal(kept, confirmed.subject.session_id, confirmed.renewed_from)
            raise
        return confirmed.done(kept)

    # CSRF for the app's own forms ---------------------------------------------

    async def _csrf_binding(self, request: Request) -> str:
        """Tokens are bound to the signed-in session (a sign-in starts a new one), or to
        nobody for a form shown before sign-in."""
        subject = await self.subject(request)
        return subject.session_id if subject is not None else ""

    async def csrf_token(self, request: Request) -> str:
        """A CSRF token for one of the app's own forms (field ``csrf_token``) or scripts
        (header ``X-CSRF-Token``), as stepup's forms carry. Pass the response through
        :meth:`set_csrf_cookie`: the token pairs with a cookie set on first use."""
        token, fresh = self.csrf.issue(request, await self._csrf_binding(request))
        if fresh is not None:
            request.state.stepup_csrf_cookie = fresh
        return token

    def set_csrf_cookie(self, request: Request, response: Response) -> Response:
        """Set the cookie a token of :meth:`csrf_token` pairs with, when it was new."""
        fresh = getattr(request.state, "stepup_csrf_cookie", None)
        if isinstance(fresh, str):
            CsrfProtection.set_cookie(request, response, fresh)
        return response

    async def csrf_ok(self, request: Request, form: Mapping[str, Any] | None = None) -> bool:
        """Does this request carry a valid token for this session, in ``form``'s
        ``csrf_token`` field or the ``X-CSRF-Token`` header? Refuse the request if not."""
        token = form.get(FIELD_NAME) if form is not None else None
        token = token or request.headers.get("x-csrf-token")
        return self.csrf.verify(request, token, await self._csrf_binding(request))
