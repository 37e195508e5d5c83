"""The replay ledger outlives every code it could be asked about (review 3, issue 2).

A ``ThrottlePolicy`` only has to keep ``forget_after`` above ``max_delay``, and stores
may drop a key ``forget_after`` after its last write. A code stays acceptable for up to
``(2 * window + 1) * period`` seconds (90 s with the defaults), so with a shorter
``forget_after`` the last accepted step was forgotten while its code still worked: the
same code signed in twice. The flows now ask every store to keep a TOTP ledger for at
least ``code_lifetime(window, period)``, whatever the policy says: verification (sync
and async, one flow), the confirming code, and a recovery code's burn of the window.

Memory, SQLite and PostgreSQL forget by the injected clock, so the replays are tried
at the last moment the code is still inside the window. Redis forgets by its own
wall-clock TTL, so there the TTL the store was asked to set is read back instead.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from stepup.adapters.storage.memory import MemoryStore
from stepup.adapters.storage.redis import AsyncRedisStore, RedisStore
from stepup.records import ThrottleState
from stepup.testing import SettableClock
from stepup.throttle import (
    ThrottlePolicy,
    apply_attempt,
    code_lifetime,
    keep_until,
    ledger_policy,
)
from stepup.totp import TOTP, generate_secret
from stepup.twofactor import AsyncTwoFactor, TwoFactor
from stepup.verifier import AsyncTOTPVerifier, TOTPVerifier, VerifyReason
from storage.redis_cluster import delete_prefix, need_shared_redis
from storage.redis_cluster import unique_prefix as redis_prefix
from store_kinds import STORE_KINDS, open_store
from support import REDIS_URL

T0 = 1_699_999_980.0  # a step boundary: T0 + 0..29 is step T
PERIOD = 30
WINDOW = 1
#: The issue's policy: valid (forget_after > max_delay), and shorter than a code lives.
SHORT = ThrottlePolicy(base_delay=1.0, max_delay=30.0, forget_after=60.0)
#: The shortest a policy can be.
SHORTEST = ThrottlePolicy(free_failures=0, base_delay=0.5, max_delay=1.0, forget_after=1.5)
EPSILON = 0.001


def last_moment(step: int) -> float:
    """The last time (to a millisecond) at which the code of ``step`` is still accepted."""
    return (step + WINDOW + 1) * PERIOD - EPSILON


# the pure rule ---------------------------------------------------------------------


def test_a_long_enough_policy_is_passed_on_as_it_is() -> None:
    default = ThrottlePolicy()
    assert ledger_policy(default, WINDOW, PERIOD) is default
    assert ledger_policy(default, 10, 300) is default  # the longest window allowed
    assert code_lifetime(WINDOW, PERIOD) == 120.0  # 90 s a code can live, and a period


def test_a_short_policy_is_stretched_to_the_codes_lifetime_and_nothing_else() -> None:
    stretched = ledger_policy(SHORT, WINDOW, PERIOD)
    assert stretched.forget_after == code_lifetime(WINDOW, PERIOD) == 120.0
    assert (stretched.free_failures, stretched.base_delay, stretched.max_delay) == (
        SHORT.free_failures,
        SHORT.base_delay,
        SHORT.max_delay,
    )
    # the same object each time: stores cache per policy (Redis by identity)
    assert ledger_policy(SHORT, WINDOW, PERIOD) is stretched
    assert ledger_policy(SHORT, 2, PERIOD).forget_after == 180.0
    assert ledger_policy(SHORT, 0, 60).forget_after == 120.0


@given(
    window=st.integers(0, 10),
    period=st.integers(1, 300),
    offset=st.floats(0, 1, exclude_max=True),
    shift=st.integers(-10, 10),
    failures=st.integers(0, 3),
)
def test_no_store_may_forget_a_step_while_its_code_is_accepted(
    window: int, period: int, offset: float, shift: int, failures: int
) -> None:
    """Whatever step of the window is accepted (or burned) at any moment, with failures
    counted or not, the store may keep the state no shorter than that step's code lives."""
    step_now = 56_666_666
    now = (step_now + offset) * period
    accepted = step_now + max(-window, min(window, shift))
    for policy in (SHORT, SHORTEST, ThrottlePolicy()):
        ledger = ledger_policy(policy, window, period)
        before = ThrottleState(failures, now - 1.0 if failures else 0.0)
        state, _ = apply_attempt(before, accepted, now, ledger)
        assert state.last_step == accepted
        assert keep_until(state, now, ledger) >= (accepted + window + 1) * period


# through the flows, on every store ------------------------------------------------------


@dataclass
class Setup:
    service: Any  # a TwoFactor, or an AsyncTwoFactor called as if it were one
    clock: SettableClock
    store: Any
    ttl_ms: Callable[[str], int] | None  # Redis: the ledger key's remaining TTL


class Synced:
    """Calls an async service like a sync one (one event loop per call)."""

    def __init__(self, target: Any) -> None:
        self._target = target

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not inspect.iscoroutinefunction(attr):
            return attr
        return lambda *args, **kwargs: asyncio.run(attr(*args, **kwargs))


class YieldingStore:
    """The memory store behind ``async def`` methods: the async flows' driver."""

    def __init__(self, inner: MemoryStore) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)

        async def call(*args: Any) -> Any:
            await asyncio.sleep(0)
            return method(*args)

        return call


def _kind_name(kind: Any) -> str:
    return kind if isinstance(kind, str) else kind.values[0]


def _kind_marks(kind: Any) -> Any:
    return () if isinstance(kind, str) else kind.marks


CASES = [
    pytest.param((_kind_name(kind), "sync"), marks=_kind_marks(kind), id=f"{_kind_name(kind)}-sync")
    for kind in STORE_KINDS
] + [
    pytest.param(("memory", "async"), id="memory-async"),
    pytest.param(("redis", "async"), marks=pytest.mark.redis, id="redis-async"),
]


def _redis_ttl(prefix: str) -> Callable[[str], int]:
    def ttl_ms(credential_key: str) -> int:
        with redis.Redis.from_url(REDIS_URL) as client:
            return int(client.pttl(RedisStore(client, prefix=prefix).keys.attempt(credential_key)))

    return ttl_ms


@pytest.fixture(params=CASES)
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Setup]:
    kind, mode = request.param
    clock = SettableClock(T0 + 10)
    if mode == "sync":
        with open_store(kind, tmp_path) as store:
            ttl = _redis_ttl(store.keys.prefix) if isinstance(store, RedisStore) else None
            yield Setup(TwoFactor(store, clock=clock, throttle=SHORT), clock, store, ttl)
        return
    if kind == "memory":
        memory = MemoryStore()
        service = Synced(AsyncTwoFactor(YieldingStore(memory), clock=clock, throttle=SHORT))
        yield Setup(service, clock, memory, None)
        return
    need_shared_redis()
    prefix = redis_prefix()
    async_store = AsyncRedisStore(REDIS_URL, prefix=prefix)
    try:
        service = Synced(AsyncTwoFactor(async_store, clock=clock, throttle=SHORT))
        yield Setup(service, clock, async_store, _redis_ttl(prefix))
    finally:
        asyncio.run(async_store.aclose())
        with redis.Redis.from_url(REDIS_URL) as client:
            delete_prefix(client, prefix)


def enrol(setup: Setup, user: str, *, confirm_step_offset: int = 0) -> TOTP:
    enrolment = setup.service.begin_enrolment(user, user)
    phone = TOTP(enrolment.secret)
    now = setup.clock()
    confirmed = setup.service.confirm_enrolment(user, phone.at(now + confirm_step_offset * PERIOD))
    assert confirmed.ok, confirmed
    return phone


def credential_key(setup: Setup, user: str) -> str:
    store = setup.store
    getter = store.get_credential
    credential = asyncio.run(getter(user)) if inspect.iscoroutinefunction(getter) else getter(user)
    assert credential is not None
    return str(credential.credential_id)


def assert_kept_until(setup: Setup, user: str, step: int) -> None:
    """Redis: the ledger's TTL reaches past the last moment ``step``'s code is accepted
    (the store was asked for ``forget_after``, 60 s, before the fix)."""
    assert setup.ttl_ms is not None
    needed_ms = (last_moment(step) + EPSILON - setup.clock()) * 1000
    remaining = setup.ttl_ms(credential_key(setup, user))
    assert remaining > needed_ms, (remaining, needed_ms)


def test_a_code_from_the_next_step_cannot_sign_in_twice(setup: Setup) -> None:
    """The issue's reproducer at its worst moment: the code of step T+1, accepted during
    step T, tried again the last millisecond it is still inside the window."""
    phone = enrol(setup, "alice")  # step T spent by the confirmation
    setup.clock.advance(PERIOD)
    now = setup.clock()
    code, step = phone.at(now + PERIOD), phone.step(now) + 1
    assert setup.service.verify("alice", code).ok
    if setup.ttl_ms is not None:
        assert_kept_until(setup, "alice", step)
        return
    setup.clock.set(last_moment(step))
    again = setup.service.verify("alice", code)
    assert again.reason is VerifyReason.REPLAYED, again
    assert again.step == step
    # One millisecond later the code is out of the window: refused for that reason.
    setup.clock.set(last_moment(step) + EPSILON)
    assert setup.service.verify("alice", code).reason is VerifyReason.INVALID


def test_the_confirming_code_cannot_sign_in_later(setup: Setup) -> None:
    """Confirming an enrolment spends its step (the single-device flow): that code still
    cannot sign in while it stays inside the window."""
    phone = enrol(setup, "bob", confirm_step_offset=1)  # the code of step T+1
    step = phone.step(setup.clock()) + 1
    if setup.ttl_ms is not None:
        assert_kept_until(setup, "bob", step)
        return
    setup.clock.set(last_moment(step))
    again = setup.service.verify("bob", phone.code_for_step(step))
    assert again.reason is VerifyReason.REPLAYED, again


def test_a_recovery_codes_burn_lasts_as_long_as_the_burned_codes(setup: Setup) -> None:
    """Using a recovery code burns steps T-1..T+1: none of those codes may sign in
    afterwards, up to the last moment the latest of them is inside the window."""
    phone = enrol(setup, "carol")
    codes = setup.service.regenerate_recovery_codes("carol")
    setup.clock.advance(PERIOD)
    assert setup.service.use_recovery_code("carol", codes[0]).ok
    burned = phone.step(setup.clock()) + WINDOW
    if setup.ttl_ms is not None:
        assert_kept_until(setup, "carol", burned)
        return
    setup.clock.set(last_moment(burned))
    again = setup.service.verify("carol", phone.code_for_step(burned))
    assert again.reason is VerifyReason.REPLAYED, again


@pytest.mark.parametrize("verifier_class", [TOTPVerifier, AsyncTOTPVerifier])
def test_the_plain_verifier_keeps_its_ledger_as_long(verifier_class: type[Any]) -> None:
    """``TOTPVerifier`` and ``AsyncTOTPVerifier`` drive the same flow: the shortest
    policy allowed (forget_after 1.5 s) still keeps the step for the code's lifetime."""
    clock = SettableClock(T0 + 10)
    store = MemoryStore()
    verifier = verifier_class(store, clock=clock, throttle=SHORTEST)
    service = Synced(verifier) if verifier_class is AsyncTOTPVerifier else verifier
    totp = TOTP(generate_secret())
    code, step = totp.at(clock() + PERIOD), totp.step(clock()) + 1
    assert service.verify("key", totp, code).ok
    clock.set(last_moment(step))
    assert service.verify("key", totp, code).reason is VerifyReason.REPLAYED
