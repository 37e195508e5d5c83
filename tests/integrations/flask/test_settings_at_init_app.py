"""Every ``STEPUP_*`` value Flask reads is checked by ``init_app``: a wrong one raises
``ConfigurationError`` naming the key and the cause there, never at request time. Before,
a dotted ``STEPUP_CLOCK``, ``STEPUP_PASSWORD_HASHER = "django"``, a number as the TOTP
issuer or a negative sign-in lifetime started the app and then failed every guarded
request, re-authentication, enrolment or sign-in; providers given as a list raised a
raw ``ValueError``. The values Django accepts for the same settings work here too."""

from __future__ import annotations

import math
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from flask import Flask

from integrations.flask.flask_support import make_app, set_flag
from stepup.adapters.idp.oidc import OIDCProviderConfig, OIDCReauth
from stepup.adapters.idp.password import CHEAPEST
from stepup.adapters.storage.memory import MemoryStore
from stepup.clock import system_clock
from stepup.errors import ConfigurationError
from stepup.integrations.flask import Stepup
from support import need

KEY = "test-secret-key-0123456789"
OIDC = OIDCProviderConfig(
    issuer="https://op.example",
    client_id="app",
    client_secret="app-secret",
    redirect_uri="https://app.example/stepup/reauth/oidc/callback",
    name="corp",
)


class _Adapter:
    """What the views need of a provider: ``start`` and ``complete``."""

    def start(self, *args: Any, **kwargs: Any) -> str:
        return "https://op.example/authorize"

    def complete(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("not reached")


class _AsyncAdapter:
    """An async adapter (``AsyncOIDCReauth``'s shape), for Starlette and FastAPI."""

    async def start(self, *args: Any, **kwargs: Any) -> str:
        raise AssertionError("not reached")

    async def complete(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("not reached")


class _AsyncStore(MemoryStore):
    async def totp_attempt(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        raise AssertionError("not reached")


def _app(**config: object) -> Flask:
    app = Flask(__name__)
    app.config.update({"SECRET_KEY": KEY, "STEPUP_STORE": "memory://", **config})
    return app


def _short(value: object) -> str:
    said = repr(value)
    return said if len(said) <= 40 else f"{type(value).__name__}..."


BAD: list[tuple[str, object, str]] = [
    ("STEPUP_CLOCK", 0, "callable"),
    ("STEPUP_CLOCK", "time", "cannot import"),
    ("STEPUP_CLOCK", "time.no_such_clock", "cannot import"),
    ("STEPUP_CLOCK", "math.pi", "callable"),
    ("STEPUP_CLOCK", "time.monotonic", "Unix time in seconds"),
    ("STEPUP_CLOCK", "time.time_ns", "Unix time in seconds"),
    ("STEPUP_PASSWORD_HASHER", "django", "Django integration"),
    ("STEPUP_PASSWORD_HASHER", 123, "PasswordHasher"),
    ("STEPUP_PASSWORD_HASHER", "argon2", "cannot import"),
    ("STEPUP_PASSWORD_HASHER", "argon2.PasswordHasher", "PasswordHasher"),  # the class
    ("STEPUP_TOTP_ISSUER", 123, "non-empty string"),
    ("STEPUP_TOTP_ISSUER", ["x"], "non-empty string"),
    ("STEPUP_TOTP_ISSUER", "", "non-empty string"),
    ("STEPUP_TWO_FACTOR_LOGIN_TTL", -5, "positive, finite"),
    ("STEPUP_TWO_FACTOR_LOGIN_TTL", 0, "positive, finite"),
    ("STEPUP_TWO_FACTOR_LOGIN_TTL", math.nan, "positive, finite"),
    ("STEPUP_TWO_FACTOR_LOGIN_TTL", math.inf, "positive, finite"),
    ("STEPUP_TWO_FACTOR_LOGIN_TTL", True, "positive, finite"),
    ("STEPUP_TWO_FACTOR_LOGIN_TTL", 10**400, "positive, finite"),
    ("STEPUP_TWO_FACTOR_LOGIN_TTL", "", "positive, finite"),
    ("STEPUP_TWO_FACTOR_LOGIN_TTL", "300", "positive, finite"),
    ("STEPUP_TWO_FACTOR_LOGIN_TTL", [300], "positive, finite"),
    ("STEPUP_DEFAULT_TENANT", 123, "non-empty string"),
    ("STEPUP_DEFAULT_TENANT", "", "non-empty string"),
    ("STEPUP_DEFAULT_TENANT", None, "non-empty string"),
    ("STEPUP_OIDC_PROVIDERS", ["corp"], "dict of provider name"),
    ("STEPUP_OIDC_PROVIDERS", 5, "dict of provider name"),
    ("STEPUP_OIDC_PROVIDERS", "corp", "dict of provider name"),
    ("STEPUP_OIDC_PROVIDERS", {"x": 1}, "OIDCProviderConfig"),
    ("STEPUP_OIDC_PROVIDERS", {1: OIDC}, "provider names"),
    ("STEPUP_SAML_PROVIDERS", ["corp"], "dict of provider name"),
    ("STEPUP_SAML_PROVIDERS", 5, "dict of provider name"),
    ("STEPUP_SAML_PROVIDERS", "corp", "dict of provider name"),
    ("STEPUP_SAML_PROVIDERS", {"x": 1}, "SAMLServiceProviderConfig"),
    ("STEPUP_SAML_PROVIDERS", {"x": OIDC}, "SAMLServiceProviderConfig"),
    ("STEPUP_CREATE_SCHEMA", "False", "True or False"),
    ("STEPUP_DISABLE_ACTION", 123, "non-empty string"),
    ("STEPUP_RECOVERY_ACTION", None, "non-empty string"),
    ("STEPUP_RECOVERY_ACTION", "", "non-empty string"),
    ("STEPUP_PASSKEYS_RP_NAME", 123, "site's name"),
    ("STEPUP_RESUME_SECRET_FIELDS", "iban", "list of names"),
    ("STEPUP_RESUME_SECRET_FIELDS", [1], "not a field name"),
    ("STEPUP_ENCRYPTION_KEY_ID", "k1", "STEPUP_ENCRYPTION_KEYS is not"),
    ("STEPUP_ENCRYPTION_KEYS", {"k1": b"x" * 5}, "32 bytes"),
    ("STEPUP_ENCRYPTION_KEYS", {"k1": b"x" * 32, "k2": b"y" * 32}, "current sealing key"),
    ("STEPUP_POLICY_FILE", 42, "a path"),
    ("STEPUP_STORE", _AsyncStore(), "async store"),
]


@pytest.mark.parametrize(
    ("key", "value", "cause"), BAD, ids=[f"{key}={_short(value)}" for key, value, _ in BAD]
)
def test_a_wrong_value_stops_init_app_naming_the_key_and_the_cause(
    key: str, value: object, cause: str
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        Stepup(_app(**{key: value}))
    said = str(raised.value)
    assert key in said
    assert cause in said


def test_an_async_sso_adapter_is_refused_naming_the_setting() -> None:
    adapter = _AsyncAdapter()
    with pytest.raises(ConfigurationError, match=r"STEPUP_OIDC_PROVIDERS.*async adapter"):
        Stepup(_app(STEPUP_OIDC_PROVIDERS={"corp": adapter}))


def test_a_key_id_without_keys_names_no_key() -> None:
    with pytest.raises(ConfigurationError) as raised:
        Stepup(_app(STEPUP_ENCRYPTION_KEY_ID="hunter2-id", STEPUP_ENCRYPTION_KEYS=None))
    assert "hunter2" not in str(raised.value)


# values that still work ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("STEPUP_CLOCK", None),
        ("STEPUP_CLOCK", time.time),
        ("STEPUP_CLOCK", "time.time"),
        ("STEPUP_PASSWORD_HASHER", None),
        ("STEPUP_PASSWORD_HASHER", PasswordHasher.from_parameters(CHEAPEST)),
        ("STEPUP_PASSWORD_HASHER", CHEAPEST),
        ("STEPUP_PASSWORD_HASHER", "stepup.adapters.idp.password.CHEAPEST"),
        ("STEPUP_TOTP_ISSUER", None),
        ("STEPUP_TOTP_ISSUER", "Acme"),
        ("STEPUP_TWO_FACTOR_LOGIN_TTL", 1),
        ("STEPUP_TWO_FACTOR_LOGIN_TTL", 0.5),
        ("STEPUP_DEFAULT_TENANT", "acme"),
        ("STEPUP_OIDC_PROVIDERS", None),
        ("STEPUP_OIDC_PROVIDERS", {}),
        ("STEPUP_OIDC_PROVIDERS", {"corp": _Adapter()}),
        ("STEPUP_SAML_PROVIDERS", {"corp-saml": _Adapter()}),
        ("STEPUP_CREATE_SCHEMA", False),
        ("STEPUP_PASSKEYS_RP_NAME", "Acme"),
        ("STEPUP_RESUME_SECRET_FIELDS", ["kontonummer"]),
    ],
)
def test_good_values_start_the_app(key: str, value: object) -> None:
    Stepup(_app(**{key: value}))


def test_a_dotted_clock_is_imported_at_init_app() -> None:
    app = _app(STEPUP_CLOCK="stepup.clock.system_clock")
    Stepup(app)
    assert app.extensions["stepup"].clock is system_clock


def test_a_hasher_given_as_parameters_hashes_with_them() -> None:
    app = _app(STEPUP_PASSWORD_HASHER=CHEAPEST)
    Stepup(app)
    assert app.extensions["stepup"].passwords.hasher.memory_cost == CHEAPEST.memory_cost


def test_the_issuer_defaults_to_the_app_name() -> None:
    app = _app()
    Stepup(app)
    assert app.extensions["stepup"].issuer == app.name


def test_a_policy_file_may_be_a_path_object(tmp_path: Path) -> None:
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text('[actions."report.export"]\nsensitivity = "critical"\nlifetime = "5m"\n')
    app = _app(STEPUP_POLICY_FILE=policy_file)
    Stepup(app)
    assert "report.export" in app.extensions["stepup"].policy


def test_a_provider_config_gets_an_adapter_on_the_apps_store_and_clock() -> None:
    """As Django's ``OIDC_PROVIDERS``: a config is enough."""
    store = MemoryStore()
    app = _app(STEPUP_OIDC_PROVIDERS={"corp": OIDC})
    Stepup(app, store=store, clock=lambda: 1_700_000_000.0)
    adapter = app.extensions["stepup"].oidc["corp"]
    try:
        assert isinstance(adapter, OIDCReauth)
    finally:
        adapter.close()


def test_a_dotted_clock_serves_guarded_requests() -> None:
    """The reviewer's case: ``"time.time"`` started the app, then every guarded request
    was a 500 ('str' object is not callable)."""
    test_app = make_app("subject_loader", store=MemoryStore(), config={"STEPUP_CLOCK": "time.time"})
    browser = test_app.client()
    browser.login("alice")
    set_flag(browser)  # the tenant asks for re-authentication
    asked = browser.get("/api-key")
    assert asked.status_code == 303
    assert "/stepup/reauth" in asked.headers["Location"]
    assert browser.reauth(asked.headers["Location"], "correct horse").status_code == 303
    assert browser.get("/api-key").status_code == 200


@pytest.mark.saml
def test_a_saml_config_gets_a_service_provider(tmp_path: Path) -> None:
    need(shutil.which("xmlsec1") is not None, "xmlsec1 is not installed (apt-get install xmlsec1)")
    from idp.saml.saml_idp import make_config, make_keypair
    from stepup.adapters.idp.saml import SAMLServiceProvider

    keys = {name: make_keypair(tmp_path, name) for name in ("sp", "idp")}
    app = _app(STEPUP_SAML_PROVIDERS={"corp-saml": make_config(keys)})
    Stepup(app)
    assert isinstance(app.extensions["stepup"].saml["corp-saml"], SAMLServiceProvider)
