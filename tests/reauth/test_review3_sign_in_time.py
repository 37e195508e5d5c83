"""``record_sign_in``'s ``authenticated_at`` is a time authentication happened at (OIDC
Core 2, ``auth_time``): NaN and the infinities are no time at all (a clear error that
changes nothing, whatever the policy), a time further ahead of this clock than a
provider's clock may run (300 s) is not counted, and one within it is dated now."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

from stepup.adapters.storage.memory import MemoryStore
from stepup.errors import MalformedInputError
from stepup.events import EventBus, StepupEvent
from stepup.policy import SENSITIVE, Policy
from stepup.reauth import (
    AsyncReauth,
    Reauth,
    ReauthRequired,
    SignInCounted,
    SignInNotCounted,
    SignInReason,
)
from stepup.records import Tenant
from stepup.subject import Identity, LoginMethod, Subject
from stepup.testing import SettableClock

OIDC_USER = Subject("carol", "s9", Identity(LoginMethod.OIDC, "https://idp.example", "c", "corp"))
SAML_USER = Subject("dave", "s7", Identity(LoginMethod.SAML, "https://saml.example", "d", "s"))
ALICE = Subject("alice", "s1")
POLICY = Policy({"key.read": SENSITIVE}, lifetime=3600)
COUNTING = POLICY.with_sign_in_counts()
SKEW = 300.0


def make(
    policy: Policy = COUNTING,
) -> tuple[Reauth, AsyncReauth, MemoryStore, SettableClock, list[StepupEvent]]:
    store = MemoryStore()
    store.put_tenant(Tenant("t1", {"feature_flags": {"sensitive_actions_reauth": True}}))
    clock = SettableClock()
    seen: list[StepupEvent] = []
    events = EventBus(seen.append)
    return (
        Reauth(store, policy, clock=clock, events=events),
        AsyncReauth(store, policy, clock=clock, events=events),
        store,
        clock,
        seen,
    )


def both(reauth: Reauth, async_reauth: AsyncReauth, *args: Any) -> list[Any]:
    """The sync and the async answer (one flow: they must agree)."""
    answers: list[Any] = []
    for record in (reauth.record_sign_in, lambda *a: asyncio.run(async_reauth.record_sign_in(*a))):
        try:
            answers.append(record(*args))
        except MalformedInputError as exc:
            answers.append(type(exc))
    return answers


def not_counted(answers: list[Any]) -> bool:
    """Both answers are ``SignInNotCounted(SignInReason.IN_THE_FUTURE)``."""
    assert [type(answer) for answer in answers] == [SignInNotCounted] * 2, answers
    return all(answer.reason == SignInReason("in_the_future") for answer in answers)


@pytest.mark.parametrize("ahead", [SKEW + 1, 3600.0, 86400.0 * 365])
@pytest.mark.parametrize("subject", [OIDC_USER, SAML_USER])
def test_a_time_further_ahead_than_the_skew_is_not_counted(ahead: float, subject: Subject) -> None:
    reauth, async_reauth, store, clock, seen = make()
    method = subject.identity.method.value
    answers = both(reauth, async_reauth, subject, [method], clock() + ahead)
    assert not_counted(answers)
    assert not answers[0].ok
    assert store.get_grant(subject.user_id, subject.session_id) is None
    assert seen == []
    # The first sensitive action asks, as after any sign-in that did not count.
    assert isinstance(reauth.check(subject, "key.read", "t1"), ReauthRequired)


def test_a_whole_number_far_in_the_future_is_not_counted() -> None:
    """10**30 seconds (a float holds it): not "now"."""
    reauth, async_reauth, store, _, seen = make()
    answers = both(reauth, async_reauth, OIDC_USER, ["oidc"], 10**30)
    assert not_counted(answers)
    assert store.get_grant("carol", "s9") is None
    assert seen == []


def test_a_password_sign_in_dated_ahead_is_not_counted_either() -> None:
    reauth, async_reauth, store, clock, _ = make()
    answers = both(reauth, async_reauth, ALICE, ["pwd"], clock() + 3600)
    assert not_counted(answers)
    assert store.get_grant("alice", "s1") is None


@pytest.mark.parametrize("ahead", [0.0, 0.5, 60.0, SKEW])
def test_a_time_within_the_skew_is_dated_now(ahead: float) -> None:
    reauth, async_reauth, store, clock, _ = make()
    for outcome in both(reauth, async_reauth, OIDC_USER, ["oidc"], clock() + ahead):
        assert isinstance(outcome, SignInCounted)
        assert outcome.grant.authenticated_at == clock()
    grant = store.get_grant("carol", "s9")
    assert grant is not None
    assert grant.authenticated_at == clock()


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan, 10**400, -(10**400)])
@pytest.mark.parametrize("policy", [COUNTING, POLICY])
def test_a_time_that_is_no_finite_number_is_malformed(value: float, policy: Policy) -> None:
    """Whatever the policy: bad input is an error, never "now" nor "too old" (nor an
    OverflowError for a whole number no float holds)."""
    reauth, async_reauth, store, _, seen = make(policy)
    assert both(reauth, async_reauth, OIDC_USER, ["oidc"], value) == [MalformedInputError] * 2
    assert store.get_grant("carol", "s9") is None
    assert seen == []


def test_the_error_names_the_argument_not_the_store() -> None:
    reauth, *_ = make()
    with pytest.raises(MalformedInputError, match="authenticated_at must be a finite number"):
        reauth.record_sign_in(OIDC_USER, ["oidc"], math.inf)
