"""An IdP's error status ("authentication failed", the person cancelled) answering a
pending request: nothing is granted, and what was stored with the request (the way
back, the action, the transaction, the suspended form) comes back for the next try,
but only for a request of this very session, named by ``InResponseTo`` and agreed on
by ``RelayState``; the request is used up. Anything else consumes nothing."""

from __future__ import annotations

import pytest
from saml2.samlp import STATUS_AUTHN_FAILED

from idp.saml.saml_idp import ALICE, Request, World, saml_subject
from stepup.adapters.idp.saml import SAMLOutcome, SAMLReason
from stepup.errors import MalformedInputError
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
