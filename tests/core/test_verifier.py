"""TOTPVerifier: every reason, the matched step, retry_at, replay, and races (threads, tasks)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from stepup.adapters.storage.memory import MemoryStore
from stepup.events import EventBus, ReplayDetected, Throttled, TwoFactorRejected, TwoFactorVerified
from stepup.records import ThrottleState
from stepup.testing import SettableClock
from stepup.throttle import ThrottlePolicy
from stepup.totp import TOTP, generate_secret
from stepup.verifier import AsyncTOTPVerifier, TOTPVerifier, VerifyReason, VerifyResult

THREADS = 32
ROUNDS = 50


@pytest.fixture
def totp() -> TOTP:
    return TOTP(generate_secret())


@pytest.fixture
def verifier(store: MemoryStore, clock: SettableClock, events: EventBus) -> TOTPVerifier:
    return TOTPVerifier(store, clock=clock, events=events)


def wrong_code(totp: TOTP, at: float, window: int = 1) -> str:
    valid = {totp.code_for_step(totp.step(at) + d) for d in range(-window - 2, window + 3)}
    return next(c for c in (f"{n:06d}" for n in range(10**6)) if c not in valid)


def test_ok_reports_the_matched_step(
    verifier: TOTPVerifier, totp: TOTP, clock: SettableClock
) -> None:
    result = verifier.verify("cred", totp, totp.at(clock()))
    assert result == VerifyResult(VerifyReason.OK, totp.step(clock()))
    assert result.ok
    assert bool(result)
    assert result.retry_at is None


@pytest.mark.parametrize("offset", [-1, 1])
def test_neighbouring_steps_match_within_the_window(
    verifier: TOTPVerifier, totp: TOTP, clock: SettableClock, offset: int
) -> None:
    step = totp.step(clock()) + offset
    result = verifier.verify("cred", totp, totp.code_for_step(step))
    assert result.reason is VerifyReason.OK
    assert result.step == step


@pytest.mark.parametrize("offset", [-2, 2, 100])
def test_steps_outside_the_window_are_invalid(
    verifier: TOTPVerifier, totp: TOTP, clock: SettableClock, offset: int
) -> None:
    code = totp.code_for_step(totp.step(clock()) + offset)
    if totp.match(code, clock(), 1) is not None:
        pytest.skip("this secret's code collides with one inside the window")
    assert verifier.verify("cred", totp, code) == VerifyResult(VerifyReason.INVALID)


def test_window_zero_accepts_only_the_current_step(
    store: MemoryStore, clock: SettableClock, totp: TOTP
) -> None:
    strict = TOTPVerifier(store, clock=clock, window=0)
    previous = totp.code_for_step(totp.step(clock()) - 1)
    if previous != totp.at(clock()):
        assert strict.verify("c", totp, previous).reason is VerifyReason.INVALID
    assert strict.verify("c", totp, totp.at(clock())).ok


def test_invalid_has_no_step_and_counts_a_failure(
    verifier: TOTPVerifier, store: MemoryStore, totp: TOTP, clock: SettableClock
) -> None:
    result = verifier.verify("cred", totp, wrong_code(totp, clock()))
    assert result == VerifyResult(VerifyReason.INVALID)
    assert not result
    assert store.throttle_state("cred").failures == 1


def test_a_code_cannot_be_used_twice(
    verifier: TOTPVerifier, totp: TOTP, clock: SettableClock
) -> None:
    code = totp.at(clock())
    assert verifier.verify("cred", totp, code).ok
    again = verifier.verify("cred", totp, code)
    assert again.reason is VerifyReason.REPLAYED
    assert again.step == totp.step(clock())
    # Still refused later in the same step and in the next one (where it is still in the window).
    clock.advance(29)
    assert verifier.verify("cred", totp, code).reason is VerifyReason.REPLAYED
    clock.advance(1)
    assert verifier.verify("cred", totp, code).reason is VerifyReason.REPLAYED


def test_an_older_code_after_a_newer_one_is_refused(
    verifier: TOTPVerifier, totp: TOTP, clock: SettableClock
) -> None:
    now = totp.step(clock())
    assert verifier.verify("cred", totp, totp.code_for_step(now + 1)).ok
    older = verifier.verify("cred", totp, totp.code_for_step(now))
    assert older.reason is VerifyReason.REPLAYED
    assert older.step == now
    assert (
        verifier.verify("cred", totp, totp.code_for_step(now - 1)).reason is VerifyReason.REPLAYED
    )


def test_the_next_step_is_accepted_after_a_replay(
    verifier: TOTPVerifier, totp: TOTP, clock: SettableClock
) -> None:
    code = totp.at(clock())
    verifier.verify("cred", totp, code)
    verifier.verify("cred", totp, code)
    clock.advance(30)
    fresh = totp.at(clock())
    if fresh == code:
        pytest.skip("consecutive codes collide for this secret")
    assert verifier.verify("cred", totp, fresh).ok


def test_credentials_have_separate_ledgers(
    verifier: TOTPVerifier, totp: TOTP, clock: SettableClock
) -> None:
    code = totp.at(clock())
    assert verifier.verify("first", totp, code).ok
    assert verifier.verify("second", totp, code).ok


def test_throttled_reports_retry_at_and_hides_the_step(
    verifier: TOTPVerifier, store: MemoryStore, totp: TOTP, clock: SettableClock
) -> None:
    policy = ThrottlePolicy()
    bad = wrong_code(totp, clock())
    results = [verifier.verify("cred", totp, bad) for _ in range(policy.free_failures + 1)]
    assert [r.retry_at for r in results[:-1]] == [None] * policy.free_failures
    retry_at = clock() + policy.base_delay
    assert results[-1] == VerifyResult(VerifyReason.INVALID, None, retry_at)
    # Even the right code is not evaluated, and the answer does not say whether it was right.
    blocked = verifier.verify("cred", totp, totp.at(clock()))
    assert blocked == VerifyResult(VerifyReason.THROTTLED, None, retry_at)
    assert verifier.verify("cred", totp, bad) == blocked
    clock.set(retry_at)
    assert verifier.verify("cred", totp, totp.at(clock())).ok
    # A success does not reset the count (issue 12 item 8): the next failure waits again.
    assert store.throttle_state("cred").failures == policy.free_failures + 1


def test_store_outage_is_unavailable_never_ok(
    failing_store: Any, clock: SettableClock, events: EventBus, recorder: Any, totp: TOTP
) -> None:
    verifier = TOTPVerifier(failing_store, clock=clock, events=events)
    result = verifier.verify("cred", totp, totp.at(clock()))
    assert result == VerifyResult(VerifyReason.UNAVAILABLE)
    assert not result
    assert failing_store.calls == ["totp_attempt"]
    assert [(e.name, getattr(e, "reason", None)) for e in recorder.events] == [
        ("TwoFactorRejected", "unavailable")
    ]


async def test_async_store_outage_is_unavailable(
    failing_store: Any, clock: SettableClock, totp: TOTP
) -> None:
    verifier = AsyncTOTPVerifier(failing_store, clock=clock)
    assert (await verifier.verify("c", totp, totp.at(clock()))).reason is VerifyReason.UNAVAILABLE


class AcceptsEverything(MemoryStore):
    """A broken store that accepts attempts without a step."""

    def totp_attempt(self, key: str, step: int | None, now: float, throttle: ThrottlePolicy) -> Any:
        return super().totp_attempt(key, 1 if step is None else step, now, throttle)


def test_a_store_accepting_no_step_fails_closed(clock: SettableClock, totp: TOTP) -> None:
    verifier = TOTPVerifier(AcceptsEverything(), clock=clock)
    assert verifier.verify("c", totp, wrong_code(totp, clock())).reason is VerifyReason.UNAVAILABLE


def test_events_for_each_reason(
    verifier: TOTPVerifier, recorder: Any, totp: TOTP, clock: SettableClock
) -> None:
    code = totp.at(clock())
    verifier.verify("cred", totp, code)
    verifier.verify("cred", totp, code)
    verifier.verify("cred", totp, "12345")
    for _ in range(3):
        verifier.verify("cred", totp, wrong_code(totp, clock()))
    verifier.verify("cred", totp, code)
    assert [type(e) for e in recorder.events] == [
        TwoFactorVerified,
        TwoFactorRejected,  # replayed
        ReplayDetected,
        TwoFactorRejected,  # malformed
        TwoFactorRejected,  # invalid (failure 2)
        TwoFactorRejected,  # invalid (failure 3)
        TwoFactorRejected,  # invalid (failure 4: blocked from now)
        Throttled,
        TwoFactorRejected,  # throttled
        Throttled,
    ]
    reasons = [e.reason for e in recorder.of(TwoFactorRejected)]
    assert reasons == ["replayed", "malformed", "invalid", "invalid", "invalid", "throttled"]
    assert recorder.of(TwoFactorVerified)[0].step == totp.step(clock())
    assert all(e.at == clock() for e in recorder.events)


def test_bad_window_is_refused(store: MemoryStore) -> None:
    for window in (-1, 11, 1.5, "1"):
        with pytest.raises(ValueError, match="window"):
            TOTPVerifier(store, window=window)  # type: ignore[arg-type]


def test_an_empty_event_bus_passed_in_is_kept(store: MemoryStore, clock: SettableClock) -> None:
    bus = EventBus()
    verifier = TOTPVerifier(store, clock=clock, events=bus)
    seen: list[object] = []
    bus.subscribe(seen.append)
    totp = TOTP(generate_secret())
    verifier.verify("c", totp, totp.at(clock()))
    assert len(seen) == 1


# races ------------------------------------------------------------------------------


def _race_threads(
    verify: Callable[[str], VerifyResult], pool: ThreadPoolExecutor, key: str
) -> list[VerifyResult]:
    barrier = threading.Barrier(THREADS)

    def one() -> VerifyResult:
        barrier.wait()
        return verify(key)

    return [f.result() for f in [pool.submit(one) for _ in range(THREADS)]]


def test_32_threads_same_code_exactly_one_wins_every_time(clock: SettableClock) -> None:
    store = MemoryStore()
    verifier = TOTPVerifier(store, clock=clock, throttle=ThrottlePolicy(free_failures=10**6))
    totp = TOTP(generate_secret())
    code = totp.at(clock())
    with ThreadPoolExecutor(THREADS) as pool:
        for round_ in range(ROUNDS):
            key = f"cred-{round_}"
            results = _race_threads(lambda k: verifier.verify(k, totp, code), pool, key)
            reasons = sorted(r.reason for r in results)
            assert reasons.count(VerifyReason.OK) == 1, f"round {round_}: {reasons}"
            assert reasons.count(VerifyReason.REPLAYED) == THREADS - 1
            assert store.throttle_state(key).last_step == totp.step(clock())


def test_32_threads_with_the_default_throttle_still_one_winner(clock: SettableClock) -> None:
    """With the real policy the losers are replays, then throttled: still never two winners."""
    store = MemoryStore()
    verifier = TOTPVerifier(store, clock=clock)
    totp = TOTP(generate_secret())
    code = totp.at(clock())
    with ThreadPoolExecutor(THREADS) as pool:
        for round_ in range(ROUNDS):
            results = _race_threads(lambda k: verifier.verify(k, totp, code), pool, f"c{round_}")
            assert [r.ok for r in results].count(True) == 1


async def test_32_tasks_same_code_exactly_one_wins_every_time(
    clock: SettableClock, yielding_store: Callable[[MemoryStore], Any]
) -> None:
    memory = MemoryStore()
    verifier = AsyncTOTPVerifier(
        yielding_store(memory), clock=clock, throttle=ThrottlePolicy(free_failures=10**6)
    )
    totp = TOTP(generate_secret())
    code = totp.at(clock())
    for round_ in range(ROUNDS):
        key = f"cred-{round_}"
        results = await asyncio.gather(*(verifier.verify(key, totp, code) for _ in range(THREADS)))
        reasons = [r.reason for r in results]
        assert reasons.count(VerifyReason.OK) == 1, f"round {round_}: {reasons}"
        assert reasons.count(VerifyReason.REPLAYED) == THREADS - 1
        # Free failures mark their time: forgiveness counts from there.
        expected = ThrottleState(THREADS - 1, clock(), totp.step(clock()))
        assert memory.throttle_state(key) == expected


async def test_async_verifier_matches_the_sync_one(clock: SettableClock) -> None:
    """Same decision code: the same sequence of inputs gives the same results."""
    totp = TOTP(generate_secret())
    inputs = [totp.at(clock()), totp.at(clock()), "x", wrong_code(totp, clock())] * 3
    sync = TOTPVerifier(MemoryStore(), clock=clock)
    asynchronous = AsyncTOTPVerifier(MemoryStore(), clock=clock)
    expected = [sync.verify("c", totp, code) for code in inputs]
    assert [await asynchronous.verify("c", totp, code) for code in inputs] == expected


async def test_the_flow_and_both_verifiers_decide_alike(
    clock: SettableClock, failing_store: Any
) -> None:
    """The verifiers drive verify_flow (run / run_async), as TwoFactor composes it. Same
    answers."""
    from stepup._flow import run, run_async
    from stepup.verifier import verify_flow

    totp = TOTP(generate_secret())
    now = totp.step(clock())
    inputs = [totp.code_for_step(now + 1), totp.code_for_step(now), "x", "", None]
    inputs += [wrong_code(totp, clock())] * 4 + [totp.code_for_step(now + 1)]
    policy = ThrottlePolicy()

    def flow(code: object) -> Any:
        return verify_flow(
            "c", totp, code, now=clock(), window=1, throttle=policy, events=EventBus()
        )

    for store_kind in ("memory", "failing"):
        stores = (
            [MemoryStore() for _ in range(4)] if store_kind == "memory" else [failing_store] * 4
        )
        sync = TOTPVerifier(stores[0], clock=clock, throttle=policy)
        asynchronous = AsyncTOTPVerifier(stores[1], clock=clock, throttle=policy)
        expected = [sync.verify("c", totp, code) for code in inputs]
        assert [await asynchronous.verify("c", totp, code) for code in inputs] == expected
        assert [run(flow(code), stores[2]) for code in inputs] == expected
        assert [await run_async(flow(code), stores[3]) for code in inputs] == expected
        assert len(set(expected)) >= (5 if store_kind == "memory" else 2)


def test_a_code_repeated_in_the_next_step_is_not_a_replay(clock: SettableClock) -> None:
    """About once in a million, a step's code equals the previous step's. The user's
    device shows it in the new step; that is a fresh step, so it must be accepted."""
    key, step = b"stepup collision search key!", 57_089_459
    totp = TOTP.from_key(key)
    verifier = TOTPVerifier(MemoryStore(), clock=clock)
    clock.set(step * 30)
    assert verifier.verify("c", totp, "617275") == VerifyResult(VerifyReason.OK, step)
    clock.set((step + 1) * 30)
    assert verifier.verify("c", totp, "617275") == VerifyResult(VerifyReason.OK, step + 1)
    assert verifier.verify("c", totp, "617275").reason is VerifyReason.REPLAYED


@pytest.mark.parametrize(
    "settings",
    [
        {"free_failures": 2**63},  # no SQL counter could hold the count
        {"free_failures": True},
        {"free_failures": 3.0},
        {"free_failures": -1},
        {"base_delay": float("nan")},
        {"max_delay": float("inf")},
        {"forget_after": "7d"},
        {"base_delay": 0},
        {"base_delay": 60.0, "max_delay": 30.0},
        {"forget_after": 60.0},
    ],
    ids=repr,
)
def test_a_throttle_policy_out_of_bounds_is_a_configuration_error(settings: Any) -> None:
    from stepup.errors import ConfigurationError

    with pytest.raises(ConfigurationError):
        ThrottlePolicy(**settings)


def test_the_most_lenient_throttle_policy_still_counts_on_every_store_column() -> None:
    policy = ThrottlePolicy(free_failures=2**31 - 1, base_delay=1, max_delay=1, forget_after=2)
    assert policy.delay_after(2**31 - 1) == 0.0
    assert policy.delay_after(2**31) == 1.0
