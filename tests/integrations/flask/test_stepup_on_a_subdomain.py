"""An app with subdomains (``SERVER_NAME``, subdomain matching) whose guarded views live on
one (a blueprint with ``subdomain="admin"``): stepup's pages were on the default host only,
so ``next``, a path, brought the person back to the default host after re-authenticating
(``next`` stays a path: an absolute URL there would be an open redirect).
``STEPUP_SUBDOMAIN`` serves stepup's blueprint on that subdomain instead."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from flask import Blueprint, Flask

from integrations.flask.flask_support import TENANT, TestApp, flag_body, make_app
from stepup.adapters.storage.memory import MemoryStore
from stepup.errors import ConfigurationError
from stepup.integrations.flask import Stepup
from stepup.testing import SettableClock

ADMIN = "http://admin.example.test"


def _admin_views(app: Flask, stepup: Stepup) -> None:
    app.subdomain_matching = True
    admin = Blueprint("admin", __name__)

    @admin.get("/keys")
    @stepup.reauth_required("api_key.read")
    def keys() -> str:
        return "admin keys"

    app.register_blueprint(admin, subdomain="admin", url_prefix="/adm")


def _app(clock: SettableClock, **config: Any) -> TestApp:
    settings = {"SERVER_NAME": "example.test", "SESSION_COOKIE_DOMAIN": "example.test"}
    test_app = make_app(
        "flask_login",
        clock=clock,
        store=MemoryStore(),
        config={**settings, **config},
        setup=_admin_views,
    )
    with test_app.app.app_context():
        test_app.stepup.tenant_settings.patch(
            TENANT, flag_body(True), actor_id="alice", actor_is_tenant_admin=True
        )
    return test_app


def _fields(body: str) -> dict[str, str]:
    found = re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', body)
    return {name: html.unescape(value) for name, value in found}


def test_stepup_on_the_subdomain_brings_the_person_back_to_it(clock: SettableClock) -> None:
    test_app = _app(clock, STEPUP_SUBDOMAIN="admin")
    client = test_app.app.test_client()
    client.post("/login", data={"username": "bob", "password": "battery staple"})
    refused = client.get("/adm/keys", base_url=ADMIN)
    # The re-auth page is on the guarded view's own host: a path, no other host.
    location = refused.headers["Location"]
    assert location.startswith("/stepup/reauth?next=%2Fadm%2Fkeys&")
    page = client.get(location, base_url=ADMIN)
    assert page.status_code == 200
    fields = _fields(page.get_data(as_text=True))
    done = client.post(
        "/stepup/reauth/password", base_url=ADMIN, data={**fields, "password": "battery staple"}
    )
    assert (done.status_code, done.headers["Location"]) == (303, "/adm/keys")
    assert client.get("/adm/keys", base_url=ADMIN).get_data(as_text=True) == "admin keys"
    # stepup's pages are on that subdomain only.
    assert client.get(location, base_url="http://example.test").status_code == 404


def test_without_the_setting_stepup_stays_on_the_default_host(clock: SettableClock) -> None:
    test_app = _app(clock)
    client = test_app.app.test_client()
    client.post("/login", data={"username": "bob", "password": "battery staple"})
    refused = client.get("/adm/keys", base_url=ADMIN)
    assert refused.headers["Location"].startswith("http://example.test/stepup/reauth?")


@pytest.mark.parametrize(
    "value", ["", "<tenant>", "admin..eu", "-admin", "admin-", "ad min", "admin/x", 5, b"admin"]
)
def test_a_subdomain_that_is_no_host_label_stops_init_app(value: object) -> None:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="test-secret-key-0123456789",
        STEPUP_STORE="memory://",
        STEPUP_SUBDOMAIN=value,
    )
    with pytest.raises(ConfigurationError, match="STEPUP_SUBDOMAIN must be None or a subdomain"):
        Stepup(app)


@pytest.mark.parametrize("value", ["admin", "admin.eu", "a-1"])
def test_a_subdomain_of_host_labels_is_taken(value: str) -> None:
    app = Flask(__name__, subdomain_matching=True)
    app.config.update(
        SECRET_KEY="test-secret-key-0123456789",
        STEPUP_STORE="memory://",
        STEPUP_SUBDOMAIN=value,
        SERVER_NAME="example.test",
    )
    Stepup(app)
    rules = [r for r in app.url_map.iter_rules() if r.endpoint == "stepup.reauth"]
    assert [r.subdomain for r in rules] == [value]


@pytest.mark.parametrize(
    ("server_name", "flask_options", "missing"),
    [
        (None, {"subdomain_matching": True}, ["SERVER_NAME is not set"]),
        ("", {"subdomain_matching": True}, ["SERVER_NAME is not set"]),
        ("example.test", {}, ["subdomain matching is off"]),
        (None, {}, ["SERVER_NAME is not set", "subdomain matching is off"]),
        (
            "example.test",
            {"subdomain_matching": True, "host_matching": True, "static_host": "example.test"},
            ["host matching is on"],
        ),
    ],
)
def test_a_subdomain_flask_cannot_match_stops_init_app(
    server_name: str | None, flask_options: dict[str, Any], missing: list[str]
) -> None:
    """Without SERVER_NAME, or without subdomain matching (or with host matching), no
    host serves a blueprint's subdomain: every guarded request would be sent to a 404."""
    app = Flask(__name__, **flask_options)
    app.config.update(
        SECRET_KEY="test-secret-key-0123456789",
        STEPUP_STORE="memory://",
        STEPUP_SUBDOMAIN="admin",
        SERVER_NAME=server_name,
    )
    with pytest.raises(ConfigurationError) as refused:
        Stepup(app)
    message = str(refused.value)
    assert message.startswith("STEPUP_SUBDOMAIN needs SERVER_NAME and subdomain matching: ")
    for what in missing:
        assert what in message
    assert "stepup" not in app.blueprints  # refused before anything was registered


def test_a_sign_in_begun_on_the_default_host_comes_back_to_it(clock: SettableClock) -> None:
    """The second step is on stepup's host (admin); the sign-in began on the app's default
    host, and its ``next`` is a path there: the second step sends the person to that
    path on the default host (an absolute URL built from SERVER_NAME), not on admin."""
    test_app = _app(clock, STEPUP_SUBDOMAIN="admin")
    with test_app.app.app_context():
        two_factor = test_app.stepup.two_factor
        secret = two_factor.begin_enrolment("bob", "bob").secret
        assert two_factor.confirm_enrolment("bob", test_app.totp_code(secret)).ok
    client = test_app.app.test_client()
    login = {"username": "bob", "password": "battery staple", "next": "/home"}
    begun = client.post("/login", data=login)
    assert begun.headers["Location"] == f"{ADMIN}/stepup/2fa/verify"
    page = client.get("/stepup/2fa/verify", base_url=ADMIN)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    assert token is not None
    clock.advance(30)  # the enrolment's code is spent
    done = client.post(
        "/stepup/2fa/verify",
        base_url=ADMIN,
        data={"csrf_token": html.unescape(token.group(1)), "code": test_app.totp_code(secret)},
    )
    assert (done.status_code, done.headers["Location"]) == (303, "http://example.test/home")
    assert client.get(done.headers["Location"]).get_data(as_text=True) == "home of bob"


def test_a_sign_in_begun_on_stepups_host_stays_a_path(clock: SettableClock) -> None:
    def login_on_admin(app: Flask, stepup: Stepup) -> None:
        _admin_views(app, stepup)
        admin_login = Blueprint("admin_login", __name__)

        @admin_login.post("/login")
        def login() -> Any:
            return stepup.begin_two_factor("bob", next="/adm/keys")

        app.register_blueprint(admin_login, subdomain="admin", url_prefix="/adm")

    test_app = make_app(
        "flask_login",
        clock=clock,
        store=MemoryStore(),
        config={"SERVER_NAME": "example.test", "STEPUP_SUBDOMAIN": "admin"},
        setup=login_on_admin,
    )
    client = test_app.app.test_client()
    begun = client.post("/adm/login", base_url=ADMIN)
    assert begun.headers["Location"] == "/stepup/2fa/verify"
    with client.session_transaction(base_url=ADMIN) as kept:
        assert kept["_stepup_2fa_login"]["next"] == "/adm/keys"


def test_a_sign_in_held_on_the_default_host_comes_back_to_it(clock: SettableClock) -> None:
    """A ``login_user`` of a user with a second factor, on the default host, is held for
    the second step on stepup's host, and comes back to where the view was sending the
    person, on the default host."""

    def direct_login(app: Flask, stepup: Stepup) -> None:
        _admin_views(app, stepup)

        @app.post("/login/direct")
        def login_directly() -> Any:
            from flask import redirect
            from flask_login import login_user

            login_user(app.login_manager._user_callback("bob"))  # type: ignore[attr-defined]
            return redirect("/home", 303)

    test_app = make_app(
        "flask_login",
        clock=clock,
        store=MemoryStore(),
        config={
            "SERVER_NAME": "example.test",
            "SESSION_COOKIE_DOMAIN": "example.test",
            "STEPUP_SUBDOMAIN": "admin",
        },
        setup=direct_login,
    )
    with test_app.app.app_context():
        two_factor = test_app.stepup.two_factor
        secret = two_factor.begin_enrolment("bob", "bob").secret
        assert two_factor.confirm_enrolment("bob", test_app.totp_code(secret)).ok
    client = test_app.app.test_client()
    held = client.post("/login/direct")
    assert held.headers["Location"] == f"{ADMIN}/stepup/2fa/verify"
    page = client.get("/stepup/2fa/verify", base_url=ADMIN)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    assert token is not None
    clock.advance(30)
    done = client.post(
        "/stepup/2fa/verify",
        base_url=ADMIN,
        data={"csrf_token": html.unescape(token.group(1)), "code": test_app.totp_code(secret)},
    )
    assert (done.status_code, done.headers["Location"]) == (303, "http://example.test/home")
    assert client.get(done.headers["Location"]).get_data(as_text=True) == "home of bob"
