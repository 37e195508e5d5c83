"""An app that protects its forms with Flask-WTF: stepup's forms carry Flask-WTF's token
in Flask-WTF's field and pass its check (one token, one session key, one check), a
replayed form passes the app's own check, the token is renewed at re-authentication, the
SAML ACS (posted by the IdP's page) is exempt, and ``CSRFProtect`` may be set up before
or after stepup. Without Flask-WTF, stepup's own tokens (the other tests) are the fallback.
"""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from flask import Flask
from flask_wtf.csrf import CSRFProtect

from integrations.flask.flask_support import TENANT, Browser, TestApp, make_app
from integrations.resume_support import as_multidict, resume_form
from stepup.adapters.storage.memory import MemoryStore
from stepup.integrations.flask import Stepup
from stepup.records import Tenant

MISSING = "The CSRF token is missing."
ORDERS = ("csrf_first", "stepup_first")


def _app(order: str, **config: Any) -> tuple[TestApp, CSRFProtect]:
    protect = CSRFProtect()

    def setup(app: Flask, stepup: Stepup) -> None:
        if order == "csrf_first":
            protect.init_app(app)

        @app.post("/app-form")
        def app_form() -> str:  # the app's own form: only Flask-WTF guards it
            return "saved"

    store = MemoryStore()
    test_app = make_app(store=store, config=config, setup=setup)
    if order == "stepup_first":
        protect.init_app(test_app.app)
    protect.exempt(test_app.app.view_functions["login"])  # the test app's sign-in form
    store.put_tenant(Tenant(TENANT, {"feature_flags": {"sensitive_actions_reauth": True}}))
    return test_app, protect


def _token(browser: Browser, field: str = "csrf_token", page: str = "/stepup/2fa") -> str:
    body = browser.get(page).get_data(as_text=True)
    found = re.search(rf'name="{field}" value="([^"]+)"', body)
    assert found, body
    return html.unescape(found.group(1))


@pytest.mark.parametrize("order", ORDERS)
def test_stepups_forms_carry_and_pass_flask_wtfs_token(order: str) -> None:
    test_app, _ = _app(order)
    bob = test_app.client()
    assert bob.login("bob").status_code == 303
    token = _token(bob)
    # the token on stepup's page is Flask-WTF's: the app's own form accepts it
    assert bob.post("/app-form", data={"csrf_token": token}).get_data(as_text=True) == "saved"
    assert bob.post("/app-form").status_code == 400
    with bob.client.session_transaction() as session:
        assert "csrf_token" in session  # Flask-WTF's value
        assert "_stepup_csrf" not in session  # stepup keeps none of its own
    # stepup's forms pass Flask-WTF's check (and stepup's), with that token only
    secret, codes = bob.enrol()
    assert secret
    assert codes
    refused = bob.post("/stepup/2fa/recovery-codes", data={"csrf_token": "forged"})
    assert refused.status_code == 400
    assert "The CSRF token is invalid." in refused.get_data(as_text=True)


@pytest.mark.parametrize("order", ORDERS)
def test_a_replayed_form_passes_the_apps_check_with_a_renewed_token(order: str) -> None:
    test_app, _ = _app(order)
    bob = test_app.client()
    bob.login("bob")
    old = _token(bob)
    refused = bob.post("/api-key/regenerate", data={"csrf_token": old, "note": "x"})
    assert refused.status_code == 303
    location = refused.headers["Location"]
    assert "resume=" in location
    resumed = bob.reauth(location, test_app.users["bob"].password)
    assert resumed.status_code == 200, resumed.get_data(as_text=True)
    target, fields = resume_form(resumed.get_data(as_text=True))
    assert target == "/api-key/regenerate"
    sent = dict(fields)
    assert sent["note"] == "x"
    assert sent["csrf_token"] != old  # renewed with the session at re-authentication
    done = bob.post(target, data=as_multidict(fields))  # Flask-WTF checks it, then the guard
    assert done.get_data(as_text=True) == "regenerated"
    assert bob.post("/app-form", data={"csrf_token": old}).status_code == 400
    assert bob.post("/app-form", data={"csrf_token": sent["csrf_token"]}).status_code == 200


@pytest.mark.parametrize("order", ORDERS)
def test_the_saml_acs_is_exempt_from_flask_wtf_too(order: str) -> None:
    test_app, protect = _app(order)
    bob = test_app.client()
    bob.login("bob")
    answer = bob.post("/stepup/reauth/saml/acs", data={"SAMLResponse": "x", "RelayState": "y"})
    assert MISSING not in answer.get_data(as_text=True)
    assert "stepup.integrations.flask._views.saml_acs" in protect._exempt_views
    # stepup's other forms are not exempt
    assert MISSING in bob.post("/stepup/2fa/enrol").get_data(as_text=True)


def test_the_exemption_is_looked_for_at_the_first_request_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After its first request an app takes no new hooks (so no new ``CSRFProtect``):
    the exemption's hook stops looking, and later requests pay nothing for it."""
    from stepup.integrations.flask import _views

    looked: list[object] = []
    real = _views.flask_wtf_of
    monkeypatch.setattr(_views, "flask_wtf_of", lambda app: looked.append(app) or real(app))
    test_app, protect = _app("stepup_first")
    bob = test_app.client()
    bob.login("bob")
    assert "stepup.integrations.flask._views.saml_acs" in protect._exempt_views
    counted = len(looked)
    for _ in range(3):
        bob.get("/stepup/2fa")
    assert len(looked) == counted
    with pytest.raises(AssertionError):
        CSRFProtect().init_app(test_app.app)  # Flask itself refuses: why looking once is enough


def test_a_renamed_flask_wtf_field_is_the_one_stepups_forms_use() -> None:
    test_app, _ = _app("csrf_first", WTF_CSRF_FIELD_NAME="_token")
    bob = test_app.client()
    bob.login("bob")
    token = _token(bob, "_token")
    assert 'name="csrf_token"' not in bob.get("/stepup/2fa").get_data(as_text=True)
    page = bob.post("/stepup/2fa/enrol", data={"_token": token})
    assert page.status_code == 200, page.get_data(as_text=True)
    assert bob.post("/stepup/2fa/enrol", data={"csrf_token": token}).status_code == 403


def test_scripts_send_the_token_in_either_header() -> None:
    test_app, _ = _app("stepup_first")
    bob = test_app.client()
    bob.login("bob")
    token = _token(bob)
    for header in ("X-CSRF-Token", "X-CSRFToken"):
        answer = bob.post("/stepup/2fa/enrol", headers={header: token})
        assert answer.status_code == 200, header
