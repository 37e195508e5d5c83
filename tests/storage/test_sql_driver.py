"""The SQL stores' driver path (issue 18): ``batch`` answers as the single reads do, a
forked child never uses its parent's kept connections, and a kept PostgreSQL
connection the server killed is replaced without the caller noticing."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text

from stepup.adapters.storage.sql import AsyncSQLStore, SQLStore
from stepup.adapters.storage.sql_ops import ABSENT, RECORD_SEPARATOR
from stepup.records import Grant, Tenant
from support import POSTGRES_URL, need, port_open

T0 = 1_700_000_000.0


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SQLStore]:
    if request.param == "sqlite":
        with SQLStore.sqlite(tmp_path / "db.sqlite3") as made:
            yield made
        return
    need(port_open("127.0.0.1", 5432), "PostgreSQL at 127.0.0.1:5432")
    made = SQLStore(POSTGRES_URL, prefix=f"t{uuid.uuid4().hex[:8]}_")
    made.create_schema()
    try:
        yield made
    finally:
        made.drop_schema()
        made.close()


def _fill(store: Any) -> list[tuple[str, tuple[Any, ...]]]:
    store.put_tenant(Tenant("acme", {"feature_flags": {"f": True}, "name": "Acme"}))
    store.put_grant(Grant("u", "s", frozenset({"pwd"}), T0), T0 + 3600)
    store.totp_attempt("k", 5, T0, _policy())
    return [
        ("get_tenant", ("acme",)),
        ("get_tenant", ("nobody",)),
        ("get_grant", ("u", "s")),
        ("get_grant", ("u", "other")),
        ("get_credential", ("nobody",)),
        ("throttle_state", ("k",)),
    ]


def _policy() -> Any:
    from stepup.throttle import ThrottlePolicy

    return ThrottlePolicy()


def test_batch_answers_as_the_single_reads(store: SQLStore) -> None:
    reads = _fill(store)
    single = tuple(getattr(store, method)(*args) for method, args in reads)
    assert store.batch(reads) == single
    for tenant in (reads[0], reads[1]):
        for grant in (reads[2], reads[3]):
            pair = (tenant, grant)  # the check's pair: one statement
            assert store.batch(pair) == (
                getattr(store, tenant[0])(*tenant[1]),
                getattr(store, grant[0])(*grant[1]),
            )
    assert store.batch(reads[:2]) == single[:2]


def test_batch_refuses_writes(store: SQLStore) -> None:
    with pytest.raises(ValueError, match="put_tenant cannot be batched"):
        store.batch((("put_tenant", (Tenant("x"),)),))


def test_a_careless_caller_cannot_change_the_check_tenant(store: SQLStore) -> None:
    """The checks share the tenant decoded from one stored text: it refuses changes, and
    an app's own read stays changeable and its own."""
    _fill(store)
    pair = (("get_tenant", ("acme",)), ("get_grant", ("u", "s")))
    first, _ = store.batch(pair)
    with pytest.raises(TypeError, match="read-only"):
        first.attributes["feature_flags"]["f"] = False  # a careless caller
    with pytest.raises(TypeError, match="read-only"):
        first.attributes.clear()
    again, _ = store.batch(pair)
    assert again.flag("f") is True
    mine = store.get_tenant("acme")
    assert mine is not None
    assert mine == again
    mine.attributes["feature_flags"]["f"] = False
    assert store.batch(pair)[0].flag("f") is True


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=st.text(st.characters(codec="utf-8", exclude_categories=["Cs"])),
    session_id=st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1),
    tenant_there=st.booleans(),
    grant_there=st.booleans(),
)
def test_the_check_read_splits_its_one_column_exactly(
    store: SQLStore, name: str, session_id: str, tenant_there: bool, grant_there: bool
) -> None:
    """The check's tenant and grant come back in one column (one GIL release fewer on
    SQLite), joined by a control character: whatever text the records hold, control
    characters included, each comes back as stored, and a missing row as ``None``."""
    tenant_id = f"t-{uuid.uuid4().hex}"
    tenant = Tenant(tenant_id, {"name": name, "feature_flags": {"f\x01\x02": True}})
    grant = Grant("u\x01", session_id, frozenset({"pwd"}), T0)
    if tenant_there:
        store.put_tenant(tenant)
    if grant_there:
        store.put_grant(grant, T0 + 3600)
    pair = (("get_tenant", (tenant_id,)), ("get_grant", ("u\x01", session_id)))
    assert store.batch(pair) == (tenant if tenant_there else None, grant if grant_there else None)
    store.revoke_grants("u\x01")
    assert store.batch(pair)[1] is None


def test_the_check_read_is_one_column(store: SQLStore) -> None:
    _fill(store)
    store.batch((("get_tenant", ("acme",)), ("get_grant", ("u", "s"))))
    assert store._driver.compiled(store._s.read_tenant_and_grant).columns == ("records",)


async def test_async_batch_answers_as_the_single_reads(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    with SQLStore.sqlite(path) as sync:
        reads = _fill(sync)
        single = tuple(getattr(sync, method)(*args) for method, args in reads)
    async with AsyncSQLStore.sqlite(path) as store:
        assert await store.batch(reads) == single
        assert await store.batch(reads[1:3]) == single[1:3]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_opens_its_own_connections(store: SQLStore) -> None:
    _fill(store)
    assert store.get_tenant("acme") is not None  # the parent keeps a connection
    kept = list(store._driver._idle)
    assert kept
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: must not touch the parent's connection
        try:
            ok = not store._driver._idle and store.get_tenant("acme") is not None
            os.write(write, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1"
    os.close(read)
    assert list(store._driver._idle) == kept
    assert store.get_tenant("acme") is not None  # the parent's connection still works


@pytest.mark.postgres
def test_a_kept_connection_the_server_killed_is_replaced_unnoticed() -> None:
    need(port_open("127.0.0.1", 5432), "PostgreSQL at 127.0.0.1:5432")
    name = f"stepup-test-{uuid.uuid4().hex[:8]}"
    store = SQLStore(
        POSTGRES_URL, prefix=f"t{uuid.uuid4().hex[:8]}_", connect_args={"application_name": name}
    )
    store.create_schema()
    admin = create_engine(POSTGRES_URL)
    try:
        _fill(store)
        assert store.get_tenant("acme") is not None
        with admin.begin() as conn:
            killed = conn.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE application_name = :name"
                ),
                {"name": name},
            ).scalar()
        assert killed >= 1
        # The kept connection is dead: the read runs on a new one, unnoticed.
        assert store.get_tenant("acme") is not None
        assert store.totp_attempt("k", 5, T0, _policy()).outcome.value == "replayed"
    finally:
        store.drop_schema()
        store.close()
        admin.dispose()


@pytest.mark.postgres
async def test_asyncpg_attempt_loses_a_race_between_read_and_write_and_reads_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """asyncpg decides a wrong code or a replay by compare-and-set: a failure another
    process counts between its read and its write is never overwritten."""
    need(port_open("127.0.0.1", 5432), "PostgreSQL at 127.0.0.1:5432")
    from stepup.adapters.storage import sql_ops
    from stepup.records import AttemptOutcome

    prefix = f"t{uuid.uuid4().hex[:8]}_"
    url = POSTGRES_URL.replace("+psycopg", "+asyncpg", 1)
    other = SQLStore(POSTGRES_URL, prefix=prefix)
    original = sql_ops.totp_attempt_swap
    races: list[str] = []

    def racing(*args: Any) -> Any:
        op = original(*args)
        request = next(op)
        answer = yield request  # the row as read
        if not races:
            races.append("raced")
            # Between the read and the write: another process counts a failure.
            assert other.totp_attempt("k", None, T0, _policy()).failures == 1
        request = op.send(answer)
        try:
            while True:
                answer = yield request
                request = op.send(answer)
        except StopIteration as stop:
            return stop.value

    async with AsyncSQLStore(url, prefix=prefix) as store:
        await store.create_schema()
        try:
            assert (await store.totp_attempt("k", 5, T0, _policy())).outcome.value == "accepted"
            monkeypatch.setattr(sql_ops, "totp_attempt_swap", racing)
            replay = await store.totp_attempt("k", 5, T0, _policy())
            assert races == ["raced"]
            assert replay.outcome is AttemptOutcome.REPLAYED
            assert replay.failures == 2  # decided on the state with the other's failure
            assert (await store.throttle_state("k")).failures == 2
        finally:
            await store.drop_schema()
            other.close()


def test_sqlite_statements_are_bound_by_position(tmp_path: Path) -> None:
    """``sqlite3`` releases the GIL to look up each named parameter; under a threaded
    server each release is a hand-off to another thread. Every statement the driver runs
    on SQLite is bound by position, from a tuple in the statement's order."""
    from sqlalchemy.sql import ClauseElement

    from stepup.adapters.storage.sql_engine import Statements as Compiler

    with SQLStore.sqlite(tmp_path / "db.sqlite3") as made:
        compile_ = Compiler(made.engine.dialect)
        found = [
            value
            for value in vars(made._s).values()
            for value in (value if isinstance(value, list | tuple) else [value])
            if isinstance(value, ClauseElement)
        ]
        assert len(found) > 20
        for statement in found:
            compiled = compile_(statement)
            assert compiled.names is not None, compiled.sql
            assert ":" not in compiled.sql.replace("::", ""), compiled.sql
        check = compile_(made._s.read_tenant_and_grant)
        # The check's markers are part of its text: only the three values are bound.
        assert check.args({"s": "sid", "u": "bob", "t": "acme"}) == ("acme", "bob", "sid")
        assert check.sql.count(f"'{ABSENT}'") == 2
        assert check.sql.count(f"'{RECORD_SEPARATOR}'") == 1
        # A value used several times is bound once, to a numbered ``?NNN``: the
        # failure's throttle arithmetic uses ``now`` a dozen times and binds it once.
        failure = compile_(made._s.count_failure)
        placeholders = made._s.count_failure.compile(dialect=made.engine.dialect).positiontup
        assert len(failure.names) == len(set(failure.names)) == len(set(placeholders)) == 10
        assert failure.sql.count("?") == len(placeholders) == 34
        now = failure.names.index("now") + 1
        assert len(re.findall(rf"\?{now}\b", failure.sql)) == placeholders.count("now") > 1
        assert not re.search(r"\?(?!\d)", failure.sql)  # every placeholder is numbered
        # A constant of the statement (``values(failures=0)``) takes its place too.
        with_constants = [c for c in map(compile_, found) if c.defaults]
        assert with_constants
        for compiled in with_constants:
            names = compiled.names or ()
            args = compiled.args({n: "x" for n in names if n not in compiled.defaults})
            assert [args[compiled.names.index(n)] for n in compiled.defaults] == list(
                compiled.defaults.values()
            )


@pytest.mark.postgres
@pytest.mark.parametrize("read_only", [False, True])
async def test_asyncpg_runs_a_write_whose_protocol_broke_once_and_a_read_twice(
    monkeypatch: pytest.MonkeyPatch, read_only: bool
) -> None:
    """asyncpg may raise its own InternalClientError after the server ran a statement: a
    write is not run again (a fresh code would come back "replayed" with a failure
    counted), a read is, on a new connection. The discard of the broken connection made
    every error look like a dropped one, and every write ran twice."""
    need(port_open("127.0.0.1", 5432), "PostgreSQL at 127.0.0.1:5432")
    import asyncpg  # type: ignore[import-untyped]

    from stepup.adapters.storage.sql_engine import AsyncDriver
    from stepup.errors import StoreUnavailableError

    original = AsyncDriver._drive
    runs: list[str] = []

    async def broken_after_running(self: Any, op: Any, driver: Any) -> Any:
        result = await original(self, op, driver)
        runs.append("ran")
        if len(runs) == 1:
            raise asyncpg.exceptions.InternalClientError("another operation is in progress")
        return result

    url = POSTGRES_URL.replace("+psycopg", "+asyncpg", 1)
    async with AsyncSQLStore(url, prefix=f"t{uuid.uuid4().hex[:8]}_") as store:
        await store.create_schema()
        try:
            monkeypatch.setattr(AsyncDriver, "_drive", broken_after_running)
            if read_only:
                assert await store.get_tenant("nobody") is None
                assert runs == ["ran", "ran"]
            else:
                with pytest.raises(StoreUnavailableError):
                    await store.totp_attempt("k", 5, T0, _policy())
                assert runs == ["ran"]
                monkeypatch.undo()
                # The one run claimed the step: the same code is a replay, counted once.
                assert (await store.throttle_state("k")).failures == 0
        finally:
            monkeypatch.undo()
            await store.drop_schema()


@pytest.mark.postgres
async def test_a_cancelled_asyncpg_operation_is_not_run_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A task cancelled (or timed out) during an operation gets its CancelledError; the
    operation was run again on a new connection and its answer returned instead."""
    need(port_open("127.0.0.1", 5432), "PostgreSQL at 127.0.0.1:5432")
    import asyncio

    from stepup.adapters.storage.sql_engine import AsyncDriver

    runs: list[str] = []

    async def cancelled(self: Any, op: Any, driver: Any) -> Any:
        runs.append("ran")
        raise asyncio.CancelledError

    url = POSTGRES_URL.replace("+psycopg", "+asyncpg", 1)
    async with AsyncSQLStore(url, prefix=f"t{uuid.uuid4().hex[:8]}_") as store:
        await store.create_schema()
        try:
            monkeypatch.setattr(AsyncDriver, "_drive", cancelled)
            with pytest.raises(asyncio.CancelledError):
                await store.totp_attempt("k", 5, T0, _policy())
            assert runs == ["ran"]
        finally:
            monkeypatch.undo()
            await store.drop_schema()
