"""An IdP's error status ("authentication failed", the person cancelled) answering a
pending request: nothing is granted, and what was stored with the request (the way
back, the action, the transaction, the suspended form) comes back for the next try,
but only for a request of this very session, named by ``InResponseTo`` and agreed on
by ``RelayState``; the request is used up. Anything else consumes nothing."""

from __future__ import annotations

import pytest
from saml2.samlp import STATUS_AUTHN_FAILED

from idp.saml.saml_idp import ALICE, Request, World, encode, saml_subject
from stepup.adapters.idp.saml import SAMLOutcome, SAMLReason
from stepup.errors import MalformedInputError
from stepup.records import Challenge
from stepup.subject import Subject

pytestmark = pytest.mark.saml

DIGEST = "ab" * 32


def _begin(world: World, subject: Subject | None = None, **trip: object) -> Request:
    started = world.sp.start(
        subject or saml_subject(), return_to="/api-key", action="api_key.regenerate", **trip
    )
    return world.idp.receive(started.url)


def _honest_answer_accepted(world: World, request: Request) -> bool:
    answer = world.idp.answer(request, ALICE)
    return world.sp.complete(saml_subject(), answer, request.relay_state).ok


def _cancel(
    world: World, request: Request, relay_state: str | None, subject: Subject | None = None
) -> SAMLOutcome:
    error = world.idp.error(request, STATUS_AUTHN_FAILED)
    return world.sp.complete(subject or saml_subject(), error, relay_state)


def test_the_error_hands_back_what_the_request_kept(world: World) -> None:
    resume = "kept-form-token_1"
    request = _begin(world, transaction=DIGEST, resume=resume, otp_proved=True)
    outcome = _cancel(world, request, request.relay_state)
    assert outcome.reason is SAMLReason.IDP_ERROR
    assert not outcome.ok
    assert outcome.idp_status == STATUS_AUTHN_FAILED
    assert (outcome.return_to, outcome.action) == ("/api-key", "api_key.regenerate")
    assert (outcome.transaction, outcome.resume) == (DIGEST, resume)
    assert not _honest_answer_accepted(world, request)  # used up
    again = _cancel(world, request, request.relay_state)
    assert (again.reason, again.return_to) == (SAMLReason.IDP_ERROR, None)  # once


def test_without_relay_state_the_error_still_finds_its_request(world: World) -> None:
    request = _begin(world)
    assert _cancel(world, request, None).return_to == "/api-key"


def test_a_relay_state_that_disagrees_consumes_nothing(world: World) -> None:
    request = _begin(world)
    outcome = _cancel(world, request, "_another-request")
    assert (outcome.reason, outcome.return_to, outcome.action) == (SAMLReason.IDP_ERROR, None, "")
    assert _honest_answer_accepted(world, request)


def test_another_sessions_error_hands_back_nothing(world: World) -> None:
    request = _begin(world)
    other = Subject("u-alice", "s-other", saml_subject().identity)
    outcome = _cancel(world, request, request.relay_state, subject=other)
    assert outcome.reason is SAMLReason.IDP_ERROR
    assert (outcome.return_to, outcome.action, outcome.resume) == (None, "", "")


def test_the_code_proof_rides_with_its_request_only(world: World) -> None:
    """``otp_proved`` comes back on the outcome of the request it was given for, and
    on no other: an answer to another request of the same session does not carry it."""
    proved = _begin(world, otp_proved=True)
    plain = _begin(world)
    outcome = world.sp.complete(saml_subject(), world.idp.answer(plain, ALICE), plain.relay_state)
    assert outcome.ok
    assert not outcome.otp_proved
    answer = world.idp.answer(proved, ALICE)
    outcome = world.sp.complete(saml_subject(), answer, proved.relay_state)
    assert outcome.ok
    assert outcome.otp_proved


def test_otp_proved_must_be_a_bool(world: World) -> None:
    with pytest.raises(MalformedInputError):
        world.sp.start(saml_subject(), return_to="/", otp_proved="yes")  # type: ignore[arg-type]


def _error_answering(world: World, request: Request, in_response_to: str) -> str:
    """An error answer (unsigned, as an IdP's error status may be: anyone can write
    one) whose ``InResponseTo`` names ``in_response_to``."""
    xml = world.idp.server.create_error_response(
        in_response_to, request.message.assertion_consumer_service_url, (STATUS_AUTHN_FAILED, "x")
    )
    return encode(str(xml))


@pytest.mark.parametrize("kind", ["resume:", "webauthn:", "oidc:", ""])
def test_an_error_naming_another_kind_of_challenge_consumes_nothing(
    world: World, kind: str
) -> None:
    """A kept form's, a passkey ceremony's or an OIDC trip's challenge id (a kept form's
    travels in re-auth URLs) in an error answer's InResponseTo is no request of ours:
    nothing is taken from the store."""
    request = _begin(world)
    kept_id = kind + "k" * 43
    subject = saml_subject()
    now = world.clock()
    world.store.put_challenge(
        Challenge(kept_id, subject.user_id, subject.session_id, now, now + 600, {"kind": "x"})
    )
    outcome = world.sp.complete(subject, _error_answering(world, request, kept_id), None)
    assert (outcome.reason, outcome.return_to) == (SAMLReason.IDP_ERROR, None)
    assert world.store.take_challenge(kept_id, world.clock()) is not None  # still there
    assert _honest_answer_accepted(world, request)


@pytest.mark.parametrize("length", [41, 2049, 5000])
def test_an_error_naming_an_id_no_request_has_is_refused_without_the_store(
    world: World, length: int
) -> None:
    """Ids over the stores' key limit made the store's input check raise out of
    ``complete`` (a 500 in the integrations)."""
    request = _begin(world)
    odd = "_" + "a" * length
    outcome = world.sp.complete(saml_subject(), _error_answering(world, request, odd), None)
    assert (outcome.reason, outcome.return_to) == (SAMLReason.IDP_ERROR, None)
    assert _honest_answer_accepted(world, request)


def test_the_code_dates_the_grant_when_it_is_older_than_the_login(world: World) -> None:
    """A code proved at the start dates the grant by when it was proved, not by the
    IdP's later ``AuthnInstant``: a grant is never fresher than its parts."""
    issued = world.clock()
    proved = _begin(world, otp_proved=True)
    world.clock.advance(100)
    world.idp.log_in(ALICE, at=world.clock())  # the login the IdP forced, 100 s later
    answer = world.idp.answer(proved, ALICE, honour_force_authn=False)
    outcome = world.sp.complete(saml_subject(), answer, proved.relay_state)
    assert outcome.ok
    assert outcome.authn_instant == int(issued + 100)
    assert outcome.otp_proved_at == issued
    assert outcome.authenticated_at == issued


def test_without_a_code_the_login_dates_the_grant(world: World) -> None:
    plain = _begin(world)
    world.clock.advance(100)
    world.idp.log_in(ALICE, at=world.clock())
    answer = world.idp.answer(plain, ALICE, honour_force_authn=False)
    outcome = world.sp.complete(saml_subject(), answer, plain.relay_state)
    assert outcome.ok
    assert outcome.otp_proved_at is None
    assert outcome.authenticated_at == outcome.authn_instant
