"""The sliding window never lends freshness to a stricter rule, and its renewals belong to
the session that proved (issue 13, "sliding window").

An action renews the window for its own rule's lifetime and every longer one, never a
shorter one: an ordinary action a minute ago says nothing of a five-minute rule whose
proof is hours old, while a critical action keeps the ordinary rules alive. Renewals are
kept under the session id followed by ``#``, which no session id may contain, and prove
no method: a session whose id names one gets nothing from it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from stepup.adapters.storage.memory import MemoryStore
from stepup.adapters.storage.redis import AsyncRedisStore
from stepup.adapters.storage.sql import AsyncSQLStore
from stepup.errors import MalformedInputError
from stepup.ids import SESSION_RECORD_SEPARATOR, checked_session_id, checked_subject
from stepup.policy import CRITICAL, SENSITIVE, Policy, Rule, Sensitivity
from stepup.reauth import _SLIDE, _TX_ANCHOR, AsyncReauth, Reauth
from stepup.records import Tenant
from stepup.subject import Subject
from stepup.testing import SettableClock
from storage.redis_cluster import delete_prefix, need_shared_redis
from storage.redis_cluster import unique_prefix as redis_prefix
from store_kinds import STORE_KINDS, open_store
from support import POSTGRES_URL, REDIS_URL, need, port_open

T0 = 1_700_000_000.0
MINUTE, HOUR = 60.0, 3600.0
CRIT, HOURLY, LONG = "report.export", "billing.view", "key.read"
LIFETIMES = {CRIT: 300.0, HOURLY: HOUR, LONG: 2 * HOUR}
MAXIMUM = 4 * HOUR
#: Three rules of different lifetimes (5 minutes, an hour, two hours), a window of 4 h.
THREE = Policy(
    {CRIT: CRITICAL, HOURLY: Rule(Sensitivity.SENSITIVE, lifetime=HOUR), LONG: SENSITIVE},
    lifetime=2 * HOUR,
).with_sliding_window(MAXIMUM)
#: The issue's policy: the seed catalog (6 h) and one CRITICAL rule, a window of 12 h.
ISSUE = Policy.default(environ={}).extend({CRIT: CRITICAL}).with_sliding_window(12 * HOUR)
ALICE = Subject("alice", "s1")
#: What a scenario does: advance the clock, then check (or peek at) an action and
#: expect it allowed or not.
Step = tuple[float, str, str, bool]


def _tenant() -> Tenant:
    return Tenant("t1", {"feature_flags": {"sensitive_actions_reauth": True}})


# Scenarios, run on every store, sync and async ------------------------------------------

#: The issue's reproducer: a six-hour rule's action a minute ago is no proof for a
#: five-minute rule whose proof is four hours old (nor for a look at it).
ISSUE_STEPS: list[Step] = [
    (4 * HOUR, "check", CRIT, False),
    (0, "check", "api_key.regenerate", True),  # the 6 h rule: allowed, renews
    (MINUTE, "check", CRIT, False),
    (0, "peek", CRIT, False),
    (0, "check", "api_key.regenerate", True),
]
#: The longest rule's renewal serves neither shorter rule.
LONG_SERVES_NO_SHORTER: list[Step] = [
    (50 * MINUTE, "check", LONG, True),  # renews the two-hour window only
    (20 * MINUTE, "check", HOURLY, False),  # the proof is 70 minutes old
    (0, "check", LONG, True),
    (0, "check", CRIT, False),
]
#: The hourly rule's renewal serves itself and the longer rule, not the shorter one.
MIDDLE_SERVES_LONGER: list[Step] = [
    (50 * MINUTE, "check", HOURLY, True),
    (50 * MINUTE, "check", HOURLY, True),  # 100 minutes after the proof, 50 after the last
    (0, "check", CRIT, False),
    (0, "peek", LONG, True),
    # 200 minutes after the proof: the two-hour rule counts from the hourly action 100
    # minutes ago (a look renewed nothing); the hourly rule has been quiet for an hour.
    (100 * MINUTE, "check", HOURLY, False),
    (0, "check", LONG, True),
]
#: Critical actions keep every longer rule alive: each renews all three windows.
CRITICAL_SERVES_ALL: list[Step] = [
    *[(280.0, "check", CRIT, True) for _ in range(26)],  # up to 2 h 1 min 20 s
    (MINUTE, "check", LONG, True),  # its proof is over two hours old
    (0, "check", HOURLY, True),
    # 300 s after the last critical action: the longer rules' actions since renewed no
    # critical window.
    (4 * MINUTE, "check", CRIT, False),
]
SCENARIOS = {
    "issue": (ISSUE, ISSUE_STEPS),
    "long-serves-no-shorter": (THREE, LONG_SERVES_NO_SHORTER),
    "middle-serves-longer": (THREE, MIDDLE_SERVES_LONGER),
    "critical-serves-all": (THREE, CRITICAL_SERVES_ALL),
}


@pytest.fixture(params=STORE_KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    with open_store(request.param, tmp_path) as opened:
        opened.put_tenant(_tenant())
        yield opened


@pytest.fixture(params=STORE_KINDS)
async def async_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    """An async store of each kind (the memory store is driven by ``run``, the others by
    ``run_async``)."""
    kind = request.param
    if kind == "memory":
        memory = MemoryStore()
        memory.put_tenant(_tenant())
        yield memory
    elif kind == "sqlite":
        async with AsyncSQLStore.sqlite(tmp_path / "stepup.sqlite3") as sqlite:
            await sqlite.create_schema()
            await sqlite.put_tenant(_tenant())
            yield sqlite
    elif kind == "postgresql":
        need(port_open("127.0.0.1", 5432), "PostgreSQL on 127.0.0.1:5432")
        postgres = AsyncSQLStore(POSTGRES_URL, prefix=f"t{uuid.uuid4().hex[:12]}_")
        await postgres.create_schema()
        try:
            await postgres.put_tenant(_tenant())
            yield postgres
        finally:
            await postgres.drop_schema()
            await postgres.aclose()
    else:
        need_shared_redis()
        prefix = redis_prefix()
        try:
            async with AsyncRedisStore(REDIS_URL, prefix=prefix) as redis_store:
                await redis_store.put_tenant(_tenant())
                yield redis_store
        finally:
            with redis.Redis.from_url(REDIS_URL) as client:
                delete_prefix(client, prefix)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_a_renewal_serves_only_rules_at_least_as_long(store: Any, scenario: str) -> None:
    policy, steps = SCENARIOS[scenario]
    clock = SettableClock(T0)
    reauth = Reauth(store, policy, clock=clock)
    reauth.record(ALICE, ["pwd"])
    for number, (gap, how, action, expected) in enumerate(steps):
        clock.advance(gap)
        decision = getattr(reauth, how)(ALICE, action, "t1")
        assert decision.ok is expected, (number, clock() - T0, how, action, decision)


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_a_renewal_serves_only_rules_at_least_as_long_async(
    async_store: Any, scenario: str
) -> None:
    policy, steps = SCENARIOS[scenario]
    clock = SettableClock(T0)
    reauth = AsyncReauth(async_store, policy, clock=clock)
    await reauth.record(ALICE, ["pwd"])
    for number, (gap, how, action, expected) in enumerate(steps):
        clock.advance(gap)
        decision = await getattr(reauth, how)(ALICE, action, "t1")
        assert decision.ok is expected, (number, clock() - T0, how, action, decision)


# The rule, against a model --------------------------------------------------------------


def _model_allows(
    action: str, now: float, proved: float, renewals: list[tuple[float, float]]
) -> bool:
    """The window's rule: the action's lifetime counts from the later of the proof and
    the last renewal by a rule whose lifetime is at most its own, never past the
    maximum after the proof."""
    lifetime = LIFETIMES[action]
    since = max([proved, *(at for at, by in renewals if by <= lifetime)])
    return now - proved < MAXIMUM and now - since < lifetime


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(1, 3 * 3600),
            st.sampled_from(["check", "peek"]),
            st.sampled_from([CRIT, HOURLY, LONG]),
        ),
        max_size=20,
    )
)
def test_every_decision_follows_the_rule(steps: list[tuple[int, str, str]]) -> None:
    store = MemoryStore()
    store.put_tenant(_tenant())
    clock = SettableClock(T0)
    reauth = Reauth(store, THREE, clock=clock)
    async_reauth = AsyncReauth(store, THREE, clock=clock)
    reauth.record(ALICE, ["pwd"])
    renewals: list[tuple[float, float]] = []
    for gap, how, action in steps:
        clock.advance(gap)
        expected = _model_allows(action, clock(), T0, renewals)
        assert asyncio.run(async_reauth.peek(ALICE, action, "t1")).ok is expected
        decision = getattr(reauth, how)(ALICE, action, "t1")
        assert decision.ok is expected, (clock() - T0, how, action, renewals)
        if expected and how == "check":
            renewals.append((clock(), LIFETIMES[action]))


def test_the_window_keeps_one_renewal_per_lifetime() -> None:
    """Only the lifetimes the policy's rules ask for, each capped at the maximum."""
    policy = Policy(
        {CRIT: CRITICAL, HOURLY: Rule(Sensitivity.SENSITIVE, lifetime=HOUR), LONG: SENSITIVE},
        lifetime=6 * HOUR,
    ).with_sliding_window(2 * HOUR)
    assert policy.lifetimes == (300.0, HOUR, 6 * HOUR)
    reauth = Reauth(MemoryStore(), policy, clock=SettableClock(T0))
    assert reauth._slide_lifetimes == (300.0, HOUR, 2 * HOUR)


def test_a_policy_names_each_lifetime_once_without_rules_that_ask_nothing() -> None:
    policy = Policy(
        {
            "a": CRITICAL,
            "b": Rule(Sensitivity.CRITICAL, lifetime=300.0),
            "c": Rule(Sensitivity.NONE, lifetime=42.0),
        },
        patterns=[("x.*", Rule(Sensitivity.SENSITIVE, lifetime=900.0))],
        lifetime=HOUR,
    )
    assert policy.lifetimes == (300.0, 900.0, HOUR)


# The renewal belongs to the session that proved ---------------------------------------


def test_both_records_kept_next_to_a_session_start_with_the_separator() -> None:
    assert _SLIDE.startswith(SESSION_RECORD_SEPARATOR)
    assert _TX_ANCHOR.startswith(SESSION_RECORD_SEPARATOR)


def test_a_session_whose_id_names_a_renewal_gets_nothing_from_it(store: Any) -> None:
    """Read as a grant (``Subject`` does not refuse the id when checking), a renewal
    proves no method: the session gets nothing, whatever the rule."""
    clock = SettableClock(T0)
    reauth = Reauth(store, THREE, clock=clock)
    reauth.record(ALICE, ["pwd"])
    clock.advance(MINUTE)
    assert reauth.check(ALICE, CRIT, "t1").ok  # renews all three lifetimes
    for lifetime in (300.0, HOUR, 2 * HOUR):
        lookalike = Subject("alice", f"s1{_SLIDE}{T0!r}/{lifetime!r}")
        assert store.get_grant("alice", lookalike.session_id) is not None  # it is there
        for action in (CRIT, HOURLY, LONG):
            assert not reauth.check(lookalike, action, "t1").ok, (lifetime, action)


def test_the_issues_lookalike_session_is_refused_too() -> None:
    store = MemoryStore()
    store.put_tenant(_tenant())
    clock = SettableClock(T0)
    reauth = Reauth(store, ISSUE, clock=clock)
    reauth.record(ALICE, ["pwd"])
    clock.advance(HOUR)
    assert reauth.check(ALICE, "api_key.regenerate", "t1").ok
    for lifetime in (300.0, 6 * HOUR):
        lookalike = Subject("alice", f"s1#slide@{T0!r}/{lifetime!r}")
        assert not reauth.check(lookalike, "api_key.regenerate", "t1").ok
    assert not reauth.check(Subject("alice", f"s1#slide@{T0!r}"), "api_key.regenerate", "t1").ok


@pytest.mark.parametrize("session_id", ["s1#slide@1700000000.0/300.0", "s1#tx-anchor", "#", "a#b"])
def test_a_session_id_with_the_separator_records_nothing(session_id: str) -> None:
    """No session can write into another's records: recording a proof for a session id
    that holds ``#`` is bad input, refused before the store, and changes nothing."""
    store = MemoryStore()
    reauth = Reauth(store, THREE, clock=SettableClock(T0))
    reauth.record(ALICE, ["pwd"])
    before = dict(store._grants)
    with pytest.raises(MalformedInputError, match=r"subject\.session_id must not contain '#'"):
        reauth.record(Subject("alice", session_id), ["pwd"])
    with pytest.raises(MalformedInputError, match="renewed_from"):
        reauth.record(ALICE, ["pwd"], renewed_from=session_id)
    with pytest.raises(MalformedInputError, match=r"subject\.session_id"):
        reauth.record_sign_in(Subject("alice", session_id), ["pwd"])
    with pytest.raises(MalformedInputError, match=r"subject\.session_id"):
        reauth.offer(Subject("alice", session_id), LONG)
    assert store._grants == before


async def test_a_session_id_with_the_separator_records_nothing_async() -> None:
    store = MemoryStore()
    reauth = AsyncReauth(store, THREE, clock=SettableClock(T0))
    with pytest.raises(MalformedInputError, match=r"subject\.session_id"):
        await reauth.record(Subject("alice", "s1#slide@1"), ["pwd"])
    assert store._grants == {}


def test_the_check_names_the_field_never_the_value() -> None:
    with pytest.raises(MalformedInputError) as raised:
        checked_subject(Subject("alice", "secret-ish#value"))
    assert "secret-ish" not in str(raised.value)
    assert checked_session_id("Zm9v-YmFy_", "sid") == "Zm9v-YmFy_"  # URL-safe base64
    assert checked_session_id("sign-in:abc", "sid") == "sign-in:abc"
