"""Throughput of one PostgreSQL primary and one Redis shard: the figures behind docs/capacity.md.

For a few seconds each, ``--concurrency`` coroutines on one event loop (one process,
as one async application worker) run one operation as fast as they can, every result
checked: an accepted TOTP verification (each call a new step of one of many
credentials), or an allowed re-authentication check (a fresh grant; each coroutine its
own session). Stores: ``AsyncSQLStore`` on asyncpg, ``AsyncRedisStore``. While it runs,
the server's CPU time is read from ``/proc`` (the server runs on this machine), so the
report gives both operations per second and the server's CPU seconds per operation:
what one core of the server sustains, whatever the client could drive.

    .venv/bin/python benchmarks/bench_capacity.py [--seconds 5] [--concurrency 32]

Not part of ``python -m benchmarks`` (no peer, no target); docs/capacity.md shows how
its figures were used.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REDIS_URL, on_cpu

from stepup.adapters.storage.redis import AsyncRedisStore
from stepup.adapters.storage.sql import AsyncSQLStore
from stepup.reauth import Allowed, AsyncReauth
from stepup.records import Tenant
from stepup.subject import Subject
from stepup.testing import SettableClock
from stepup.totp import TOTP, generate_secret
from stepup.verifier import AsyncTOTPVerifier, VerifyReason

POSTGRES_URL = os.environ.get(
    "STEPUP_BENCH_POSTGRES", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
TENANT, ACTION = "acme", "api_key.read"
FLAG_ON = {"feature_flags": {"sensitive_actions_reauth": True}}
T0 = 1_700_000_010.0


def _server_cpu(name: str) -> dict[str, int]:
    """Nanoseconds on a CPU so far, by ``pid/tid``, of every thread of every process
    whose command is ``name`` (all users); see :func:`common.on_cpu`."""
    found: dict[str, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # exited while being read
        if stat[stat.index("(") + 1 : stat.rindex(")")].startswith(name):
            for thread, ns in on_cpu(entry.name).items():
                found[f"{entry.name}/{thread}"] = ns
    return found


def _used(before: dict[str, int], after: dict[str, int]) -> float:
    """CPU seconds between two readings (a thread started in between: all of its time)."""
    return sum(ns - before.get(thread, 0) for thread, ns in after.items()) / 1e9


async def _drive(
    concurrency: int, seconds: float, call: Callable[[int], Awaitable[bool]], server: str
) -> tuple[float, float]:
    """Operations per second and server CPU seconds per operation."""
    done = 0
    stop = time.perf_counter() + seconds

    async def worker(index: int) -> None:
        nonlocal done
        while time.perf_counter() < stop:
            assert await call(index), "an operation did not do its work"
            done += 1

    cpu = _server_cpu(server)
    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    elapsed = time.perf_counter() - started
    used = _used(cpu, _server_cpu(server))
    return done / elapsed, used / max(done, 1)


async def measure(store: Any, server: str, concurrency: int, seconds: float) -> dict[str, Any]:
    await store.put_tenant(Tenant(TENANT, FLAG_ON))
    reauth = AsyncReauth(store)
    subjects = [Subject(f"u{i}", f"s{i}") for i in range(concurrency)]
    for subject in subjects:
        await reauth.record(subject, ["pwd"], authenticated_at=time.time() - 60)

    async def check(index: int) -> bool:
        return isinstance(await reauth.check(subjects[index], ACTION, TENANT), Allowed)

    totp = TOTP(generate_secret())
    clocks = [SettableClock(T0) for _ in range(concurrency)]
    verifiers = [AsyncTOTPVerifier(store, clock=clock, window=1) for clock in clocks]
    codes: dict[int, str] = {}
    steps = [itertools.count(1) for _ in range(concurrency)]

    async def verify(index: int) -> bool:
        # Each coroutine its own credential and clock, each call one step later.
        step = next(steps[index])
        at = T0 + 30 * step
        code = codes.get(step) or codes.setdefault(step, totp.at(at))
        clocks[index].set(at)
        result = await verifiers[index].verify(f"cap-{index}", totp, code)
        return result.reason is VerifyReason.OK

    # Once each, all at once, untimed: the pool opens its connections (a PostgreSQL
    # backend's start-up is not an operation's cost) and the scripts are loaded.
    for warm in (check, verify):
        assert all(await asyncio.gather(*(warm(i) for i in range(concurrency))))
    checks = await _drive(concurrency, seconds, check, server)
    verifies = await _drive(concurrency, seconds, verify, server)
    return {"check": checks, "verify": verifies}


async def main_async(seconds: float, concurrency: int) -> None:
    results: dict[str, dict[str, Any]] = {}
    pg = AsyncSQLStore(POSTGRES_URL, prefix=f"cap_{uuid.uuid4().hex[:8]}_", pool_size=concurrency)
    await pg.create_schema()
    try:
        results["PostgreSQL (AsyncSQLStore, asyncpg)"] = await measure(
            pg, "postgres", concurrency, seconds
        )
    finally:
        await pg.drop_schema()
        await pg.aclose()
    prefix = f"stepup-cap:{uuid.uuid4().hex[:8]}:"
    redis = AsyncRedisStore(REDIS_URL, prefix=prefix)
    try:
        results["Redis (AsyncRedisStore)"] = await measure(
            redis, "redis-server", concurrency, seconds
        )
    finally:
        keys = [key async for key in redis.client.scan_iter(match=f"{prefix}*")]
        if keys:
            await redis.client.delete(*keys)
        await redis.aclose()
    load = os.getloadavg()
    print(f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; {os.cpu_count()} CPUs")
    print(f"{'store':<38} {'operation':<8} {'ops/s':>8} {'server CPU µs/op':>17}")
    for store, rows in results.items():
        for operation, (rate, cpu) in rows.items():
            print(f"{store:<38} {operation:<8} {rate:8.0f} {cpu * 1e6:17.1f}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args(argv)
    asyncio.run(main_async(args.seconds, args.concurrency))
    return 0


if __name__ == "__main__":
    sys.exit(main())
