"""Verification cost against the number of enrolled users, on SQLite and on Redis.

For each store, three copies are filled in bulk with 1,000, 10,000 and 100,000
enrolled users (a confirmed credential with an AES-GCM sealed secret and ten recovery
hashes, and a replay-ledger entry from an earlier sign-in; see ``load.py``). Each
timed call is the whole sign-in step, ``TwoFactor.verify(user_id, code)``: load the
credential, open the secret, match the code, claim the step. Users are visited in a
shuffled order, each at a step later than their last, on a settable clock, so every
call is a real, accepted verification (all are checked). The bigger stores are timed
alternately against the 1,000-user one in the same run: a ratio near 1.0x means the
cost does not grow with the number of users. Wall-clock time.

    .venv/bin/python benchmarks/bench_scaling.py [--quick] [--markdown]
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REDIS_URL, redis_prefix, scale, wall
from harness import compare
from load import BOX, Users, load_redis, load_sql, users
from report import Row, cli

from stepup.adapters.storage.redis import RedisStore
from stepup.adapters.storage.sql import SQLStore
from stepup.testing import SettableClock
from stepup.totp import TOTP, generate_secret
from stepup.twofactor import TwoFactor
from stepup.verifier import VerifyResult

SIZES = (1_000, 10_000, 100_000)
QUICK_SIZES = (100, 300, 1_000)


class Walk:
    """Every call: the next user of a shuffled order, at a step later than their last."""

    def __init__(self, enrolled: Users, totp: TOTP, clock: SettableClock) -> None:
        self.ids = list(enrolled.ids)
        random.Random(7).shuffle(self.ids)
        self.first = enrolled.last_step + 1
        self.totp, self.clock = totp, clock
        self.codes: dict[int, str] = {}
        self.calls = 0

    def next(self) -> tuple[str, str]:
        index = self.calls
        self.calls += 1
        step = self.first + index // len(self.ids)
        code = self.codes.get(step)
        if code is None:
            code = self.codes[step] = self.totp.code_for_step(step)
        self.clock.set(step * 30 + 1)
        return self.ids[index % len(self.ids)], code


def _verifier(store: Any, enrolled: Users, totp: TOTP) -> tuple[Callable[[], None], list[Any]]:
    clock = SettableClock()
    two_factor = TwoFactor(store, box=BOX, clock=clock, window=1)
    walk = Walk(enrolled, totp, clock)
    results: list[VerifyResult] = []

    def verify() -> None:
        user_id, code = walk.next()
        results.append(two_factor.verify(user_id, code))

    return verify, results


def _rows(
    kind: str, stores: dict[int, Any], enrolled: dict[int, Users], totp: TOTP, quick: bool
) -> list[Row]:
    size = scale(quick, rounds=15, inner=200)
    calls = {count: _verifier(stores[count], enrolled[count], totp) for count in stores}
    smallest = min(stores)
    rows = []
    for count in sorted(stores)[1:]:
        result = compare(
            f"{count:,} vs {smallest:,} users",
            ("stepup", calls[count][0]),
            (f"same, {smallest:,} users", calls[smallest][0]),
            rounds=size.rounds,
            inner=size.inner,
            warmup=size.warmup,
            timer=wall,
        )
        rate = 1 / result.ours.median
        rows.append(
            Row.compared(
                f"Scaling, {kind}",
                f"TwoFactor.verify with {count:,} enrolled users",
                result,
                note=f"{rate:,.0f} verifications/s with {count:,} users, "
                f"{1 / result.theirs.median:,.0f}/s with {smallest:,} (one thread).",
            )
        )
    for count, (_, results) in calls.items():
        refused = [r for r in results if not r.ok]
        assert not refused, f"{kind}, {count} users: {len(refused)} refused: {refused[:3]}"
    return rows


def sqlite_rows(quick: bool, sizes: Sequence[int]) -> list[Row]:
    totp = TOTP(generate_secret())
    now = time.time()
    with tempfile.TemporaryDirectory(prefix="stepup-bench-") as folder, ExitStack() as stack:
        stores: dict[int, Any] = {}
        enrolled: dict[int, Users] = {}
        for count in sizes:
            store = stack.enter_context(SQLStore.sqlite(Path(folder) / f"{count}.sqlite3"))
            enrolled[count] = users(count, totp.secret, last_step=int(now // 30) - 100, now=now)
            load_sql(store, enrolled[count])
            stores[count] = store
        return _rows("SQLite", stores, enrolled, totp, quick)


def redis_rows(quick: bool, sizes: Sequence[int]) -> list[Row]:
    totp = TOTP(generate_secret())
    now = time.time()
    with redis_prefix() as prefix, ExitStack() as stack:
        stores: dict[int, Any] = {}
        enrolled: dict[int, Users] = {}
        for count in sizes:
            store = stack.enter_context(RedisStore(REDIS_URL, prefix=f"{prefix}{count}:"))
            enrolled[count] = users(count, totp.secret, last_step=int(now // 30) - 100, now=now)
            load_redis(store, enrolled[count])
            stores[count] = store
        return _rows("Redis", stores, enrolled, totp, quick)


def rows(quick: bool) -> list[Row]:
    sizes = QUICK_SIZES if quick else SIZES
    return sqlite_rows(quick, sizes) + redis_rows(quick, sizes)


def main(argv: Sequence[str] | None = None) -> int:
    return cli(__doc__.splitlines()[0], rows, argv)


if __name__ == "__main__":
    sys.exit(main())
