"""Starlette: a kept form resumes only in the browser that sent it (see the Flask twin).

Someone holding a copy of the session cookie can make the guard keep a form and send
the owner the link to the genuine re-auth page: the owner's re-authentication counts,
the form is not sent again. A SAML answer is posted cross-site, without the
SameSite=Lax binding cookie: the ACS leaves the form for the same-site resume view."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from idp.saml import saml_idp
from integrations.resume_support import as_multidict, resume_form
from integrations.starlette.starlette_support import (
    PASSWORDS,
    Browser,
    TestApp,
    csrf_token,
    make_app,
)
from integrations.starlette.test_sso import idp, keys, press_sso_button  # noqa: F401
from stepup.adapters.idp.saml import AsyncSAMLServiceProvider
from stepup.adapters.storage.memory import MemoryStore
from stepup.integrations.resume import BROWSER_COOKIE
from stepup.integrations.starlette import Stepup
from stepup.testing import SettableClock

NOT_SENT = "The form that brought you here was not sent"


def _ssh_keys(stepup: Stepup) -> list[Any]:
    """A sensitive form of the app's own, CSRF-checked as an app would."""

    @stepup.requires_reauth("api_key.regenerate", return_to="/")
    async def add_key(request: Request) -> Response:
        form = await request.form()
        if not await stepup.csrf_ok(request, form):
            return PlainTextResponse("csrf", 403)
        return PlainTextResponse(f"added {form['key']}")

    return [Route("/ssh-keys", add_key, methods=["POST"])]


@pytest.fixture
def test_app() -> TestApp:
    return make_app(clock=SettableClock(), store=MemoryStore(), extra_routes=_ssh_keys)


@pytest.fixture
def owner(test_app: TestApp) -> Iterator[Browser]:
    browser = test_app.browser()
    assert browser.login("alice").status_code == 303
    assert browser.patch_tenant(True).status_code == 200
    yield browser
    browser.close()


def _copy_of_session(test_app: TestApp, owner: Browser) -> Browser:
    """Another machine with a copy of the owner's session cookie (and nothing else)."""
    thief = test_app.browser()
    stolen = owner.client.cookies.get("session")
    assert stolen is not None
    thief.client.cookies.set("session", stolen)
    return thief


def _keep(browser: Browser, key: str) -> Any:
    token = csrf_token(browser.get("/stepup/2fa").text)
    refused = browser.post("/ssh-keys", data={"csrf_token": token, "key": key})
    assert refused.status_code == 303
    assert "resume=" in refused.headers["location"]
    return refused


def test_a_form_sent_with_a_copy_of_the_session_is_not_replayed_to_the_owner(
    test_app: TestApp, owner: Browser
) -> None:
    thief = _copy_of_session(test_app, owner)
    try:
        link = _keep(thief, "ssh-ed25519 AAAA-THIEF").headers["location"]
        answer = owner.reauth(link, PASSWORDS["alice"])
        assert answer.status_code == 200
        assert NOT_SENT in answer.text
        assert 'id="stepup-resume"' not in answer.text
        assert "AAAA-THIEF" not in answer.text
        assert 'href="/"' in answer.text
        assert owner.get("/api-key").status_code == 200  # her re-authentication counts
        assert owner.reauth(link, PASSWORDS["alice"]).status_code == 303  # used up
    finally:
        thief.close()


def test_a_form_sent_with_a_stale_copy_is_not_replayed_either(
    test_app: TestApp, owner: Browser
) -> None:
    thief = _copy_of_session(test_app, owner)
    try:
        first = owner.get("/api-key").headers["location"]
        assert owner.reauth(first, PASSWORDS["alice"]).status_code == 303
        test_app.clock.advance(7 * 3600)
        link = _keep(thief, "AAAA-STALE").headers["location"]
        answer = owner.reauth(link, PASSWORDS["alice"])
        assert NOT_SENT in answer.text
        assert "AAAA-STALE" not in answer.text
    finally:
        thief.close()


def test_the_owners_own_form_resumes_and_the_cookie_binds_it(owner: Browser) -> None:
    refused = _keep(owner, "AAAA-MINE")
    cookie = refused.headers["set-cookie"]
    assert cookie.startswith(f"{BROWSER_COOKIE}=")
    for attribute in ("HttpOnly", "Max-Age=600", "Path=/", "SameSite=Lax"):
        assert attribute in cookie
    assert "Secure" not in cookie
    resumed = owner.reauth(refused.headers["location"], PASSWORDS["alice"])
    target, fields = resume_form(resumed.text)
    assert ("key", "AAAA-MINE") in fields
    assert owner.post(target, data=as_multidict(fields)).text == "added AAAA-MINE"


def test_a_browser_without_the_cookie_gets_no_replay(owner: Browser) -> None:
    link = _keep(owner, "AAAA").headers["location"]
    owner.client.cookies.delete(BROWSER_COOKIE)
    answer = owner.reauth(link, PASSWORDS["alice"])
    assert answer.status_code == 200
    assert NOT_SENT in answer.text


# SAML: the ACS is another site's POST --------------------------------------------------


@pytest.fixture
def saml_app(keys: dict[str, saml_idp.KeyPair]) -> TestApp:  # noqa: F811
    clock = SettableClock(time.time())  # the IdP stamps real times
    store = MemoryStore()
    sp = AsyncSAMLServiceProvider(saml_idp.make_config(keys), store, clock=clock)
    return make_app(clock=clock, store=store, saml=sp, extra_routes=_ssh_keys)


def _saml_trip(browser: Browser, idp: saml_idp.TestIdP, link: str) -> Any:  # noqa: F811
    """Press the SAML button on the re-auth page, sign in at the IdP, post its answer."""
    to_idp = press_sso_button(browser, link)
    request = idp.receive(to_idp.headers["location"])
    answer = {
        "SAMLResponse": idp.answer(request, saml_idp.ALICE),
        "RelayState": request.relay_state or "",
    }
    return browser.post("/stepup/saml/acs", data=answer)


@pytest.mark.saml
def test_a_saml_answer_leaves_the_form_to_the_same_site_resume_view(
    saml_app: TestApp,
    idp: saml_idp.TestIdP,  # noqa: F811
) -> None:
    alice = saml_app.browser()
    thief = None
    try:
        assert alice.login_sso("alice", "saml", saml_idp.IDP_ID, saml_idp.ALICE, "corp")
        assert alice.patch_tenant(True).status_code == 200
        back = _saml_trip(alice, idp, _keep(alice, "AAAA-MINE").headers["location"])
        assert back.status_code == 303
        assert back.headers["location"] == "/stepup/reauth/resume?next=%2F"
        resumed = alice.get(back.headers["location"])
        target, fields = resume_form(resumed.text)
        assert ("key", "AAAA-MINE") in fields
        assert alice.post(target, data=as_multidict(fields)).text == "added AAAA-MINE"
        # Taken once: the resume view has nothing left to send.
        assert alice.get(back.headers["location"]).headers["location"] == "/"

        alice.post("/_test/revoke")  # asked again (the IdP's clock is the real one)
        thief = _copy_of_session(saml_app, alice)
        back = _saml_trip(alice, idp, _keep(thief, "AAAA-THIEF").headers["location"])
        refused = alice.get(back.headers["location"])
        assert refused.status_code == 200
        assert NOT_SENT in refused.text
        assert "AAAA-THIEF" not in refused.text
    finally:
        alice.close()
        if thief is not None:
            thief.close()
