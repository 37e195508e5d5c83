"""Every way a SAML response must fail, each with its own reason, against the real IdP."""

from __future__ import annotations

import re

import pytest
from saml2.samlp import STATUS_AUTHN_FAILED, STATUS_NO_PASSIVE

from idp.saml.saml_idp import (
    ACS_URL,
    ALICE,
    ASSERTION_NS,
    BOB,
    IDP_ID,
    OTHER_ACS_URL,
    OTHER_SP_ID,
    PROTOCOL_NS,
    RSA_SHA1,
    SHA1,
    KeyPair,
    Request,
    World,
    decode,
    element,
    encode,
    make_idp,
    qname,
    saml_subject,
)
from stepup.adapters.idp.saml import SAMLReason, WrongIdentityProviderError
from stepup.redirects import UnsafeRedirectError
from stepup.subject import Identity, LoginMethod, Subject

pytestmark = pytest.mark.saml


def begin(world: World, subject: Subject | None = None) -> Request:
    return world.idp.receive(world.sp.start(subject or saml_subject(), return_to="/x").url)


def still_pending(world: World, request: Request) -> bool:
    """True if the honest answer to ``request`` is still accepted (nothing consumed it)."""
    return world.sp.complete(saml_subject(), world.idp.answer(request, ALICE)).ok


# -- signatures --------------------------------------------------------------------


def test_unsigned_response_is_refused_and_consumes_nothing(world: World) -> None:
    request = begin(world)
    unsigned = world.idp.answer(request, ALICE, sign_response=False, sign_assertion=False)
    assert "Signature" not in decode(unsigned)
    outcome = world.sp.complete(saml_subject(), unsigned)
    assert outcome.reason is SAMLReason.UNSIGNED
    assert outcome.return_to is None  # nothing about the request is revealed
    assert still_pending(world, request)


@pytest.mark.parametrize(
    ("sign_response", "sign_assertion"), [(True, True), (True, False), (False, True)]
)
def test_changing_the_name_id_after_signing_breaks_the_signature(
    world: World, sign_response: bool, sign_assertion: bool
) -> None:
    request = begin(world)
    xml = decode(
        world.idp.answer(request, BOB, sign_response=sign_response, sign_assertion=sign_assertion)
    )
    assert xml.count(f">{BOB}<") == 1
    tampered = encode(xml.replace(f">{BOB}<", f">{ALICE}<"))
    outcome = world.sp.complete(saml_subject(ALICE), tampered)
    assert outcome.reason is SAMLReason.INVALID_SIGNATURE
    assert still_pending(world, request)


def test_moving_the_authn_instant_after_signing_breaks_the_signature(world: World) -> None:
    request = begin(world)
    world.idp.log_in(ALICE, at=world.clock() - 7200)
    xml = decode(world.idp.answer(request, ALICE, honour_force_authn=False, sign_response=False))
    fresh = re.sub(r'AuthnInstant="[^"]+"', 'AuthnInstant="2999-01-01T00:00:00Z"', xml)
    assert fresh != xml
    outcome = world.sp.complete(saml_subject(), encode(fresh))
    assert outcome.reason is SAMLReason.INVALID_SIGNATURE


def test_a_rewritten_unsigned_envelope_cannot_redirect_the_answer(world: World) -> None:
    """Only the assertion is signed; the Response's own InResponseTo is the browser's to
    change and must agree with the signed one."""
    request = begin(world)
    other = begin(world)
    xml = decode(world.idp.answer(request, ALICE, sign_response=False))
    moved = xml.replace(f'InResponseTo="{request.id}"', f'InResponseTo="{other.id}"', 1)
    assert moved != xml
    outcome = world.sp.complete(saml_subject(), encode(moved))
    assert outcome.reason is SAMLReason.UNKNOWN_REQUEST
    assert still_pending(world, request)
    assert still_pending(world, other)


@pytest.mark.parametrize("entity_id", [IDP_ID, "https://evil.example.test/idp"])
def test_a_response_signed_with_another_key_is_refused(
    world: World, keys: dict[str, KeyPair], sp_metadata: str, entity_id: str
) -> None:
    impostor = make_idp(keys["impostor"], sp_metadata, entity_id=entity_id)
    request = begin(world)
    forged = impostor.answer(request, ALICE)
    outcome = world.sp.complete(saml_subject(), forged)
    assert outcome.reason is SAMLReason.INVALID_SIGNATURE
    assert still_pending(world, request)


def test_sha1_signatures_are_refused(world: World) -> None:
    request = begin(world)
    weak = world.idp.answer(request, ALICE, sign_alg=RSA_SHA1, digest_alg=SHA1)
    outcome = world.sp.complete(saml_subject(), weak)
    assert outcome.reason is SAMLReason.INVALID_SIGNATURE
    assert outcome.detail == "weak_algorithm"


@pytest.mark.parametrize("hiding_place", ["extensions", "advice"])
def test_signature_wrapping_is_refused(world: World, hiding_place: str) -> None:
    """XSW: keep the IdP's signed assertion somewhere in the document and put a forged
    one (same ID, same signature, another NameID) where the reader looks."""
    request = begin(world)
    world.idp.log_in(BOB)
    xml = decode(world.idp.answer(request, BOB, sign_response=False))
    original = element(xml, ASSERTION_NS, "Assertion")
    forged = original.replace(f">{BOB}<", f">{ALICE}<")
    wrapped = xml.replace(original, forged)
    if hiding_place == "extensions":  # Response: Issuer, Extensions, Status, Assertion
        extensions, status = (
            qname(xml, PROTOCOL_NS, "Extensions"),
            qname(xml, PROTOCOL_NS, "Status"),
        )
        hidden = f"<{extensions}>{original}</{extensions}><{status}>"
        wrapped = wrapped.replace(f"<{status}>", hidden, 1)
    else:  # Assertion: Issuer, Signature, Subject, Conditions, Advice, AuthnStatement
        advice, statement = (
            qname(xml, ASSERTION_NS, "Advice"),
            qname(xml, ASSERTION_NS, "AuthnStatement"),
        )
        hidden = f"<{advice}>{original}</{advice}><{statement}"
        wrapped = wrapped.replace(f"<{statement}", hidden, 1)
    assert wrapped != xml
    outcome = world.sp.complete(saml_subject(ALICE), encode(wrapped))
    assert not outcome.ok
    assert outcome.reason in {SAMLReason.INVALID_SIGNATURE, SAMLReason.MALFORMED}


# -- the request it answers -----------------------------------------------------------


def test_a_replayed_response_is_refused(world: World) -> None:
    subject = saml_subject()
    request = begin(world)
    response = world.idp.answer(request, ALICE)
    assert world.sp.complete(subject, response).ok
    replay = world.sp.complete(subject, response)
    assert replay.reason is SAMLReason.UNKNOWN_REQUEST
    assert replay.return_to is None


def test_a_response_to_an_unknown_request_is_refused(world: World) -> None:
    request = begin(world)
    stray = world.idp.answer(request, ALICE, in_response_to="_" + "0" * 40)
    assert world.sp.complete(saml_subject(), stray).reason is SAMLReason.UNKNOWN_REQUEST
    assert still_pending(world, request)


def test_a_response_to_another_session_is_refused(world: World) -> None:
    request = begin(world, saml_subject(session="s-victim"))
    response = world.idp.answer(request, ALICE)
    other_session = saml_subject(session="s-attacker")
    outcome = world.sp.complete(other_session, response)
    assert outcome.reason is SAMLReason.UNKNOWN_REQUEST
    assert outcome.return_to is None
    # It was consumed on the way: a response that travelled to another session is burnt.
    victim = world.sp.complete(saml_subject(session="s-victim"), response)
    assert victim.reason is SAMLReason.UNKNOWN_REQUEST


def test_a_relay_state_of_another_request_is_refused(world: World) -> None:
    request = begin(world)
    other = begin(world)
    response = world.idp.answer(request, ALICE)
    outcome = world.sp.complete(saml_subject(), response, relay_state=other.id)
    assert outcome.reason is SAMLReason.UNKNOWN_REQUEST
    assert world.sp.complete(saml_subject(), response, relay_state=request.id).ok


def test_an_expired_request_is_refused(world: World) -> None:
    request = begin(world)
    response = world.idp.answer(request, ALICE)
    world.clock.advance(world.config.challenge_ttl)
    outcome = world.sp.complete(saml_subject(), response)
    assert outcome.reason is SAMLReason.EXPIRED
    assert outcome.return_to == "/x"
    assert world.sp.complete(saml_subject(), response).reason is SAMLReason.UNKNOWN_REQUEST


def test_a_long_expired_request_is_forgotten(world: World) -> None:
    request = begin(world)
    response = world.idp.answer(request, ALICE)
    world.clock.advance(2 * world.config.challenge_ttl + 1)
    assert world.sp.complete(saml_subject(), response).reason is SAMLReason.UNKNOWN_REQUEST


# -- who answered ------------------------------------------------------------------


def test_a_login_as_another_user_is_refused(world: World) -> None:
    request = begin(world)
    outcome = world.sp.complete(saml_subject(ALICE), world.idp.answer(request, BOB))
    assert outcome.reason is SAMLReason.WRONG_SUBJECT
    assert outcome.detail == "name_id"
    assert outcome.return_to == "/x"


def test_a_session_from_another_idp_cannot_start_or_complete(world: World) -> None:
    password = Subject("u-alice", "s-1")
    elsewhere = Subject(
        "u-alice", "s-1", Identity(LoginMethod.SAML, "https://other-idp.test", ALICE)
    )
    for subject in (password, elsewhere, saml_subject("")):
        with pytest.raises(WrongIdentityProviderError):
            world.sp.start(subject, return_to="/")
    request = begin(world)
    response = world.idp.answer(request, ALICE)
    for subject in (password, elsewhere):
        assert world.sp.complete(subject, response).reason is SAMLReason.WRONG_SUBJECT
    assert still_pending(world, request)


def test_an_error_from_the_idp_grants_nothing(world: World) -> None:
    """The error answers its request: that request is used up (a later success for it
    is refused), and what was stored with it comes back for the next try."""
    for status in (STATUS_AUTHN_FAILED, STATUS_NO_PASSIVE):
        request = begin(world)
        outcome = world.sp.complete(saml_subject(), world.idp.error(request, status))
        assert outcome.reason is SAMLReason.IDP_ERROR
        assert outcome.idp_status == status
        assert outcome.return_to == "/x"
        assert not outcome.ok
        assert not still_pending(world, request)


# -- conditions ------------------------------------------------------------------------


def test_a_response_meant_for_another_app_is_refused(world: World) -> None:
    request = begin(world)
    theirs = world.idp.answer(request, ALICE, sp_entity_id=OTHER_SP_ID)
    outcome = world.sp.complete(saml_subject(), theirs)
    assert outcome.reason is SAMLReason.INVALID_CONDITIONS
    assert outcome.detail == "audience"


def test_a_response_for_another_endpoint_is_refused(world: World) -> None:
    request = begin(world)
    elsewhere = world.idp.answer(request, ALICE, destination=OTHER_ACS_URL)
    outcome = world.sp.complete(saml_subject(), elsewhere)
    assert outcome.reason is SAMLReason.INVALID_CONDITIONS
    assert outcome.detail == "destination"


def test_a_response_for_another_recipient_is_refused(world: World) -> None:
    """Only the assertion is signed and it names another recipient; rewriting the
    envelope's Destination to ours does not help."""
    request = begin(world)
    xml = decode(world.idp.answer(request, ALICE, sign_response=False, destination=OTHER_ACS_URL))
    assert xml.count(f'Recipient="{OTHER_ACS_URL}"') == 1
    ours = xml.replace(f'Destination="{OTHER_ACS_URL}"', f'Destination="{ACS_URL}"', 1)
    outcome = world.sp.complete(saml_subject(), encode(ours))
    assert outcome.reason is SAMLReason.INVALID_CONDITIONS
    assert outcome.detail == "subject_confirmation"


def test_an_assertion_past_its_lifetime_is_refused(world: World) -> None:
    request = begin(world)
    response = world.idp.answer(request, ALICE)  # the test IdP gives 5 minutes
    world.clock.advance(5 * 60 + world.config.max_skew + 1)
    outcome = world.sp.complete(saml_subject(), response)
    assert outcome.reason is SAMLReason.INVALID_CONDITIONS
    assert outcome.detail in {"not_on_or_after", "subject_confirmation"}


def test_an_assertion_from_the_future_is_refused(world: World) -> None:
    world.clock.advance(-600)  # we are ten minutes behind the IdP
    request = begin(world)
    outcome = world.sp.complete(saml_subject(), world.idp.answer(request, ALICE))
    assert outcome.reason is SAMLReason.INVALID_CONDITIONS


def test_unsafe_return_locations_are_refused_at_start(world: World) -> None:
    for target in ("https://evil.example", "//evil.example", "/\\evil.example"):
        with pytest.raises(UnsafeRedirectError):
            world.sp.start(saml_subject(), return_to=target)
