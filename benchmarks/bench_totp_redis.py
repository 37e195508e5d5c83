"""TOTP verify through the Redis store against one bare redis-py ``SET NX EX`` round trip.

stepup: ``TOTPVerifier.verify`` on ``RedisStore``. Every call is a real, accepted
verification by a credential never used before (the throttle check, the replay claim
and the write of the last step, in one ``EVALSHA``). The floor: ``SET key 1 NX EX 60``
on a fresh key, the least a replay claim over the network can cost. Target: stepup at
most 1.3x the floor. Both sides use a client built the same way (``RedisStore``'s own,
from the URL) and wall-clock time.

Then the async store: 64 verifications awaited together (``asyncio.gather``) against
the same 64 awaited one after another, on one event loop; the speed-up is reported.

Redis: ``STEPUP_BENCH_REDIS`` (default ``redis://127.0.0.1:6379/14``); every key is
under a fresh prefix and deleted afterwards.

    .venv/bin/python benchmarks/bench_totp_redis.py [--quick] [--markdown]
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REDIS_URL, redis_prefix, scale, wall
from harness import compare
from report import Row, Target, cli

from stepup.adapters.storage.redis import AsyncRedisStore, RedisStore
from stepup.totp import TOTP, generate_secret
from stepup.verifier import AsyncTOTPVerifier, TOTPVerifier, VerifyResult

GROUP = "TOTP verify, Redis"
TARGET = Target("at_most", 1.3)
CONCURRENT = 64


def rows(quick: bool) -> list[Row]:
    with redis_prefix() as prefix:
        return [_sync(quick, prefix), _async(quick, prefix)]


def _sync(quick: bool, prefix: str) -> Row:
    size = scale(quick, rounds=20, inner=500)
    totp = TOTP(generate_secret())
    with RedisStore(REDIS_URL, prefix=prefix) as store:
        verifier = TOTPVerifier(store, window=1)
        client = store.client
        ids: Iterator[str] = (f"cred-{i}" for i in range(size.calls))
        floor_keys: Iterator[str] = (f"{prefix}nx:{i}" for i in range(size.calls))
        live = [totp.at(time.time())]
        ours_results: list[VerifyResult] = []
        theirs_results: list[object] = []

        def refresh() -> None:
            live[0] = totp.at(time.time())

        def ours() -> None:
            ours_results.append(verifier.verify(next(ids), totp, live[0]))

        def theirs() -> None:
            theirs_results.append(client.set(next(floor_keys), "1", nx=True, ex=60))

        result = compare(
            "sync",
            ("stepup", ours),
            ("redis-py SET NX EX", theirs),
            rounds=size.rounds,
            inner=size.inner,
            warmup=size.warmup,
            before_round=refresh,
            timer=wall,
        )
    refused = [r for r in ours_results if not r.ok]
    assert not refused, f"{len(refused)} stepup verifications were refused: {refused[:3]}"
    assert all(r is True for r in theirs_results), "a SET NX on a fresh key did not set"
    return Row.compared(
        GROUP, "RedisStore, TOTPVerifier.verify (one EVALSHA)", result, target=TARGET
    )


def _async(quick: bool, prefix: str) -> Row:
    size = scale(quick, rounds=20, inner=10)
    totp = TOTP(generate_secret())
    loop = asyncio.new_event_loop()
    store = AsyncRedisStore(REDIS_URL, prefix=f"{prefix}async:")
    verifier = AsyncTOTPVerifier(store, window=1)
    counter = iter(range(10**9))
    live = [totp.at(time.time())]
    results: list[VerifyResult] = []

    def refresh() -> None:
        live[0] = totp.at(time.time())

    async def together() -> None:
        ids = [f"cred-{next(counter)}" for _ in range(CONCURRENT)]
        code = live[0]
        results.extend(await asyncio.gather(*(verifier.verify(i, totp, code) for i in ids)))

    async def one_by_one() -> None:
        ids = [f"cred-{next(counter)}" for _ in range(CONCURRENT)]
        code = live[0]
        for credential_id in ids:
            results.append(await verifier.verify(credential_id, totp, code))

    try:
        loop.run_until_complete(together())  # open the pool's connections before timing
        result = compare(
            "async",
            ("stepup", lambda: loop.run_until_complete(together())),
            ("same, one after another", lambda: loop.run_until_complete(one_by_one())),
            rounds=size.rounds,
            inner=size.inner,
            warmup=size.warmup,
            before_round=refresh,
            timer=wall,
        )
    finally:
        loop.run_until_complete(store.aclose())
        loop.close()
    refused = [r for r in results if not r.ok]
    assert not refused, f"{len(refused)} async verifications were refused: {refused[:3]}"
    return Row.compared(
        GROUP,
        f"AsyncRedisStore, {CONCURRENT} verifications at once",
        result,
        per=CONCURRENT,
        style="speedup",
        note=f"times are per verification; the peer is the same {CONCURRENT} awaited "
        "one after another on the same loop.",
    )


def main(argv: Sequence[str] | None = None) -> int:
    return cli(__doc__.splitlines()[0], rows, argv)


if __name__ == "__main__":
    sys.exit(main())
