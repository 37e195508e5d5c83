"""The status endpoint's ``required`` answer carries the guard's ``alternatives`` and
``enrol`` (the members of its 401 JSON, with the same values; ``enrol`` only when there
is something to enrol, as in the 401), for every framework: they share the builder
(``stepup.integrations.resume.status_response``). Each framework's own test drives a
real app (``integrations/<framework>/test_review3_status_hints.py``)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stepup.integrations.http import RequestInfo, decision_response
from stepup.integrations.resume import status_response
from stepup.policy import Sensitivity
from stepup.reauth import ReauthRequired

SCRIPT = RequestInfo("GET", "/billing/export", accept="application/json")
STATUS = RequestInfo("GET", "/stepup/reauth/status?action=a", accept="application/json")

DECISIONS = [
    # a second factor the user has not set up: enrol TOTP first
    ReauthRequired(
        "a", Sensitivity.SENSITIVE, ("pwd", "otp"), 3600.0, None,
        alternatives=(("pwd", "otp"),), enrol=("otp",),
    ),
    # a passkey or password and code, the user has neither factor: the weakest is asked
    ReauthRequired(
        "a", Sensitivity.CRITICAL, ("pwd", "otp"), 300.0, 1700000000.0,
        alternatives=(("phr",), ("pwd", "otp")), offered=1, enrol=("otp",),
    ),
    # a password re-authentication: one way, nothing to enrol
    ReauthRequired(
        "a", Sensitivity.SENSITIVE, ("pwd",), 21600.0, None, alternatives=(("pwd",),)
    ),
]  # fmt: skip


def _body(answer: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(answer.body)
    return body


@pytest.mark.parametrize("decision", DECISIONS)
def test_the_status_says_how_as_the_guard_does(decision: ReauthRequired) -> None:
    guard = decision_response(decision, SCRIPT, reauth_url="/stepup/reauth")
    assert guard is not None
    assert guard.status == 401
    status = status_response(
        decision, STATUS, reauth_url="/stepup/reauth", done_path="/done", action="a"
    )
    assert status.status == 200
    asked, answered = _body(guard), _body(status)
    assert answered["required"] is True
    assert answered["alternatives"] == asked["alternatives"]
    assert answered["alternatives"] == [list(way) for way in decision.alternatives]
    assert ("enrol" in answered) == ("enrol" in asked) == bool(decision.enrol)
    assert answered.get("enrol") == asked.get("enrol")
