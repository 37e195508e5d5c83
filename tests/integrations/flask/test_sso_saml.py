"""A SAML user re-authenticates at a real pysaml2 IdP through the ready-made views.

The IdP is the one the SAML adapter's own tests use (``tests/idp/saml/saml_idp.py``):
it parses the real AuthnRequest from the redirect and signs a real response.
"""

from __future__ import annotations

import html
import logging
import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from saml2.samlp import STATUS_AUTHN_FAILED

from idp.saml.saml_idp import (
    ALICE,
    BOB,
    IDP_ID,
    SSO_URL,
    KeyPair,
    TestIdP,
    make_config,
    make_idp,
    make_keypair,
)
from integrations.flask.flask_support import Browser, TestApp, make_app, set_flag
from integrations.sso_refusal_support import (
    LOGGER,
    NOT_ASKED_AGAIN,
    NOT_CONFIRMED,
    OTHER_ACCOUNT,
    PROVIDER_REFUSED,
    assert_not_noted,
    assert_noted,
    refusals,
)
from stepup.adapters.idp.saml import SAMLServiceProvider
from stepup.adapters.storage.memory import MemoryStore
from stepup.testing import SettableClock
from support import need

pytestmark = pytest.mark.saml

_BUTTON = re.compile(r'<form method="post" action="(/stepup/reauth/saml/start)">')


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, KeyPair]:
    need(shutil.which("xmlsec1") is not None, "xmlsec1 is not installed (apt-get install xmlsec1)")
    directory = tmp_path_factory.mktemp("flask-saml-keys")
    return {name: make_keypair(directory, name) for name in ("sp", "idp")}


@pytest.fixture(scope="module")
def idp(keys: dict[str, KeyPair]) -> TestIdP:
    metadata = SAMLServiceProvider(make_config(keys), MemoryStore()).metadata()
    return make_idp(keys["idp"], metadata)


@pytest.fixture
def saml_app(keys: dict[str, KeyPair]) -> TestApp:
    clock = SettableClock(time.time())  # the IdP stamps real times
    store = MemoryStore()
    sp = SAMLServiceProvider(make_config(keys), store, clock=clock)
    return make_app(
        "subject_loader",
        clock=clock,
        store=store,
        config={"STEPUP_SAML_PROVIDERS": {"corp-saml": sp}},
    )


def _saml_user(test_app: TestApp, user_id: str, name_id: str) -> Browser:
    browser = test_app.client()
    with browser.client.session_transaction() as session:
        session["user_id"] = user_id
        session["sso"] = ("saml", IDP_ID, name_id, "corp-saml")
    return browser


def _to_idp(browser: Browser, location: str) -> Any:
    """Open the re-auth page and press its SAML button."""
    page = browser.get(location).get_data(as_text=True)
    assert _BUTTON.search(page), page
    assert 'type="password"' not in page
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page))
    fields = {k: html.unescape(v) for k, v in fields.items()}
    return browser.post("/stepup/reauth/saml/start", data=fields)


def test_a_saml_user_reauthenticates_at_the_idp(saml_app: TestApp, idp: TestIdP) -> None:
    admin = saml_app.client()
    admin.login("alice")
    assert set_flag(admin).status_code == 200
    alice = _saml_user(saml_app, "alice", ALICE)

    refused = alice.get("/api-key?tab=1")
    assert refused.status_code == 303
    to_idp = _to_idp(alice, refused.headers["Location"])
    assert to_idp.status_code == 303
    location = to_idp.headers["Location"]
    assert location.startswith(SSO_URL)

    request = idp.receive(location)
    assert request.force_authn
    back = alice.post(
        "/stepup/reauth/saml/acs",
        data={"SAMLResponse": idp.answer(request, ALICE), "RelayState": request.relay_state or ""},
    )
    assert back.status_code == 303
    assert back.headers["Location"] == "/api-key?tab=1"
    assert alice.get("/api-key").json["reason"] == "fresh_grant"

    # The same response again is refused: its request was consumed.
    replay = alice.post(
        "/stepup/reauth/saml/acs", data={"SAMLResponse": idp.answer(request, ALICE)}
    )
    assert replay.status_code == 400


def test_a_stale_or_foreign_answer_records_no_grant(
    saml_app: TestApp, idp: TestIdP, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    admin = saml_app.client()
    admin.login("alice")
    set_flag(admin)
    alice = _saml_user(saml_app, "alice", ALICE)

    # An IdP that ignores ForceAuthn and answers from a login made an hour ago.
    idp.log_in(ALICE, at=time.time() - 3600)
    request = idp.receive(_to_idp(alice, "/stepup/reauth?next=/api-key").headers["Location"])
    stale = alice.post(
        "/stepup/reauth/saml/acs",
        data={"SAMLResponse": idp.answer(request, ALICE, honour_force_authn=False)},
    )
    assert stale.status_code == 400
    assert NOT_ASKED_AGAIN in stale.get_data(as_text=True)
    assert alice.get("/api-key").status_code == 303
    assert_noted(caplog, "saml", "stale_authn_instant")

    # Another person signing in at the IdP does not count for alice.
    request = idp.receive(_to_idp(alice, "/stepup/reauth?next=/api-key").headers["Location"])
    foreign = alice.post("/stepup/reauth/saml/acs", data={"SAMLResponse": idp.answer(request, BOB)})
    assert foreign.status_code == 400
    assert OTHER_ACCOUNT in foreign.get_data(as_text=True)
    assert alice.get("/api-key").status_code == 303
    assert_noted(caplog, "saml", "wrong_subject")

    # The IdP could not sign her in (or she cancelled there).
    request = idp.receive(_to_idp(alice, "/stepup/reauth?next=/api-key").headers["Location"])
    error = idp.error(request, STATUS_AUTHN_FAILED)
    failed = alice.post("/stepup/reauth/saml/acs", data={"SAMLResponse": error})
    assert failed.status_code == 400
    assert PROVIDER_REFUSED in failed.get_data(as_text=True)
    assert_noted(caplog, "saml", "idp_error")
    assert refusals(saml_app.events) == [
        ("alice", "saml", "stale_authn_instant"),
        ("alice", "saml", "wrong_subject"),
        ("alice", "saml", "idp_error"),
    ]


def test_a_forged_answer_with_no_trip_begun_is_no_failure_of_hers(
    saml_app: TestApp, idp: TestIdP, caplog: pytest.LogCaptureFixture
) -> None:
    """Any page can make alice's browser post to the ACS. An unsigned answer, or an IdP
    error, is refused before it is matched to a request: with no trip of her session
    pending it is only a DEBUG line; the IdP's error on her own trip is reported."""
    caplog.set_level(logging.DEBUG, LOGGER)
    admin = saml_app.client()
    admin.login("alice")
    set_flag(admin)
    alice = _saml_user(saml_app, "alice", ALICE)
    # A request of another session (the forger's): alice's session began no trip.
    other = _saml_user(saml_app, "alice", ALICE)
    request = idp.receive(_to_idp(other, "/stepup/reauth?next=/api-key").headers["Location"])
    forged = {
        "unsigned": idp.answer(request, ALICE, sign_response=False, sign_assertion=False),
        "idp_error": idp.error(request, STATUS_AUTHN_FAILED),
    }
    for reason, answer in forged.items():
        refused = alice.post(
            "/stepup/reauth/saml/acs",
            data={"SAMLResponse": answer, "RelayState": request.relay_state or ""},
        )
        assert refused.status_code == 400
        assert (PROVIDER_REFUSED if reason == "idp_error" else NOT_CONFIRMED) in refused.get_data(
            as_text=True
        )
        assert f"saml answer matching no re-authentication of this session: {reason}" in [
            r.getMessage() for r in caplog.records if r.name == LOGGER
        ]
        assert_not_noted(caplog)
    assert refusals(saml_app.events) == []

    # Her own trip, refused at the IdP: reported as before.
    request = idp.receive(_to_idp(alice, "/stepup/reauth?next=/api-key").headers["Location"])
    failed = alice.post(
        "/stepup/reauth/saml/acs", data={"SAMLResponse": idp.error(request, STATUS_AUTHN_FAILED)}
    )
    assert failed.status_code == 400
    assert [
        r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno >= logging.INFO
    ] == ["saml re-authentication refused: idp_error"]
    assert refusals(saml_app.events) == [("alice", "saml", "idp_error")]


def test_a_password_user_has_no_saml_button(saml_app: TestApp, tmp_path: Path) -> None:
    bob = saml_app.client()
    bob.login("bob")
    page = bob.get("/stepup/reauth?next=/api-key").get_data(as_text=True)
    assert 'type="password"' in page
    assert not _BUTTON.search(page)
    started = bob.form("/stepup/reauth/saml/start", {"next": "/api-key"})
    assert started.status_code == 400
