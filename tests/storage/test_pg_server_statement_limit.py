"""A statement whose answers are cut off does not stay on the server; asyncpg's
abandoned SSL negotiations log nothing.

A proxy in front of PostgreSQL forwards what the store sends but drops what the server
answers (a one-way cut), while another connection holds the store's table locked. The
store answers ``unavailable`` at its deadline, as before; but on asyncpg (whose default
``ssl=prefer`` makes its cancel connection ask for SSL first and wait for the answer,
which the cut drops) no cancel request reached the server, and the statement waited for
the lock for as long as it was held, then ran. A store built from a URL now also sets
the server's ``statement_timeout`` a little above its ``timeout`` (unless the server or
the app already set one), so the server ends such a statement itself, also behind a
partition; maintenance lifts it for its own transaction.

asyncpg set the exception of its SSL negotiation's future after the task that waited
for it had been cancelled (a caller giving up while a connection was being made, or a
cancel request called off): asyncio logged "Future exception was never retrieved" for
each.

Sessions are told apart by ``application_name``; waits are the store's own, or polls
of ``pg_stat_activity`` for the server to reach a state.
"""

from __future__ import annotations

import asyncio
import gc
import math
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest

from stepup.adapters.storage.sql import AsyncSQLStore, SQLStore
from stepup.adapters.storage.sql_engine import cancel_bound
from stepup.errors import StoreUnavailableError
from stepup.throttle import ThrottlePolicy
from support import need, port_open

pytestmark = pytest.mark.postgres

T0 = 1_700_000_000.0
#: The store's per-answer timeout in these tests.
DEADLINE = 0.5
#: The server-side limit a store with that timeout sets (milliseconds).
SERVER_LIMIT_MS = math.ceil((DEADLINE + cancel_bound(DEADLINE)) * 1000)
#: The session's statement_timeout in milliseconds.
SETTING = "SELECT setting FROM pg_settings WHERE name = 'statement_timeout'"
DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test"


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
        self.prefix = f"s{tag}_"
        self.application = f"stepup-limit-{tag}"


def connect_args(driver: str, names: Names, **settings: str) -> dict[str, Any]:
    if driver == "asyncpg":
        return {"server_settings": {"application_name": names.application, **settings}}
    options = " ".join(f"-c {name}={value}" for name, value in settings.items())
    return {"application_name": names.application, **({"options": options} if options else {})}


def waiting(admin: psycopg.Connection[Any], names: Names) -> int:
    """The store's server sessions waiting for a lock."""
    row = admin.execute(
        "select count(*) from pg_stat_activity"
        " where application_name = %s and wait_event_type = 'Lock'",
        (names.application,),
    ).fetchone()
    assert row is not None
    return int(row[0])


def waited_past(admin: psycopg.Connection[Any], names: Names, seconds: float) -> bool:
    """A session of the store has waited for a lock longer than ``seconds`` (the
    server's clock)."""
    row = admin.execute(
        "select count(*) from pg_stat_activity where application_name = %s"
        " and wait_event_type = 'Lock' and now() - query_start > make_interval(secs => %s)",
        (names.application, seconds),
    ).fetchone()
    return row is not None and row[0] > 0


def hold(statement: str) -> psycopg.Connection[Any]:
    """A connection holding what ``statement`` takes, until its rollback."""
    holder = psycopg.connect(DSN)
    holder.execute(statement)
    return holder


def until(condition: Callable[[], bool], within: float = 10.0) -> bool:
    ends = time.monotonic() + within
    while not condition():
        if time.monotonic() > ends:
            return False
        time.sleep(0.02)
    return True


async def until_async(condition: Callable[[], bool], within: float = 10.0) -> bool:
    """:func:`until` that lets the loop (the proxy, the store) run meanwhile."""
    ends = time.monotonic() + within
    while not condition():
        if time.monotonic() > ends:
            return False
        await asyncio.sleep(0.02)
    return True


class CutProxy:
    """Forwards TCP to PostgreSQL; once :meth:`cut`, the server's answers are dropped
    (what the client sends still arrives)."""

    def __init__(self) -> None:
        self.is_cut = False
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._handlers: set[asyncio.Task[Any]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    def cut(self) -> None:
        self.is_cut = True

    def heal(self) -> None:
        self.is_cut = False

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in self._writers:
            writer.close()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _handle(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._writers.append(client_out)
        server_in, server_out = await asyncio.open_connection("127.0.0.1", 5432)
        self._writers.append(server_out)
        await asyncio.gather(
            self._pipe(client_in, server_out, answers=False),
            self._pipe(server_in, client_out, answers=True),
        )

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, answers: bool
    ) -> None:
        try:
            while data := await reader.read(65536):
                if answers and self.is_cut:
                    continue  # the server's answer is lost
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()


class Unretrieved:
    """Records what the loop's exception handler is given (asyncio logs these)."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, _loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        self.seen.append(f"{context.get('message')}: {context.get('exception')!r}")


# A cut-off statement ends on the server ------------------------------------------------


@pytest.mark.parametrize("driver", ["asyncpg", "psycopg"])
def test_a_statement_whose_answers_are_cut_off_ends_on_the_server(
    admin: psycopg.Connection[Any], driver: str
) -> None:
    names, policy = Names(), ThrottlePolicy()
    handler = Unretrieved()

    async def run() -> None:
        asyncio.get_running_loop().set_exception_handler(handler)
        proxy = CutProxy()
        port = await proxy.start()
        store = AsyncSQLStore(
            f"postgresql+{driver}://postgres@127.0.0.1:{port}/test",
            prefix=names.prefix,
            timeout=DEADLINE,
            pool_size=2,
            max_overflow=0,
            connect_args=connect_args(driver, names),
        )
        try:
            await store.create_schema()
            await store.throttle_state("k")  # a connection is kept, through the proxy
            holder = hold(f'LOCK TABLE "{names.prefix}attempts" IN ACCESS EXCLUSIVE MODE')
            try:
                proxy.cut()
                with pytest.raises(StoreUnavailableError):
                    await store.totp_attempt("k", 7, T0, policy)
                # The server ends the statement itself; the old code's waited for the
                # lock as long as it was held.
                assert await until_async(lambda: waiting(admin, names) == 0, within=8)
            finally:
                holder.rollback()
                holder.close()
                proxy.heal()
            # Nothing landed behind the caller's back: the step is accepted once, now.
            answer = await store.totp_attempt("k", 7, T0, policy)
            assert answer.outcome.value == "accepted"
            await store.drop_schema()
        finally:
            await store.aclose()
            await proxy.close()
        gc.collect()

    asyncio.run(run())
    assert handler.seen == []


# The limit is set unless one is set already -------------------------------------------


def _statement_timeout_sync(store: SQLStore) -> str:
    with store.engine.connect() as connection:
        return str(connection.exec_driver_sql(SETTING).scalar())


def _statement_timeout_async(store: AsyncSQLStore) -> str:
    async def read() -> str:
        try:
            async with store.engine.connect() as connection:
                return str((await connection.exec_driver_sql(SETTING)).scalar())
        finally:
            await store.aclose()

    return asyncio.run(read())


@pytest.mark.parametrize("flavour", ["sync-psycopg", "async-psycopg", "asyncpg"])
def test_a_url_built_store_limits_each_statement_on_the_server(flavour: str) -> None:
    names = Names()
    driver = flavour.rpartition("-")[2]
    url = f"postgresql+{driver}://postgres@127.0.0.1:5432/test"
    options: dict[str, Any] = {"timeout": DEADLINE, "connect_args": connect_args(driver, names)}
    if flavour == "sync-psycopg":
        store = SQLStore(url, **options)
        try:
            shown = _statement_timeout_sync(store)
        finally:
            store.close()
    else:
        shown = _statement_timeout_async(AsyncSQLStore(url, **options))
    assert shown == str(SERVER_LIMIT_MS)


@pytest.mark.parametrize("flavour", ["sync-psycopg", "async-psycopg", "asyncpg"])
def test_a_statement_timeout_of_the_apps_own_is_kept(flavour: str) -> None:
    names = Names()
    driver = flavour.rpartition("-")[2]
    url = f"postgresql+{driver}://postgres@127.0.0.1:5432/test"
    args = connect_args(driver, names, statement_timeout="42000")
    options: dict[str, Any] = {"timeout": DEADLINE, "connect_args": args}
    if flavour == "sync-psycopg":
        store = SQLStore(url, **options)
        try:
            shown = _statement_timeout_sync(store)
        finally:
            store.close()
    else:
        shown = _statement_timeout_async(AsyncSQLStore(url, **options))
    assert shown == "42000"


# Maintenance is not cut by it ---------------------------------------------------------


def test_sync_maintenance_outlasts_the_server_limit(admin: psycopg.Connection[Any]) -> None:
    names = Names()
    store = SQLStore(
        "postgresql+psycopg://postgres@127.0.0.1:5432/test",
        prefix=names.prefix,
        timeout=DEADLINE,
        connect_args=connect_args("psycopg", names),
    )
    store.create_schema()
    try:
        holder = hold(f'LOCK TABLE "{names.prefix}attempts" IN ACCESS EXCLUSIVE MODE')
        with ThreadPoolExecutor(1) as pool:
            try:
                running = pool.submit(store.prune, T0)
                past = SERVER_LIMIT_MS / 1000 + DEADLINE
                assert until(lambda: running.done() or waited_past(admin, names, past))
                assert not running.done(), running.exception()
            finally:
                holder.rollback()
                holder.close()
            assert running.result(timeout=10) == 0
        # The connection that ran it has the request's limit again.
        assert _statement_timeout_sync(store) == str(SERVER_LIMIT_MS)
    finally:
        store.drop_schema()
        store.close()


@pytest.mark.parametrize("driver", ["asyncpg", "psycopg"])
def test_async_maintenance_outlasts_the_server_limit(
    admin: psycopg.Connection[Any], driver: str
) -> None:
    names = Names()

    async def run() -> None:
        store = AsyncSQLStore(
            f"postgresql+{driver}://postgres@127.0.0.1:5432/test",
            prefix=names.prefix,
            timeout=DEADLINE,
            pool_size=2,
            max_overflow=0,
            connect_args=connect_args(driver, names),
        )
        await store.create_schema()
        try:
            holder = hold(f'LOCK TABLE "{names.prefix}attempts" IN ACCESS EXCLUSIVE MODE')
            try:
                running = asyncio.ensure_future(store.prune(T0))
                past = SERVER_LIMIT_MS / 1000 + DEADLINE
                assert await until_async(lambda: running.done() or waited_past(admin, names, past))
                assert not running.done(), running.exception()
            finally:
                holder.rollback()
                holder.close()
            assert await asyncio.wait_for(running, 10) == 0
            async with store.engine.connect() as connection:
                shown = (await connection.exec_driver_sql(SETTING)).scalar()
            assert shown == str(SERVER_LIMIT_MS)
        finally:
            await store.drop_schema()
            await store.aclose()

    asyncio.run(run())


# asyncpg's abandoned SSL negotiation --------------------------------------------------


def test_a_timeout_longer_than_the_server_allows_is_capped() -> None:
    """statement_timeout takes at most INT_MAX milliseconds: a longer ``timeout`` (a
    valid one) must not make every connection fail."""
    names = Names()
    store = SQLStore(
        "postgresql+psycopg://postgres@127.0.0.1:5432/test",
        timeout=10**7,
        connect_args=connect_args("psycopg", names),
    )
    try:
        assert _statement_timeout_sync(store) == str(2**31 - 1)
    finally:
        store.close()
