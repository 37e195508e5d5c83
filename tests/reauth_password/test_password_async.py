"""The async twin: argon2 runs off the event loop, and concurrent guesses stay throttled."""

from __future__ import annotations

import asyncio
import threading

from argon2 import PasswordHasher

from reauth_password.helpers import AsyncAttempts, CountingHasher
from stepup.adapters.idp.password import (
    CHEAPEST,
    AsyncPasswordReauth,
    PasswordReason,
    hash_password,
)
from stepup.adapters.storage.memory import MemoryStore
from stepup.testing import SettableClock
from stepup.throttle import ThrottlePolicy

PASSWORD = "correct horse battery staple"


class RendezvousHasher(PasswordHasher):
    """Each verify waits until the other one has started too.

    If argon2 ran on the event loop thread, the first verify would hold the loop at
    the barrier, the second could never start, and the barrier would break.
    """

    def __init__(self, parties: int) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1, hash_len=4, salt_len=8)
        self.barrier = threading.Barrier(parties, timeout=10)
        self.threads: set[int] = set()

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.threads.add(threading.get_ident())
        self.barrier.wait()
        return super().verify(hash, password)


async def test_verify_does_not_block_the_event_loop(clock: SettableClock) -> None:
    hasher = RendezvousHasher(parties=2)
    reauth = AsyncPasswordReauth(AsyncAttempts(MemoryStore()), hasher=hasher, clock=clock)
    stored = hash_password(PASSWORD, hasher=hasher)
    first, second = await asyncio.gather(
        reauth.verify("alice", PASSWORD, stored),
        reauth.verify("bob", PASSWORD, stored),
    )
    assert first.ok
    assert second.ok
    assert threading.get_ident() not in hasher.threads
    assert len(hasher.threads) == 2


async def test_unknown_user_work_also_runs_off_the_loop(clock: SettableClock) -> None:
    hasher = RendezvousHasher(parties=2)
    reauth = AsyncPasswordReauth(MemoryStore(), hasher=hasher, clock=clock)
    stored = hash_password(PASSWORD, hasher=hasher)
    known, unknown = await asyncio.gather(
        reauth.verify("alice", PASSWORD, stored),
        reauth.verify("ghost", PASSWORD, None),
    )
    assert known.reason is PasswordReason.OK
    assert unknown.reason is PasswordReason.UNKNOWN_USER


async def test_32_concurrent_guesses_evaluate_only_the_free_ones(
    clock: SettableClock,
) -> None:
    hasher = CountingHasher.from_parameters(CHEAPEST)
    assert isinstance(hasher, CountingHasher)
    reauth = AsyncPasswordReauth(
        AsyncAttempts(MemoryStore()),
        hasher=hasher,
        clock=clock,
        throttle=ThrottlePolicy(free_failures=3),
    )
    stored = hash_password(PASSWORD, hasher=hasher)
    results = await asyncio.gather(
        *(reauth.verify("alice", f"guess-{n}", stored) for n in range(32))
    )
    reasons = [r.reason for r in results]
    assert reasons.count(PasswordReason.WRONG_PASSWORD) == 4
    assert reasons.count(PasswordReason.THROTTLED) == 28
    assert len(hasher.verified) == 4


async def test_async_twin_accepts_a_sync_store(clock: SettableClock) -> None:
    hasher = PasswordHasher.from_parameters(CHEAPEST)
    reauth = AsyncPasswordReauth(MemoryStore(), hasher=hasher, clock=clock)
    assert (await reauth.verify("alice", PASSWORD, hash_password(PASSWORD, hasher=hasher))).ok
