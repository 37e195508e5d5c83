"""Building the app (``get_wsgi_application``, ``get_asgi_application``: what gunicorn,
uWSGI and an ASGI server do, running no system checks) stops at a setting the checks
call an error, naming it, instead of an app whose every request is a 500."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core.asgi import get_asgi_application
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured
from django.core.wsgi import get_wsgi_application
from django.test import Client, override_settings

from integrations.django.django_support import BASE_STEPUP, fresh_services

pytestmark = pytest.mark.usefixtures("fresh_services")
__all__ = ["fresh_services"]  # the fixture, from django_support

BUILDERS: list[Callable[[], Any]] = [get_wsgi_application, get_asgi_application]


@pytest.mark.parametrize("build", BUILDERS)
@pytest.mark.parametrize("value", ["0", "-5", "6 hours", "inf"])
def test_a_bad_lifetime_stops_the_app_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, build: Callable[[], Any], value: str
) -> None:
    monkeypatch.setenv("SENSITIVE_ACTION_AUTH_LIFETIME", value)
    with override_settings(STEPUP=BASE_STEPUP), pytest.raises(ImproperlyConfigured) as raised:
        build()
    message = str(raised.value)
    assert "stepup.E004" in message
    assert "SENSITIVE_ACTION_AUTH_LIFETIME" in message
    assert "90s, 30m, 6h" in message  # the check's hint comes along
    with override_settings(STEPUP=BASE_STEPUP):  # manage.py check says the same, as before
        assert [m.id for m in run_checks(tags=["stepup"])] == ["stepup.E004"]


def test_the_test_client_is_refused_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not a 500 on /home/, a page stepup does not even guard: no app at all."""
    monkeypatch.setenv("SENSITIVE_ACTION_AUTH_LIFETIME", "0")
    with override_settings(STEPUP=BASE_STEPUP), pytest.raises(ImproperlyConfigured):
        Client().get("/home/")


@pytest.mark.parametrize("build", BUILDERS)
def test_good_settings_build_an_app_that_answers(
    monkeypatch: pytest.MonkeyPatch, build: Callable[[], Any]
) -> None:
    monkeypatch.setenv("SENSITIVE_ACTION_AUTH_LIFETIME", "30m")
    with override_settings(STEPUP=BASE_STEPUP):
        assert build() is not None
        assert Client().get("/home/").status_code == 200


@pytest.mark.parametrize(
    ("stepup", "check_id", "named"),
    [
        ({"PASWORD_HASH_LOADER": "x.y"}, "stepup.E001", "PASWORD_HASH_LOADER"),
        (
            {"IS_TENANT_ADMIN": "integrations.django.testapp.hooks.nope"},
            "stepup.E002",
            "IS_TENANT_ADMIN",
        ),
        ({"STORE": "mongodb://user:secret@db/x"}, "stepup.E003", "STORE"),
        ({"DISABLE_ACTION": "2fa.disabel"}, "stepup.E004", "DISABLE_ACTION"),
        ({"POLICY_FILE": "/nonexistent/policy.toml"}, "stepup.E005", "policy.toml"),
        ({"PASSWORD_HASH_LOADER": None}, "stepup.E009", "PASSWORD_HASH_LOADER"),
        ({"SIGN_IN_TTL": 0}, "stepup.E010", "SIGN_IN_TTL"),
        ({"CREATE_SCHEMA": "yes"}, "stepup.E010", "CREATE_SCHEMA"),
        ({"URL_NAMESPACE": "elsewhere"}, "stepup.E012", "URL_NAMESPACE"),
    ],
)
def test_every_error_of_the_checks_stops_the_app(
    stepup: dict[str, Any], check_id: str, named: str
) -> None:
    with override_settings(STEPUP={**BASE_STEPUP, **stepup}):
        assert check_id in [m.id for m in run_checks(tags=["stepup"])]
        with pytest.raises(ImproperlyConfigured) as raised:
            get_wsgi_application()
    message = str(raised.value)
    assert check_id in message
    assert named in message
    assert "secret" not in message  # a store URL can carry a password


@pytest.mark.parametrize("build", BUILDERS)
def test_the_middleware_order_is_checked_when_the_app_is_built(
    build: Callable[[], Any],
) -> None:
    from integrations.django.django_support import MIDDLEWARE

    early = [MIDDLEWARE[-1], *MIDDLEWARE[:-1]]  # stepup's before the session's
    with (
        override_settings(STEPUP=BASE_STEPUP, MIDDLEWARE=early),
        pytest.raises(ImproperlyConfigured) as raised,
    ):
        build()
    assert "stepup.E007" in str(raised.value)


def test_an_error_the_project_silenced_does_not_stop_the_app() -> None:
    stepup = {**BASE_STEPUP, "PASSWORD_HASH_LOADER": None}
    with override_settings(STEPUP=stepup, SILENCED_SYSTEM_CHECKS=["stepup.E009"]):
        assert get_wsgi_application() is not None
        assert Client().get("/home/").status_code == 200


def test_a_silenced_error_that_leaves_no_services_still_stops_the_app(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Silencing the check does not make the policy buildable, and the services need it."""
    monkeypatch.setenv("SENSITIVE_ACTION_AUTH_LIFETIME", "0")
    silenced = override_settings(STEPUP=BASE_STEPUP, SILENCED_SYSTEM_CHECKS=["stepup.E004"])
    with silenced, pytest.raises(ImproperlyConfigured) as raised:
        get_wsgi_application()
    assert "SENSITIVE_ACTION_AUTH_LIFETIME" in str(raised.value)
