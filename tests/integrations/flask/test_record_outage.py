"""Flask: the store fails while the grant of a right password is recorded.

It was a 500 (the error went up), and the kept form was already taken: lost. Now it is
stepup's 503 page (JSON for a script) with a link to try again, and the kept form waits
for the next try."""

from __future__ import annotations

import html
import re
import time
from typing import Any

import pytest

from idp.saml.saml_idp import ALICE, KeyPair, TestIdP, make_config
from integrations.flask.flask_support import Browser, TestApp, make_app, set_flag
from integrations.flask.test_sso_saml import _saml_user, _to_idp, idp, keys  # noqa: F401
from integrations.record_outage_support import TRY_AGAIN, GrantOutage
from integrations.resume_support import resume_form, try_again_link
from stepup.adapters.idp.saml import SAMLServiceProvider
from stepup.testing import SettableClock

_HIDDEN = re.compile(r'<input type="hidden" name="(\w+)" value="([^"]*)"')


@pytest.fixture
def store() -> GrantOutage:
    return GrantOutage()


@pytest.fixture
def alice(store: GrantOutage) -> Browser:
    test_app = make_app(store=store, clock=SettableClock())
    browser = test_app.client()
    assert browser.login("alice").status_code == 303
    assert set_flag(browser).status_code == 200
    return browser


def _kept(browser: Browser) -> str:
    refused = browser.post("/api-key/regenerate", data={"label": "deploy"})
    assert "resume=" in refused.headers["Location"]
    return str(refused.headers["Location"])


def test_a_store_failure_at_the_grant_is_a_503_page_and_the_form_waits(
    alice: Browser, store: GrantOutage
) -> None:
    link = _kept(alice)
    store.down = True
    failed = alice.reauth(link, "correct horse")
    assert failed.status_code == 503
    body = failed.get_data(as_text=True)
    assert TRY_AGAIN in body
    assert failed.headers["Cache-Control"] == "no-store"
    again = try_again_link(body)
    assert again.startswith("/stepup/reauth?")
    assert "resume=" in again
    assert alice.get("/api-key").status_code == 303  # nothing was recorded

    store.down = False
    resumed = alice.reauth(again, "correct horse")
    assert resumed.status_code == 200
    target, fields = resume_form(resumed.get_data(as_text=True))
    assert (target, ("label", "deploy") in fields) == ("/api-key/regenerate", True)


def test_a_script_gets_the_503_as_json(alice: Browser, store: GrantOutage) -> None:
    link = _kept(alice)
    store.down = True
    page = alice.get(link).get_data(as_text=True)
    fields = {name: html.unescape(value) for name, value in _HIDDEN.findall(page)}
    failed = alice.post(
        "/stepup/reauth/password",
        data={**fields, "password": "correct horse"},
        headers={"Accept": "application/json"},
    )
    assert failed.status_code == 503
    assert failed.get_json()["error"] == "unavailable"


@pytest.fixture
def saml_app(keys: dict[str, KeyPair]) -> tuple[TestApp, GrantOutage]:  # noqa: F811
    clock = SettableClock(time.time())  # the IdP stamps real times
    store = GrantOutage()
    sp = SAMLServiceProvider(make_config(keys), store, clock=clock)
    providers = {"STEPUP_SAML_PROVIDERS": {"corp-saml": sp}}
    return make_app(clock=clock, store=store, config=providers), store


def _saml_answer(browser: Browser, idp: TestIdP, link: str) -> Any:  # noqa: F811
    request = idp.receive(_to_idp(browser, link).headers["Location"])
    answer = {"SAMLResponse": idp.answer(request, ALICE), "RelayState": request.relay_state or ""}
    return browser.post("/stepup/reauth/saml/acs", data=answer)


@pytest.mark.saml
def test_an_sso_answer_meets_a_store_failure_with_the_503_page_too(
    saml_app: tuple[TestApp, GrantOutage],
    idp: TestIdP,  # noqa: F811
) -> None:
    test_app, store = saml_app
    admin = test_app.client()
    admin.login("alice")
    assert set_flag(admin).status_code == 200
    alice = _saml_user(test_app, "alice", ALICE)
    link = _kept(alice)
    store.down = True
    failed = _saml_answer(alice, idp, link)
    assert failed.status_code == 503
    assert TRY_AGAIN in failed.get_data(as_text=True)
    again = try_again_link(failed.get_data(as_text=True))
    assert "resume=" in again

    store.down = False
    back = _saml_answer(alice, idp, again)
    assert back.status_code == 303
    resumed = alice.get(back.headers["Location"])
    _, fields = resume_form(resumed.get_data(as_text=True))
    assert ("label", "deploy") in fields
