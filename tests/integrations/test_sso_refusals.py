"""What a refused OIDC or SAML re-authentication tells the person, and what it leaves
for the operator: decided once (stepup.integrations.views), so Flask, Django and
Starlette answer alike. The journeys against the real providers are in each
framework's SSO tests."""

from __future__ import annotations

import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stepup.adapters.idp.oidc import OIDCOutcome, OIDCReason
from stepup.adapters.idp.saml import SAMLOutcome, SAMLReason
from stepup.events import EventBus, ReauthFailed, StepupEvent
from stepup.integrations.views import (
    SSO_CANCELLED,
    SSO_EXPIRED,
    SSO_LEVEL_NOT_MET,
    SSO_NOT_ASKED_AGAIN,
    SSO_NOT_CONFIRMED,
    SSO_OTHER_ACCOUNT,
    SSO_PROVIDER_REFUSED,
    TEXT,
    note_sso_trip,
    report_sso_refusal,
    sso_answer,
    sso_refusal_message,
    take_sso_trip,
)

LOGGER = "stepup.integrations"

#: Every refusal the adapters give, and what the person reads. A reason added to an
#: adapter fails :func:`test_every_refusal_of_the_adapters_has_a_message` until it is
#: given its words here and in the views.
MESSAGES: dict[str, str] = {
    "expired": SSO_EXPIRED,
    "wrong_subject": SSO_OTHER_ACCOUNT,
    "unavailable": TEXT["unavailable"],
    "missing_auth_time": SSO_NOT_ASKED_AGAIN,
    "stale_auth_time": SSO_NOT_ASKED_AGAIN,
    "stale_authn_instant": SSO_NOT_ASKED_AGAIN,
    "acr_not_met": SSO_LEVEL_NOT_MET,
    "authn_context_not_met": SSO_LEVEL_NOT_MET,
    "provider_error": SSO_PROVIDER_REFUSED,
    "idp_error": SSO_PROVIDER_REFUSED,
    # forged, replayed, tampered or unreadable answers: the generic words
    "unknown_state": SSO_NOT_CONFIRMED,
    "unknown_request": SSO_NOT_CONFIRMED,
    "token_error": SSO_NOT_CONFIRMED,
    "invalid_token": SSO_NOT_CONFIRMED,
    "invalid_signature": SSO_NOT_CONFIRMED,
    "unsigned": SSO_NOT_CONFIRMED,
    "malformed": SSO_NOT_CONFIRMED,
    "invalid_conditions": SSO_NOT_CONFIRMED,
}

OIDC_REFUSALS = [r for r in OIDCReason if r is not OIDCReason.OK]
#: What matched no re-authentication the session began: forged, or from elsewhere.
UNMATCHED = {"unknown_state", "unknown_request", "malformed"}
SAML_REFUSALS = [r for r in SAMLReason if r is not SAMLReason.OK]


def test_every_refusal_of_the_adapters_has_a_message() -> None:
    assert {r.value for r in [*OIDC_REFUSALS, *SAML_REFUSALS]} == set(MESSAGES)


@pytest.mark.parametrize("reason", OIDC_REFUSALS)
def test_an_oidc_refusal_names_its_cause(reason: OIDCReason) -> None:
    answer = sso_answer(OIDCOutcome(reason, return_to="/api-key"), proved_code=True)
    assert not answer.ok
    assert answer.message == MESSAGES[reason.value]
    assert answer.status == (503 if reason is OIDCReason.UNAVAILABLE else 400)


@pytest.mark.parametrize("reason", SAML_REFUSALS)
def test_a_saml_refusal_names_its_cause(reason: SAMLReason) -> None:
    answer = sso_answer(SAMLOutcome(reason, return_to="/api-key"), proved_code=True)
    assert not answer.ok
    assert answer.message == MESSAGES[reason.value]
    assert answer.status == (503 if reason is SAMLReason.UNAVAILABLE else 400)


def test_access_denied_at_the_provider_is_a_cancelled_sign_in() -> None:
    cancelled = OIDCOutcome(OIDCReason.PROVIDER_ERROR, error="access_denied")
    assert sso_answer(cancelled, proved_code=False).message == SSO_CANCELLED
    login_required = OIDCOutcome(OIDCReason.PROVIDER_ERROR, error="login_required")
    assert sso_answer(login_required, proved_code=False).message == SSO_PROVIDER_REFUSED
    # The code names the cause only with its reason: a forged token is no cancellation.
    assert sso_refusal_message("invalid_token", "access_denied") == SSO_NOT_CONFIRMED


def test_the_stores_outage_does_not_blame_the_provider() -> None:
    answer = sso_answer(OIDCOutcome(OIDCReason.UNAVAILABLE, detail="store"), False)
    assert (answer.status, answer.message) == (503, TEXT["unavailable"])
    assert "identity provider" not in answer.message


def test_an_app_adapters_own_reason_gets_the_generic_words() -> None:
    assert sso_refusal_message("tampered_by_gremlins") == SSO_NOT_CONFIRMED


# what is reported --------------------------------------------------------------------


def _report(outcome: OIDCOutcome | SAMLOutcome, *, trip_began: bool = True) -> list[StepupEvent]:
    events: list[StepupEvent] = []
    report_sso_refusal(
        EventBus(events.append), "u-alice", outcome, at=1000.0, trip_began=trip_began
    )
    return events


@pytest.mark.parametrize(
    "outcome",
    [
        *(OIDCOutcome(r, detail="nonce") for r in OIDC_REFUSALS),
        *(SAMLOutcome(r, detail="name_id") for r in SAML_REFUSALS),
    ],
    ids=lambda o: f"{o.method}-{o.reason.value}",
)
def test_each_refusal_emits_reauth_failed_and_logs_one_line(
    outcome: OIDCOutcome | SAMLOutcome, caplog: pytest.LogCaptureFixture
) -> None:
    """A refusal of this user's own trip is an event and an INFO line; an answer that
    matched no trip of this session (anyone's page can send a browser there) is only a
    DEBUG line, and stepup's own store failing is logged but no failure of the user's."""
    caplog.set_level(logging.DEBUG, LOGGER)
    events = _report(outcome)
    reason = outcome.reason.value
    lines = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == LOGGER]
    if reason in UNMATCHED:
        assert events == []
        assert lines == [
            (
                logging.DEBUG,
                f"{outcome.method} answer matching no re-authentication of this session: {reason}",
            )
        ]
        return
    expected = ReauthFailed(
        at=1000.0, user_id="u-alice", method=outcome.method, reason=outcome.reason
    )
    assert events == ([] if reason == "unavailable" else [expected])
    assert lines == [(logging.INFO, f"{outcome.method} re-authentication refused: {reason}")]


def test_a_known_provider_error_code_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    _report(OIDCOutcome(OIDCReason.PROVIDER_ERROR, error="access_denied"))
    assert caplog.records[-1].getMessage() == (
        "oidc re-authentication refused: provider_error (provider error access_denied)"
    )


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    # what passes the adapter's code pattern, but no code of RFC 6749 or OIDC (each has a "_")
    error=st.from_regex(r"[A-Za-z0-9.\-]{1,64}", fullmatch=True),
    detail=st.text(min_size=1, max_size=80),
    user_id=st.emails(),
)
def test_nothing_the_provider_chose_is_logged(
    error: str, detail: str, user_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The provider's ``error`` is attacker-reachable: an unknown code is logged as
    ``other``. The adapter's ``detail`` and the user id (an app's may be an e-mail
    address) stay out of the line; the event names the user, never the provider's text."""
    caplog.clear()
    caplog.set_level(logging.INFO, LOGGER)
    events: list[StepupEvent] = []
    outcome = OIDCOutcome(OIDCReason.PROVIDER_ERROR, error=error, detail=detail)
    report_sso_refusal(EventBus(events.append), user_id, outcome, at=1000.0, trip_began=True)
    assert events == [
        ReauthFailed(at=1000.0, user_id=user_id, method="oidc", reason="provider_error")
    ]
    assert [r.getMessage() for r in caplog.records if r.name == LOGGER] == [
        "oidc re-authentication refused: provider_error (provider error other)"
    ]


def test_a_saml_idp_status_is_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    status = "urn:oasis:names:tc:SAML:2.0:status:AuthnFailed <script>alice@example.org"
    events = _report(SAMLOutcome(SAMLReason.IDP_ERROR, idp_status=status, detail="status"))
    assert events == [ReauthFailed(at=1000.0, user_id="u-alice", method="saml", reason="idp_error")]
    assert [r.getMessage() for r in caplog.records if r.name == LOGGER] == [
        "saml re-authentication refused: idp_error"
    ]


# a SAML answer refused before it was matched -----------------------------------------

#: What the SAML adapter refuses before it looks for the request an answer names (the
#: signature is checked first): anyone's page can post such an answer to the ACS.
BEFORE_MATCHING = [SAMLReason.UNSIGNED, SAMLReason.INVALID_SIGNATURE, SAMLReason.IDP_ERROR]


@pytest.mark.parametrize("reason", BEFORE_MATCHING, ids=lambda r: r.value)
def test_a_saml_answer_refused_before_matching_counts_only_after_a_trip(
    reason: SAMLReason, caplog: pytest.LogCaptureFixture
) -> None:
    """With no SAML trip pending in the session, it is a forgery's DEBUG line and no
    failure of the user's; after a trip this session began, a refusal as any other."""
    caplog.set_level(logging.DEBUG, LOGGER)
    assert _report(SAMLOutcome(reason, detail="status"), trip_began=False) == []
    assert [(r.levelno, r.getMessage()) for r in caplog.records if r.name == LOGGER] == [
        (logging.DEBUG, f"saml answer matching no re-authentication of this session: {reason}")
    ]
    caplog.clear()
    assert _report(SAMLOutcome(reason), trip_began=True) == [
        ReauthFailed(at=1000.0, user_id="u-alice", method="saml", reason=reason)
    ]
    assert [(r.levelno, r.getMessage()) for r in caplog.records if r.name == LOGGER] == [
        (logging.INFO, f"saml re-authentication refused: {reason}")
    ]


@pytest.mark.parametrize(
    "outcome",
    [
        *(OIDCOutcome(r) for r in OIDC_REFUSALS),
        *(SAMLOutcome(r, return_to="/") for r in SAML_REFUSALS if r not in BEFORE_MATCHING),
    ],
    ids=lambda o: f"{o.method}-{o.reason.value}",
)
def test_an_answer_matched_to_its_request_needs_no_trip_noted(
    outcome: OIDCOutcome | SAMLOutcome,
) -> None:
    """The adapter found the request in the store for this very session (a late answer
    included, after the session's note of the trip went stale): it counts as before."""
    expected = outcome.reason.value not in UNMATCHED | {"unavailable"}
    assert bool(_report(outcome, trip_began=False)) == expected


def test_a_trip_is_noted_for_its_session_and_kind_and_taken_once() -> None:
    session: dict[str, object] = {}
    note_sso_trip(session, "s-1", "saml", 1000.0)
    assert take_sso_trip(session, "s-1", "saml", 1000.0 + 599, 600)
    assert not take_sso_trip(session, "s-1", "saml", 1000.0 + 599, 600)  # used up
    for session_id, kind, now in [("s-2", "saml", 1001.0), ("s-1", "oidc", 1001.0)]:
        note_sso_trip(session, "s-1", "saml", 1000.0)
        assert not take_sso_trip(session, session_id, kind, now, 600)
        assert session == {}
    note_sso_trip(session, "s-1", "saml", 1000.0)
    assert not take_sso_trip(session, "s-1", "saml", 1000.0 + 601, 600)  # stale


@pytest.mark.parametrize("kept", [None, "saml", ["s-1"], {"session": "s-1", "kind": "saml"}])
def test_a_trip_note_that_is_not_ours_counts_for_nothing(kept: object) -> None:
    session: dict[str, object] = {"_stepup_sso_trip": kept}
    assert not take_sso_trip(session, "s-1", "saml", 1000.0, 600)
