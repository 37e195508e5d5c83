"""End to end through the Flask ACS: a session of ALICE posts a forged assertion naming
her whose own signature is made up, with BOB's genuine signed assertion nested in its
``<saml:Advice>`` before that signature. xmlsec1 verified BOB's signature for it, and the
old code recorded a fresh grant for ALICE from BOB's login. The ACS answers the 400 page,
records no grant, and the honest answer still works."""

from __future__ import annotations

import re

import pytest

from idp.saml.saml_idp import ALICE, ASSERTION_NS, BOB, TestIdP, decode, element, encode, qname
from integrations.flask.flask_support import TestApp, set_flag
from integrations.flask.test_sso_saml import _saml_user, _to_idp, idp, keys, saml_app
from integrations.sso_refusal_support import NOT_CONFIRMED

pytestmark = pytest.mark.saml

__all__ = ["idp", "keys", "saml_app"]  # the fixtures, shared with test_sso_saml


def advice_forgery(template: str, genuine: str) -> str:
    """``template``'s assertion renamed for ALICE under a new ID (its signature now
    made up), with ``genuine`` in an Advice right after its Issuer."""
    original = element(template, ASSERTION_NS, "Assertion")
    found = re.search(r'\bID="([^"]+)"', original)
    assert found is not None
    forged = (
        original.replace(f">{BOB}<", f">{ALICE}<")
        .replace(f'ID="{found.group(1)}"', 'ID="_forged1"', 1)
        .replace(f'URI="#{found.group(1)}"', 'URI="#_forged1"')
        .replace('Id="Signature', 'Id="ForgedSignature', 1)  # no Id twice
    )
    issuer = qname(template, ASSERTION_NS, "Issuer")
    advice = qname(template, ASSERTION_NS, "Advice")
    at = forged.index(f"</{issuer}>") + len(f"</{issuer}>")
    forged = forged[:at] + f"<{advice}>{genuine}</{advice}>" + forged[at:]
    return template.replace(original, forged)


def test_bobs_signature_nested_in_a_forged_assertion_grants_alice_nothing(
    saml_app: TestApp, idp: TestIdP
) -> None:
    admin = saml_app.client()
    admin.login("alice")
    assert set_flag(admin).status_code == 200
    alice = _saml_user(saml_app, "alice", ALICE)  # e.g. a stolen session
    refused = alice.get("/api-key?tab=1")
    assert refused.status_code == 303
    request = idp.receive(_to_idp(alice, refused.headers["Location"]).headers["Location"])

    idp.log_in(BOB)  # the attacker logs in at the IdP as himself
    template = decode(idp.answer(request, BOB, sign_response=False))
    genuine = element(template, ASSERTION_NS, "Assertion")  # signed by the IdP, for BOB
    back = alice.post(
        "/stepup/reauth/saml/acs",
        data={
            "SAMLResponse": encode(advice_forgery(template, genuine)),
            "RelayState": request.relay_state or "",
        },
    )
    assert back.status_code == 400
    assert NOT_CONFIRMED in back.get_data(as_text=True)
    assert alice.get("/api-key").status_code == 303  # no grant: still sent to re-authenticate

    idp.log_in(ALICE)
    honest = alice.post(
        "/stepup/reauth/saml/acs",
        data={"SAMLResponse": idp.answer(request, ALICE), "RelayState": request.relay_state or ""},
    )
    assert honest.status_code == 303  # the forged answer used nothing up
    assert alice.get("/api-key").json["reason"] == "fresh_grant"
