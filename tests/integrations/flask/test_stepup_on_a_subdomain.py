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
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="test-secret-key-0123456789", STEPUP_STORE="memory://", STEPUP_SUBDOMAIN=value
    )
    Stepup(app)
    rules = [r for r in app.url_map.iter_rules() if r.endpoint == "stepup.reauth"]
    assert [r.subdomain for r in rules] == [value]
