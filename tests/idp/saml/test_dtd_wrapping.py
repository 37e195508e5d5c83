"""A SAML response with a document type declaration is refused before anything reads it.

An internal subset can give an element an attribute the document does not carry
(``<!ATTLIST saml:Assertion ID CDATA "...">``). expat, which reads the facts, applies
such defaults; libxml2, which xmlsec1 verifies with, does not. So the two read different
documents: the IdP's genuine signed assertion for BOB hidden in ``<Extensions>`` is the
only element with that ID for xmlsec1, while the reader takes a copy naming ALICE, with
no ID of its own, as the signed assertion. The same trick adds an ``InResponseTo`` the IdP
never signed to an unsolicited assertion. SAML messages carry no DTD: any is ``malformed``
(detail ``dtd``), and nothing is consumed.
"""

from __future__ import annotations

import re
import time

import pytest
from saml2.saml import AUTHN_PASSWORD_PROTECTED, NAMEID_FORMAT_PERSISTENT, NameID

from idp.saml.saml_idp import (
    ACS_URL,
    ALICE,
    ASSERTION_NS,
    BOB,
    DSIG_NS,
    PROTOCOL_NS,
    RSA_SHA256,
    SHA256,
    SP_ID,
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

SIGNINGS = {"response": (True, False), "assertion": (False, True), "both": (True, True)}


def begin(world: World) -> Request:
    return world.idp.receive(world.sp.start(saml_subject(ALICE), return_to="/x").url)


def with_doctype(xml: str, doctype: str) -> str:
    """``xml`` with ``doctype`` right after its XML declaration (if any)."""
    at = xml.index("?>") + 2 if xml.startswith("<?xml") else 0
    return xml[:at] + doctype + xml[at:]


def assert_refused_as_dtd(world: World, request: Request, forged: str) -> None:
    """``forged`` is refused as malformed (``dtd``) and the request is still pending."""
    outcome = world.sp.complete(saml_subject(ALICE), encode(forged), request.relay_state)
    assert not outcome.ok
    assert (outcome.reason, outcome.detail) == (SAMLReason.MALFORMED, "dtd")
    assert outcome.return_to is None  # nothing about the request is revealed
    honest = world.idp.answer(request, ALICE)
    assert world.sp.complete(saml_subject(ALICE), honest, request.relay_state).ok


def drop_response_signature(xml: str) -> str:
    signature = qname(xml, DSIG_NS, "Signature")
    response_id = re.search(rf'<{qname(xml, PROTOCOL_NS, "Response")} [^>]*\bID="([^"]+)"', xml)
    assert response_id is not None
    for match in re.finditer(rf"<{signature}[ >].*?</{signature}>", xml, re.DOTALL):
        if f'URI="#{response_id.group(1)}"' in match.group(0):
            return xml.replace(match.group(0), "")
    raise AssertionError("no response signature")


def id_default_forgery(xml: str) -> str:
    """BOB's signed assertion hidden in Extensions; in its place a copy naming ALICE
    without an ID attribute, which the DTD gives the original's ID by default."""
    original = element(xml, ASSERTION_NS, "Assertion")
    found = re.search(r'\bID="([^"]+)"', original)
    assert found is not None
    assertion_id = found.group(1)
    forged = original.replace(f">{BOB}<", f">{ALICE}<").replace(f' ID="{assertion_id}"', "", 1)
    extensions, status = qname(xml, PROTOCOL_NS, "Extensions"), qname(xml, PROTOCOL_NS, "Status")
    doc = xml.replace(original, forged).replace(
        f"<{status}>", f"<{extensions}>{original}</{extensions}><{status}>", 1
    )
    response, assertion = qname(xml, PROTOCOL_NS, "Response"), qname(xml, ASSERTION_NS, "Assertion")
    return with_doctype(
        doc, f'<!DOCTYPE {response} [<!ATTLIST {assertion} ID CDATA "{assertion_id}">]>'
    )


def response_id_default_forgery(xml: str) -> str:
    """The IdP signed the Response only: a new outer Response naming ALICE, without an
    ID (the DTD gives it the original's), wraps BOB's signed one in its StatusDetail.
    (pysaml2's schema check of the signed element refused this one before too, as
    ``invalid_signature``; the DTD is now refused before anything reads the document.)"""
    response = qname(xml, PROTOCOL_NS, "Response")
    start = xml.index(f"<{response}")
    head, original = xml[:start], xml[start:]
    found = re.search(r'\bID="([^"]+)"', original)
    assert found is not None
    response_id = found.group(1)
    tag_end = original.index(">")
    outer = original[:tag_end].replace(f' ID="{response_id}"', "", 1) + original[tag_end:]
    outer = outer.replace(f">{BOB}<", f">{ALICE}<")
    status, detail = qname(xml, PROTOCOL_NS, "Status"), qname(xml, PROTOCOL_NS, "StatusDetail")
    outer = outer.replace(f"</{status}>", f"<{detail}>{original}</{detail}></{status}>", 1)
    return with_doctype(
        head + outer, f'<!DOCTYPE {response} [<!ATTLIST {response} ID CDATA "{response_id}">]>'
    )


@pytest.mark.parametrize("signed", ["assertion", "both"])
def test_an_id_given_by_a_dtd_default_cannot_swap_the_signed_assertion(
    world: World, signed: str
) -> None:
    """The reviewer's forgery: the old code answered ``ok`` for ALICE here."""
    sign_response, sign_assertion = SIGNINGS[signed]
    request = begin(world)
    world.idp.log_in(BOB)  # the attacker's own account at the IdP
    xml = decode(
        world.idp.answer(request, BOB, sign_response=sign_response, sign_assertion=sign_assertion)
    )
    if sign_response:
        xml = drop_response_signature(xml)
    assert_refused_as_dtd(world, request, id_default_forgery(xml))


def test_an_id_given_by_a_dtd_default_cannot_swap_the_signed_response(world: World) -> None:
    request = begin(world)
    world.idp.log_in(BOB)
    xml = decode(world.idp.answer(request, BOB, sign_response=True, sign_assertion=False))
    assert_refused_as_dtd(world, request, response_id_default_forgery(xml))


@pytest.mark.parametrize("signed", sorted(SIGNINGS))
def test_a_dtd_default_cannot_add_in_response_to_to_an_unsolicited_assertion(
    world: World, signed: str
) -> None:
    """An IdP-initiated (unsolicited) answer carries no InResponseTo; the DTD would give
    the bearer confirmation one naming the victim's pending request."""
    sign_response, sign_assertion = SIGNINGS[signed]
    request = begin(world)
    world.idp.log_in(ALICE)
    unsolicited = str(
        world.idp.server.create_authn_response(
            {},
            in_response_to=None,
            destination=ACS_URL,
            sp_entity_id=SP_ID,
            name_id=NameID(format=NAMEID_FORMAT_PERSISTENT, text=ALICE),
            authn={"class_ref": AUTHN_PASSWORD_PROTECTED, "authn_instant": int(time.time())},
            sign_response=sign_response,
            sign_assertion=sign_assertion,
            sign_alg=RSA_SHA256,
            digest_alg=SHA256,
        )
    )
    assert "InResponseTo=" not in unsolicited
    plain = world.sp.complete(saml_subject(ALICE), encode(unsolicited), request.relay_state)
    assert plain.reason is SAMLReason.UNKNOWN_REQUEST
    response = qname(unsolicited, PROTOCOL_NS, "Response")
    confirmation = qname(unsolicited, ASSERTION_NS, "SubjectConfirmationData")
    doctype = f'<!DOCTYPE {response} [<!ATTLIST {confirmation} InResponseTo CDATA "{request.id}">]>'
    assert_refused_as_dtd(world, request, with_doctype(unsolicited, doctype))


@pytest.mark.parametrize(
    "doctype",
    [
        "<!DOCTYPE {root}>",
        "<!DOCTYPE {root} []>",
        '<!DOCTYPE {root} SYSTEM "http://127.0.0.1:9/evil.dtd">',
        '<!DOCTYPE {root} PUBLIC "-//Evil//DTD Evil//EN" "file:///etc/hostname">',
        "<!-- a comment --><?a-pi first?>\n<!DOCTYPE {root}>",
    ],
    ids=["plain", "empty-subset", "system", "public", "after-comment-and-pi"],
)
def test_any_document_type_declaration_is_refused(world: World, doctype: str) -> None:
    """Even a harmless one, on an honest answer the old code accepted: SAML messages
    carry none, and the parser's own doctype event finds it, wherever it stands."""
    request = begin(world)
    xml = decode(world.idp.answer(request, ALICE))
    root = qname(xml, PROTOCOL_NS, "Response")
    assert_refused_as_dtd(world, request, with_doctype(xml, doctype.format(root=root)))


def test_a_byte_order_mark_does_not_hide_the_declaration(world: World) -> None:
    request = begin(world)
    xml = decode(world.idp.answer(request, ALICE))
    root = qname(xml, PROTOCOL_NS, "Response")
    assert_refused_as_dtd(world, request, "\ufeff" + with_doctype(xml, f"<!DOCTYPE {root}>"))
