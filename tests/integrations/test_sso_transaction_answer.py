"""The shared rule of what an SSO answer records for a transaction-bound trip
(``sso_answer``'s ``kept``), and how its refusal is reported, apart from any framework
(the journeys in each framework: */test_sso_transactions.py)."""

from __future__ import annotations

import logging

import pytest

from stepup.adapters.idp.oidc import OIDCOutcome, OIDCReason
from stepup.adapters.idp.saml import SAMLOutcome, SAMLReason
from stepup.events import EventBus, StepupEvent
from stepup.integrations.transaction import Confirmation, PendingTransaction
from stepup.integrations.views import (
    TEXT,
    TRANSACTION_EXPIRED,
    report_sso_refusal,
    sso_answer,
)
from stepup.transactions import transaction_digest

LOGGER = "stepup.integrations"
ACTION = "workspace.destroy"
DIGEST = transaction_digest(ACTION, {"workspace": "prod-eu"})
OTHER = transaction_digest(ACTION, {"workspace": "prod-us"})


def _kept(digest: str) -> PendingTransaction:
    return PendingTransaction(ACTION, digest, Confirmation("Delete workspace prod-eu"))


def _outcomes(transaction: str) -> list[OIDCOutcome | SAMLOutcome]:
    return [
        OIDCOutcome(OIDCReason.OK, return_to="/home", action=ACTION, transaction=transaction),
        SAMLOutcome(SAMLReason.OK, return_to="/home", action=ACTION, transaction=transaction),
    ]


@pytest.mark.parametrize("outcome", _outcomes(DIGEST), ids=lambda o: o.method)
def test_a_kept_transaction_gets_its_single_use_proof(outcome: OIDCOutcome | SAMLOutcome) -> None:
    answer = sso_answer(outcome, proved_code=False, kept=_kept(DIGEST))
    assert (answer.ok, answer.transaction, answer.methods) == (True, DIGEST, (outcome.method,))


@pytest.mark.parametrize("outcome", _outcomes(DIGEST), ids=lambda o: o.method)
@pytest.mark.parametrize("kept", [None, _kept(OTHER)], ids=["none-kept", "another-kept"])
def test_a_transaction_no_longer_kept_is_refused_as_the_password_form_refuses_it(
    outcome: OIDCOutcome | SAMLOutcome, kept: PendingTransaction | None
) -> None:
    """Never the session's grant in the proof's place: nothing to record at all."""
    answer = sso_answer(outcome, proved_code=True, kept=kept)
    assert not answer.ok
    assert (answer.status, answer.message) == (400, TEXT["transaction_expired"])
    assert (answer.reason, answer.retry) == (TRANSACTION_EXPIRED, False)
    assert (answer.methods, answer.transaction) == ((), None)
    assert answer.next == "/home"


@pytest.mark.parametrize("outcome", _outcomes(""), ids=lambda o: o.method)
def test_a_trip_for_no_transaction_gets_the_sessions_grant(
    outcome: OIDCOutcome | SAMLOutcome,
) -> None:
    answer = sso_answer(outcome, proved_code=False)
    assert (answer.ok, answer.transaction) == (True, None)


def test_the_adapters_refusal_comes_first() -> None:
    """A refused answer keeps its own reason (and its events), kept or not."""
    outcome = OIDCOutcome(OIDCReason.EXPIRED, action=ACTION, transaction=DIGEST)
    answer = sso_answer(outcome, proved_code=False, kept=None)
    assert (answer.ok, answer.reason, answer.retry) == (False, "expired", True)


@pytest.mark.parametrize("outcome", _outcomes(DIGEST), ids=lambda o: o.method)
def test_the_refusal_is_noted_but_is_no_failed_reauthentication(
    outcome: OIDCOutcome | SAMLOutcome, caplog: pytest.LogCaptureFixture
) -> None:
    """The provider did confirm her: an INFO line, no ReauthFailed (the password form's
    expired transaction is none either)."""
    caplog.set_level(logging.DEBUG, LOGGER)
    events: list[StepupEvent] = []
    report_sso_refusal(
        EventBus(events.append),
        "u-alice",
        outcome,
        at=1000.0,
        trip_began=True,
        reason=TRANSACTION_EXPIRED,
    )
    assert events == []
    assert [(r.levelno, r.getMessage()) for r in caplog.records if r.name == LOGGER] == [
        (logging.INFO, f"{outcome.method} re-authentication refused: transaction_expired")
    ]
