"""End to end through the Flask ACS: a session of ALICE posts a response the IdP signed
for BOB, rewritten with a DTD default ID (signature wrapping: the old code granted it).
The ACS answers the 400 page, records no grant, and the honest answer still works."""

from __future__ import annotations

import pytest

from idp.saml.saml_idp import ALICE, BOB, TestIdP, decode, encode
from idp.saml.test_dtd_wrapping import id_default_forgery
from integrations.flask.flask_support import TestApp, set_flag
from integrations.flask.test_sso_saml import _saml_user, _to_idp, idp, keys, saml_app
from integrations.sso_refusal_support import NOT_CONFIRMED

pytestmark = pytest.mark.saml

__all__ = ["idp", "keys", "saml_app"]  # the fixtures, shared with test_sso_saml


def test_a_dtd_wrapped_answer_for_bob_grants_alice_nothing(saml_app: TestApp, idp: TestIdP) -> None:
    admin = saml_app.client()
    admin.login("alice")
    assert set_flag(admin).status_code == 200
    alice = _saml_user(saml_app, "alice", ALICE)  # e.g. a stolen session
    refused = alice.get("/api-key?tab=1")
    assert refused.status_code == 303
    request = idp.receive(_to_idp(alice, refused.headers["Location"]).headers["Location"])

    idp.log_in(BOB)  # the attacker logs in at the IdP as himself
    forged = id_default_forgery(decode(idp.answer(request, BOB, sign_response=False)))
    back = alice.post(
        "/stepup/reauth/saml/acs",
        data={"SAMLResponse": encode(forged), "RelayState": request.relay_state or ""},
    )
    assert back.status_code == 400
    assert back.content_type.startswith("text/html")
    assert NOT_CONFIRMED in back.get_data(as_text=True)
    assert alice.get("/api-key").status_code == 303  # no grant: still sent to re-authenticate

    honest = alice.post(
        "/stepup/reauth/saml/acs",
        data={"SAMLResponse": idp.answer(request, ALICE), "RelayState": request.relay_state or ""},
    )
    assert honest.status_code == 303  # the forged answer used nothing up
    assert alice.get("/api-key").json["reason"] == "fresh_grant"
