"""A SAML single sign-on user, driven with Starlette's test client against pysaml2's own
IdP (in-process, from tests/idp/saml): sign-in, then re-authentication at the IdP.
Every answer reaches its judge through the demo's same-site re-post: the IdP's
cross-site POST brings no session cookie, the browser's re-post does."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from saml2.config import IdPConfig
from saml2.server import Server
from starlette.testclient import TestClient

from e2e.journeys import ADMIN, PASSWORDS
from e2e.test_demo_app import flag_on
from idp.saml.saml_idp import (
    IDP_ID,
    Request,
    TestIdP,
    idp_metadata,
    idp_settings,
    make_keypair,
)
from stepup.demo import DemoSettings, create_app
from stepup.testing import SettableClock
from support import need

pytestmark = pytest.mark.saml

BASE = "http://testserver"
SP_ID = f"{BASE}/stepup/saml/metadata"
CAROL = "carol-5d1e"  # a persistent NameID
MALLORY = "mallory-0bad"  # the attacker's own account at the IdP
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_FORM = re.compile(r'<form method="post" action="([^"]+)"')
_SIGNED_IN_AS = re.compile(r'<span id="signed-in-as">([^<]+)</span>')
_FORWARD = re.compile(r'<form method="post" action="([^"]+)" id="saml-forward">')
_HIDDEN = re.compile(r'<input type="hidden" name="(SAMLResponse|RelayState)" value="([^"]*)"')


def csrf(html: str) -> str:
    match = _CSRF.search(html)
    assert match is not None, "no CSRF token in the page"
    return match.group(1)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[TestClient, TestIdP]]:
    need(shutil.which("xmlsec1") is not None, "xmlsec1 is not installed (apt-get install xmlsec1)")
    keys = make_keypair(tmp_path, "idp")
    metadata = tmp_path / "idp-metadata.xml"
    metadata.write_text(idp_metadata(keys))
    settings = DemoSettings(
        db_path=tmp_path / "demo.sqlite3", base_url=BASE, saml_idp_metadata=metadata
    )
    # pysaml2 stamps its messages with the real time; the demo's clock starts there too.
    app = create_app(settings, clock=SettableClock(time.time()))
    with TestClient(app, base_url=BASE, follow_redirects=False) as client:
        sp_metadata = client.get("/stepup/saml/metadata").text
        idp_config: dict[str, Any] = idp_settings(keys, IDP_ID, [sp_metadata])
        idp_config["service"]["idp"]["want_authn_requests_signed"] = False  # the demo has no SP key
        yield client, TestIdP(Server(config=IdPConfig().load(idp_config)))


def signed_in_as(client: TestClient) -> str:
    match = _SIGNED_IN_AS.search(client.get("/account").text)
    assert match is not None
    return match.group(1)


def start_saml_sign_in(client: TestClient, idp: TestIdP) -> Request:
    """Press the sign-in page's SAML button: the request the IdP receives."""
    page = client.get("/login")
    assert 'action="/sso/saml/login"' in page.text
    start = client.post("/sso/saml/login", data={"csrf_token": csrf(page.text), "next": "/account"})
    assert start.status_code == 303
    request = idp.receive(start.headers["location"])
    assert request.relay_state is not None
    assert request.relay_state.startswith("_signin_")
    return request


def post_to_acs(client: TestClient, answer: str, relay_state: str) -> Any:
    """The IdP's POST to the demo's ACS, then the browser's re-post of its page."""
    forward = client.post("/sso/saml/acs", data={"SAMLResponse": answer, "RelayState": relay_state})
    assert forward.status_code == 200
    action = _FORWARD.search(forward.text)
    assert action is not None
    return client.post(action.group(1), data=dict(_HIDDEN.findall(forward.text)))


def sign_in_with_saml(client: TestClient, idp: TestIdP) -> Any:
    request = start_saml_sign_in(client, idp)
    answer = idp.answer(request, CAROL, sp_entity_id=SP_ID)
    return post_to_acs(client, answer, request.relay_state or "")


def test_saml_user_signs_in_and_reauthenticates_at_the_idp(
    world: tuple[TestClient, TestIdP],
) -> None:
    client, idp = world
    # The admin turns the flag on, then leaves.
    page = client.get("/login")
    data = {"csrf_token": csrf(page.text), "email": ADMIN, "password": PASSWORDS[ADMIN]}
    assert client.post("/login", data=data).status_code == 303
    flag_on(client)
    logout = client.get("/logout")
    assert client.post("/logout", data={"csrf_token": csrf(logout.text)}).status_code == 303

    signed_in = sign_in_with_saml(client, idp)
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/account"
    assert "SAML single sign-on" in client.get("/account").text

    asked = client.get("/account/edit")
    assert asked.status_code == 303
    reauth = client.get(asked.headers["location"])
    assert 'id="stepup-password"' not in reauth.text
    action = _FORM.search(reauth.text)
    assert action is not None
    assert action.group(1).startswith("/stepup/saml/start")
    start = client.post(
        action.group(1).replace("&amp;", "&"), data={"csrf_token": csrf(reauth.text)}
    )
    assert start.status_code == 303
    request = idp.receive(start.headers["location"])
    assert request.force_authn
    answer = idp.answer(request, CAROL, sp_entity_id=SP_ID)

    # The IdP posts to the demo's ACS; the browser hands it to stepup's.
    forward = client.post(
        "/sso/saml/acs", data={"SAMLResponse": answer, "RelayState": request.relay_state or ""}
    )
    assert forward.status_code == 200
    assert 'action="/stepup/saml/acs"' in forward.text
    fields = dict(_HIDDEN.findall(forward.text))
    done = client.post("/stepup/saml/acs", data=fields)
    assert done.status_code == 303
    assert done.headers["location"] == "/account/edit"
    assert client.get("/account/edit").status_code == 200


def test_saml_sign_in_refuses_what_it_did_not_ask_for(world: tuple[TestClient, TestIdP]) -> None:
    client, idp = world
    page = client.get("/login")
    start = client.post("/sso/saml/login", data={"csrf_token": csrf(page.text)})
    request = idp.receive(start.headers["location"])
    answer = idp.answer(request, CAROL, sp_entity_id=SP_ID)
    # Another relay state: no such sign-in was started.
    assert post_to_acs(client, answer, "_signin_00").status_code == 400
    # The real one works once; replayed, it is refused.
    assert post_to_acs(client, answer, request.relay_state or "").status_code == 303
    assert post_to_acs(client, answer, request.relay_state or "").status_code == 400


def test_the_idps_post_itself_signs_nobody_in(world: tuple[TestClient, TestIdP]) -> None:
    """The ACS only hands the answer back to the browser: a sign-in is decided at the
    same-site re-post, where the session says which request this browser started."""
    client, idp = world
    request = start_saml_sign_in(client, idp)
    answer = idp.answer(request, CAROL, sp_entity_id=SP_ID)
    data = {"SAMLResponse": answer, "RelayState": request.relay_state or ""}
    forward = client.post("/sso/saml/acs", data=data)
    assert forward.status_code == 200
    assert 'action="/sso/saml/sign-in"' in forward.text
    assert client.get("/account").status_code == 303  # not signed in yet
    assert client.post("/sso/saml/sign-in", data=data).status_code == 303
    assert "SAML single sign-on" in client.get("/account").text


def test_an_attackers_answer_signs_nobody_in_in_the_victims_browser(
    world: tuple[TestClient, TestIdP],
) -> None:
    """Login CSRF: the attacker starts a sign-in in their own browser, signs in at the
    IdP as themselves, and makes the victim's browser post that answer (an
    auto-submitting form on their site). The victim must not end up signed in as the
    attacker, whether the victim's browser has no sign-in pending or one of its own."""
    attacker, idp = world
    victim = TestClient(attacker.app, base_url=BASE, follow_redirects=False)
    request = start_saml_sign_in(attacker, idp)
    answer = idp.answer(request, MALLORY, sp_entity_id=SP_ID)

    assert post_to_acs(victim, answer, request.relay_state or "").status_code == 400
    assert victim.get("/account").status_code == 303

    victims_own = start_saml_sign_in(victim, idp)  # the victim's own sign-in, pending
    assert post_to_acs(victim, answer, request.relay_state or "").status_code == 400
    assert victim.get("/account").status_code == 303
    # Nor may the attacker's answer ride on the victim's request id (which it uses up).
    assert post_to_acs(victim, answer, victims_own.relay_state or "").status_code == 400
    assert victim.get("/account").status_code == 303

    # The victim signs in as themselves; the attacker's request is still the
    # attacker's: in their own browser it signs them in.
    assert sign_in_with_saml(victim, idp).status_code == 303
    assert "SAML single sign-on" in victim.get("/account").text
    assert post_to_acs(attacker, answer, request.relay_state or "").status_code == 303
    assert "SAML single sign-on" in attacker.get("/account").text
    assert signed_in_as(victim) != signed_in_as(attacker)
