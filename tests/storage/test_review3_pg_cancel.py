"""A missed PostgreSQL deadline cancels the statement on the server; maintenance is not
held to a request's deadline.

Another connection holds a lock for longer than the store's ``timeout``. Each call that
waits for it answers ``unavailable`` at the deadline, as before; but the store only
closed its connection, and the server went on waiting for the lock with the statement:
one server session per failed call, however small the pool (a long migration and some
traffic used up ``max_connections`` for every client of the server), and on the sync
store (psycopg in autocommit) the statements committed once the lock was free, so
callers told "unavailable" had their failures counted, or their claim spent, after all. Now a missed deadline first sends a cancel request (psycopg:
``cancel_safe``, or libpq's cancel in a thread before libpq 17; asyncpg: its own cancel,
which closing at once had called off), so no session of the store waits on, and nothing
lands later.

``create_schema``, ``drop_schema``, ``prune`` and ``credential_user_ids`` (the operator's
``reseal`` list) ran under the same per-answer deadline, so a migration of a large table
or a large backlog could never finish; they now wait for answers as long as
``maintenance_timeout`` says (``None``, the default: as long as it takes).

Sessions are told apart by ``application_name``. Waits in these tests are the store's
own, or polls of ``pg_stat_activity`` for the server to reach a state.
"""

from __future__ import annotations

import asyncio
import math
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest

from stepup.adapters.storage.sql import AsyncSQLStore, SQLStore
from stepup.adapters.storage.sql_schema import _lock_id
from stepup.cli._stores import credential_user_ids
from stepup.errors import ConfigurationError, StoreUnavailableError
from stepup.records import Credential
from stepup.throttle import ThrottlePolicy
from support import need, port_open

pytestmark = pytest.mark.postgres

T0 = 1_700_000_000.0
#: The store's per-answer timeout in these tests.
DEADLINE = 0.5
POOL = 2
#: More failed calls than the pool has connections.
CALLS = POOL + 2
DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test"
#: (flavour, driver) of each store.
KINDS = [("sync", "psycopg"), ("async", "psycopg"), ("async", "asyncpg")]
IDS = ["sync-psycopg", "async-psycopg", "asyncpg"]


@pytest.fixture(autouse=True)
def _postgres() -> None:
    need(port_open("127.0.0.1", 5432), "PostgreSQL on 127.0.0.1:5432")


@pytest.fixture
def admin() -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(DSN, autocommit=True) as connection:
        yield connection


class Names:
    """A test's own table prefix and application name."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:12]
        self.prefix = f"c{tag}_"
        self.application = f"stepup-cancel-{tag}"


def store_options(driver: str, names: Names, **options: Any) -> dict[str, Any]:
    """The store's options: its prefix, a small pool, and its sessions named."""
    if driver == "asyncpg":
        connect_args: dict[str, Any] = {"server_settings": {"application_name": names.application}}
    else:
        connect_args = {"application_name": names.application}
    return {
        "prefix": names.prefix,
        "timeout": DEADLINE,
        "pool_size": POOL,
        "max_overflow": 0,
        "connect_args": connect_args,
        **options,
    }


def url(driver: str) -> str:
    return f"postgresql+{driver}://postgres@127.0.0.1:5432/test"


def sessions(admin: psycopg.Connection[Any], names: Names) -> tuple[int, int, int]:
    """The store's server sessions: (waiting for a lock, running a statement, all)."""
    row = admin.execute(
        "select count(*) filter (where wait_event_type = 'Lock'),"
        " count(*) filter (where state = 'active'), count(*)"
        " from pg_stat_activity where application_name = %s",
        (names.application,),
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def until(condition: Callable[[], bool], within: float = 10.0) -> bool:
    """Whether ``condition`` holds within ``within`` seconds (the server's time to act)."""
    ends = time.monotonic() + within
    while not condition():
        if time.monotonic() > ends:
            return False
        time.sleep(0.02)
    return True


def hold(statement: str) -> psycopg.Connection[Any]:
    """A connection holding what ``statement`` takes, until its rollback."""
    holder = psycopg.connect(DSN)
    holder.execute(statement)
    return holder


# A statement waiting for a lock --------------------------------------------------------


class Caller:
    """One store, sync or async, called the same way (an async one on a loop of its own)."""

    def __init__(self, flavour: str, driver: str, names: Names) -> None:
        options = store_options(driver, names)
        self.loop = asyncio.new_event_loop() if flavour == "async" else None
        self.store: Any = (
            SQLStore(url(driver), **options)
            if self.loop is None
            else AsyncSQLStore(url(driver), **options)
        )

    def __call__(self, method: str, *args: Any) -> Any:
        answer = getattr(self.store, method)(*args)
        return answer if self.loop is None else self.loop.run_until_complete(answer)

    def close(self) -> None:
        if self.loop is None:
            self.store.close()
            return
        self.loop.run_until_complete(self.store.aclose())
        self.loop.close()


@pytest.mark.parametrize(("flavour", "driver"), KINDS, ids=IDS)
def test_a_missed_deadline_cancels_the_statement_on_the_server(
    admin: psycopg.Connection[Any], flavour: str, driver: str
) -> None:
    names, policy = Names(), ThrottlePolicy()
    call = Caller(flavour, driver, names)
    call("create_schema")
    try:
        holder = hold(f'LOCK TABLE "{names.prefix}attempts" IN ACCESS EXCLUSIVE MODE')
        try:
            answers = []
            for index in range(CALLS):
                started = time.monotonic()
                with pytest.raises(StoreUnavailableError):
                    call("totp_attempt", "k", None, T0 + index, policy)  # the hot path
                answers.append(time.monotonic() - started)
                started = time.monotonic()
                with pytest.raises(StoreUnavailableError):
                    call("throttle_state", "k")  # through SQLAlchemy
                answers.append(time.monotonic() - started)
            # Every call answered at its deadline (plus the cancel's round trip).
            assert max(answers) < DEADLINE + 1.5
            # No session of the store still waits for the lock: at most the pool's
            # connections could; the old code left one per call.
            assert until(lambda: sessions(admin, names)[0] == 0)
            assert sessions(admin, names)[2] <= POOL
        finally:
            holder.rollback()
            holder.close()
        # Whatever still ran on the server is done before the state is read.
        assert until(lambda: sessions(admin, names)[1] == 0)
        # Every caller was told "unavailable", and nothing was written behind its back.
        assert call("throttle_state", "k").failures == 0
        assert call("totp_attempt", "k", None, T0 + 10, policy).outcome.value == "rejected"
        assert call("throttle_state", "k").failures == 1
    finally:
        call("drop_schema")
        call.close()


@pytest.mark.parametrize(("flavour", "driver"), KINDS, ids=IDS)
def test_a_claim_cancelled_at_its_deadline_never_lands(
    admin: psycopg.Connection[Any], flavour: str, driver: str
) -> None:
    """The claim that answered unavailable was cancelled: once the lock is free the
    step is accepted once, by the next claim, then replayed. (On the sync store the
    old claim landed when the lock was freed, and the next one was replayed.)"""
    names, policy = Names(), ThrottlePolicy()
    call = Caller(flavour, driver, names)
    call("create_schema")
    outcomes = []
    try:
        holder = hold(f'LOCK TABLE "{names.prefix}attempts" IN ACCESS EXCLUSIVE MODE')
        try:
            with pytest.raises(StoreUnavailableError):
                call("totp_attempt", "k", 7, T0, policy)
            outcomes.append("unavailable")
        finally:
            holder.rollback()
            holder.close()
        assert until(lambda: sessions(admin, names)[1] == 0)
        for _ in range(2):
            outcomes.append(call("totp_attempt", "k", 7, T0, policy).outcome.value)
    finally:
        call("drop_schema")
        call.close()
    assert outcomes == ["unavailable", "accepted", "replayed"]


def test_before_libpq_17_the_cancel_is_sent_from_a_thread() -> None:
    """Before libpq 17 psycopg has no bounded cancel: the store sends libpq's blocking
    one from a thread of its own, which psycopg's Python implementation lets wait
    aside. The tests above and the frozen-server ones run again in a child process on
    that implementation and the system's libpq."""
    environment = {**os.environ, "PSYCOPG_IMPL": "python"}
    probe = subprocess.run(
        [sys.executable, "-c", PROBE], env=environment, capture_output=True, text=True
    )
    if probe.returncode != 0 or probe.stdout.split() != ["python", "False"]:
        pytest.skip(f"no libpq before 17 for psycopg's Python implementation: {probe.stdout}")
    here = Path(__file__).parent
    child = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"),
            *(str(here / "test_review3_pg_cancel.py"), str(here / "test_review3_pg_deadline.py")),
            *("-k", "(cancels_the_statement or never_lands or frozen_server) and psycopg"),
        ],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert child.returncode == 0, child.stdout[-4000:]
    assert "\n8 passed" in child.stdout, child.stdout[-2000:]


#: Prints psycopg's implementation and whether it has a bounded cancel.
PROBE = "import psycopg; print(psycopg.pq.__impl__, psycopg.capabilities.has_cancel_safe())"


# Maintenance waits as long as it takes -------------------------------------------------


def _credential(user_id: str) -> Credential:
    return Credential(user_id, f"cred-{user_id}", "plain:JBSWY3DPEHPK3PXP", confirmed=True)


#: Each maintenance operation, and what to hold so that it waits for a lock.
MAINTENANCE = {
    "prune": 'LOCK TABLE "{prefix}attempts" IN ACCESS EXCLUSIVE MODE',
    "drop_schema": 'LOCK TABLE "{prefix}attempts" IN ACCESS EXCLUSIVE MODE',
    "create_schema": "SELECT pg_advisory_xact_lock({lock_id})",
    "credential_user_ids": 'LOCK TABLE "{prefix}credentials" IN ACCESS EXCLUSIVE MODE',
}


def _held(names: Names, operation: str) -> str:
    return MAINTENANCE[operation].format(prefix=names.prefix, lock_id=_lock_id(names.prefix))


def _waited_past_the_deadline(admin: psycopg.Connection[Any], names: Names) -> bool:
    """A session of the store has waited for a lock for twice the request deadline
    (the server's clock)."""
    row = admin.execute(
        "select count(*) from pg_stat_activity where application_name = %s"
        " and wait_event_type = 'Lock' and now() - query_start > make_interval(secs => %s)",
        (names.application, 2 * DEADLINE),
    ).fetchone()
    return row is not None and row[0] > 0


@pytest.mark.parametrize("operation", list(MAINTENANCE))
def test_sync_maintenance_outlasts_the_request_deadline(
    admin: psycopg.Connection[Any], operation: str
) -> None:
    names = Names()
    store = SQLStore(url("psycopg"), **store_options("psycopg", names))
    store.create_schema()
    store.put_credential(_credential("bob"))
    store.put_credential(_credential("alice"))
    try:
        holder = hold(_held(names, operation))
        with ThreadPoolExecutor(1) as pool:
            try:
                running: Future[Any] = pool.submit(
                    getattr(store, operation), *((T0,) if operation == "prune" else ())
                )
                assert until(lambda: running.done() or _waited_past_the_deadline(admin, names))
                assert not running.done(), running.exception()
            finally:
                holder.rollback()
                holder.close()
            answer = running.result(timeout=10)
        if operation == "credential_user_ids":
            assert answer == ["alice", "bob"]
            assert list(credential_user_ids(store)) == ["alice", "bob"]  # the operator's
    finally:
        store.drop_schema()
        store.close()


@pytest.mark.parametrize("operation", ["prune", "drop_schema", "create_schema"])
@pytest.mark.parametrize("driver", ["psycopg", "asyncpg"])
def test_async_maintenance_outlasts_the_request_deadline(
    admin: psycopg.Connection[Any], driver: str, operation: str
) -> None:
    names = Names()

    async def run() -> None:
        store = AsyncSQLStore(url(driver), **store_options(driver, names))
        await store.create_schema()
        try:
            holder = hold(_held(names, operation))
            try:
                args = (T0,) if operation == "prune" else ()
                running = asyncio.ensure_future(getattr(store, operation)(*args))
                ends = time.monotonic() + 10
                while not running.done() and not _waited_past_the_deadline(admin, names):
                    assert time.monotonic() < ends
                    await asyncio.sleep(0.02)  # the store's own task runs meanwhile
                assert not running.done(), running.exception()
            finally:
                holder.rollback()
                holder.close()
            await asyncio.wait_for(running, 10)
        finally:
            await store.drop_schema()
            await store.aclose()

    asyncio.run(run())


@pytest.mark.parametrize(("flavour", "driver"), [("sync", "psycopg"), ("async", "asyncpg")])
def test_a_maintenance_timeout_bounds_maintenance_and_cancels_too(
    admin: psycopg.Connection[Any], flavour: str, driver: str
) -> None:
    names = Names()
    options = store_options(driver, names, maintenance_timeout=DEADLINE)

    async def prune_async() -> None:
        store = AsyncSQLStore(url(driver), **options)
        await store.create_schema()
        try:
            holder = hold(_held(names, "prune"))
            try:
                with pytest.raises(StoreUnavailableError):
                    await store.prune(T0)
                assert until(lambda: sessions(admin, names)[0] == 0)
            finally:
                holder.rollback()
                holder.close()
        finally:
            await store.drop_schema()
            await store.aclose()

    if flavour == "async":
        asyncio.run(prune_async())
        return
    store = SQLStore(url(driver), **options)
    store.create_schema()
    try:
        holder = hold(_held(names, "prune"))
        try:
            with pytest.raises(StoreUnavailableError):
                store.prune(T0)
            assert until(lambda: sessions(admin, names)[0] == 0)
        finally:
            holder.rollback()
            holder.close()
    finally:
        store.drop_schema()
        store.close()


def test_maintenance_leaves_each_connection_with_the_request_deadline(
    admin: psycopg.Connection[Any],
) -> None:
    """The pooled connection that ran maintenance (no bound) answers requests with the
    request deadline again (the pool hands out the connection returned last)."""
    names, policy = Names(), ThrottlePolicy()
    store = SQLStore(url("psycopg"), **store_options("psycopg", names, pool_use_lifo=True))
    store.create_schema()
    store.prune(T0)
    try:
        holder = hold(_held(names, "prune"))
        try:
            started = time.monotonic()
            with pytest.raises(StoreUnavailableError):
                store.throttle_state("k")  # through SQLAlchemy, as maintenance
            assert time.monotonic() - started < DEADLINE + 1.5
        finally:
            holder.rollback()
            holder.close()
        assert store.totp_attempt("k", None, T0, policy).outcome.value == "rejected"
    finally:
        store.drop_schema()
        store.close()


@pytest.mark.parametrize("value", [0, -1, math.inf, math.nan, True, "60"])
def test_a_maintenance_timeout_is_none_or_a_positive_number(value: object) -> None:
    with pytest.raises(ConfigurationError, match="maintenance_timeout"):
        SQLStore(url("psycopg"), maintenance_timeout=value)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="maintenance_timeout"):
        AsyncSQLStore(url("asyncpg"), maintenance_timeout=value)  # type: ignore[arg-type]
    SQLStore(url("psycopg"), maintenance_timeout=3600).close()
