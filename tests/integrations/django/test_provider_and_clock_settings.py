"""Django reads ``settings.STEPUP`` with the readers Flask reads ``STEPUP_*`` with
(``stepup.integrations.setting_readers``), so the two refuse the same values in the same
words. Before, Django took an async SSO adapter (its views call ``provider.start``
synchronously: the redirect went to an un-awaited coroutine's text) and provider names
that are no non-empty strings (``{1: cfg}``, ``{"": cfg}``, which Flask refuses). Both
frameworks took ``CLOCK = "time.monotonic"``: grants were dated in seconds since boot."""

from __future__ import annotations

import math
import re
import shutil
import time
from typing import Any

import pytest
from django.core.checks import CheckMessage, run_checks
from django.test import override_settings
from flask import Flask

from idp.saml import saml_idp
from integrations.django.django_support import BASE_STEPUP, fresh_services
from stepup.adapters.idp.oidc import AsyncOIDCReauth, OIDCProviderConfig, OIDCReauth
from stepup.adapters.idp.saml import AsyncSAMLServiceProvider
from stepup.adapters.storage.memory import MemoryStore
from stepup.clock import system_clock
from stepup.errors import ConfigurationError
from stepup.integrations.django.services import get_stepup
from stepup.integrations.flask import Stepup
from stepup.integrations.setting_readers import clock_setting
from stepup.testing import SettableClock
from support import need

CORP = OIDCProviderConfig(
    issuer="https://idp.example",
    client_id="app",
    client_secret="app-secret-XYZ",
    redirect_uri="https://app.example/stepup/reauth/oidc/callback/",
    name="corp",
)
ASYNC_OIDC = AsyncOIDCReauth(CORP, MemoryStore())
ASYNC_REFUSED = "holds an async adapter: this framework calls providers synchronously"
NAMES_REFUSED = "provider names must be non-empty strings"
NOT_UNIX_TIME = "must return the Unix time in seconds"


pytestmark = pytest.mark.usefixtures("fresh_services")
__all__ = ["fresh_services"]  # the fixture, from django_support


def _messages(**stepup: Any) -> list[CheckMessage]:
    with override_settings(STEPUP={**BASE_STEPUP, **stepup}):
        return list(run_checks(tags=["stepup"]))


def _services_refuse(**stepup: Any) -> str:
    """What building the services (the first request) says."""
    with (
        override_settings(STEPUP={**BASE_STEPUP, **stepup}),
        pytest.raises(ConfigurationError) as refused,
    ):
        get_stepup()
    return str(refused.value)


# Async adapters ---------------------------------------------------------------------------


def test_an_async_oidc_adapter_is_refused_naming_the_key_and_the_provider() -> None:
    (message,) = _messages(OIDC_PROVIDERS={"corp": ASYNC_OIDC})
    assert message.id == "stepup.E010"
    assert message.msg.startswith("STEPUP['OIDC_PROVIDERS']['corp'] " + ASYNC_REFUSED)
    assert "app-secret-XYZ" not in message.msg
    # and a request never gets as far as calling it
    assert _services_refuse(OIDC_PROVIDERS={"corp": ASYNC_OIDC}) == message.msg


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, saml_idp.KeyPair]:
    need(shutil.which("xmlsec1") is not None, "xmlsec1 is not installed (apt-get install xmlsec1)")
    directory = tmp_path_factory.mktemp("django-saml-keys")
    return {name: saml_idp.make_keypair(directory, name) for name in ("sp", "idp")}


def test_an_async_saml_provider_is_refused(keys: dict[str, saml_idp.KeyPair]) -> None:
    adapter = AsyncSAMLServiceProvider(saml_idp.make_config(keys), MemoryStore())
    (message,) = _messages(SAML_PROVIDERS={"corp-saml": adapter})
    assert message.id == "stepup.E010"
    assert message.msg.startswith("STEPUP['SAML_PROVIDERS']['corp-saml'] " + ASYNC_REFUSED)
    assert ASYNC_REFUSED in _services_refuse(SAML_PROVIDERS={"corp-saml": adapter})


def test_a_sync_adapter_is_used_as_given_and_a_config_gets_one() -> None:
    adapter = OIDCReauth(CORP, MemoryStore())
    providers = {"given": adapter, "made": CORP}
    assert _messages(OIDC_PROVIDERS=providers) == []
    with override_settings(STEPUP={**BASE_STEPUP, "OIDC_PROVIDERS": providers}):
        built = get_stepup().oidc
    assert built["given"] is adapter
    assert isinstance(built["made"], OIDCReauth)


# Provider names ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", [1, "", None, ("corp",)], ids=repr)
@pytest.mark.parametrize("key", ["OIDC_PROVIDERS", "SAML_PROVIDERS"])
def test_a_provider_name_that_is_no_non_empty_string_is_refused(key: str, name: object) -> None:
    (message,) = _messages(**{key: {name: CORP}})
    assert message.id == "stepup.E010"
    assert message.msg == f"STEPUP['{key}']: {NAMES_REFUSED}"
    assert _services_refuse(**{key: {name: CORP}}) == message.msg


# CLOCK --------------------------------------------------------------------------------------


def _milliseconds() -> float:
    return time.time() * 1000


def _broken() -> float:
    raise RuntimeError("secret-detail")


NOT_A_TIME: dict[str, tuple[object, str]] = {
    "monotonic": ("time.monotonic", NOT_UNIX_TIME),
    "perf_counter": ("time.perf_counter", NOT_UNIX_TIME),
    "time_ns": ("time.time_ns", NOT_UNIX_TIME),
    "milliseconds": (_milliseconds, NOT_UNIX_TIME),
    "settable-at-0": (SettableClock(0), NOT_UNIX_TIME),
    "nan": (lambda: math.nan, NOT_UNIX_TIME),
    "inf": (lambda: math.inf, NOT_UNIX_TIME),
    "bool": (lambda: True, NOT_UNIX_TIME),
    "text": (lambda: "1700000000", NOT_UNIX_TIME),
    "raises": (_broken, "reading the clock raised RuntimeError"),
}


@pytest.mark.parametrize(("clock", "said"), NOT_A_TIME.values(), ids=NOT_A_TIME.keys())
def test_a_clock_that_does_not_read_unix_time_is_refused(clock: object, said: str) -> None:
    (message,) = _messages(CLOCK=clock)
    assert message.id == "stepup.E002"
    assert message.msg.startswith("STEPUP['CLOCK']")
    assert said in message.msg
    assert "secret-detail" not in message.msg
    assert said in _services_refuse(CLOCK=clock)
    with pytest.raises(ConfigurationError, match=re.escape(said)):
        clock_setting(clock, "STEPUP_CLOCK")  # Flask's reader, the same function


@pytest.mark.parametrize(
    "clock", ["time.time", time.time, system_clock, SettableClock(), SettableClock(1_600_000_000)]
)
def test_a_unix_time_clock_is_taken(clock: object) -> None:
    assert _messages(CLOCK=clock) == []
    with override_settings(STEPUP={**BASE_STEPUP, "CLOCK": clock}):
        taken = get_stepup().clock
    assert taken is clock or (clock == "time.time" and taken is time.time)


def test_no_clock_is_the_system_clock() -> None:
    assert clock_setting(None, "STEPUP_CLOCK") is None
    with override_settings(STEPUP={**BASE_STEPUP, "CLOCK": None}):
        assert get_stepup().clock is system_clock


# The same value, the same words in both frameworks -------------------------------------------

#: (Django key, Flask key, a value both refuse), by test id. Flask's ``init_app`` reads each.
SHARED: dict[str, tuple[str, str, object]] = {
    "empty-tenant": ("DEFAULT_TENANT", "STEPUP_DEFAULT_TENANT", ""),
    "number-issuer": ("TOTP_ISSUER", "STEPUP_TOTP_ISSUER", 5),
    "endless-ttl": ("SIGN_IN_TTL", "STEPUP_TWO_FACTOR_LOGIN_TTL", math.inf),
    "bool-ttl": ("SIGN_IN_TTL", "STEPUP_TWO_FACTOR_LOGIN_TTL", True),
    "text-flag": ("SECOND_STEP_FOR_EVERY_SIGN_IN", "STEPUP_SECOND_STEP_FOR_EVERY_SIGN_IN", "False"),
    "text-schema-flag": ("CREATE_SCHEMA", "STEPUP_CREATE_SCHEMA", "no"),
    "number-clock": ("CLOCK", "STEPUP_CLOCK", 0),
    "missing-clock": ("CLOCK", "STEPUP_CLOCK", "time.no_such_clock"),
    "number-hasher": ("PASSWORD_HASHER", "STEPUP_PASSWORD_HASHER", 123),
    "missing-hasher": ("PASSWORD_HASHER", "STEPUP_PASSWORD_HASHER", "no.such.hasher"),
    "empty-policy-file": ("POLICY_FILE", "STEPUP_POLICY_FILE", ""),
    "provider-list": ("OIDC_PROVIDERS", "STEPUP_OIDC_PROVIDERS", ["corp"]),
    "number-name": ("OIDC_PROVIDERS", "STEPUP_OIDC_PROVIDERS", {1: CORP}),
    "empty-name": ("OIDC_PROVIDERS", "STEPUP_OIDC_PROVIDERS", {"": CORP}),
    "async-adapter": ("OIDC_PROVIDERS", "STEPUP_OIDC_PROVIDERS", {"corp": ASYNC_OIDC}),
}

_DJANGO_KEY = re.compile(r"STEPUP\['\w+'\](\['[^']*'\])?")
_FLASK_KEY = re.compile(r"STEPUP_\w+")


def _flask_says(key: str, value: object) -> str:
    app = Flask(__name__)
    app.config.update(SECRET_KEY="k" * 32, STEPUP_STORE="memory://", **{key: value})
    with pytest.raises(ConfigurationError) as refused:
        Stepup(app, subject_loader=lambda: None)
    return str(refused.value)


@pytest.mark.parametrize(("django_key", "flask_key", "value"), SHARED.values(), ids=SHARED.keys())
def test_both_frameworks_refuse_a_value_in_the_same_words(
    django_key: str, flask_key: str, value: object
) -> None:
    (message,) = _messages(**{django_key: value})
    assert message.msg.startswith(f"STEPUP['{django_key}']")
    flask = _flask_says(flask_key, value)
    assert flask.startswith(flask_key)
    assert _DJANGO_KEY.sub("KEY", message.msg) == _FLASK_KEY.sub("KEY", flask)
