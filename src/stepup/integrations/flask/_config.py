"""Read ``STEPUP_*`` settings from ``app.config`` into the objects the core needs.

Every problem is a :class:`ConfigurationError` raised by ``init_app``, so a wrong
setting stops the app at start-up instead of surfacing on some later request.
Messages name the setting, never its value (a store URL can carry a password).
"""

from __future__ import annotations

import base64
import binascii
import difflib
from collections.abc import Mapping
from typing import Any, Final

from ...adapters.idp.password_formats import HashVerifier
from ...adapters.storage.base import Store
from ...errors import ConfigurationError
from ...passkeys import RelyingParty
from ...policy import (
    Policy,
    with_device_add_rule,
    with_disable_rule,
    with_recovery_rule,
    with_tenant_settings_rule,
)
from ...sealing import SecretBox
from ..passkey_endpoint import passkey_policy
from ..stores import store_from_url

__all__ = [
    "DEFAULTS",
    "check_setting_names",
    "password_verifiers_from_config",
    "policy_from_config",
    "secret_box_from_config",
    "store_from_config",
]

#: Every setting the extension reads, with its default.
DEFAULTS: Final[Mapping[str, Any]] = {
    "STEPUP_STORE": "memory://",
    "STEPUP_CREATE_SCHEMA": True,
    "STEPUP_SECRET_KEY": None,
    "STEPUP_URL_PREFIX": "/stepup",
    "STEPUP_POLICY_FILE": None,
    "STEPUP_DEFAULT_TENANT": "default",
    "STEPUP_TOTP_ISSUER": None,
    "STEPUP_ENCRYPTION_KEYS": None,
    "STEPUP_ENCRYPTION_KEY_ID": None,
    "STEPUP_PASSWORD_HASHER": None,
    "STEPUP_PASSWORD_VERIFIERS": None,
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
        if all(callable(getattr(value, name, None)) for name in _STORE_METHODS):
            return value  # type: ignore[return-value]
        raise ConfigurationError("STEPUP_STORE must be a store object or a URL")
    return store_from_url(value, setting="STEPUP_STORE", create_schema=create_schema)


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
    if isinstance(disable_action, str) and disable_action in policy:
        policy = with_disable_rule(policy, disable_action)
    if policy_file is not None:
        if not isinstance(policy_file, str):
            raise ConfigurationError("STEPUP_POLICY_FILE must be a path")
        policy = policy.load_toml(policy_file)
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
        return SecretBox()
    if not isinstance(keys, Mapping):
        raise ConfigurationError("STEPUP_ENCRYPTION_KEYS must be a mapping of key id to key")
    decoded = dict(_key_bytes(key_id, key) for key_id, key in keys.items())
    if current is None and len(decoded) == 1:
        current = next(iter(decoded))
    if current is not None and not isinstance(current, str):
        raise ConfigurationError("STEPUP_ENCRYPTION_KEY_ID must be a string")
    return SecretBox(decoded, current)
