"""The SQL stores' hot paths against the bare driver doing the same round trip.

For each store (sync ``SQLStore`` on SQLite and on PostgreSQL with psycopg; async
``AsyncSQLStore`` on SQLite and on PostgreSQL with asyncpg) and each hot path, stepup's
call is timed against the bare driver call doing the same round trip, in the same
process, round by round (the side that goes first alternates), on the wall clock:

- verify, accepted code: ``TOTPVerifier.verify``, a later step of a returning
  credential; the driver: match the code (``TOTP.match``, as any caller must), then
  claim the step with the statement shape stepup sends, ``INSERT ... ON CONFLICT DO
  UPDATE ... WHERE`` (a caller claiming steps in one round trip must claim a key's
  first step too), on a key that exists (autocommit).
- verify, wrong code: the same with a wrong code (a failure counted, under the free
  ones; a new credential every other call, as on stepup's side); the driver: match
  the code (no step), then ``INSERT ... ON CONFLICT DO UPDATE SET failures =
  failures + 1 WHERE ... RETURNING failures``: a caller counting failures must count
  them for keys never seen too, and read the count back to know the delay.
- verify, first-ever claim: the first code a credential ever presents; the driver:
  match the code, then an ``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` of a new key.
- check, allowed: ``Reauth.check``, tenant flag on, a fresh grant; the driver: one
  ``SELECT`` of the tenant's and the grant's rows (two scalar subqueries, the statement
  shape stepup sends) and ``json.loads`` of both (what a caller needs of them: the
  flag, and the grant's time and methods).
- check, required: the same without a grant (``ReauthRequired``); the driver: the same
  ``SELECT`` (the tenant, no grant), decoding the tenant.

(Until issue 18's last round the driver sides matched no code, claimed and counted
failures on rows that existed with a bare ``UPDATE``, and read one row without
decoding it: the same round trips, but less of the work a caller needs;
docs/performance-history.md has the figures against both.)

The ratio is the median over the rounds of stepup's time over the driver's in that
round (noise from other processes falls on both halves of a round alike). Targets:
at most 1.5x on PostgreSQL, at most 2x on SQLite. Every result is checked after the
run (accepted, rejected, allowed, required; the driver's row counts).

    .venv/bin/python benchmarks/bench_sql_store.py [--quick] [--markdown]

PostgreSQL comes from ``STEPUP_BENCH_POSTGRES`` (default
``postgresql+psycopg://postgres@127.0.0.1:5432/test``), under a fresh table prefix
dropped afterwards; without a server those rows are skipped with a line saying so.
"""

# The peer's SQL names a table of this run (a random name made here), never input.
# ruff: noqa: S608

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import scale, wall
from harness import Stats
from report import Measure, Row, Target, cli

from stepup.adapters.storage.sql import AsyncSQLStore, SQLStore
from stepup.reauth import Allowed, AsyncReauth, Reauth, ReauthRequired
from stepup.records import Tenant
from stepup.subject import Subject
from stepup.testing import SettableClock
from stepup.totp import TOTP, generate_secret
from stepup.verifier import AsyncTOTPVerifier, TOTPVerifier, VerifyReason

POSTGRES_URL = os.environ.get(
    "STEPUP_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
TENANT = "acme"
ACTION = "api_key.read"  # sensitive in the default catalog: the grant is read
FLAG_ON = {"feature_flags": {"sensitive_actions_reauth": True}}
ALLOWED = Subject("bob", "session-bob")
REQUIRED = Subject("eve", "session-eve")
T0 = float(int(time.time()) // 30 * 30)
PG = Target("at_most", 1.5)
LITE = Target("at_most", 2.0)

#: The driver's statements (qmark for sqlite3/aiosqlite; $n for asyncpg; %s for psycopg).
PEER_TABLE = """CREATE TABLE {t} (key TEXT PRIMARY KEY, failures INTEGER NOT NULL,
last_step BIGINT, data TEXT)"""
FIRST = (
    "INSERT INTO {t} (key, failures, last_step) VALUES (?, 0, ?) ON CONFLICT (key)"
    " DO UPDATE SET last_step = excluded.last_step WHERE {t}.last_step < excluded.last_step"
)
FAIL = (
    "INSERT INTO {t} (key, failures, last_step) VALUES (?, 1, NULL) ON CONFLICT (key)"
    " DO UPDATE SET failures = {t}.failures + 1 WHERE {t}.failures < ? RETURNING failures"
)
GRANTS = """CREATE TABLE {t}_g (user_id TEXT, session_id TEXT, data TEXT,
PRIMARY KEY (user_id, session_id))"""
READ = (
    "SELECT (SELECT data FROM {t} WHERE key = ?),"
    " (SELECT data FROM {t}_g WHERE user_id = ? AND session_id = ?)"
)


def _dollar(sql: str) -> str:
    count = itertools.count(1)
    return "".join(f"${next(count)}" if ch == "?" else ch for ch in sql)


@dataclass
class Pair:
    """One row's two sides: zero-argument callables (or coroutine functions)."""

    label: str
    ours: Callable[[], Any]
    theirs: Callable[[], Any]


def _paired(
    pair: Pair, rounds: int, inner: int, warmup: int, settle: Callable[[], None] = lambda: None
) -> tuple[Stats, Stats, float]:
    ours: list[float] = []
    theirs: list[float] = []
    for round_ in range(warmup + rounds):
        if round_ == warmup:
            settle()  # after the warm-up, which opened every connection both sides use
        timed = {}
        order = ((0, pair.ours), (1, pair.theirs))
        for side, fn in order if round_ % 2 == 0 else reversed(order):
            start = wall()
            for _ in range(inner):
                fn()
            timed[side] = (wall() - start) / inner / 1e9
        if round_ >= warmup:
            ours.append(timed[0])
            theirs.append(timed[1])
    return _result(pair, ours, theirs)


async def _paired_async(
    pair: Pair, rounds: int, inner: int, warmup: int, settle: Callable[[], None] = lambda: None
) -> tuple[Stats, Stats, float]:
    ours: list[float] = []
    theirs: list[float] = []
    for round_ in range(warmup + rounds):
        if round_ == warmup:
            settle()
        timed = {}
        order: tuple[tuple[int, Callable[[], Awaitable[Any]]], ...] = (
            (0, pair.ours),
            (1, pair.theirs),
        )
        for side, fn in order if round_ % 2 == 0 else reversed(order):
            start = wall()
            for _ in range(inner):
                await fn()
            timed[side] = (wall() - start) / inner / 1e9
        if round_ >= warmup:
            ours.append(timed[0])
            theirs.append(timed[1])
    return _result(pair, ours, theirs)


def _result(pair: Pair, ours: list[float], theirs: list[float]) -> tuple[Stats, Stats, float]:
    ratio = statistics.median(o / t for o, t in zip(ours, theirs, strict=True))
    return Stats("stepup", tuple(ours)), Stats("driver", tuple(theirs)), ratio


def _row(group: str, peer: str, target: Target, label: str, found: Any) -> Row:
    ours, theirs, ratio = found
    return Row(
        group,
        label,
        Measure.of(ours),
        peer,
        Measure.of(theirs),
        target,
        extra={"paired_ratio": ratio},
    )


class Workload:
    """The stepup side of every row, and the checks of what each call returned."""

    def __init__(self, calls: int) -> None:
        self.totp = TOTP(generate_secret())
        self.clock = SettableClock(T0)
        self.calls = calls
        # The accepted row: one credential, each call one period later than the last.
        self.codes = [self.totp.at(T0 + 30 * i) for i in range(calls + 1)]
        wrong = self.codes[0]
        # A code that matches no step near T0 (the wrong-code row's clock stays at T0).
        self.wrong = next(
            c
            for c in (f"{n:06d}" for n in range(1_000_000))
            if self.totp.match(c, T0, 1) is None and c != wrong
        )
        self.results: dict[str, list[Any]] = {}

    def record(self, name: str, value: Any) -> None:
        self.results.setdefault(name, []).append(value)

    def check(self) -> None:
        for name, values in self.results.items():
            assert values, f"{name} never ran"
            if name == "accepted" or name == "first":
                bad = [v for v in values if v.reason is not VerifyReason.OK]
            elif name == "wrong":
                bad = [v for v in values if v.reason is not VerifyReason.INVALID]
            elif name == "allowed":
                bad = [v for v in values if not isinstance(v, Allowed)]
            elif name == "required":
                bad = [v for v in values if not isinstance(v, ReauthRequired)]
            else:
                bad = [v for v in values if v != 1]  # the driver's row counts
                if name.endswith(("read", "absent")):  # the tenant, and the grant if any
                    bad = [v for v in values if v != (1 if name.endswith("absent") else 2)]
            assert not bad, f"{name}: {len(bad)} calls did not do their work: {bad[:3]}"


READ_ALLOWED = (TENANT, ALLOWED.user_id, ALLOWED.session_id)
READ_REQUIRED = (TENANT, REQUIRED.user_id, REQUIRED.session_id)


def _peer_rows(t: str, grant: Any) -> list[tuple[str, tuple[Any, ...]]]:
    """The peer's rows: the claimed credential, and the tenant and grant stored as
    stepup stores them (the same JSON text)."""
    tenant = json.dumps(Tenant(TENANT, FLAG_ON).to_dict())
    return [
        (f"INSERT INTO {t} (key, failures, last_step) VALUES ('acc', 0, 0)", ()),
        (f"INSERT INTO {t} (key, failures, data) VALUES (?, 0, ?)", (TENANT, tenant)),
        (
            f"INSERT INTO {t}_g (user_id, session_id, data) VALUES (?, ?, ?)",
            (grant.user_id, grant.session_id, json.dumps(grant.to_dict())),
        ),
    ]


def _decoded(rows: Any) -> int:
    """The tenant's and the grant's JSON decoded, as a caller needs them: how many."""
    ((tenant, grant),) = rows
    return sum(1 for value in (tenant, grant) if value is not None and json.loads(value))


def _wrong_keys() -> Callable[[], str]:
    # A fresh credential every few calls keeps each wrong code under the free failures
    # (a counted failure, never a throttled refusal that skips the write).
    counter = itertools.count()
    return lambda: f"w-{next(counter) // 2}"


# sync -----------------------------------------------------------------------------


def _sync_rows(
    group: str,
    peer: str,
    target: Target,
    store: SQLStore,
    driver: Any,
    q: str,
    size: Any,
    settle: Callable[[], None] = lambda: None,
) -> list[Row]:
    """``driver(sql, args)`` runs one statement and returns its row count (or rows)."""
    t = f"peer_{uuid.uuid4().hex[:8]}"
    store.put_tenant(Tenant(TENANT, FLAG_ON))
    reauth = Reauth(store)
    grant = reauth.record(ALLOWED, ["pwd"], authenticated_at=time.time() - 60)
    work = Workload(size.calls)
    verifier = TOTPVerifier(store, clock=work.clock, window=1)
    driver(PEER_TABLE.format(t=t), ())
    driver(GRANTS.format(t=t), ())
    for statement, args in _peer_rows(t, grant):
        driver(statement.replace("?", q), args)
    sql = {k: v.format(t=t).replace("?", q) for k, v in (("first", FIRST), ("fail", FAIL))}
    sql["read"] = READ.format(t=t).replace("?", q)
    steps = itertools.count(1)
    peer_steps = itertools.count(1)
    wrong_key, peer_wrong = _wrong_keys(), _wrong_keys()
    first_keys = (f"f-{uuid.uuid4().hex}" for _ in itertools.count())
    peer_first = (f"f-{uuid.uuid4().hex}" for _ in itertools.count())

    def accepted() -> None:
        i = next(steps)
        work.clock.set(T0 + 30 * i)
        work.record("accepted", verifier.verify("acc", work.totp, work.codes[i]))

    def wrong() -> None:
        work.clock.set(T0)
        work.record("wrong", verifier.verify(wrong_key(), work.totp, work.wrong))

    def first() -> None:
        work.clock.set(T0)
        work.record("first", verifier.verify(next(first_keys), work.totp, work.codes[0]))

    def allowed() -> None:
        work.record("allowed", reauth.check(ALLOWED, ACTION, TENANT))

    def required() -> None:
        work.record("required", reauth.check(REQUIRED, ACTION, TENANT))

    def p_claim() -> None:
        i = next(peer_steps)
        step = work.totp.match(work.codes[i], T0 + 30 * i, 1)
        work.record("driver claim", driver(sql["first"], ("acc", step)))

    def p_fail() -> None:
        step = work.totp.match(work.wrong, T0, 1)
        counted = driver(sql["fail"], (f"p{peer_wrong()}", 1000), rows=True)
        work.record("driver fail", len(counted) if step is None else 0)

    def p_first() -> None:
        step = work.totp.match(work.codes[0], T0, 1)
        work.record("driver first", driver(sql["first"], (next(peer_first), step)))

    def p_read() -> None:
        work.record("driver read", _decoded(driver(sql["read"], READ_ALLOWED, rows=True)))

    def p_absent() -> None:
        work.record("driver absent", _decoded(driver(sql["read"], READ_REQUIRED, rows=True)))

    pairs = [
        Pair("verify, accepted code", accepted, p_claim),
        Pair("verify, wrong code", wrong, p_fail),
        Pair("verify, first-ever claim", first, p_first),
        Pair("check, allowed (fresh grant)", allowed, p_read),
        Pair("check, required (no grant)", required, p_absent),
    ]
    rows = [
        _row(group, peer, target, p.label, _paired(p, size.rounds, size.inner, size.warmup, settle))
        for p in pairs
    ]
    work.check()
    driver(f"DROP TABLE {t}", ())
    driver(f"DROP TABLE {t}_g", ())
    return rows


def sqlite_rows(size: Any, folder: Path) -> list[Row]:
    store = SQLStore.sqlite(folder / "stepup.sqlite3")
    conn = sqlite3.connect(folder / "peer.sqlite3", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")

    def driver(sql: str, args: Sequence[Any], rows: bool = False) -> Any:
        cursor = conn.execute(sql, args)
        return cursor.fetchall() if rows else cursor.rowcount

    try:
        return _sync_rows(
            "SQL store vs driver, SQLite (sync)", "sqlite3", LITE, store, driver, "?", size
        )
    finally:
        store.close()
        conn.close()


def postgres_rows(size: Any, settle: Callable[[], None] = lambda: None) -> list[Row]:
    import psycopg

    store = SQLStore(POSTGRES_URL, prefix=f"bench_{uuid.uuid4().hex[:8]}_")
    store.create_schema()
    dsn = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://", 1)
    conn = psycopg.connect(dsn, autocommit=True)

    def driver(sql: str, args: Sequence[Any], rows: bool = False) -> Any:
        cursor = conn.execute(sql, args or None)
        return cursor.fetchall() if rows else cursor.rowcount

    try:
        return _sync_rows(
            "SQL store vs driver, PostgreSQL (sync, psycopg)",
            "psycopg",
            PG,
            store,
            driver,
            "%s",
            size,
            settle,
        )
    finally:
        store.drop_schema()
        store.close()
        conn.close()


# async ----------------------------------------------------------------------------


async def _async_rows(
    group: str,
    peer: str,
    target: Target,
    store: AsyncSQLStore,
    driver: Any,
    dollar: bool,
    size: Any,
    settle: Callable[[], None] = lambda: None,
) -> list[Row]:
    t = f"peer_{uuid.uuid4().hex[:8]}"
    await store.put_tenant(Tenant(TENANT, FLAG_ON))
    reauth = AsyncReauth(store)
    grant = await reauth.record(ALLOWED, ["pwd"], authenticated_at=time.time() - 60)
    work = Workload(size.calls)
    verifier = AsyncTOTPVerifier(store, clock=work.clock, window=1)

    def s(sql: str) -> str:
        text = sql.format(t=t)
        return _dollar(text) if dollar else text

    await driver(s(PEER_TABLE), ())
    await driver(s(GRANTS), ())
    for statement, args in _peer_rows(t, grant):
        await driver(_dollar(statement) if dollar else statement, args)
    steps, peer_steps = itertools.count(1), itertools.count(1)
    wrong_key, peer_wrong = _wrong_keys(), _wrong_keys()
    first_keys = (f"f-{uuid.uuid4().hex}" for _ in itertools.count())
    peer_first = (f"f-{uuid.uuid4().hex}" for _ in itertools.count())
    fail, first_sql, read = s(FAIL), s(FIRST), s(READ)

    async def accepted() -> None:
        i = next(steps)
        work.clock.set(T0 + 30 * i)
        work.record("accepted", await verifier.verify("acc", work.totp, work.codes[i]))

    async def wrong() -> None:
        work.clock.set(T0)
        work.record("wrong", await verifier.verify(wrong_key(), work.totp, work.wrong))

    async def first() -> None:
        work.clock.set(T0)
        code = work.codes[0]
        work.record("first", await verifier.verify(next(first_keys), work.totp, code))

    async def allowed() -> None:
        work.record("allowed", await reauth.check(ALLOWED, ACTION, TENANT))

    async def required() -> None:
        work.record("required", await reauth.check(REQUIRED, ACTION, TENANT))

    async def p_claim() -> None:
        i = next(peer_steps)
        step = work.totp.match(work.codes[i], T0 + 30 * i, 1)
        work.record("driver claim", await driver(first_sql, ("acc", step)))

    async def p_fail() -> None:
        step = work.totp.match(work.wrong, T0, 1)
        counted = await driver(fail, (f"p{peer_wrong()}", 1000), rows=True)
        work.record("driver fail", len(counted) if step is None else 0)

    async def p_first() -> None:
        step = work.totp.match(work.codes[0], T0, 1)
        work.record("driver first", await driver(first_sql, (next(peer_first), step)))

    async def p_read() -> None:
        work.record("driver read", _decoded(await driver(read, READ_ALLOWED, rows=True)))

    async def p_absent() -> None:
        work.record("driver absent", _decoded(await driver(read, READ_REQUIRED, rows=True)))

    pairs = [
        Pair("verify, accepted code", accepted, p_claim),
        Pair("verify, wrong code", wrong, p_fail),
        Pair("verify, first-ever claim", first, p_first),
        Pair("check, allowed (fresh grant)", allowed, p_read),
        Pair("check, required (no grant)", required, p_absent),
    ]
    rows = []
    for p in pairs:
        found = await _paired_async(p, size.rounds, size.inner, size.warmup, settle)
        rows.append(_row(group, peer, target, p.label, found))
    work.check()
    await driver(s("DROP TABLE {t}"), ())
    await driver(s("DROP TABLE {t}_g"), ())
    return rows


async def aiosqlite_rows(size: Any, folder: Path) -> list[Row]:
    import aiosqlite

    store = AsyncSQLStore.sqlite(folder / "async.sqlite3")
    await store.create_schema()
    conn = await aiosqlite.connect(folder / "async-peer.sqlite3", isolation_level=None)
    await conn.execute("PRAGMA journal_mode = WAL")
    await conn.execute("PRAGMA synchronous = NORMAL")

    async def driver(sql: str, args: Sequence[Any], rows: bool = False) -> Any:
        if rows:
            return await conn.execute_fetchall(sql, args)
        cursor = await conn.execute(sql, args)
        return cursor.rowcount

    try:
        return await _async_rows(
            "SQL store vs driver, SQLite (async)", "aiosqlite", LITE, store, driver, False, size
        )
    finally:
        await store.aclose()
        await conn.close()


async def asyncpg_rows(size: Any, settle: Callable[[], None] = lambda: None) -> list[Row]:
    import asyncpg

    url = POSTGRES_URL.replace("+psycopg", "+asyncpg", 1)
    store = AsyncSQLStore(url, prefix=f"bench_{uuid.uuid4().hex[:8]}_")
    await store.create_schema()
    conn = await asyncpg.connect(POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://"))

    async def driver(sql: str, args: Sequence[Any], rows: bool = False) -> Any:
        if rows:
            return await conn.fetch(sql, *args)
        status = await conn.execute(sql, *args)
        tail = status.rpartition(" ")[2]
        return int(tail) if tail.isdigit() else 0

    try:
        return await _async_rows(
            "SQL store vs driver, PostgreSQL (async, asyncpg)",
            "asyncpg",
            PG,
            store,
            driver,
            True,
            size,
            settle,
        )
    finally:
        await store.drop_schema()
        await store.aclose()
        await conn.close()


class _Placement:
    """Where the kernel runs the two ends of a PostgreSQL round trip, made the same for
    both sides of a row: this process on one CPU, every PostgreSQL backend serving it on
    another.

    Each connection is a backend process of its own, and the scheduler keeps a process
    where it last ran. On this two-CPU VM a round trip to a backend on this process's CPU
    takes about 45 µs and one to a backend on the other CPU about 110 µs (the wake-up of
    an idle virtual CPU), so a side whose connection happened to land next to this
    process won by 2.5x while doing the same work (docs/performance-history.md). Pinning puts
    every round trip of both sides across CPUs, as a database on another machine would
    be. Best effort: without ``sched_setaffinity``, two CPUs or the right to move the
    backends (they belong to the postgres user: run as root), nothing is pinned and the
    notes say so. Restored afterwards."""

    def __init__(self, quick: bool) -> None:
        cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        self.enabled = not quick and len(cpus) >= 2
        self.mine, self.theirs = (cpus[:1], cpus[1:2]) if self.enabled else ([], [])
        self._before = set(cpus)
        self.pinned = 0

    def __enter__(self) -> _Placement:
        if self.enabled:
            os.sched_setaffinity(0, self.mine)
        return self

    def __exit__(self, *_: object) -> None:
        if self.enabled:
            os.sched_setaffinity(0, self._before)

    def settle(self) -> None:
        """Move every backend of the benchmark's database to the other CPU."""
        if not self.enabled:
            return
        import psycopg

        dsn = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(dsn, autocommit=True) as conn:
            pids = [
                pid
                for (pid,) in conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend'"
                    " AND datname = current_database() AND pid <> pg_backend_pid()"
                )
            ]
        for pid in pids:
            try:
                os.sched_setaffinity(pid, self.theirs)
                self.pinned += 1
            except OSError:  # not ours to move, or gone
                pass


def _postgres_reachable() -> bool:
    import psycopg

    try:
        dsn = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://", 1)
        psycopg.connect(dsn, connect_timeout=2).close()
        return True
    except Exception:
        return False


def rows(quick: bool) -> list[Row]:
    # SQLite calls take microseconds, PostgreSQL writes milliseconds (a durable commit):
    # more calls per round where they are cheap, so a round outlasts a scheduler blip.
    lite = scale(quick, rounds=25, inner=200)
    size = scale(quick, rounds=15, inner=60)
    found: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="stepup-bench-") as name:
        folder = Path(name)
        found += sqlite_rows(lite, folder)
        found += asyncio.run(aiosqlite_rows(lite, folder))
        if _postgres_reachable():
            with _Placement(quick) as placement:
                found += postgres_rows(size, placement.settle)
                found += asyncio.run(asyncpg_rows(size, placement.settle))
            where = (
                f"this process on CPU {placement.mine}, {placement.pinned} backends moved to"
                f" CPU {placement.theirs}"
                if placement.enabled
                else "not pinned"
            )
            found = [
                replace(row, note=f"PostgreSQL placement: {where}.")
                if row.group.startswith("SQL store vs driver, PostgreSQL")
                else row
                for row in found
            ]
        else:
            print("PostgreSQL unreachable: its rows are skipped", file=sys.stderr)
    return found


def main(argv: Sequence[str] | None = None) -> int:
    return cli(__doc__.splitlines()[0], rows, argv)


if __name__ == "__main__":
    sys.exit(main())
