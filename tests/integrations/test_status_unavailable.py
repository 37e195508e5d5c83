"""The status endpoint's answer when no decision allows the action and re-authenticating
now would not help: a store that could not answer is the 503 every outage is, with
``Retry-After``; a rule nothing this session can prove reaches is the guard's 403
``reauth_unreachable`` (it was a 503, which told a script to try again, forever)."""

from __future__ import annotations

import json

import pytest

from stepup.integrations.http import RequestInfo
from stepup.integrations.resume import status_response
from stepup.reauth import ReauthUnavailable, UnavailableReason

SCRIPT = RequestInfo("GET", "/stepup/reauth/status?action=a", accept="application/json")


def _status(decision: ReauthUnavailable) -> tuple[int, dict[str, str], dict[str, object]]:
    answer = status_response(
        decision, SCRIPT, reauth_url="/stepup/reauth", done_path="/done", action="a"
    )
    return answer.status, dict(answer.headers), json.loads(answer.body)


def test_an_outage_says_when_to_try_again() -> None:
    status, headers, body = _status(ReauthUnavailable("a"))
    assert status == 503
    assert headers["Retry-After"] == "5"
    assert headers["Cache-Control"] == "no-store"
    assert body == {
        "error": "reauth_unavailable",
        "title": "Your identity cannot be confirmed right now. Try again soon.",
        "action": "a",
    }  # titled as the guard's 503 is


@pytest.mark.parametrize(
    "reason", [r for r in UnavailableReason if r is not UnavailableReason.STORE]
)
def test_a_rule_out_of_reach_is_the_guards_403(reason: UnavailableReason) -> None:
    decision = ReauthUnavailable("a", reason, "phishing_resistant", (("oidc",),))
    status, headers, body = _status(decision)
    assert status == 403
    assert "Retry-After" not in headers
    assert headers["Cache-Control"] == "no-store"
    assert body["error"] == "reauth_unreachable"
    assert body["reason"] == reason.value
    assert body["alternatives"] == [["oidc"]]
