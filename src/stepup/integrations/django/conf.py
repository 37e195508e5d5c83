"""Read ``settings.STEPUP`` into the objects the core needs.

Each reader raises :class:`~stepup.errors.ConfigurationError` naming the setting (never
its value: a store URL can carry a password). The system checks call the same readers
and report what they raise, so a wrong setting shows up in ``manage.py check`` and at
``runserver``, not on some later request.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any, Final

from argon2 import PasswordHasher
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

from ...adapters.storage.base import Store
from ...errors import ConfigurationError
from ...i18n import AppCatalog
from ...passkeys import RelyingParty
from ...policy import (
    Policy,
    with_device_add_rule,
    with_disable_rule,
    with_recovery_rule,
    with_tenant_settings_rule,
)
from ...redirects import UnsafeRedirectError, safe_return_path
from ...resume import secret_field_names
from ...sealing import SecretBox
from ..passkey_endpoint import passkey_policy, relying_party_from
from ..setting_readers import (
    callable_setting,
    clock_setting,
    flag,
    import_dotted,
    non_empty_text,
    password_hasher,
    path_setting,
    positive_seconds,
    provider_mapping,
    sync_adapter,
    tenant_id,
)
from ..stores import STORE_URLS, store_from_url
from ..views import default_policy

__all__ = [
    "DEFAULTS",
    "HOOKS",
    "base_policy",
    "check_guarded_actions",
    "check_plain_values",
    "hook",
    "plain_value_problems",
    "read_cancel_url",
    "read_catalog",
    "read_flag",
    "read_number",
    "read_password_hasher",
    "read_policy",
    "read_providers",
    "read_secret_box",
    "read_settings",
    "read_store",
    "read_text",
    "with_own_rules",
    "with_policy_file",
]

#: Every key of ``settings.STEPUP``, with its default.
DEFAULTS: Final[Mapping[str, Any]] = {
    "STORE": "orm",
    "DATABASE": "default",
    "CREATE_SCHEMA": True,
    "POLICY": None,
    "POLICY_FILE": None,
    "SUBJECT_LOADER": "stepup.integrations.django.hooks.django_auth_subject",
    "TENANT_LOADER": None,
    "DEFAULT_TENANT": "default",
    "PASSWORD_HASH_LOADER": None,
    "PASSWORD_REHASH_SAVER": None,
    "PASSWORD_HASHER": None,
    "IS_TENANT_ADMIN": None,
    "HAS_FULL_ACCESS": None,
    "COMPLETE_SIGN_IN": "stepup.integrations.django.hooks.django_sign_in",
    "REAUTH_RESPONSE": None,
    "CLOCK": None,
    "ENCRYPTION_KEYS": "SECRET_KEY",
    "ENCRYPTION_KEY_ID": None,
    "TOTP_ISSUER": "stepup",
    "OIDC_PROVIDERS": {},
    "SAML_PROVIDERS": {},
    "DISABLE_ACTION": "2fa.disable",
    "RECOVERY_ACTION": "2fa.recovery.regenerate",
    "SIGN_IN_TTL": 300,
    "SECOND_STEP_FOR_EVERY_SIGN_IN": True,
    "URL_NAMESPACE": "stepup",
    "LOCALE_SELECTOR": None,
    "CANCEL_URL": None,
    "CATALOG": None,
    "PASSKEYS_RP_ID": None,
    "PASSKEYS_RP_NAME": None,
    "PASSKEYS_ORIGINS": (),
    "RESUME_SECRET_FIELDS": (),
}

#: The settings that name a callable (a dotted path, or the callable itself).
HOOKS: Final = (
    "SUBJECT_LOADER",
    "TENANT_LOADER",
    "PASSWORD_HASH_LOADER",
    "PASSWORD_REHASH_SAVER",
    "IS_TENANT_ADMIN",
    "HAS_FULL_ACCESS",
    "COMPLETE_SIGN_IN",
    "REAUTH_RESPONSE",
    "CLOCK",
    "LOCALE_SELECTOR",
)

_STORE_METHODS: Final = ("totp_attempt", "get_grant", "get_tenant", "get_credential")
_SEALING_INFO: Final = b"stepup.integrations.django: TOTP secrets at rest"


def read_settings() -> dict[str, Any]:
    """``settings.STEPUP`` over :data:`DEFAULTS`; unknown keys are an error (a typo in a
    key would otherwise silently keep the default)."""
    given = getattr(settings, "STEPUP", {})
    if not isinstance(given, Mapping):
        raise ConfigurationError("settings.STEPUP must be a dict")
    unknown = sorted(str(key) for key in set(given) - set(DEFAULTS))
    if unknown:
        raise ConfigurationError(f"settings.STEPUP has unknown keys: {', '.join(unknown)}")
    return {**DEFAULTS, **given}


def _key(name: str) -> str:
    """A setting's name as the project spells it, in every error about it."""
    return f"STEPUP['{name}']"


def hook(conf: Mapping[str, Any], name: str) -> Callable[..., Any] | None:
    """The callable a hook setting names (``None`` when it is not set); ``CLOCK`` is
    read once, and must read the Unix time in seconds."""
    if name == "CLOCK":
        return clock_setting(conf[name], _key(name))
    return callable_setting(conf[name], _key(name))


def base_policy(conf: Mapping[str, Any]) -> Policy:
    """``POLICY`` (default: the seed's catalog plus the actions the ready-made views
    guard). The installation lifetime comes from ``SENSITIVE_ACTION_AUTH_LIFETIME`` in
    the environment; a bad value raises here, naming the variable."""
    base = conf["POLICY"]
    if isinstance(base, str):
        base = import_dotted(base, _key("POLICY"))
    if callable(base) and not isinstance(base, Policy):
        base = base()
    if base is not None and not isinstance(base, Policy):
        raise ConfigurationError("STEPUP['POLICY'] must be a Policy, a factory or a dotted path")
    return base if base is not None else default_policy()


def with_policy_file(conf: Mapping[str, Any], policy: Policy) -> Policy:
    """``policy`` extended from ``POLICY_FILE`` (a TOML file; see ``docs/policy.md``)."""
    policy_file = conf["POLICY_FILE"]
    if policy_file is None:
        return policy
    return policy.load_toml(path_setting(policy_file, _key("POLICY_FILE")))


def check_guarded_actions(conf: Mapping[str, Any], policy: Policy) -> None:
    """The ready-made views guard two actions: the policy must know both."""
    for name in ("DISABLE_ACTION", "RECOVERY_ACTION"):
        action = conf[name]
        if not isinstance(action, str) or action not in policy:
            raise ConfigurationError(f"STEPUP['{name}'] must name an action of the policy")


def read_policy(conf: Mapping[str, Any]) -> Policy:
    """The project's policy: :func:`base_policy` with stepup's own rules, then the file,
    then the guarded actions checked."""
    own = with_own_rules(base_policy(conf), read_relying_party(conf), conf)
    policy = with_policy_file(conf, own)
    check_guarded_actions(conf, policy)
    return policy


def with_own_rules(
    policy: Policy, rp: RelyingParty | None, conf: Mapping[str, Any] | None = None
) -> Policy:
    """``policy`` with the rules of stepup's own endpoints (tenant settings, another
    authenticator app, passkeys) wherever it does not name them. They come before the
    policy file, so a file entry for one of them changes only the keys it gives: a
    ``lifetime`` for ``tenant.settings.update`` keeps ``always`` and ``api_keys``.
    ``DISABLE_ACTION`` and ``RECOVERY_ACTION`` (from ``conf``) are named sensitive when
    only a pattern of the policy matches them: a catch-all pattern never switches off
    removing two-factor or regenerating recovery codes (a name the policy does not know
    at all stays :func:`check_guarded_actions`' error)."""
    own = with_device_add_rule(with_tenant_settings_rule(policy))
    settings = conf if conf is not None else DEFAULTS
    disable, recovery = settings["DISABLE_ACTION"], settings["RECOVERY_ACTION"]
    # Unknown to the policy, they are still protected: a policy file's catch-all that is
    # not sensitive cannot make them known, so the unknown name stays the error.
    if isinstance(disable, str):
        own = with_disable_rule(own, disable) if disable in own else own.with_protected(disable)
    if isinstance(recovery, str):
        own = with_recovery_rule(own, recovery) if recovery in own else own.with_protected(recovery)
    return passkey_policy(own, rp)


def read_relying_party(conf: Mapping[str, Any]) -> RelyingParty | None:
    """Passkeys' relying party from ``PASSKEYS_RP_ID``, ``PASSKEYS_RP_NAME`` (default:
    ``TOTP_ISSUER``) and ``PASSKEYS_ORIGINS``; ``None`` (passkeys off) without an RP id.
    A name that is not a string is refused even then (it would be taken up unnoticed the
    day an RP id is set)."""
    if not isinstance(conf["PASSKEYS_RP_NAME"], str | None):
        raise ConfigurationError("STEPUP['PASSKEYS_RP_NAME'] must be the site's name (a string)")
    return relying_party_from(
        conf["PASSKEYS_RP_ID"],
        conf["PASSKEYS_RP_NAME"] or conf["TOTP_ISSUER"],
        conf["PASSKEYS_ORIGINS"],
        settings=(
            "STEPUP['PASSKEYS_RP_ID']",
            "STEPUP['PASSKEYS_RP_NAME']",
            "STEPUP['PASSKEYS_ORIGINS']",
        ),
    )


def read_store(conf: Mapping[str, Any]) -> Store:
    """``"orm"`` (the Django ORM store on ``DATABASE``), a store URL (``memory://``,
    ``sqlite:///...``, ``postgresql+psycopg://...``, ``redis://...``) or a sync store."""
    value = conf["STORE"]
    if value == "orm":
        database = conf["DATABASE"]
        if not isinstance(database, str) or database not in settings.DATABASES:
            raise ConfigurationError("STEPUP['DATABASE'] must name an entry of DATABASES")
        from .store import DjangoStore

        return DjangoStore(using=database)
    if isinstance(value, str):
        return store_from_url(
            value,
            setting="STEPUP['STORE']",
            create_schema=read_flag(conf, "CREATE_SCHEMA"),
            accepted=f"'orm', {STORE_URLS}, or a store object",
        )
    if not all(callable(getattr(value, name, None)) for name in _STORE_METHODS):
        raise ConfigurationError("STEPUP['STORE'] must be 'orm', a store URL or a store object")
    if inspect.iscoroutinefunction(value.totp_attempt):
        raise ConfigurationError(
            "STEPUP['STORE'] is an async store: Django views call stepup synchronously"
            " (async views through sync_to_async); use 'orm' or a sync store"
        )
    return value  # type: ignore[no-any-return]


def _derived_key(secret: str | bytes) -> tuple[str, bytes]:
    raw = secret.encode() if isinstance(secret, str) else secret
    key = HKDF(algorithm=SHA256(), length=32, salt=None, info=_SEALING_INFO).derive(raw)
    return "dj" + hashlib.sha256(key).hexdigest()[:12], key


def read_secret_box(conf: Mapping[str, Any]) -> SecretBox:
    """How TOTP secrets are sealed at rest.

    ``"SECRET_KEY"`` (the default) derives a key from ``settings.SECRET_KEY`` and one
    from each of ``SECRET_KEY_FALLBACKS``, so rotating Django's key the Django way keeps
    old secrets readable (``two_factor.reseal(user_id)`` moves them to the new key).
    A mapping ``{key id: 32 bytes}`` with ``ENCRYPTION_KEY_ID`` gives keys explicitly;
    ``None`` stores secrets unsealed (not recommended).
    """
    keys = conf["ENCRYPTION_KEYS"]
    if conf["ENCRYPTION_KEY_ID"] is not None and (keys is None or keys == "SECRET_KEY"):
        # Someone who names the current key believes they chose it: say that it is unused.
        raise ConfigurationError(
            "STEPUP['ENCRYPTION_KEY_ID'] is set, but only a mapping in"
            " STEPUP['ENCRYPTION_KEYS'] ({key id: 32 bytes}) has key ids"
        )
    if keys is None:
        return SecretBox()
    if keys == "SECRET_KEY":
        current_id, current = _derived_key(settings.SECRET_KEY)
        derived = dict(_derived_key(old) for old in getattr(settings, "SECRET_KEY_FALLBACKS", []))
        derived[current_id] = current
        return SecretBox(derived, current_id)
    if not isinstance(keys, Mapping) or not all(isinstance(k, bytes) for k in keys.values()):
        raise ConfigurationError(
            "STEPUP['ENCRYPTION_KEYS'] must be 'SECRET_KEY', None or {key id: 32 bytes}"
        )
    current = conf["ENCRYPTION_KEY_ID"]
    if current is None and len(keys) == 1:
        current = next(iter(keys))
    try:
        return SecretBox(dict(keys), current)
    except ConfigurationError as exc:  # key ids only, never a key
        raise ConfigurationError(
            f"STEPUP['ENCRYPTION_KEYS'], STEPUP['ENCRYPTION_KEY_ID']: {exc}"
        ) from None


def read_password_hasher(conf: Mapping[str, Any]) -> PasswordHasher | None:
    """``None`` (stepup's argon2id profile), ``"django"`` (the parameters of the
    project's argon2 hasher in ``PASSWORD_HASHERS``, so stepup never asks to rehash a
    hash Django made), an argon2 ``PasswordHasher`` or ``Parameters``, or a dotted path
    to one."""
    value = conf["PASSWORD_HASHER"]
    if value == "django":
        return _django_argon2()
    return password_hasher(value, _key("PASSWORD_HASHER"))


def read_flag(conf: Mapping[str, Any], name: str) -> bool:
    """A setting that is exactly ``True`` or ``False`` (a string like ``"False"`` would
    read as true, and these settings lower protection when off)."""
    return flag(conf[name], _key(name))


def plain_value_problems(conf: Mapping[str, Any]) -> list[str]:
    """What each reader of the settings that are neither a hook, the store nor the
    policy says is wrong (for the system checks): the readers the services are built
    with, one at a time, so that every wrong key is named at once."""
    readers: list[Callable[[], object]] = [
        lambda: read_tenant_id(conf, "DEFAULT_TENANT"),
        lambda: read_text(conf, "URL_NAMESPACE"),
        lambda: read_text(conf, "TOTP_ISSUER"),
        lambda: read_number(conf, "SIGN_IN_TTL"),
        lambda: read_flag(conf, "SECOND_STEP_FOR_EVERY_SIGN_IN"),
        lambda: read_flag(conf, "CREATE_SCHEMA"),
        lambda: read_secret_fields(conf),
        lambda: read_secret_box(conf),
        lambda: read_password_hasher(conf),
        lambda: read_cancel_url(conf),
        lambda: read_catalog(conf),
        lambda: read_relying_party(conf),
        lambda: read_providers(conf, "OIDC_PROVIDERS"),
        lambda: read_providers(conf, "SAML_PROVIDERS"),
    ]
    problems: list[str] = []
    for read in readers:
        try:
            read()
        except ConfigurationError as exc:
            problems.append(str(exc))
    return problems


def read_providers(conf: Mapping[str, Any], name: str) -> list[tuple[str, Any, bool]]:
    """``OIDC_PROVIDERS`` or ``SAML_PROVIDERS``: each provider's name (a non-empty
    string: ``Identity.provider``), its value, and whether that value is an adapter
    (used as given) rather than a config (the services make an adapter of it on their
    store). An async adapter is refused: Django's views call providers synchronously,
    and would redirect to a coroutine."""
    setting = _key(name)
    return [
        (provider, value, sync_adapter(value, f"{setting}[{provider!r}]"))
        for provider, value in provider_mapping(conf[name], setting).items()
    ]


def check_plain_values(conf: Mapping[str, Any]) -> None:
    """Raise the first of :func:`plain_value_problems`."""
    problems = plain_value_problems(conf)
    if problems:
        raise ConfigurationError(problems[0])


def _django_argon2() -> PasswordHasher:
    from django.contrib.auth.hashers import get_hashers_by_algorithm

    django_hasher = get_hashers_by_algorithm().get("argon2")
    if django_hasher is None:
        raise ConfigurationError(
            "STEPUP['PASSWORD_HASHER'] is 'django' but PASSWORD_HASHERS has no argon2 hasher"
        )
    params = django_hasher.params()
    # Django salts with a random string of its own length, not argon2-cffi's 16 bytes.
    params.salt_len = len(django_hasher.salt())
    return PasswordHasher.from_parameters(params)


def read_secret_fields(conf: Mapping[str, Any]) -> tuple[str, ...]:
    """``RESUME_SECRET_FIELDS``: the project's own secret form field names (a list)."""
    names = conf["RESUME_SECRET_FIELDS"]
    try:
        secret_field_names(names)  # refuses one string, or a name of no letters
    except ConfigurationError as exc:
        raise ConfigurationError(f"STEPUP['RESUME_SECRET_FIELDS']: {exc}") from None
    return tuple(names)


def read_number(conf: Mapping[str, Any], name: str) -> float:
    """A positive, finite number of seconds (``inf`` would make a step that never ends)."""
    return positive_seconds(conf[name], _key(name))


def read_cancel_url(conf: Mapping[str, Any]) -> str | None:
    """``CANCEL_URL``: where the re-auth page's Cancel goes (``None``: where the person
    came from); a path on this site."""
    value = conf["CANCEL_URL"]
    if value is None:
        return None
    try:
        return safe_return_path(value)
    except UnsafeRedirectError:
        raise ConfigurationError("STEPUP['CANCEL_URL'] must be a path on this site") from None


def read_catalog(conf: Mapping[str, Any]) -> AppCatalog | None:
    """``CATALOG``: the project's own gettext catalog, a ``(domain, locale directory)``
    pair whose directory exists, or ``None``."""
    return AppCatalog.of(conf["CATALOG"], "STEPUP['CATALOG']")


def read_tenant_id(conf: Mapping[str, Any], name: str) -> str:
    """A tenant id a store can hold (the default tenant)."""
    return tenant_id(conf[name], _key(name))


def read_text(conf: Mapping[str, Any], name: str) -> str:
    """A non-empty string (a tenant id, the URL namespace, the TOTP issuer)."""
    return non_empty_text(conf[name], _key(name))
