"""Every key of ``settings.STEPUP`` is read by ``manage.py check`` with the reader the
requests use: a value a request would refuse (a 500 on every page) is a system check
error naming the key, and ``URL_NAMESPACE`` must be the namespace stepup's URLs are
included under."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

import pytest
from django.core.checks import CheckMessage, run_checks
from django.test import override_settings
from django.urls import include, path

from integrations.django.django_support import BASE_STEPUP, fresh_services
from stepup.adapters.idp.oidc import OIDCProviderConfig

ISSUER = "https://idp.example"
CORP = OIDCProviderConfig(
    issuer=ISSUER,
    client_id="app",
    client_secret="app-secret",
    redirect_uri="https://app.example/stepup/reauth/oidc/callback/",
    name="corp",
)


def _messages(**stepup: Any) -> list[CheckMessage]:
    with override_settings(STEPUP={**BASE_STEPUP, **stepup}):
        return list(run_checks(tags=["stepup"]))


pytestmark = pytest.mark.usefixtures("fresh_services")
__all__ = ["fresh_services"]  # the fixture, from django_support


BAD: list[tuple[str, Any, str]] = [
    ("CANCEL_URL", "https://evil.example/", "E010"),
    ("CANCEL_URL", 123, "E010"),
    ("CATALOG", 123, "E010"),
    ("CATALOG", "no.such.module", "E010"),
    ("CATALOG", ("app", "/no/such/locale/dir"), "E010"),
    ("LOCALE_SELECTOR", "no.such.fn", "E002"),
    ("LOCALE_SELECTOR", 123, "E002"),
    ("ENCRYPTION_KEY_ID", "nope", "E010"),  # with the default "SECRET_KEY": no key has an id
    ("SIGN_IN_TTL", float("inf"), "E010"),
    ("SIGN_IN_TTL", float("nan"), "E010"),
    ("SIGN_IN_TTL", -1, "E010"),
    ("CREATE_SCHEMA", "no", "E010"),
    ("PASSKEYS_RP_NAME", 123, "E010"),
    ("OIDC_PROVIDERS", {"corp": "https://idp"}, "E010"),
    ("OIDC_PROVIDERS", {"x": 1}, "E010"),
    ("SAML_PROVIDERS", {"x": "y"}, "E010"),
    ("OIDC_PROVIDERS", ["corp"], "E010"),
    ("DEFAULT_TENANT", "", "E010"),
    # a tenant id no store holds: it passed start-up and failed every guarded request
    ("DEFAULT_TENANT", "a b\n", "E010"),
    ("DEFAULT_TENANT", "x" * 1025, "E010"),
    ("TOTP_ISSUER", 5, "E010"),
    ("URL_NAMESPACE", "", "E010"),
    ("URL_NAMESPACE", "other", "E012"),
]


@pytest.mark.parametrize(("key", "value", "check_id"), BAD, ids=[f"{k}={v!r}" for k, v, _ in BAD])
def test_a_bad_value_is_reported_naming_the_key(key: str, value: Any, check_id: str) -> None:
    (message,) = _messages(**{key: value})
    assert message.id == f"stepup.{check_id}"
    assert f"STEPUP['{key}']" in message.msg


def test_explicit_keys_name_the_setting_when_the_current_id_is_not_one_of_them() -> None:
    keys = {"k1": b"k" * 32, "k2": b"j" * 32}
    (message,) = _messages(ENCRYPTION_KEYS=keys, ENCRYPTION_KEY_ID="k3")
    assert message.id == "stepup.E010"
    assert "STEPUP['ENCRYPTION_KEY_ID']" in message.msg
    assert "kkkk" not in message.msg  # key ids only, never a key
    (message,) = _messages(ENCRYPTION_KEYS=keys)  # two keys, none named current
    assert "STEPUP['ENCRYPTION_KEY_ID']" in message.msg


def test_every_bad_key_is_reported_at_once() -> None:
    found = _messages(CANCEL_URL="https://evil.example/", CATALOG=123, SIGN_IN_TTL=float("inf"))
    assert sorted(m.msg.split("]")[0] for m in found) == [
        "STEPUP['CANCEL_URL'",
        "STEPUP['CATALOG'",
        "STEPUP['SIGN_IN_TTL'",
    ]


def test_a_good_configuration_of_every_key_reports_nothing(tmp_path: Path) -> None:
    keys = {"k1": b"k" * 32, "k2": b"j" * 32}
    good = {
        "CANCEL_URL": "/home/",
        "CATALOG": ("acme", str(tmp_path)),
        "LOCALE_SELECTOR": "integrations.django.test_checks_every_setting.pick_locale",
        "ENCRYPTION_KEYS": keys,
        "ENCRYPTION_KEY_ID": "k2",
        "SIGN_IN_TTL": 120.5,
        "CREATE_SCHEMA": False,
        "PASSKEYS_RP_NAME": "Acme",
        "OIDC_PROVIDERS": {"corp": CORP},
        "URL_NAMESPACE": "stepup",
    }
    assert _messages(**good) == []
    assert _messages(LOCALE_SELECTOR=pick_locale, PASSKEYS_RP_NAME=None) == []


def pick_locale(request: Any) -> str | None:
    return "de"


def _urlconf(*patterns: Any) -> types.ModuleType:
    module = types.ModuleType("stepup_test_urlconf")
    module.urlpatterns = list(patterns)  # type: ignore[attr-defined]
    return module


STEPUP_URLS = "stepup.integrations.django.urls"


def test_the_namespace_the_urls_are_included_under_is_named() -> None:
    mfa = _urlconf(path("mfa/", include(STEPUP_URLS, namespace="mfa")))
    with override_settings(ROOT_URLCONF=mfa):
        (message,) = _messages(URL_NAMESPACE="other")
        assert message.id == "stepup.E012"
        assert "STEPUP['URL_NAMESPACE']" in message.msg
        assert "'mfa'" in message.msg
        assert "'mfa'" in message.hint
        assert _messages(URL_NAMESPACE="mfa") == []
        # "stepup" is the application namespace: Django reverses it to the one instance
        assert _messages() == []


def test_a_nested_namespace_is_named_whole() -> None:
    nested = _urlconf(path("outer/", include(([path("s/", include(STEPUP_URLS))], "outer"))))
    with override_settings(ROOT_URLCONF=nested):
        (message,) = _messages()
        assert message.id == "stepup.E012"
        assert "'outer:stepup'" in message.msg
        assert _messages(URL_NAMESPACE="outer:stepup") == []


def test_urls_not_included_at_all_are_a_warning() -> None:
    """Deferred, not refused: a middleware may set ``request.urlconf`` to one that
    includes them."""
    with override_settings(ROOT_URLCONF=_urlconf()):
        (message,) = _messages()
    assert message.id == "stepup.W006"
    assert "STEPUP['URL_NAMESPACE']" in message.msg


def test_urls_behind_a_prefix_with_a_parameter_are_named_as_such() -> None:
    """Included under the right namespace, but behind ``<slug:org>/``: no reverse without
    arguments. The error says so, not that the namespace (already right) is wrong."""
    with_org = _urlconf(path("<slug:org>/stepup/", include(STEPUP_URLS)))
    with override_settings(ROOT_URLCONF=with_org):
        (message,) = _messages()
    assert message.id == "stepup.E012"
    assert "path parameter" in message.msg
    assert "URL_NAMESPACE'] is not" not in message.msg


@pytest.mark.parametrize("ttl", [10**400, -(10**400)])
def test_a_ttl_no_float_holds_is_named(ttl: int) -> None:
    (message,) = _messages(SIGN_IN_TTL=ttl)
    assert message.id == "stepup.E010"
    assert "SIGN_IN_TTL" in message.msg
