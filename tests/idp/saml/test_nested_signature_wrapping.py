"""A genuine signature elsewhere in the document cannot vouch for a forged element.

xmlsec1, asked to verify the element with a given ID, verifies the *first*
``ds:Signature`` it meets from that element on (depth first, in document order); pysaml2
checks the shape of the element's own, direct-child signature. So BOB's genuine signed
assertion from any earlier exchange, placed inside a forged assertion naming ALICE
(``<saml:Advice>``) before the forgery's own made-up signature, had its signature
verified for ALICE's facts: the old code answered ``ok`` and recorded ALICE's grant. The
same with a genuine signed ``Response`` in a forged one's ``StatusDetail``. A signature
is now allowed only as the direct child of the ``Response`` or of its one ``Assertion``,
before anything that holds other elements; no second assertion or response anywhere,
no repeated ID. Nothing is consumed by a refused answer.
"""

from __future__ import annotations

import re

import pytest

from idp.saml.saml_idp import (
    ALICE,
    ASSERTION_NS,
    BOB,
    DSIG_NS,
    PROTOCOL_NS,
    Request,
    World,
    decode,
    element,
    encode,
    qname,
    saml_subject,
)
from stepup.adapters.idp.saml import SAMLReason

pytestmark = pytest.mark.saml


def begin(world: World) -> Request:
    return world.idp.receive(world.sp.start(saml_subject(ALICE), return_to="/x").url)


def bobs_signed(world: World, *, response: bool) -> str:
    """BOB's genuine signed answer from an exchange of his own: the assertion (signed by
    the IdP) or the whole response (the response signed)."""
    bob = saml_subject(BOB, user="u-bob", session="s-bob")
    request = world.idp.receive(world.sp.start(bob, return_to="/x").url)
    world.idp.log_in(BOB)
    xml = decode(
        world.idp.answer(request, BOB, sign_response=response, sign_assertion=not response)
    )
    if response:
        return xml[xml.index("<", xml.index("?>")) :] if xml.startswith("<?xml") else xml
    return element(xml, ASSERTION_NS, "Assertion")


def assert_refused(
    world: World, request: Request, forged: str, reason: SAMLReason, detail: str
) -> None:
    outcome = world.sp.complete(saml_subject(ALICE), encode(forged), request.relay_state)
    assert not outcome.ok
    assert (outcome.reason, outcome.detail) == (reason, detail)
    world.idp.log_in(ALICE)
    honest = world.idp.answer(request, ALICE)  # the request is still pending
    assert world.sp.complete(saml_subject(ALICE), honest, request.relay_state).ok


def renamed_assertion(xml: str) -> tuple[str, str]:
    """The answer's assertion, naming ALICE, with a new ID its own signature points to
    (a made-up signature: its digest is BOB's)."""
    original = element(xml, ASSERTION_NS, "Assertion")
    found = re.search(r'\bID="([^"]+)"', original)
    assert found is not None
    forged = (
        original.replace(f">{BOB}<", f">{ALICE}<")
        .replace(f'ID="{found.group(1)}"', 'ID="_forged1"', 1)
        .replace(f'URI="#{found.group(1)}"', 'URI="#_forged1"')
        .replace('Id="Signature', 'Id="ForgedSignature', 1)  # no Id twice
    )
    return original, forged


def after_issuer(part: str, insert: str, issuer: str) -> str:
    """``part`` with ``insert`` right after its first ``issuer`` (a qname)."""
    end = part.index(f"</{issuer}>") + len(f"</{issuer}>")
    return part[:end] + insert + part[end:]


@pytest.mark.parametrize("where", ["before_signature", "after_signature"])
def test_a_genuine_assertion_in_advice_cannot_vouch_for_a_forged_one(
    world: World, where: str
) -> None:
    """The reviewer's forgery: ``before_signature`` was ``ok`` for ALICE."""
    genuine = bobs_signed(world, response=False)
    request = begin(world)
    world.idp.log_in(BOB)
    xml = decode(world.idp.answer(request, BOB, sign_response=False, sign_assertion=True))
    original, forged = renamed_assertion(xml)
    advice = qname(xml, ASSERTION_NS, "Advice")
    nested = f"<{advice}>{genuine}</{advice}>"
    if where == "before_signature":
        forged = after_issuer(forged, nested, qname(xml, ASSERTION_NS, "Issuer"))
    else:
        subject = qname(xml, ASSERTION_NS, "Subject")
        forged = forged.replace(f"<{subject}", nested + f"<{subject}", 1)
    assert_refused(
        world, request, xml.replace(original, forged), SAMLReason.MALFORMED, "nested_assertion"
    )


def test_a_genuine_response_in_status_detail_cannot_vouch_for_a_forged_one(world: World) -> None:
    genuine = bobs_signed(world, response=True)
    request = begin(world)
    world.idp.log_in(BOB)
    xml = decode(world.idp.answer(request, BOB, sign_response=True, sign_assertion=False))
    response = qname(xml, PROTOCOL_NS, "Response")
    found = re.search(rf'<{response} [^>]*\bID="([^"]+)"', xml)
    assert found is not None
    doc = (
        xml.replace(f">{BOB}<", f">{ALICE}<")
        .replace(f'ID="{found.group(1)}"', 'ID="_forgedR"', 1)
        .replace(f'URI="#{found.group(1)}"', 'URI="#_forgedR"')
        .replace('Id="Signature', 'Id="ForgedSignature', 1)
    )
    status_name, detail = qname(doc, PROTOCOL_NS, "Status"), qname(doc, PROTOCOL_NS, "StatusDetail")
    status = element(doc, PROTOCOL_NS, "Status")
    moved = status.replace(f"</{status_name}>", f"<{detail}>{genuine}</{detail}></{status_name}>")
    issuer = qname(doc, ASSERTION_NS, "Issuer")
    doc = after_issuer(
        doc.replace(status, ""), moved, issuer
    )  # Status before the made-up signature
    assert_refused(world, request, doc, SAMLReason.MALFORMED, "nested_assertion")


def test_a_signature_anywhere_but_its_place_is_refused(world: World) -> None:
    """A lone genuine ``ds:Signature`` (no assertion around it) in ``Extensions``."""
    request = begin(world)
    world.idp.log_in(ALICE)
    xml = decode(world.idp.answer(request, ALICE, sign_response=False, sign_assertion=True))
    signature = element(xml, DSIG_NS, "Signature")
    extensions, status = qname(xml, PROTOCOL_NS, "Extensions"), qname(xml, PROTOCOL_NS, "Status")
    doc = xml.replace(f"<{status}>", f"<{extensions}>{signature}</{extensions}><{status}>", 1)
    assert_refused(world, request, doc, SAMLReason.INVALID_SIGNATURE, "signature_placement")


def test_a_signature_after_content_is_refused(world: World) -> None:
    """The assertion's own signature moved after its Subject: something with elements of
    its own comes first, where a nested signature could hide."""
    request = begin(world)
    world.idp.log_in(ALICE)
    xml = decode(world.idp.answer(request, ALICE, sign_response=False, sign_assertion=True))
    assertion = element(xml, ASSERTION_NS, "Assertion")
    signature = element(xml, DSIG_NS, "Signature")  # the only one: the assertion's
    subject = element(xml, ASSERTION_NS, "Subject")
    assert signature in assertion
    assert subject in assertion
    moved = assertion.replace(signature, "", 1).replace(subject, subject + signature, 1)
    assert_refused(
        world,
        request,
        xml.replace(assertion, moved),
        SAMLReason.INVALID_SIGNATURE,
        "signature_placement",
    )


def test_two_signatures_on_one_element_are_refused(world: World) -> None:
    request = begin(world)
    world.idp.log_in(ALICE)
    xml = decode(world.idp.answer(request, ALICE, sign_response=False, sign_assertion=True))
    signature = element(xml, DSIG_NS, "Signature")
    doc = xml.replace(signature, signature + signature, 1)
    assert_refused(world, request, doc, SAMLReason.INVALID_SIGNATURE, "signature_placement")


def test_a_repeated_id_is_refused(world: World) -> None:
    request = begin(world)
    world.idp.log_in(ALICE)
    xml = decode(world.idp.answer(request, ALICE, sign_response=False, sign_assertion=True))
    assertion = element(xml, ASSERTION_NS, "Assertion")
    found = re.search(r'\bID="([^"]+)"', assertion)
    assert found is not None
    extensions, status = qname(xml, PROTOCOL_NS, "Extensions"), qname(xml, PROTOCOL_NS, "Status")
    twin = f'<{extensions}><{qname(xml, ASSERTION_NS, "Issuer")} ID="{found.group(1)}">x</{qname(xml, ASSERTION_NS, "Issuer")}></{extensions}>'
    doc = xml.replace(f"<{status}>", twin + f"<{status}>", 1)
    assert_refused(world, request, doc, SAMLReason.MALFORMED, "duplicate_id")


@pytest.mark.parametrize("signed", [(True, False), (False, True), (True, True)])
def test_honest_answers_keep_passing(world: World, signed: tuple[bool, bool]) -> None:
    request = begin(world)
    world.idp.log_in(ALICE)
    answer = world.idp.answer(request, ALICE, sign_response=signed[0], sign_assertion=signed[1])
    assert world.sp.complete(saml_subject(ALICE), answer, request.relay_state).ok


@pytest.mark.parametrize(
    ("written", "refused"),
    [
        (None, False),
        ("urn:oasis:names:tc:SAML:2.0:nameid-format:entity", False),
        ("urn:oasis:names:tc:SAML:2.0:nameid-format:persistent", True),
        ("urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress", True),
    ],
)
def test_an_issuer_names_the_idp_by_its_entity_id(written: str | None, refused: bool) -> None:
    """SAML profiles 4.1.4.2: the Issuer's Format is absent or the entity format."""
    from saml2.saml import Issuer

    from stepup.adapters.idp.saml._read import Refusal, _issuer

    issuer = Issuer(text="https://idp.example", format=written)
    if refused:
        with pytest.raises(Refusal) as raised:
            _issuer(issuer)
        assert (raised.value.reason, raised.value.detail) == (SAMLReason.MALFORMED, "issuer_format")
    else:
        assert _issuer(issuer) == "https://idp.example"
