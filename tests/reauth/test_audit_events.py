"""What Reauth tells the audit trail: ReauthSucceeded names the grant's level, the
transaction it confirmed and what this attempt proved; sign-out and a password change
emit GrantsRevoked (sync and async, one flow), and a store failure emits nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stepup.adapters.storage.memory import MemoryStore
from stepup.assurance import Level, Levels
from stepup.errors import StoreUnavailableError
from stepup.events import EventBus, GrantsRevoked, ReauthSucceeded, StepupEvent
from stepup.policy import Policy, Rule, Sensitivity
from stepup.reauth import AsyncReauth, Reauth
from stepup.subject import Subject
from stepup.testing import SettableClock
from stepup.transactions import transaction_digest

T0 = 1_700_000_000.0
ALICE = Subject("alice", "s1")
LEVELS = Levels(
    (
        Level("password", acr=("urn:pwd",), methods=(("pwd",),)),
        Level("mfa", acr=("urn:mfa",), methods=(("pwd", "otp"),)),
    )
)
RULES = {
    "pay": Rule(Sensitivity.SENSITIVE, lifetime=600.0, level="mfa"),
    "wipe": Rule(Sensitivity.CRITICAL, lifetime=300.0, level="mfa", bind_transaction=True),
}
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


def _reauth(mode: str, store: Any, clock: SettableClock, events: list[StepupEvent]) -> Any:
    kind = Reauth if mode == "sync" else AsyncReauth
    policy = Policy(RULES, levels=LEVELS)
    return Driven(kind(store, policy, clock=clock, events=EventBus(events.append)))


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_merged_grant_says_what_this_attempt_proved_and_its_level(mode: str) -> None:
    clock, events = SettableClock(T0), []
    reauth = _reauth(mode, MemoryStore(), clock, events)
    reauth.record(ALICE, ["pwd"], level="password")
    clock.advance(30)
    reauth.record(ALICE, ["otp"])  # moments later: merged into the grant
    assert events == [
        ReauthSucceeded(
            at=T0, user_id="alice", session_id="s1", method="pwd", level="password", proved="pwd"
        ),
        ReauthSucceeded(
            at=T0 + 30,
            user_id="alice",
            session_id="s1",
            method="otp,pwd",
            level="password",
            proved="otp",
        ),
    ]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_transaction_proof_names_its_digest(mode: str) -> None:
    clock, events = SettableClock(T0), []
    reauth = _reauth(mode, MemoryStore(), clock, events)
    reauth.record(ALICE, ["otp", "pwd"], level="mfa", transaction=WIPE)
    (event,) = events
    assert isinstance(event, ReauthSucceeded)
    assert (event.transaction, event.level, event.proved, event.method) == (
        WIPE,
        "mfa",
        "otp,pwd",
        "otp,pwd",
    )


def test_a_session_grant_has_no_transaction_and_no_level_without_levels() -> None:
    events: list[StepupEvent] = []
    reauth = Reauth(MemoryStore(), clock=SettableClock(T0), events=EventBus(events.append))
    reauth.record(ALICE, ["pwd"])
    assert events == [
        ReauthSucceeded(at=T0, user_id="alice", session_id="s1", method="pwd", proved="pwd")
    ]


@settings(max_examples=25, deadline=None)
@given(
    mode=st.sampled_from(["sync", "async"]),
    sessions=st.lists(
        st.text("abcdef0123456789", min_size=1, max_size=8), min_size=1, max_size=4, unique=True
    ),
)
def test_sign_out_and_password_change_are_in_the_audit(mode: str, sessions: list[str]) -> None:
    clock, events = SettableClock(T0), []
    reauth = _reauth(mode, MemoryStore(), clock, events)
    for session in sessions:
        reauth.record(Subject("alice", f"s-{session}"), ["pwd"])
    events.clear()
    signed_out = Subject("alice", f"s-{sessions[0]}")
    assert reauth.sign_out(signed_out) == 1
    assert reauth.sign_out(signed_out) == 0  # nothing left: the sign-out is still recorded
    assert reauth.password_changed("alice") == len(sessions) - 1
    assert events == [
        GrantsRevoked(
            at=T0, user_id="alice", session_id=signed_out.session_id, count=1, reason="sign_out"
        ),
        GrantsRevoked(
            at=T0, user_id="alice", session_id=signed_out.session_id, count=0, reason="sign_out"
        ),
        GrantsRevoked(
            at=T0,
            user_id="alice",
            session_id=None,
            count=len(sessions) - 1,
            reason="password_changed",
        ),
    ]


class Down(MemoryStore):
    def revoke_grants(self, user_id: str, session_id: str | None = None) -> int:
        raise ConnectionError("redis://user:secret@10.0.0.1")


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_revocation_that_failed_is_no_event(mode: str) -> None:
    events: list[StepupEvent] = []
    reauth = _reauth(mode, Down(), SettableClock(T0), events)
    with pytest.raises(StoreUnavailableError):
        reauth.sign_out(ALICE)
    with pytest.raises(StoreUnavailableError):
        reauth.password_changed("alice")
    assert events == []


def test_a_proof_is_never_merged_into_an_expired_grant() -> None:
    """A re-authentication within the merge window of an earlier proof that has already
    expired stands on its own: merged, it would be dated by the expired proof (stale the
    moment it is recorded) on a store that still holds the expired grant, and fresh on
    one (Redis) that has forgotten it."""
    from stepup.adapters.storage.memory import MemoryStore
    from stepup.policy import Policy, Rule, Sensitivity
    from stepup.reauth import Reauth
    from stepup.records import Tenant
    from stepup.subject import Subject
    from stepup.testing import SettableClock

    t0 = 1_700_000_000.0
    clock = SettableClock(t0)
    store = MemoryStore()
    store.put_tenant(Tenant("t", {"feature_flags": {"sensitive_actions_reauth": True}}))
    policy = Policy({"pwd.otp": Rule(Sensitivity.SENSITIVE, second_factor=True)}, lifetime=300)
    reauth = Reauth(store, policy, clock=clock)
    alice = Subject("alice", "s1")
    reauth.record(alice, ["pwd"])  # at t0: expired by t0 + 300
    clock.advance(450)
    reauth.record(alice, ["otp"])  # not merged into the expired proof of t0
    clock.advance(10)
    reauth.record(alice, ["pwd"])  # merged with the proof of t0 + 450
    assert reauth.check(alice, "pwd.otp", "t").ok
