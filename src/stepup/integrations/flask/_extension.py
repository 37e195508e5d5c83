"""The Flask extension: ``Stepup(app)`` or ``Stepup()`` then ``init_app(app)``."""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Callable
from functools import wraps
from typing import Any, Final, ParamSpec, TypeVar, cast

from flask import Flask, Response, after_this_request, current_app, g, request

from ...adapters.idp.password import PasswordReauth
from ...clock import Clock, system_clock
from ...errors import ConfigurationError
from ...events import EventBus
from ...policy import Context, Policy
from ...reauth import Decision, Reauth, SignInOutcome
from ...redirects import safe_return_path_or_default
from ...subject import Identity, Subject
from ...tenants import TenantSettings
from ...twofactor import Channel, TwoFactor
from ..marks import mark
from ..transaction import guard_transaction
from ._config import DEFAULTS, check_setting_names
from ._devices import ROUTES as DEVICE_ROUTES
from ._hooks import (
    AccountNamer,
    ContextFunction,
    FullAccessCheck,
    Hooks,
    LocaleSelector,
    LoginCompleter,
    PasswordHashLoader,
    PasswordRehashSaver,
    ResponseHandler,
    ReturnTo,
    SubjectLoader,
    TenantAdminCheck,
    TenantLoader,
    TransactionFunction,
)
from ._passkeys import ROUTES as PASSKEY_ROUTES
from ._state import AppState, state
from ._views import _csrf_refused as csrf_refused
from ._views import build_blueprint
from ._web import home_path, uncacheable_response

__all__ = ["Stepup"]

logger = logging.getLogger("stepup.integrations.flask")

P = ParamSpec("P")
R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., Any])
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: One label of ``STEPUP_SUBDOMAIN``: letters, digits and inner hyphens.
_SUBDOMAIN_LABEL: Final = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?")
#: The shortest key that may sign stepup's CSRF tokens (the same as Starlette's).
MIN_SECRET_KEY: Final = 16
_MEMORY_STORE_WARNING: Final = (
    "STEPUP_STORE is not set, so stepup keeps two-factor enrolments, re-authentications"
    " and throttles in this process's memory: they are lost on restart and not shared"
    " between workers. Set STEPUP_STORE to a store URL (sqlite:///path,"
    " postgresql+psycopg://..., redis://..., redis+cluster://...) or pass Stepup(store=...);"
    " set it to memory:// to keep memory and silence this warning."
)
_UNSEALED_WARNING: Final = (
    "STEPUP_ENCRYPTION_KEYS is not set, so stepup stores TOTP secrets unencrypted"
    " (plain:...): a copy of the store gives away every user's second factor. Set"
    ' STEPUP_ENCRYPTION_KEYS = {"k1": <32 bytes or their urlsafe base64>} (make a key with'
    ' python -c "import secrets; print(secrets.token_urlsafe(32))"), kept with your other'
    " secrets; secrets stored before stay plain until `stepup operator reseal`."
)


class Stepup:
    """Step-up authentication for a Flask app.

    Configure with ``STEPUP_*`` keys in ``app.config`` (see the getting-started guide),
    tell it about your users with the hook decorators (``subject_loader``, ...), and
    protect views with :meth:`reauth_required`. Services for the current app:
    :attr:`reauth`, :attr:`two_factor`, :attr:`tenant_settings`, :attr:`passwords`.
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        policy: Policy | None = None,
        store: Any = None,
        clock: Clock = system_clock,
        events: EventBus | None = None,
        subject_loader: SubjectLoader | None = None,
        tenant_loader: TenantLoader | None = None,
        password_hash_loader: PasswordHashLoader | None = None,
        password_rehash_saver: PasswordRehashSaver | None = None,
        is_tenant_admin: TenantAdminCheck | None = None,
        has_full_access: FullAccessCheck | None = None,
        login_completer: LoginCompleter | None = None,
        response_handler: ResponseHandler | None = None,
    ) -> None:
        self.hooks = Hooks(
            subject_loader=subject_loader,
            tenant_loader=tenant_loader,
            password_hash_loader=password_hash_loader,
            password_rehash_saver=password_rehash_saver,
            is_tenant_admin=is_tenant_admin,
            has_full_access=has_full_access,
            login_completer=login_completer,
            response_handler=response_handler,
        )
        self.events = events or EventBus()
        self._policy = policy
        self._store = store
        self._clock = clock
        self._actions: list[str] = []
        self._transactions: list[tuple[str, object]] = []
        self._states: list[AppState] = []
        if app is not None:
            self.init_app(app)

    def __repr__(self) -> str:
        return f"Stepup(actions={len(self._actions)})"

    def init_app(self, app: Flask) -> None:
        """Read the config, build the services, register the views and validate every
        action named so far (an unknown one raises :class:`UnknownActionError` now).
        Without ``STEPUP_STORE`` (or a ``store``) the store is in memory, and unless the
        app is ``TESTING`` the ``stepup`` logger says so with a warning; so it does when
        no ``STEPUP_ENCRYPTION_KEYS`` seal TOTP secrets. A ``STEPUP_*`` key that is no
        setting (a typo) raises :class:`ConfigurationError` naming it."""
        check_setting_names(app.config)
        store_configured = self._store is not None or "STEPUP_STORE" in app.config
        for key, value in DEFAULTS.items():
            app.config.setdefault(key, value)
        _check_secret_key(app)
        url_prefix = _url_prefix(app.config["STEPUP_URL_PREFIX"])
        subdomain = _subdomain(app.config["STEPUP_SUBDOMAIN"])
        if subdomain is not None:
            _check_subdomain_matching(app)
        app_state = AppState(
            app,
            self.hooks,
            policy=self._policy,
            store=self._store,
            clock=self._clock,
            events=self.events,
            subdomain=subdomain,
        )
        app_state.policy.validate(self._actions)
        for action, transaction in self._transactions:
            guard_transaction(app_state.policy, action, transaction)
        app.extensions["stepup"] = app_state
        self._states.append(app_state)
        blueprint = build_blueprint([*PASSKEY_ROUTES, *DEVICE_ROUTES])
        app.register_blueprint(blueprint, url_prefix=url_prefix, subdomain=subdomain)
        self._follow_flask_login(app, app_state)
        if not app.testing:
            if not store_configured:
                logger.warning(_MEMORY_STORE_WARNING)
            if not app_state.two_factor.box.encrypts:
                logger.warning(_UNSEALED_WARNING)

    def _follow_flask_login(self, app: Flask, app_state: AppState) -> None:
        """Renew the session id at sign-in, hold a sign-in that skipped the second step
        for it, and revoke the grant at sign-out."""
        try:
            from flask_login import (
                session_protected,
                user_loaded_from_cookie,
                user_logged_in,
                user_logged_out,
            )
        except ImportError:  # Flask-Login is optional
            app_state.has_login_manager = False  # nor can the app have one
            return
        user_logged_in.connect(self._logged_in, app, weak=False)
        user_loaded_from_cookie.connect(self._loaded_from_cookie, app, weak=False)
        user_logged_out.connect(self._logged_out, app, weak=False)
        session_protected.connect(self._protected, app, weak=False)

    @staticmethod
    def _logged_in(sender: Flask, *, user: Any = None, **extra: Any) -> None:
        app_state = state()
        csrf = app_state.csrf.kept()  # before the sign-in renews it
        app_state.note_sign_in(None)
        app_state.hold_login(user, csrf)

    @staticmethod
    def _loaded_from_cookie(sender: Flask, *, user: Any = None, **extra: Any) -> None:
        """Flask-Login's remember-me cookie signed the user in: a way in like any other."""
        app_state = state()
        csrf = app_state.csrf.kept()
        app_state.note_sign_in(None, by_a_person=False)
        app_state.hold_login(user, csrf, from_cookie=True)

    @staticmethod
    def _protected(sender: Flask, **extra: Any) -> None:
        """Flask-Login's session protection found the session cookie used from another
        machine (it dropped the sign-in without ``user_logged_out``, or kept it, no longer
        fresh): the sign-in no longer stands and the session's grant ends."""
        state().session_protected(_login_machine())

    @staticmethod
    def _logged_out(sender: Flask, *, user: Any, **extra: Any) -> None:
        user_id = user.get_id() if user is not None else None
        state().sign_out(str(user_id) if user_id is not None else None)

    # hooks, as decorators --------------------------------------------------------------

    def subject_loader(self, fn: SubjectLoader) -> SubjectLoader:
        """``() -> Subject | None``. Without one, Flask-Login's ``current_user`` is used."""
        self.hooks.subject_loader = fn
        return fn

    def tenant_loader(self, fn: TenantLoader) -> TenantLoader:
        """``(subject) -> tenant id | None``. Without one, ``STEPUP_DEFAULT_TENANT``."""
        self.hooks.tenant_loader = fn
        return fn

    def password_hash_loader(self, fn: PasswordHashLoader) -> PasswordHashLoader:
        """``(user_id) -> stored hash | None`` (argon2, bcrypt, Werkzeug, Django's
        formats): needed by the password re-auth form."""
        self.hooks.password_hash_loader = fn
        return fn

    def password_rehash_saver(self, fn: PasswordRehashSaver) -> PasswordRehashSaver:
        """``(user_id, new_hash)``: called with an argon2id hash after a check of a hash in
        another format or with outdated parameters."""
        self.hooks.password_rehash_saver = fn
        return fn

    def is_tenant_admin(self, fn: TenantAdminCheck) -> TenantAdminCheck:
        """``(subject, tenant_id) -> bool``. Without one, nobody may patch tenants; only
        ``True`` means yes (``"false"``, ``"0"`` or ``1`` do not)."""
        self.hooks.is_tenant_admin = fn
        return fn

    def has_full_access(self, fn: FullAccessCheck) -> FullAccessCheck:
        """``(subject) -> bool``. Without one, nobody may remove another user's 2FA; only
        ``True`` means yes."""
        self.hooks.has_full_access = fn
        return fn

    def account_name(self, fn: AccountNamer) -> AccountNamer:
        """``(user_id) -> name | None``: the name an authenticator app and a passkey show
        for the account (the user's e-mail address or username), so a person with
        several accounts can tell them apart. Without one, or for ``None``, the user id."""
        self.hooks.account_name = fn
        return fn

    def login_completer(self, fn: LoginCompleter) -> LoginCompleter:
        """``(user_id, remember)``: sign the user in once the second factor passed.
        Without one, Flask-Login's ``login_user`` with its ``user_loader``."""
        self.hooks.login_completer = fn
        return fn

    def locale_selector(self, fn: LocaleSelector) -> LocaleSelector:
        """``() -> str | None``: the locale of stepup's pages (e.g. the user's setting),
        and of the ``title`` of its JSON answers (a guard's 401/403/503, the status and
        passkey endpoints, the tenant endpoint, a ``bearer_required`` view's refusal), so
        that a script reads what the page it opens says. Asked only when stepup answers,
        never for a request a guard lets through. ``None``, or a locale stepup has no
        catalog for, falls back to the request's ``Accept-Language``, then English."""
        self.hooks.locale_selector = fn
        return fn

    def response_handler(self, fn: ResponseHandler) -> ResponseHandler:
        """``(decision, request) -> response | None`` replaces the 303/401/503."""
        self.hooks.response_handler = fn
        return fn

    # protecting views ------------------------------------------------------------------

    def reauth_required(
        self,
        action: str,
        *,
        context: ContextFunction | None = None,
        return_to: ReturnTo | None = None,
        transaction: TransactionFunction | None = None,
    ) -> Callable[[Callable[P, R]], Callable[P, R | Response]]:
        """Protect a view: it runs only when the core allows ``action`` now.

        ``context(request)`` feeds rules with a condition; ``return_to`` is where a
        non-GET request comes back after re-authenticating (default: the page the form
        was on). ``transaction(request)`` says what a rule with ``bind_transaction`` is
        about to do (a :class:`~stepup.integrations.transaction.Transaction`): the
        re-authentication then counts once, for that target only. The name is checked
        against the policy of every app this extension is initialised on, now or at
        ``init_app`` (a bound rule without ``transaction`` too).

        What the view answers is sent ``Cache-Control: private, no-store`` (its other
        directives kept): no cache keeps it. Never put a cache decorator (Flask-Caching's
        ``cached``) above this one: it would answer before the guard runs.
        """
        for app_state in self._states:
            app_state.policy.validate([action])
            guard_transaction(app_state.policy, action, transaction)
        self._actions.append(action)
        self._transactions.append((action, transaction))

        def decorator(view: Callable[P, R]) -> Callable[P, R | Response]:
            def refusal() -> Response | None:
                refused: Response | None = state().guard(
                    action, context, return_to, transaction=transaction
                )
                if refused is None:
                    after_this_request(uncacheable_response)
                return refused

            if inspect.iscoroutinefunction(view):
                protected_async = _refusing_first(view, refusal)
                mark(protected_async, action)  # for stepup.testing.coverage
                return cast("Callable[P, R | Response]", protected_async)

            @wraps(view)  # the guard called here: one frame fewer on every request
            def protected(*args: P.args, **kwargs: P.kwargs) -> R | Response:
                refused = state().guard(action, context, return_to, transaction=transaction)
                if refused is not None:
                    response: Response = refused
                    return response
                after_this_request(uncacheable_response)
                return view(*args, **kwargs)

            mark(protected, action)
            return protected

        return decorator

    def csrf_protect(self, view: Callable[P, R]) -> Callable[P, R | Response]:
        """Protect one of your own views as stepup protects its forms: a ``POST``,
        ``PUT``, ``PATCH`` or ``DELETE`` runs only with this session's CSRF token, in the
        form's ``csrf_token`` field (``{{ stepup_csrf_field() }}`` in a template) or an
        ``X-CSRF-Token`` header (:meth:`csrf_token` for scripts); otherwise what stepup's
        own forms answer: a browser the translated ``403`` page, a script the JSON ``403``
        ``csrf``. A request that carries no token at all is also logged (WARNING, this
        logger): that is a form or a script missing its token, not an expired page."""

        def refusal() -> Response | None:
            if request.method in _SAFE_METHODS:
                return None
            csrf = state().csrf
            submitted = csrf.submitted()
            if csrf.valid(submitted):
                return None
            if not submitted:
                logger.warning(
                    "%s %s carried no CSRF token: give its form"
                    " {{ stepup_csrf_field() }}, or send the X-CSRF-Token header",
                    request.method,
                    request.endpoint,
                )
            answer: Response = csrf_refused()
            return answer

        return _refusing_first(view, refusal)

    def csrf_token(self) -> str:
        """This session's CSRF token (what ``{{ stepup_csrf_token() }}`` gives templates)."""
        return state().csrf.token()

    def check(self, action: str, context: Context | None = None) -> Decision | None:
        """The decision for the current user (``None`` when nobody is signed in), for
        views that branch instead of refusing (e.g. show a key only when allowed). A
        response to a request whose check allowed the action is sent ``Cache-Control:
        private, no-store``, as the guard's is (and as Django's ``check`` does)."""
        decision = state().check(action, context)
        if decision is not None and decision.ok:
            after_this_request(uncacheable_response)
        return decision

    @property
    def decision(self) -> Decision | None:
        """The decision that let the current protected view run."""
        found: Decision | None = g.get("stepup_decision")
        return found

    # sessions --------------------------------------------------------------------------

    def current_subject(self) -> Subject | None:
        return state().subject()

    def session_id(self) -> str:
        """This browser session's stepup id, for apps that build a ``Subject`` themselves."""
        return state().session_id()

    def note_sign_in(
        self,
        identity: Identity | None = None,
        *,
        methods: tuple[str, ...] | list[str] | None = None,
        authenticated_at: float | None = None,
        level: str | None = None,
    ) -> SignInOutcome | None:
        """Call right after signing a user in (Flask-Login does it for you): a new
        session id, so no earlier grant carries over, and how they signed in (OIDC and
        SAML users re-authenticate at their provider).

        ``methods``: what the sign-in proved (``("pwd",)``, ``("pwd", "otp")``,
        ``("oidc",)`` with the ID token's ``auth_time`` as ``authenticated_at``,
        ``("saml",)`` with the ``AuthnInstant``): with the policy's ``sign_in_counts`` it
        is recorded as the session's first re-authentication (see :meth:`record_sign_in`;
        ``level``: what the provider's signed ``acr`` proved)."""
        app_state = state()
        app_state.note_sign_in(identity)
        if methods is None:
            return None
        return app_state.record_sign_in(methods, authenticated_at, level=level)

    def record_sign_in(
        self,
        methods: tuple[str, ...] | list[str] = ("pwd",),
        authenticated_at: float | None = None,
        *,
        level: str | None = None,
    ) -> SignInOutcome:
        """Let the sign-in that just happened count as the session's first
        re-authentication, when the policy's ``sign_in_counts`` is on (off by default:
        the answer then says ``policy_off`` and nothing is stored). The sign-in code
        step (:meth:`begin_two_factor`) calls it for you. After your own
        ``login_user`` of a user with a second factor, stepup holds the sign-in for that
        factor and the answer is ``second_step`` (a held sign-in never counts).
        ``level``: what an SSO provider's signed ``acr`` proved
        (``Reauth.record_sign_in``)."""
        return state().record_sign_in(methods, authenticated_at, level=level)

    def sign_out(self) -> None:
        """Call when signing out (Flask-Login does it for you): revokes this session's grant."""
        state().sign_out()

    def password_changed(self, user_id: str) -> int:
        """Call after a user's password changed: revokes their grants in every session."""
        return state().reauth.password_changed(user_id)

    # the sign-in second factor -----------------------------------------------------------

    def two_factor_required(self, user_id: str, channel: Channel = Channel.WEB) -> bool:
        """Must this sign-in pass a second factor? Yes when the user has a confirmed
        TOTP device or a passkey, on the interactive UI only (never API, API key or
        message injection). A store failure raises: never sign in without asking."""
        return state().second_factors(user_id, channel).required

    def begin_two_factor(
        self,
        user_id: str,
        *,
        next: str | None = None,
        remember: bool = False,
        proved: tuple[str, ...] | None = None,
        authenticated_at: float | None = None,
        identity: Identity | None = None,
    ) -> Response:
        """From the app's login view, once the password is right (or the OIDC or SAML
        answer checked): remember who is signing in and send them to the second step
        (the user is signed in only after): a TOTP code, a passkey, or a recovery code,
        whichever they have.

        ``identity``: how the user signed in, for an OIDC or SAML sign-in
        (``Identity(LoginMethod.OIDC, issuer=iss, subject=sub, provider="corp-oidc")``);
        noted for the session once the second step passed, so their re-authentications
        go to that provider. ``proved``: what the login proved before the second step
        (default: what ``identity`` proves, ``("pwd",)`` without one); with
        ``sign_in_counts``, the step records it plus ``otp``, or plus the passkey's
        ``phr``, ``hwk``/``swk`` and ``mfa``, as the session's first re-authentication,
        dated ``authenticated_at`` (the ID token's ``auth_time``, the ``AuthnInstant``).
        ``proved`` with ``oidc`` or ``saml`` needs the ``identity``; what does not fit
        raises :class:`~stepup.errors.MalformedInputError` and nothing is kept.
        ``next``: where the second step sends the user, a same-origin path (missing or
        unsafe: the app's root, ``request.script_root``). The waiting sign-in is kept in
        the store too, so it completes once (a copy of the session cookie cannot finish
        it again); a store outage raises
        :class:`~stepup.errors.StoreUnavailableError` and nothing waits."""
        return state().begin_login(
            user_id,
            safe_return_path_or_default(next, home_path()),
            remember,
            proved,
            authenticated_at,
            identity,
        )

    # services of the current app -----------------------------------------------------------

    @property
    def policy(self) -> Policy:
        return state().policy

    @property
    def store(self) -> Any:
        return state().store

    @property
    def reauth(self) -> Reauth:
        return state().reauth

    @property
    def two_factor(self) -> TwoFactor:
        return state().two_factor

    @property
    def tenant_settings(self) -> TenantSettings:
        return state().tenant_settings

    @property
    def passwords(self) -> PasswordReauth:
        return state().passwords


def _check_secret_key(app: Flask) -> None:
    """The key that signs stepup's CSRF tokens (``STEPUP_SECRET_KEY``, else the app's
    ``SECRET_KEY``) is at least :data:`MIN_SECRET_KEY` characters long."""
    own = app.config["STEPUP_SECRET_KEY"]
    setting, key = ("STEPUP_SECRET_KEY", own) if own else ("SECRET_KEY", app.secret_key)
    if not key:
        raise ConfigurationError("set STEPUP_SECRET_KEY or the app's SECRET_KEY")
    if not isinstance(key, str | bytes) or len(key) < MIN_SECRET_KEY:
        raise ConfigurationError(
            f"{setting} must be at least {MIN_SECRET_KEY} characters (it signs stepup's"
            ' CSRF tokens); make one with python -c "import secrets;'
            ' print(secrets.token_urlsafe(32))"'
        )


def _url_prefix(value: object) -> str:
    """``STEPUP_URL_PREFIX`` as the blueprint's prefix: ``""`` or a path that starts with
    one ``/``; a trailing ``/`` is dropped (``"/stepup/"`` is ``"/stepup"``, ``"/"`` the
    site's root)."""
    if not isinstance(value, str):
        raise ConfigurationError("STEPUP_URL_PREFIX must be a path such as '/stepup'")
    prefix = value.rstrip("/")
    if prefix and (
        not prefix.startswith("/")
        or prefix.startswith("//")
        or any(c in prefix for c in "?#\\")
        or any(c.isspace() for c in prefix)
    ):
        raise ConfigurationError(
            "STEPUP_URL_PREFIX must be a path on this site that starts with '/',"
            " such as '/stepup', without '?', '#', '\\' or spaces"
        )
    return prefix


def _subdomain(value: object) -> str | None:
    """``STEPUP_SUBDOMAIN``: ``None`` (the app's default host) or the subdomain of
    ``SERVER_NAME`` that serves the ready-made views (``"admin"``, ``"admin.eu"``): labels
    of letters, digits and ``-``. No ``<variable>``: stepup builds its own URLs without
    one."""
    if value is None:
        return None
    if not isinstance(value, str) or not all(
        _SUBDOMAIN_LABEL.fullmatch(label) for label in value.split(".")
    ):
        raise ConfigurationError(
            "STEPUP_SUBDOMAIN must be None or a subdomain of SERVER_NAME such as 'admin':"
            " labels of letters, digits and '-', separated by '.'"
        )
    return value


def _check_subdomain_matching(app: Flask) -> None:
    """``STEPUP_SUBDOMAIN`` serves stepup's pages on a subdomain of ``SERVER_NAME``: Flask
    matches a blueprint's subdomain only with ``SERVER_NAME`` set and subdomain matching
    on (``Flask(__name__, subdomain_matching=True)``), and never with host matching.
    Without them every guarded request would be sent to pages no host serves (404)."""
    server_name = app.config.get("SERVER_NAME")
    missing = []
    if not isinstance(server_name, str) or not server_name:
        missing.append("SERVER_NAME is not set (the host whose subdomain serves stepup)")
    if not app.subdomain_matching:
        missing.append("subdomain matching is off (Flask(__name__, subdomain_matching=True))")
    if app.url_map.host_matching:
        missing.append("host matching is on (it matches no subdomain)")
    if missing:
        raise ConfigurationError(
            "STEPUP_SUBDOMAIN needs SERVER_NAME and subdomain matching: " + "; ".join(missing)
        )


def _login_machine() -> str | None:
    """Flask-Login's identifier of the machine this request came from (what its session
    protection compares: by default a hash of the address and the user agent), or
    ``None`` when the ``LoginManager`` offers none."""
    manager = getattr(current_app, "login_manager", None)
    generate = getattr(manager, "_session_identifier_generator", None)
    machine = generate() if callable(generate) else None
    return machine if isinstance(machine, str) else None


def _refusing_first(
    view: Callable[P, R], refusal: Callable[[], Response | None]
) -> Callable[P, R | Response]:
    """``view`` wrapped to answer ``refusal()`` when it has one. An ``async def`` view
    gets an async wrapper that awaits it (Flask runs it on a loop of its own per call):
    a sync wrapper would hand Flask the un-awaited coroutine, a 500 on every request
    the check let through."""
    if inspect.iscoroutinefunction(view):

        @wraps(view)
        async def protected_async(*args: P.args, **kwargs: P.kwargs) -> Any:
            refused = refusal()
            if refused is not None:
                return refused
            return await view(*args, **kwargs)

        return cast("Callable[P, R | Response]", protected_async)

    @wraps(view)
    def protected(*args: P.args, **kwargs: P.kwargs) -> R | Response:
        refused = refusal()
        if refused is not None:
            return refused
        return view(*args, **kwargs)

    return protected
