"""Flask: a kept form resumes only in the browser that sent it.

Someone holding a copy of the session cookie (a thief on another machine) can make the
guard keep a form, and send the owner the link to the genuine re-auth page. The kept
form is bound to the browser that sent it (the ``stepup_resume`` cookie set on the 303
that kept it): the owner's re-authentication counts, but the thief's form is not sent
again, and nothing of it is shown with a fresh CSRF token."""

from __future__ import annotations

import html
import json
import re
import time
from typing import Any

import pytest
from flask import Flask, request

from idp.saml.saml_idp import ALICE, KeyPair, TestIdP, make_config
from integrations.flask.flask_support import Browser, TestApp, make_app, set_flag
from integrations.flask.test_sso_saml import _saml_user, _to_idp, idp, keys  # noqa: F401
from integrations.resume_support import resume_form
from stepup.adapters.idp.saml import SAMLServiceProvider
from stepup.adapters.storage.memory import MemoryStore
from stepup.integrations.flask import Stepup
from stepup.integrations.resume import BROWSER_COOKIE
from stepup.testing import SettableClock
from stepup.testing.webauthn import SoftAuthenticator

NOT_SENT = "The form that brought you here was not sent"
ORIGIN = "http://localhost"
PASSKEYS = {"STEPUP_PASSKEYS_RP_ID": "localhost", "STEPUP_PASSKEYS_ORIGINS": [ORIGIN]}


def _ssh_keys(app: Flask, stepup: Stepup) -> None:
    """A sensitive form of the app's own, CSRF-checked as an app would."""

    @app.post("/ssh-keys")
    @stepup.csrf_protect
    @stepup.reauth_required("api_key.regenerate", return_to="/home")
    def add_key() -> str:
        return "added " + request.form["key"]


@pytest.fixture
def test_app() -> TestApp:
    return make_app(store=MemoryStore(), clock=SettableClock(), setup=_ssh_keys, config=PASSKEYS)


def _signed_in(test_app: TestApp) -> Browser:
    owner = test_app.client()
    assert owner.login("alice").status_code == 303
    assert set_flag(owner).status_code == 200
    return owner


def _copy_of_session(test_app: TestApp, owner: Browser) -> Browser:
    """Another machine with a copy of the owner's session cookie (and nothing else)."""
    thief = test_app.client()
    stolen = owner.client.get_cookie("session")
    assert stolen is not None
    thief.client.set_cookie("session", stolen.value)
    return thief


def _keep(browser: Browser, key: str) -> Any:
    refused = browser.client.post("/ssh-keys", data={"csrf_token": browser.csrf(), "key": key})
    assert refused.status_code == 303
    assert "resume=" in refused.headers["Location"]
    return refused


def test_a_form_sent_with_a_copy_of_the_session_is_not_replayed_to_the_owner(
    test_app: TestApp,
) -> None:
    owner = _signed_in(test_app)
    thief = _copy_of_session(test_app, owner)
    link = _keep(thief, "ssh-ed25519 AAAA-THIEF").headers["Location"]

    answer = owner.reauth(link, "correct horse")
    body = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert NOT_SENT in body
    assert 'id="stepup-resume"' not in body
    assert "AAAA-THIEF" not in body  # nothing of the form, and no fresh token for it
    assert 'href="/home"' in body  # the way on
    assert owner.get("/api-key").status_code == 200  # her re-authentication counts
    # The kept form is gone: the link resumes nothing any more, in any browser.
    assert owner.reauth(link, "correct horse").status_code == 303
    assert thief.reauth(link, "correct horse").status_code == 303


def test_a_form_sent_with_a_stale_copy_is_not_replayed_either(test_app: TestApp) -> None:
    """The copy's session id was renewed away by an earlier re-authentication of the
    owner; a form it sends is kept under that earlier id, which the owner's session
    still remembers for its other tabs. The binding keeps it from resuming."""
    owner = _signed_in(test_app)
    thief = _copy_of_session(test_app, owner)
    first = owner.get("/api-key").headers["Location"]
    assert owner.reauth(first, "correct horse").status_code == 303
    test_app.clock.advance(7 * 3600)  # the grant expired: she will be asked again
    link = _keep(thief, "AAAA-STALE").headers["Location"]
    answer = owner.reauth(link, "correct horse")
    assert answer.status_code == 200
    assert NOT_SENT in answer.get_data(as_text=True)
    assert "AAAA-STALE" not in answer.get_data(as_text=True)


def test_the_owners_own_form_resumes_and_the_cookie_binds_it(test_app: TestApp) -> None:
    owner = _signed_in(test_app)
    refused = _keep(owner, "ssh-ed25519 AAAA-MINE")
    cookie = next(
        v for v in refused.headers.getlist("Set-Cookie") if v.startswith(f"{BROWSER_COOKIE}=")
    )
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "path", "max-age", "samesite"} <= attributes
    assert "SameSite=Lax" in cookie
    assert "Max-Age=600" in cookie
    assert "Path=/;" in cookie or cookie.endswith("Path=/")
    assert "secure" not in attributes  # plain http here
    # A second form of the same browser keeps the same binding (each tab resumes).
    again = _keep(owner, "ssh-ed25519 AAAA-MINE-2")
    assert cookie.split(";")[0] in again.headers["Set-Cookie"]

    resumed = owner.reauth(refused.headers["Location"], "correct horse")
    target, fields = resume_form(resumed.get_data(as_text=True))
    assert ("key", "ssh-ed25519 AAAA-MINE") in fields
    done = owner.client.post(target, data=dict(fields))
    assert done.get_data(as_text=True) == "added ssh-ed25519 AAAA-MINE"


def test_the_cookie_is_secure_on_https_and_covers_the_apps_path(test_app: TestApp) -> None:
    _signed_in(test_app)  # the tenant's flag on
    owner = test_app.client()
    base = "https://localhost/app/"
    login = {"username": "alice", "password": "correct horse", "next": "/home"}
    owner.client.post("/login", data=login, base_url=base)
    token = _hidden(owner.client.get("/stepup/2fa", base_url=base).get_data(as_text=True))
    data = {"csrf_token": token["csrf_token"], "key": "k"}
    refused = owner.client.post("/ssh-keys", data=data, base_url=base)
    assert refused.status_code == 303
    cookie = refused.headers["Set-Cookie"]
    assert cookie.startswith(f"{BROWSER_COOKIE}=")
    assert "Secure" in cookie
    assert "Path=/app;" in cookie


def test_a_browser_without_the_cookie_gets_no_replay(test_app: TestApp) -> None:
    """The cookie expired, or was never sent back: fail closed, and say so."""
    owner = _signed_in(test_app)
    link = _keep(owner, "AAAA").headers["Location"]
    owner.client.delete_cookie(BROWSER_COOKIE)
    answer = owner.reauth(link, "correct horse")
    assert answer.status_code == 200
    assert NOT_SENT in answer.get_data(as_text=True)


def _hidden(body: str) -> dict[str, str]:
    fields = re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', body)
    return {k: html.unescape(v) for k, v in fields}


def _passkey(test_app: TestApp, owner: Browser) -> SoftAuthenticator:
    from integrations.flask.flask_support import confirm_factors

    key = SoftAuthenticator(origin=ORIGIN, counter=1)
    confirm_factors(owner)
    headers = {"X-CSRF-Token": owner.csrf("/stepup/passkeys")}
    begin = owner.post("/stepup/passkeys/register/begin", data="{}", headers=headers,
                       content_type="application/json")  # fmt: skip
    answer = key.create(begin.get_json())
    finish = owner.post(
        "/stepup/passkeys/register/finish",
        data=json.dumps({"credential": answer, "name": "Laptop"}),
        headers=headers,
        content_type="application/json",
    )
    assert finish.status_code == 200, finish.get_data(as_text=True)
    test_app.clock.advance(7 * 3600)  # no grant left from adding it
    return key


def _passkey_reauth(owner: Browser, key: SoftAuthenticator, link: str) -> Any:
    fields = _hidden(owner.get(link).get_data(as_text=True))
    headers = {"X-CSRF-Token": fields["csrf_token"]}
    options = owner.post("/stepup/reauth/passkey/begin", data=json.dumps(
        {"action": fields["action"]}), headers=headers, content_type="application/json")  # fmt: skip
    assert options.status_code == 200, options.get_data(as_text=True)
    credential = json.dumps(key.get(options.get_json()))
    return owner.post("/stepup/reauth/passkey/finish", data={**fields, "credential": credential})


def test_the_passkey_re_authentication_checks_the_binding_too(test_app: TestApp) -> None:
    owner = _signed_in(test_app)
    key = _passkey(test_app, owner)
    thief = _copy_of_session(test_app, owner)
    theirs = _keep(thief, "AAAA-THIEF").headers["Location"]
    answer = _passkey_reauth(owner, key, theirs)
    assert answer.status_code == 200
    assert NOT_SENT in answer.get_data(as_text=True)
    assert "AAAA-THIEF" not in answer.get_data(as_text=True)

    test_app.clock.advance(7 * 3600)
    mine = _keep(owner, "AAAA-MINE").headers["Location"]
    _, fields = resume_form(_passkey_reauth(owner, key, mine).get_data(as_text=True))
    assert ("key", "AAAA-MINE") in fields


# SAML: the ACS is another site's POST --------------------------------------------------


@pytest.fixture
def saml_app(keys: dict[str, KeyPair]) -> TestApp:  # noqa: F811
    clock = SettableClock(time.time())  # the IdP stamps real times
    store = MemoryStore()
    sp = SAMLServiceProvider(make_config(keys), store, clock=clock)
    providers = {"STEPUP_SAML_PROVIDERS": {"corp-saml": sp}}
    return make_app(clock=clock, store=store, config=providers, setup=_ssh_keys)


def _saml_trip(browser: Browser, idp: TestIdP, link: str) -> Any:  # noqa: F811
    """Press the SAML button on the re-auth page, sign in at the IdP, post its answer."""
    request = idp.receive(_to_idp(browser, link).headers["Location"])
    answer = {"SAMLResponse": idp.answer(request, ALICE), "RelayState": request.relay_state or ""}
    return browser.post("/stepup/reauth/saml/acs", data=answer)


@pytest.mark.saml
def test_a_saml_answer_leaves_the_form_to_the_same_site_resume_view(
    saml_app: TestApp,
    idp: TestIdP,  # noqa: F811
) -> None:
    _signed_in(saml_app)  # the tenant's flag on
    alice = _saml_user(saml_app, "alice", ALICE)
    back = _saml_trip(alice, idp, _keep(alice, "AAAA-MINE").headers["Location"])
    assert back.status_code == 303
    assert back.headers["Location"] == "/stepup/reauth/resume?next=%2Fhome"
    resumed = alice.get(back.headers["Location"])
    target, fields = resume_form(resumed.get_data(as_text=True))
    assert ("key", "AAAA-MINE") in fields
    assert alice.client.post(target, data=dict(fields)).get_data(as_text=True) == "added AAAA-MINE"
    assert alice.get(back.headers["Location"]).headers["Location"] == "/home"  # taken once

    with saml_app.app.app_context():  # asked again (the IdP's clock is the real one)
        saml_app.stepup.reauth.password_changed("alice")
    thief = _copy_of_session(saml_app, alice)
    back = _saml_trip(alice, idp, _keep(thief, "AAAA-THIEF").headers["Location"])
    refused = alice.get(back.headers["Location"])
    assert refused.status_code == 200
    assert NOT_SENT in refused.get_data(as_text=True)
    assert "AAAA-THIEF" not in refused.get_data(as_text=True)
