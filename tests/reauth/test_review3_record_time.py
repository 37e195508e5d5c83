"""``record``'s ``authenticated_at`` is when the proof was made (a provider's
``auth_time`` or ``AuthnInstant``): a time further ahead of this clock than a
provider's clock may run (300 s), NaN and the infinities are no such time, so a clear
error that records nothing, revokes nothing and emits nothing; a time within the skew
is dated now. Sync and async share the one flow."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

from stepup.adapters.storage.memory import MemoryStore
from stepup.errors import MalformedInputError
from stepup.events import EventBus, StepupEvent
from stepup.policy import Policy, Rule, Sensitivity
from stepup.reauth import AsyncReauth, Reauth, ReauthRequired
from stepup.records import Grant, Tenant
from stepup.subject import Subject
from stepup.testing import SettableClock
from stepup.transactions import transaction_digest

ALICE = Subject("alice", "s1")
RENEWED = Subject("alice", "s2")
SKEW = 300.0
POLICY = Policy(
    {
        "key.read": Rule(Sensitivity.SENSITIVE, lifetime=3600.0),
        "wipe": Rule(Sensitivity.CRITICAL, lifetime=300.0, bind_transaction=True),
    }
)
WIPE = transaction_digest("wipe", {"disk": "d1"})


class Driven:
    """A sync or an async Reauth, called the same way."""

    def __init__(self, reauth: Any) -> None:
        self._reauth = reauth

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._reauth, name)
        if isinstance(self._reauth, Reauth):
            return method
        return lambda *a, **k: asyncio.run(method(*a, **k))


def make(mode: str) -> tuple[Any, MemoryStore, SettableClock, list[StepupEvent]]:
    store = MemoryStore()
    store.put_tenant(Tenant("t1", {"feature_flags": {"sensitive_actions_reauth": True}}))
    clock = SettableClock()
    seen: list[StepupEvent] = []
    kind = Reauth if mode == "sync" else AsyncReauth
    reauth = Driven(kind(store, POLICY, clock=clock, events=EventBus(seen.append)))
    return reauth, store, clock, seen


MODES = pytest.mark.parametrize("mode", ["sync", "async"])


@MODES
@pytest.mark.parametrize("ahead", [SKEW + 1, 3600.0, 86400.0 * 365])
def test_a_time_further_ahead_than_the_skew_is_refused(mode: str, ahead: float) -> None:
    reauth, store, clock, seen = make(mode)
    with pytest.raises(MalformedInputError, match="more than 300 seconds in the future"):
        reauth.record(ALICE, ["pwd"], authenticated_at=clock() + ahead)
    assert store.get_grant("alice", "s1") is None
    assert seen == []
    assert isinstance(reauth.check(ALICE, "key.read", "t1"), ReauthRequired)


@MODES
@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan, 10**30, 10**400, -(10**400)])
def test_a_time_that_is_no_finite_time_now_is_refused(mode: str, value: float) -> None:
    reauth, store, _, seen = make(mode)
    with pytest.raises(MalformedInputError, match="authenticated_at"):
        reauth.record(ALICE, ["oidc"], authenticated_at=value)
    assert store.get_grant("alice", "s1") is None
    assert seen == []


@MODES
@pytest.mark.parametrize("value", [math.nan, math.inf, 3600.0])
def test_a_refused_time_revokes_nothing_on_a_renewed_session(mode: str, value: float) -> None:
    """The old id's grant stays: the error comes before anything is changed."""
    reauth, store, clock, seen = make(mode)
    before = reauth.record(ALICE, ["pwd"])
    seen.clear()
    clock.advance(60)
    at = value if not math.isfinite(value) else clock() + value
    with pytest.raises(MalformedInputError):
        reauth.record(RENEWED, ["oidc"], authenticated_at=at, renewed_from="s1")
    assert store.get_grant("alice", "s1") == before
    assert store.get_grant("alice", "s2") is None
    assert seen == []


@MODES
def test_a_transaction_proof_dated_ahead_is_refused(mode: str) -> None:
    reauth, _, clock, seen = make(mode)
    with pytest.raises(MalformedInputError):
        reauth.record(ALICE, ["pwd"], authenticated_at=clock() + 3600, transaction=WIPE)
    assert seen == []
    assert isinstance(reauth.check(ALICE, "wipe", "t1", transaction=WIPE), ReauthRequired)


@MODES
@pytest.mark.parametrize("ahead", [0.0, 0.5, 60.0, SKEW])
def test_a_time_within_the_skew_is_dated_now(mode: str, ahead: float) -> None:
    reauth, store, clock, seen = make(mode)
    grant = reauth.record(ALICE, ["oidc"], authenticated_at=clock() + ahead)
    assert grant == Grant("alice", "s1", frozenset({"oidc"}), clock())
    assert store.get_grant("alice", "s1") == grant
    assert len(seen) == 1


@MODES
def test_a_time_in_the_past_keeps_its_date(mode: str) -> None:
    reauth, _, clock, _ = make(mode)
    grant = reauth.record(ALICE, ["saml"], authenticated_at=clock() - 120)
    assert grant.authenticated_at == clock() - 120
