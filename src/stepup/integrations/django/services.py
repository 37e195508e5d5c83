"""The project's stepup services, built once from ``settings.STEPUP``.

:func:`get_stepup` builds them on first use and keeps them until a setting they read
changes (``override_settings`` in tests). :func:`validate_action` is what decorators
and mixins call at import time, so a typo in an action name stops the project from
starting instead of leaving a view unprotected.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Final

from ...adapters.idp.password import PasswordReauth
from ...adapters.storage.base import Store
from ...clock import Clock, system_clock
from ...errors import ConfigurationError
from ...events import EventBus
from ...i18n import AppCatalog
from ...passkeys import Passkeys
from ...policy import Policy
from ...reauth import Reauth
from ...resume import Suspensions
from ...tenants import TenantSettings
from ...twofactor import TwoFactor
from ..transaction import guard_transaction
from . import conf
from .passwords import django_dummy_hash, django_verifiers

__all__ = ["Hooks", "Stepup", "get_policy", "get_stepup", "known_actions", "validate_action"]

_WATCHED: Final = frozenset({"STEPUP", "SECRET_KEY", "SECRET_KEY_FALLBACKS", "DATABASES"})


@dataclass(frozen=True, slots=True)
class Hooks:
    """What the app tells stepup (signatures in ``docs/getting-started-django.md``)."""

    subject_loader: Callable[..., Any] | None
    tenant_loader: Callable[..., Any] | None
    password_hash_loader: Callable[..., Any] | None
    password_rehash_saver: Callable[..., Any] | None
    is_tenant_admin: Callable[..., Any] | None
    has_full_access: Callable[..., Any] | None
    complete_sign_in: Callable[..., Any] | None
    reauth_response: Callable[..., Any] | None
    locale_selector: Callable[..., Any] | None

    @classmethod
    def read(cls, values: Mapping[str, Any]) -> Hooks:
        return cls(**{f.name: conf.hook(values, f.name.upper()) for f in fields(cls)})


class Stepup:
    """The configured services: :attr:`reauth`, :attr:`two_factor`,
    :attr:`tenant_settings`, :attr:`passwords`, and the SSO adapters by provider name."""

    def __init__(self, values: Mapping[str, Any], *, policy: Policy) -> None:
        clock_hook = conf.hook(values, "CLOCK")
        self.clock: Clock = clock_hook if clock_hook is not None else system_clock
        self.policy = policy
        self.hooks = Hooks.read(values)
        self.store: Store = conf.read_store(values)
        self.events = EventBus()
        self.disable_action: str = values["DISABLE_ACTION"]
        self.recovery_action: str = values["RECOVERY_ACTION"]
        self.default_tenant = conf.read_tenant_id(values, "DEFAULT_TENANT")
        self.namespace = conf.read_text(values, "URL_NAMESPACE")
        self.sign_in_ttl = conf.read_number(values, "SIGN_IN_TTL")
        #: Hold a sign-in that skipped stepup's second step (see ``_request.hold``).
        self.second_step_for_every_sign_in = conf.read_flag(values, "SECOND_STEP_FOR_EVERY_SIGN_IN")
        self.cancel_url: str | None = conf.read_cancel_url(values)
        self.app_catalog = AppCatalog.of(values["CATALOG"], "STEPUP['CATALOG']")
        self.reauth = Reauth(self.store, policy, clock=self.clock, events=self.events)
        self.suspensions = Suspensions(
            self.store, clock=self.clock, secret_fields=conf.read_secret_fields(values)
        )
        self.tenant_settings = TenantSettings(self.store, clock=self.clock, events=self.events)
        self.two_factor = TwoFactor(
            self.store,
            issuer=conf.read_text(values, "TOTP_ISSUER"),
            box=conf.read_secret_box(values),
            clock=self.clock,
            events=self.events,
        )
        hasher = conf.read_password_hasher(values)
        self.passwords = PasswordReauth(
            self.store,
            hasher=hasher,
            verifiers=django_verifiers(hasher),  # Django's hashers check Django's hashes
            dummy_hash=django_dummy_hash,
            clock=self.clock,
            events=self.events,
        )
        relying_party = conf.read_relying_party(values)
        self.passkeys: Passkeys | None = None
        if relying_party is not None:
            from django.conf import settings

            # Opaque user handles: a subkey of SECRET_KEY (and of the rotated keys in
            # SECRET_KEY_FALLBACKS, still accepted), never the user id (docs/passkeys.md).
            keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", ())]
            self.passkeys = Passkeys(
                self.store,
                relying_party,
                clock=self.clock,
                events=self.events,
                user_handle_key=keys,
            )
        self.oidc = {
            name: value if adapter else self._oidc(value)
            for name, value, adapter in conf.read_providers(values, "OIDC_PROVIDERS")
        }
        self.saml = {
            name: value if adapter else self._saml(value)
            for name, value, adapter in conf.read_providers(values, "SAML_PROVIDERS")
        }

    def __repr__(self) -> str:
        return f"Stepup({self.policy!r}, store={type(self.store).__name__})"

    def url_name(self, view: str) -> str:
        """The name to ``reverse`` a ready-made view by (``stepup:reauth``...)."""
        return f"{self.namespace}:{view}"

    # Providers are given as sync adapters (used as given, see conf.read_providers), or
    # as configs that get an adapter on this store.

    def _oidc(self, value: Any) -> Any:
        from ...adapters.idp.oidc import OIDCProviderConfig, OIDCReauth

        if not isinstance(value, OIDCProviderConfig):
            raise ConfigurationError("STEPUP['OIDC_PROVIDERS'] values must be OIDCProviderConfig")
        return OIDCReauth(value, self.store, clock=self.clock)

    def _saml(self, value: Any) -> Any:
        from ...adapters.idp.saml import SAMLServiceProvider, SAMLServiceProviderConfig

        if not isinstance(value, SAMLServiceProviderConfig):
            raise ConfigurationError(
                "STEPUP['SAML_PROVIDERS'] values must be SAMLServiceProviderConfig"
            )
        return SAMLServiceProvider(value, self.store, clock=self.clock)


_lock = threading.Lock()
_stepup: Stepup | None = None
_policy: Policy | None = None
_actions: set[str] = set()


def get_policy() -> Policy:
    """The project's policy (cheap: no store is built)."""
    global _policy
    found = _policy
    if found is None:
        with _lock:
            if _policy is None:
                _policy = conf.read_policy(conf.read_settings())
            found = _policy
    return found


def get_stepup() -> Stepup:
    """The project's services, built on first use."""
    global _stepup
    found = _stepup
    if found is None:
        policy = get_policy()
        with _lock:
            if _stepup is None:
                _stepup = Stepup(conf.read_settings(), policy=policy)
                from .signals import forward_events

                _stepup.events.subscribe(forward_events)
            found = _stepup
    return found


def reset() -> None:
    """Forget the services and the policy; the next use builds them again."""
    global _stepup, _policy
    with _lock:
        _stepup = None
        _policy = None


def validate_action(action: str) -> None:
    """Check ``action`` against the policy now (raises :class:`UnknownActionError`).

    The name is also remembered for the system checks. When the policy itself cannot
    be built yet (a bad setting), the check reports that instead of the import failing.
    """
    if not isinstance(action, str) or not action:
        raise ConfigurationError("an action name must be a non-empty string")
    try:
        policy = get_policy()
    except ConfigurationError:
        _actions.add(action)
        return
    policy.validate([action])
    _actions.add(action)


def validate_transaction(action: str, transaction: object) -> None:
    """A rule bound to one transaction needs the guard to say which one (checked now,
    when the policy can be built; see :func:`validate_action`)."""
    try:
        policy = get_policy()
    except ConfigurationError:
        return
    guard_transaction(policy, action, transaction)


def known_actions() -> frozenset[str]:
    """Every action named by a decorator or mixin so far."""
    return frozenset(_actions)


def settings_changed(*, setting: str, **_: Any) -> None:
    """Receiver of Django's ``setting_changed`` (connected by the app config)."""
    if setting in _WATCHED:
        reset()
