"""Starlette: the store fails while the grant of a right password is recorded (see the
Flask twin): the 503 page now links to another try (JSON for a script), and the kept
form, taken only after the grant is stored, waits for it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from idp.saml import saml_idp
from integrations.record_outage_support import TRY_AGAIN, GrantOutage
from integrations.resume_support import resume_form, try_again_link
from integrations.starlette.starlette_support import (
    PASSWORDS,
    Browser,
    TestApp,
    csrf_token,
    make_app,
)
from integrations.starlette.test_sso import idp, keys, press_sso_button  # noqa: F401
from stepup.adapters.idp.saml import AsyncSAMLServiceProvider
from stepup.testing import SettableClock


@pytest.fixture
def store() -> GrantOutage:
    return GrantOutage()


@pytest.fixture
def alice(store: GrantOutage) -> Iterator[Browser]:
    browser = make_app(clock=SettableClock(), store=store).browser()
    assert browser.login("alice").status_code == 303
    assert browser.patch_tenant(True).status_code == 200
    yield browser
    browser.close()


def _kept(browser: Browser) -> str:
    refused = browser.post("/api-key/regenerate", data={"label": "deploy"})
    assert "resume=" in refused.headers["location"]
    return str(refused.headers["location"])


def test_a_store_failure_at_the_grant_is_a_503_page_and_the_form_waits(
    alice: Browser, store: GrantOutage
) -> None:
    link = _kept(alice)
    store.down = True
    failed = alice.reauth(link, PASSWORDS["alice"])
    assert failed.status_code == 503
    assert TRY_AGAIN in failed.text
    again = try_again_link(failed.text)
    assert again.startswith("/stepup/reauth?")
    assert "resume=" in again
    assert alice.get("/api-key").status_code == 303  # nothing was recorded

    store.down = False
    resumed = alice.reauth(again, PASSWORDS["alice"])
    assert resumed.status_code == 200
    target, fields = resume_form(resumed.text)
    assert (target, ("label", "deploy") in fields) == ("/api-key/regenerate", True)


def test_a_script_gets_the_503_as_json(alice: Browser, store: GrantOutage) -> None:
    link = _kept(alice)
    token = csrf_token(alice.get(link).text)
    store.down = True
    failed = alice.post(
        link,
        data={"csrf_token": token, "password": PASSWORDS["alice"]},
        headers={"Accept": "application/json"},
    )
    assert failed.status_code == 503
    assert failed.json()["error"] == "unavailable"


@pytest.fixture
def saml_app(keys: dict[str, saml_idp.KeyPair]) -> tuple[TestApp, GrantOutage]:  # noqa: F811
    clock = SettableClock(time.time())  # the IdP stamps real times
    store = GrantOutage()
    sp = AsyncSAMLServiceProvider(saml_idp.make_config(keys), store, clock=clock)
    return make_app(clock=clock, store=store, saml=sp), store


def _saml_answer(browser: Browser, idp: saml_idp.TestIdP, link: str) -> Any:  # noqa: F811
    request = idp.receive(press_sso_button(browser, link).headers["location"])
    answer = {
        "SAMLResponse": idp.answer(request, saml_idp.ALICE),
        "RelayState": request.relay_state or "",
    }
    return browser.post("/stepup/saml/acs", data=answer)


@pytest.mark.saml
def test_an_sso_answer_meets_a_store_failure_with_the_503_page_too(
    saml_app: tuple[TestApp, GrantOutage],
    idp: saml_idp.TestIdP,  # noqa: F811
) -> None:
    test_app, store = saml_app
    alice = test_app.browser()
    try:
        assert alice.login_sso("alice", "saml", saml_idp.IDP_ID, saml_idp.ALICE, "corp")
        assert alice.patch_tenant(True).status_code == 200
        link = _kept(alice)
        store.down = True
        failed = _saml_answer(alice, idp, link)
        assert failed.status_code == 503
        assert TRY_AGAIN in failed.text
        again = try_again_link(failed.text)
        assert "resume=" in again

        store.down = False
        back = _saml_answer(alice, idp, again)
        assert back.status_code == 303
        _, fields = resume_form(alice.get(back.headers["location"]).text)
        assert ("label", "deploy") in fields
    finally:
        alice.close()
