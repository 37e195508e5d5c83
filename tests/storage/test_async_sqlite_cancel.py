"""A caller's timeout cuts short an async SQLite operation that waits for the write lock.

Another connection (any process) holds SQLite's write lock. The writes that are not on
the hot path went through aiosqlite, whose thread waited in ``BEGIN IMMEDIATE``; a
cancellation queued its rollback behind that wait, so ``asyncio.timeout(0.3)`` raised
only when ``busy_timeout`` ran out, and the store's writer lock was held all that time.
A TOTP claim (the hot path) returned at once, but its claim stayed queued in the store's
thread and landed later. Now every operation waits in the store's thread, in slices,
and a cancelled one returns within a slice, having run whole or (here) not at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from stepup.adapters.storage.sql import AsyncSQLStore
from stepup.records import AttemptOutcome, Challenge
from stepup.throttle import ThrottlePolicy

T0 = 1_700_000_000.0
BUSY_TIMEOUT = 5.0
DEADLINE = 0.3
#: Far less than BUSY_TIMEOUT: the cancel is honoured, not the busy handler's end.
PROMPT = 2.0


def _challenge(challenge_id: str) -> Challenge:
    return Challenge(challenge_id, "u", "s", T0, T0 + 3600)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[AsyncSQLStore]:
    async with AsyncSQLStore.sqlite(tmp_path / "db.sqlite3", busy_timeout=BUSY_TIMEOUT) as s:
        await s.create_schema()
        yield s


@contextlib.contextmanager
def _write_lock_held(store: AsyncSQLStore) -> Iterator[sqlite3.Connection]:
    """Another connection's write transaction, rolled back on leaving."""
    blocker = sqlite3.connect(str(store.engine.url.database), isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        yield blocker
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()


async def _cut_short(call: object) -> float:
    """Seconds until ``asyncio.timeout(DEADLINE)`` around awaiting ``call`` raised."""
    assert asyncio.iscoroutine(call)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(DEADLINE):
            await call
    return time.monotonic() - started


async def test_a_write_waiting_for_the_lock_honours_the_callers_timeout(
    store: AsyncSQLStore,
) -> None:
    await store.put_challenge(_challenge("c1"))
    with _write_lock_held(store):
        assert await _cut_short(store.take_challenge("c1", T0)) < PROMPT
        # The store is not left waiting: the next write is cut short as promptly.
        assert await _cut_short(store.put_challenge(_challenge("c2"))) < PROMPT
    # Nothing was done, and the store works once the lock is free.
    assert await store.take_challenge("c2", T0) is None
    taken = await store.take_challenge("c1", T0)
    assert taken is not None
    assert taken.challenge_id == "c1"
    assert await store.take_challenge("c1", T0) is None


async def test_a_cancelled_totp_claim_does_not_land_later(store: AsyncSQLStore) -> None:
    key, policy = "totp:alice", ThrottlePolicy()
    assert (await store.totp_attempt(key, 7, T0, policy)).outcome is AttemptOutcome.ACCEPTED
    with _write_lock_held(store):
        assert await _cut_short(store.totp_attempt(key, 8, T0, policy)) < PROMPT
        # The same claim again, waiting in the store's thread (behind whatever is there).
        again = asyncio.ensure_future(store.totp_attempt(key, 8, T0, policy))
        await asyncio.sleep(0)
        assert not again.done()
    assert (await again).outcome is AttemptOutcome.ACCEPTED  # not REPLAYED by the first


async def test_a_write_cancelled_before_its_turn_never_runs(store: AsyncSQLStore) -> None:
    await store.put_challenge(_challenge("c1"))
    await store.put_challenge(_challenge("c2"))
    with _write_lock_held(store):
        first = asyncio.ensure_future(store.take_challenge("c1", T0))
        await asyncio.sleep(0)
        assert not first.done()
        # Queued behind the first in the store's thread, and cancelled there.
        assert await _cut_short(store.take_challenge("c2", T0)) < PROMPT
    assert (await first) is not None
    assert await store.take_challenge("c2", T0) is not None


async def test_a_write_cancelled_again_while_it_ends_still_does_not_land(
    store: AsyncSQLStore,
) -> None:
    """A task cancelled a second time while its begun call ends (anyio's cancel scopes,
    Starlette's and FastAPI's, cancel at every turn of the loop) still waits for the call:
    had it gone on, the call could take the lock freed right after, behind its back."""
    await store.put_challenge(_challenge("c1"))
    with _write_lock_held(store):
        task = asyncio.ensure_future(store.take_challenge("c1", T0))
        await asyncio.sleep(0.05)  # begun in the store's thread, waiting for the lock
        task.cancel()
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    await asyncio.sleep(0.3)  # time enough for a call left running to land
    assert await store.take_challenge("c1", T0) is not None


async def test_a_cancelled_close_still_ends_the_stores_thread(tmp_path: Path) -> None:
    import threading

    def sqlite_threads() -> set[threading.Thread]:
        return {t for t in threading.enumerate() if t.name == "stepup-sqlite"}

    others = sqlite_threads()  # other tests' stores: they end on their own time
    store = AsyncSQLStore.sqlite(tmp_path / "db.sqlite3", busy_timeout=BUSY_TIMEOUT)
    await store.create_schema()
    await store.put_challenge(_challenge("c1"))
    mine = sqlite_threads() - others
    assert mine  # the store's own thread, started by its first operation
    with _write_lock_held(store):
        queued = asyncio.ensure_future(store.put_challenge(_challenge("c2")))
        await asyncio.sleep(0.05)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.1):
                await store.aclose()
    with contextlib.suppress(Exception):
        await queued
    for _ in range(30):  # the thread ends after what was queued
        if not any(thread.is_alive() for thread in mine):
            break
        await asyncio.sleep(0.1)
    assert not any(thread.is_alive() for thread in mine)
