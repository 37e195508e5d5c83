"""Redis goes away in the middle of a run: verification denies with UNAVAILABLE, never
lets a code in twice, and works again on the very next call once Redis is back.

Each test runs its own throwaway ``redis-server`` on a free loopback port, with the
durable settings the docs recommend (AOF, fsync on every write) so that a restart
keeps the replay ledger; the last test shows what a restart without persistence loses.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Iterator
from pathlib import Path

import pytest
import redis

from stepup.adapters.storage.redis import AsyncRedisStore, RedisStore
from stepup.records import AttemptOutcome, ThrottleState
from stepup.testing import SettableClock
from stepup.throttle import ThrottlePolicy
from stepup.totp import TOTP, generate_secret
from stepup.verifier import AsyncTOTPVerifier, TOTPVerifier, VerifyReason, VerifyResult
from storage.redis_cluster import RedisServer, redis_server

pytestmark = pytest.mark.redis

T0 = 1_700_000_000.0
DURABLE = ("--appendonly", "yes", "--appendfsync", "always")
#: Replays count as failures; this scenario presents many on purpose, so guessing is
#: made free here (the throttle has its own tests) and cannot mask an outcome.
LENIENT = ThrottlePolicy(free_failures=10**6, base_delay=1, max_delay=1, forget_after=3600)
ROUNDS, DOWN_AT, UP_AT = 10, 3, 7

REFUSED = {VerifyReason.REPLAYED, VerifyReason.INVALID}

Scenario = Generator[str, VerifyResult, None]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path / "redis", *DURABLE) as server:
        yield server


def outage(server: RedisServer, clock: SettableClock, totp: TOTP) -> Scenario:
    """Yields codes to verify and checks each result; kills and restarts Redis midway.

    Every round presents the current code, then every code presented so far again.
    The outage is short in the app's time (the clock stands still while Redis is
    down), so the last code accepted before the crash is still inside the window
    when Redis comes back: it must come back REPLAYED, never OK.
    """
    accepted: set[int] = set()
    presented: list[str] = []
    for round_ in range(ROUNDS):
        if round_ == DOWN_AT:
            server.kill()
        if round_ == UP_AT:
            server.start()  # same port, same files
        down = DOWN_AT <= round_ < UP_AT
        if not down:
            clock.advance(totp.period)
        if round_ == UP_AT:  # the very first call once Redis is back
            again = yield presented[-1]
            assert again.reason is VerifyReason.REPLAYED
        code = totp.at(clock())
        result = yield code
        if down:
            assert result.reason is VerifyReason.UNAVAILABLE
        else:
            assert result.reason is VerifyReason.OK
            assert result.step is not None
            assert result.step not in accepted
            accepted.add(result.step)
        for old in presented:  # older ones fall out of the window: INVALID
            again = yield old
            assert not again.ok
            assert again.reason in ({VerifyReason.UNAVAILABLE} if down else REFUSED)
        again = yield code
        assert again.reason is (VerifyReason.UNAVAILABLE if down else VerifyReason.REPLAYED)
        presented.append(code)
    assert len(accepted) == ROUNDS - (UP_AT - DOWN_AT)


def test_sync_verification_fails_closed_and_recovers(server: RedisServer) -> None:
    clock, totp = SettableClock(T0), TOTP(generate_secret())
    store = RedisStore(server.url, timeout=0.5)
    verifier = TOTPVerifier(store, clock=clock, throttle=LENIENT)
    scenario = outage(server, clock, totp)
    code = next(scenario)
    try:
        while True:
            code = scenario.send(verifier.verify("totp:alice", totp, code))
    except StopIteration:
        pass
    finally:
        store.close()


async def test_async_verification_fails_closed_and_recovers(server: RedisServer) -> None:
    clock, totp = SettableClock(T0), TOTP(generate_secret())
    async with AsyncRedisStore(server.url, timeout=0.5) as store:
        verifier = AsyncTOTPVerifier(store, clock=clock, throttle=LENIENT)
        await _drive_async(
            outage(server, clock, totp), lambda code: verifier.verify("c", totp, code)
        )


async def _drive_async(
    scenario: Scenario, verify: Callable[[str], Awaitable[VerifyResult]]
) -> None:
    code = next(scenario)
    try:
        while True:
            code = scenario.send(await verify(code))
    except StopIteration:
        return


def test_scripts_missing_on_the_server_are_sent_again(server: RedisServer) -> None:
    """After SCRIPT FLUSH (or a restart) EVALSHA answers NOSCRIPT; the store falls back
    to EVAL within the same call."""
    with RedisStore(server.url) as store, redis.Redis(port=server.port) as raw:
        assert store.totp_attempt("k", 1, T0, LENIENT).outcome is AttemptOutcome.ACCEPTED
        raw.script_flush()
        assert store.totp_attempt("k", 2, T0, LENIENT).outcome is AttemptOutcome.ACCEPTED
        assert store.revoke_grants("nobody") == 0
        assert raw.script_exists(*_shas()) == [True, True]


def _shas() -> list[str]:
    from stepup.adapters.storage.redis_scripts import ATTEMPT, REVOKE_ALL

    return [ATTEMPT.sha, REVOKE_ALL.sha]


def test_a_restart_without_persistence_forgets_the_ledger(tmp_path: Path) -> None:
    """What docs/storage-redis.md warns about: with neither AOF nor RDB, a restart
    empties the replay ledger and the throttle counters."""
    with redis_server(tmp_path / "volatile") as volatile, RedisStore(volatile.url) as store:
        store.totp_attempt("k", 100, T0, LENIENT)
        store.throttle_charge("k", T0, LENIENT)
        assert store.throttle_state("k") == ThrottleState(1, T0, 100)
        volatile.kill()
        volatile.start()
        assert store.throttle_state("k") == ThrottleState()
        assert store.totp_attempt("k", 100, T0, LENIENT).outcome is AttemptOutcome.ACCEPTED
