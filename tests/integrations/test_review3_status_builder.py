"""The status endpoint's ``required`` answer and the guard's 401 JSON say how to
re-authenticate with the same members and the same values: one builder,
``stepup.integrations.http.reauth_members``, serves both, so they cannot drift. The
status answer used to build its own and lacked the 401's ``level`` and ``acr_values``
(a rule whose level the session does not reach). Besides those shared members the 401
carries its ``error``, ``title``, ``action`` and ``reauth_url``, and the status answer
its ``action``, ``required``, ``provider`` and ``reauth_url`` (which comes back to the
done page)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from stepup.adapters.storage.memory import MemoryStore
from stepup.assurance import Level, Levels
from stepup.integrations.http import RequestInfo, decision_response
from stepup.integrations.resume import status_response
from stepup.policy import Policy, Rule, Sensitivity
from stepup.reauth import Reauth, ReauthRequired
from stepup.subject import Subject
from stepup.testing import SettableClock

SCRIPT = RequestInfo("GET", "/billing/export", accept="application/json")
STATUS = RequestInfo("GET", "/stepup/reauth/status?action=a", accept="application/json")
GUARD_OWN = {"error", "title", "action", "reauth_url"}
STATUS_OWN = {"action", "required", "provider", "reauth_url"}

LEVELS = Levels(
    (
        Level("password", acr=("urn:pwd",), methods=(("pwd",),)),
        Level("mfa", acr=("urn:mfa", "urn:mfa:strong"), methods=(("pwd", "otp"),)),
    )
)
T0 = 1_700_000_000.0


def _body(answer: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(answer.body)
    return body


def assert_same_members(decision: ReauthRequired) -> None:
    guard = decision_response(decision, SCRIPT, reauth_url="/stepup/reauth")
    assert guard is not None
    assert guard.status == 401
    status = status_response(
        decision, STATUS, reauth_url="/stepup/reauth", done_path="/done", action=decision.action
    )
    assert status.status == 200
    asked, answered = _body(guard), _body(status)
    assert answered["required"] is True
    assert answered["provider"] == decision.provider
    shared_by_guard = {k: v for k, v in asked.items() if k not in GUARD_OWN}
    shared_by_status = {k: v for k, v in answered.items() if k not in STATUS_OWN}
    assert shared_by_status == shared_by_guard
    if decision.level:
        assert answered["level"] == decision.level
        assert answered["acr_values"] == list(decision.acr_values)


methods = st.sampled_from([("pwd",), ("pwd", "otp"), ("phr",), ("oidc",), ("hwk",)])


@settings(max_examples=200, deadline=None)
@given(
    sensitivity=st.sampled_from([Sensitivity.SENSITIVE, Sensitivity.CRITICAL]),
    offered=methods,
    alternatives=st.lists(methods, min_size=1, max_size=3, unique=True),
    lifetime=st.floats(min_value=1, max_value=86_400),
    last=st.none() | st.floats(min_value=0, max_value=T0),
    provider=st.sampled_from(["", "corp-oidc"]),
    level=st.sampled_from(["", "mfa"]),
    acr_values=st.lists(st.sampled_from(["urn:mfa", "urn:mfa:strong"]), max_size=2, unique=True),
    stale=st.booleans(),
    enrol=st.sampled_from([(), ("otp",), ("phr",), ("hwk",)]),
)
def test_any_required_decision_is_told_alike(
    sensitivity: Sensitivity,
    offered: tuple[str, ...],
    alternatives: list[tuple[str, ...]],
    lifetime: float,
    last: float | None,
    provider: str,
    level: str,
    acr_values: list[str],
    stale: bool,
    enrol: tuple[str, ...],
) -> None:
    decision = ReauthRequired(
        "a",
        sensitivity,
        offered,
        lifetime,
        last,
        provider=provider,
        alternatives=tuple(alternatives),
        level=level,
        acr_values=tuple(acr_values) if level else (),
        stale=stale,
        enrol=enrol,
    )
    assert_same_members(decision)


@settings(max_examples=100, deadline=None)
@given(
    sensitivity=st.sampled_from([Sensitivity.SENSITIVE, Sensitivity.CRITICAL]),
    lifetime=st.sampled_from([None, 300.0, 3600.0]),
    second_factor=st.booleans(),
    level=st.sampled_from([None, "password", "mfa"]),
    proved=st.sampled_from([None, ("pwd",), ("pwd", "otp")]),
    age=st.sampled_from([10.0, 1000.0, 100_000.0]),
)
def test_the_cores_decisions_over_rules_and_levels_are_told_alike(
    sensitivity: Sensitivity,
    lifetime: float | None,
    second_factor: bool,
    level: str | None,
    proved: tuple[str, ...] | None,
    age: float,
) -> None:
    rule = Rule(
        sensitivity, lifetime=lifetime, second_factor=second_factor, level=level, always=True
    )
    policy = Policy({"a": rule}, levels=LEVELS)
    clock = SettableClock(T0)
    reauth = Reauth(MemoryStore(), policy, clock=clock)
    alice = Subject("alice", "s1")
    if proved is not None:
        reauth.record(alice, list(proved))
        clock.advance(age)
    decision = reauth.peek(alice, "a", "acme")
    if isinstance(decision, ReauthRequired):
        assert_same_members(decision)
