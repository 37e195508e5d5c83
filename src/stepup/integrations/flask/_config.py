"""Read ``STEPUP_*`` settings from ``app.config`` into the objects the core needs.

Every problem is a :class:`ConfigurationError` raised by ``init_app``, so a wrong
setting stops the app at start-up instead of surfacing on some later request.
Messages name the setting, never its value (a store URL can carry a password).
"""

from __future__ import annotations

import base64
import binascii
import difflib
import inspect
from collections.abc import Callable, Mapping
from typing import Any, Final

from argon2 import PasswordHasher

from ...adapters.idp.password_formats import HashVerifier
from ...adapters.storage.base import Store
from ...clock import Clock
from ...errors import ConfigurationError
from ...passkeys import RelyingParty
from ...policy import (
    Policy,
    with_device_add_rule,
    with_disable_rule,
    with_recovery_rule,
    with_tenant_settings_rule,
)
from ...resume import secret_field_names
from ...sealing import SecretBox
from ..passkey_endpoint import passkey_policy
from ..setting_readers import (
    password_hasher,
    path_setting,
    provider_mapping,
    sync_adapter,
    tenant_id,
)
from ..stores import store_from_url

__all__ = [
    "DEFAULTS",
    "check_setting_names",
    "default_tenant_from_config",
    "oidc_providers_from_config",
    "password_hasher_from_config",
    "password_verifiers_from_config",
    "policy_from_config",
    "saml_providers_from_config",
    "secret_box_from_config",
    "secret_fields_from_config",
    "store_from_config",
]

#: Every setting the extension reads, with its default.
DEFAULTS: Final[Mapping[str, Any]] = {
    "STEPUP_STORE": "memory://",
    "STEPUP_CREATE_SCHEMA": True,
    "STEPUP_SECRET_KEY": None,
    "STEPUP_URL_PREFIX": "/stepup",
    "STEPUP_SUBDOMAIN": None,
    "STEPUP_POLICY_FILE": None,
    "STEPUP_DEFAULT_TENANT": "default",
    "STEPUP_TOTP_ISSUER": None,
    "STEPUP_ENCRYPTION_KEYS": None,
    "STEPUP_ENCRYPTION_KEY_ID": None,
    "STEPUP_PASSWORD_HASHER": None,
    "STEPUP_PASSWORD_VERIFIERS": None,
    "STEPUP_PASSWORD_DUMMY_HASH": None,
    "STEPUP_OIDC_PROVIDERS": {},
    "STEPUP_SAML_PROVIDERS": {},
    "STEPUP_DISABLE_ACTION": "2fa.disable",
    "STEPUP_RECOVERY_ACTION": "2fa.recovery.regenerate",
    "STEPUP_TWO_FACTOR_LOGIN_TTL": 300,
    "STEPUP_SECOND_STEP_FOR_EVERY_SIGN_IN": True,
    "STEPUP_CLOCK": None,
    "STEPUP_CANCEL_URL": None,
    "STEPUP_CATALOG": None,
    "STEPUP_PASSKEYS_RP_ID": None,
    "STEPUP_PASSKEYS_RP_NAME": None,
    "STEPUP_PASSKEYS_ORIGINS": (),
    "STEPUP_RESUME_SECRET_FIELDS": (),
}

_STORE_METHODS: Final = ("totp_attempt", "get_grant", "get_tenant", "get_credential")
_PREFIX: Final = "STEPUP_"


def check_setting_names(config: Mapping[str, Any]) -> None:
    """Refuse a ``STEPUP_*`` key that is no setting: a typo (``STEPUP_ENCRYPTON_KEYS``)
    or the examples' environment variable (``STEPUP_ENCRYPTION_KEY``) would otherwise be
    ignored, and TOTP secrets stored unsealed without a word."""
    ours = (key for key in config if isinstance(key, str) and key.startswith(_PREFIX))
    unknown = sorted(key for key in ours if key not in DEFAULTS)
    if unknown:
        raise ConfigurationError(_unknown_setting_message(unknown[0]))


def _unknown_setting_message(key: str) -> str:
    """Name the key and the setting it most looks like (never its value)."""
    message = f"app.config[{key!r}] is not a stepup setting"
    closest = difflib.get_close_matches(key, list(DEFAULTS), n=1)
    if closest:
        return f"{message}: did you mean {closest[0]}?"
    return f"{message}; the settings are the STEPUP_* keys in the Flask guide's Configuration"


def store_from_config(value: object, *, create_schema: bool) -> Store:
    """A store object as given, or one built from a URL: ``memory://``,
    ``sqlite:///path``, ``postgresql+psycopg://...``, ``redis://...``."""
    if not isinstance(value, str):
        if not all(callable(getattr(value, name, None)) for name in _STORE_METHODS):
            raise ConfigurationError("STEPUP_STORE must be a store object or a URL")
        if inspect.iscoroutinefunction(value.totp_attempt):  # type: ignore[attr-defined]
            raise ConfigurationError(
                "STEPUP_STORE is an async store: Flask calls stepup synchronously;"
                " use a store URL or a sync store"
            )
        return value  # type: ignore[return-value]
    return store_from_url(value, setting="STEPUP_STORE", create_schema=create_schema)


def default_tenant_from_config(value: object) -> str:
    """``STEPUP_DEFAULT_TENANT``: a tenant id a store can hold."""
    return tenant_id(value, "STEPUP_DEFAULT_TENANT")


def password_hasher_from_config(value: object) -> PasswordHasher | None:
    """``STEPUP_PASSWORD_HASHER``: ``None`` (stepup's argon2id profile), an argon2
    ``PasswordHasher`` or ``Parameters``, or the dotted path of one. ``"django"``, which
    the Django integration takes for its ``PASSWORD_HASHERS`` argon2 parameters, is
    refused with a word on why."""
    if value == "django":
        raise ConfigurationError(
            "STEPUP_PASSWORD_HASHER: 'django' (PASSWORD_HASHERS' argon2 parameters) is the"
            " Django integration's; give an argon2 PasswordHasher or Parameters"
        )
    return password_hasher(value, "STEPUP_PASSWORD_HASHER")


def password_verifiers_from_config(value: object) -> tuple[HashVerifier, ...] | None:
    """``STEPUP_PASSWORD_VERIFIERS``: ``None`` (the default formats) or a non-empty list
    of hash verifiers tried in order, such as
    ``[FlaskSecurityVerifier.from_config(app.config)]`` for Flask-Security-Too's hashes."""
    if value is None:
        return None
    # A class has the protocol's members too: the instance is what verifies.
    if (
        isinstance(value, (list, tuple))
        and value
        and all(isinstance(v, HashVerifier) and not isinstance(v, type) for v in value)
    ):
        return tuple(value)
    raise ConfigurationError(
        "STEPUP_PASSWORD_VERIFIERS must be None or a non-empty list of hash verifier"
        " objects (name, recognise, verify, needs_upgrade), such as"
        " [FlaskSecurityVerifier.from_config(app.config)]"
    )


def policy_from_config(
    base: Policy | None,
    policy_file: object,
    *,
    recovery_action: str,
    disable_action: str,
    relying_party: RelyingParty | None = None,
) -> Policy:
    """The app's policy (or the seed's catalog), extended from ``STEPUP_POLICY_FILE``.

    The ready-made views protect regenerating recovery codes with ``recovery_action``,
    which the seed's catalog lacks: it is added as sensitive unless the app named it
    (a catch-all pattern does not count); so is ``disable_action`` when only a pattern
    matches it.
    So is ``tenant.settings.update``, which guards the tenant settings endpoint,
    ``2fa.device.add``, which guards adding another authenticator app, and, with
    passkeys (``relying_party``), ``passkey.add`` and ``passkey.remove``. They come
    before the file, so a file entry for one of them changes only the keys it gives.
    """
    policy = with_tenant_settings_rule(base if base is not None else Policy.default())
    policy = passkey_policy(with_device_add_rule(policy), relying_party)
    # Named, so that a catch-all pattern cannot switch them off (a name the policy does
    # not know at all for removing two-factor stays an error, below).
    if isinstance(recovery_action, str):
        policy = with_recovery_rule(policy, recovery_action)
    if isinstance(disable_action, str):
        # Unknown to the policy, it is still protected: a file's catch-all that is not
        # sensitive cannot make it known, so the unknown name stays the error below.
        known = disable_action in policy
        policy = (
            with_disable_rule(policy, disable_action)
            if known
            else policy.with_protected(disable_action)
        )
    if policy_file is not None:
        # A problem in the file is named by the file's path (its errors say where).
        policy = policy.load_toml(path_setting(policy_file, "STEPUP_POLICY_FILE"))
    policy.validate([recovery_action, disable_action])
    return policy


def _key_bytes(key_id: object, key: object) -> tuple[str, bytes]:
    if not isinstance(key_id, str):
        raise ConfigurationError("STEPUP_ENCRYPTION_KEYS: key ids must be strings")
    if isinstance(key, bytes):
        return key_id, key
    if isinstance(key, str):
        try:
            return key_id, base64.urlsafe_b64decode(key.encode("ascii") + b"==")
        except (binascii.Error, ValueError, UnicodeEncodeError):
            pass
    raise ConfigurationError(
        f"STEPUP_ENCRYPTION_KEYS[{key_id!r}] must be 32 bytes or their urlsafe base64"
    )


def secret_box_from_config(keys: object, current: object) -> SecretBox:
    """Seal TOTP secrets at rest with ``STEPUP_ENCRYPTION_KEYS`` (``{id: key}``) under
    ``STEPUP_ENCRYPTION_KEY_ID``; no keys means secrets are stored unsealed."""
    if keys is None:
        if current is not None:  # whoever names the current key believes it is used
            raise ConfigurationError(
                "STEPUP_ENCRYPTION_KEY_ID is set, but STEPUP_ENCRYPTION_KEYS is not: TOTP"
                " secrets would be stored unsealed"
            )
        return SecretBox()
    if not isinstance(keys, Mapping):
        raise ConfigurationError("STEPUP_ENCRYPTION_KEYS must be a mapping of key id to key")
    decoded = dict(_key_bytes(key_id, key) for key_id, key in keys.items())
    if current is None and len(decoded) == 1:
        current = next(iter(decoded))
    if current is not None and not isinstance(current, str):
        raise ConfigurationError("STEPUP_ENCRYPTION_KEY_ID must be a string")
    try:
        return SecretBox(decoded, current)
    except ConfigurationError as exc:  # key ids only, never a key
        raise ConfigurationError(
            f"STEPUP_ENCRYPTION_KEYS, STEPUP_ENCRYPTION_KEY_ID: {exc}"
        ) from None


def secret_fields_from_config(value: object) -> tuple[str, ...]:
    """``STEPUP_RESUME_SECRET_FIELDS``: the app's own secret form field names (a list)."""
    try:
        return secret_field_names(value)  # type: ignore[arg-type]
    except ConfigurationError as exc:
        raise ConfigurationError(f"STEPUP_RESUME_SECRET_FIELDS: {exc}") from None


def oidc_providers_from_config(value: object, store: Store, clock: Clock) -> dict[str, Any]:
    """``STEPUP_OIDC_PROVIDERS``: ``{name: OIDCReauth}`` or ``{name: OIDCProviderConfig}``
    (an ``OIDCReauth`` on the app's store and clock is made for a config), as Django's
    ``OIDC_PROVIDERS``; ``None`` is none."""

    def adapter(config: object) -> object | None:
        from ...adapters.idp.oidc import OIDCProviderConfig, OIDCReauth

        if not isinstance(config, OIDCProviderConfig):
            return None
        return OIDCReauth(config, store, clock=clock)

    return _providers(
        value, "STEPUP_OIDC_PROVIDERS", "an OIDCReauth or an OIDCProviderConfig", adapter
    )


def saml_providers_from_config(value: object, store: Store, clock: Clock) -> dict[str, Any]:
    """``STEPUP_SAML_PROVIDERS``: ``{name: SAMLServiceProvider}`` or ``{name:
    SAMLServiceProviderConfig}`` (a ``SAMLServiceProvider`` on the app's store and clock
    is made for a config), as Django's ``SAML_PROVIDERS``; ``None`` is none."""

    def adapter(config: object) -> object | None:
        from ...adapters.idp.saml import SAMLServiceProvider, SAMLServiceProviderConfig

        if not isinstance(config, SAMLServiceProviderConfig):
            return None
        return SAMLServiceProvider(config, store, clock=clock)

    return _providers(
        value,
        "STEPUP_SAML_PROVIDERS",
        "a SAMLServiceProvider or a SAMLServiceProviderConfig",
        adapter,
    )


def _providers(
    value: object, setting: str, accepted: str, adapter: Callable[[object], object | None]
) -> dict[str, Any]:
    """Each provider as given when it is a sync adapter, else ``adapter(config)``; a value
    of neither type is refused, named (without the extra installed, no config of it
    could have been made, so an import error says the same)."""
    adapters: dict[str, Any] = {}
    for name, given in provider_mapping(value if value is not None else {}, setting).items():
        if sync_adapter(given, setting):
            adapters[name] = given
            continue
        try:
            made = adapter(given)
        except ImportError:
            made = None
        if made is None:
            raise ConfigurationError(f"{setting}[{name!r}] must be {accepted}")
        adapters[name] = made
    return adapters
