"""The SQL store: the shipped contract suite on SQLite, PostgreSQL, aiosqlite and async
PostgreSQL, then what only a SQL store has (schema, restarts, pruning, configuration)."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import column, inspect, select, table, text
from sqlalchemy.pool import NullPool

from stepup.adapters.storage.base import AsyncStore, Store
from stepup.adapters.storage.sql import AsyncSQLStore, SQLStore, default_sqlite_path
from stepup.adapters.storage.sql_schema import SCHEMA_VERSION
from stepup.errors import ConfigurationError
from stepup.records import (
    AttemptOutcome,
    Challenge,
    Credential,
    Grant,
    Passkey,
    Tenant,
    ThrottleState,
)
from stepup.testing import SettableClock
from stepup.testing.contract import StoreContract
from stepup.throttle import ThrottlePolicy
from stepup.totp import TOTP, generate_secret
from stepup.twofactor import TwoFactor
from stepup.verifier import TOTPVerifier, VerifyReason
from support import POSTGRES_URL, need, port_open

T0 = 1_700_000_000.0
POLICY = ThrottlePolicy()
ASYNC_POSTGRES_URL = POSTGRES_URL.replace("+psycopg", "+asyncpg", 1)


def unique_prefix() -> str:
    return f"t{uuid.uuid4().hex[:12]}_"


def need_postgres() -> None:
    need(port_open("127.0.0.1", 5432), "PostgreSQL on 127.0.0.1:5432")


@pytest.fixture(scope="module")
def sqlite_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sql") / "stepup.sqlite3"


@pytest.fixture(scope="module")
def sqlite_store(sqlite_file: Path) -> Iterator[SQLStore]:
    store = SQLStore.sqlite(sqlite_file)
    yield store
    store.close()


@pytest.fixture(scope="module")
def pg_store() -> Iterator[SQLStore]:
    need_postgres()
    store = SQLStore(POSTGRES_URL, prefix=unique_prefix())
    store.create_schema()
    yield store
    store.drop_schema()
    store.close()


# The contract suite, unchanged ---------------------------------------------------


class TestSQLiteStore(StoreContract):
    @pytest.fixture
    def store(self, sqlite_store: SQLStore) -> SQLStore:
        return sqlite_store


class TestPostgresStore(StoreContract):
    @pytest.fixture
    def store(self, pg_store: SQLStore) -> SQLStore:
        return pg_store


# The suite runs each async test on its own event loop and awaits the store's aclose()
# on it; pooled async connections belong to that loop, so one store per test.


@pytest.fixture(scope="module")
def aiosqlite_url(sqlite_file: Path, sqlite_store: SQLStore) -> str:
    return f"sqlite+aiosqlite:///{sqlite_file}"  # tables made by sqlite_store


@pytest.fixture(scope="module")
def async_pg_prefix() -> Iterator[str]:
    need_postgres()
    prefix = unique_prefix()
    store = AsyncSQLStore(ASYNC_POSTGRES_URL, prefix=prefix, poolclass=NullPool)
    asyncio.run(store.create_schema())
    yield prefix
    asyncio.run(store.drop_schema())


class TestAioSQLiteStore(StoreContract):
    @pytest.fixture
    def store(self, aiosqlite_url: str) -> AsyncSQLStore:
        return AsyncSQLStore(aiosqlite_url)


class TestAsyncPostgresStore(StoreContract):
    @pytest.fixture
    def store(self, async_pg_prefix: str) -> AsyncSQLStore:
        return AsyncSQLStore(ASYNC_POSTGRES_URL, prefix=async_pg_prefix)


# Protocols ------------------------------------------------------------------------


def test_stores_implement_the_protocols(sqlite_store: SQLStore) -> None:
    assert isinstance(sqlite_store, Store)
    names = [n for n in dir(AsyncStore) if not n.startswith("_")]
    assert names
    async_store = AsyncSQLStore.sqlite(sqlite_store.engine.url.database)
    for name in names:
        assert asyncio.iscoroutinefunction(getattr(async_store, name)), name


# Schema ---------------------------------------------------------------------------


def test_create_schema_is_idempotent_and_keeps_data(tmp_path: Path) -> None:
    store = SQLStore.sqlite(tmp_path / "db.sqlite3")
    store.put_tenant(Tenant("acme", {"name": "Acme"}))
    assert store.create_schema() == SCHEMA_VERSION
    assert store.create_schema() == SCHEMA_VERSION
    assert store.get_tenant("acme") == Tenant("acme", {"name": "Acme"})
    with store.engine.connect() as conn:
        version = conn.execute(text("SELECT version FROM stepup_schema_version")).all()
        tables = set(inspect(conn).get_table_names())
    assert version == [(SCHEMA_VERSION,)]
    assert tables == {
        "stepup_attempts",
        "stepup_challenges",
        "stepup_credentials",
        "stepup_grants",
        "stepup_passkeys",
        "stepup_recovery_hashes",
        "stepup_schema_version",
        "stepup_tenants",
    }


def test_prefixes_keep_stores_apart(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    one, two = SQLStore.sqlite(path, prefix="one_"), SQLStore.sqlite(path, prefix="two_")
    one.totp_attempt("k", 5, T0, POLICY)
    assert two.totp_attempt("k", 5, T0, POLICY).outcome is AttemptOutcome.ACCEPTED
    assert one.totp_attempt("k", 5, T0, POLICY).outcome is AttemptOutcome.REPLAYED


def test_schema_from_a_newer_stepup_is_refused(tmp_path: Path) -> None:
    store = SQLStore.sqlite(tmp_path / "db.sqlite3")
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE stepup_schema_version SET version = :v"), {"v": 99})
    with pytest.raises(ConfigurationError, match="upgrade stepup"):
        store.create_schema()


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_credentials_of_schema_2_upgrade_to_versions(tmp_path: Path, engine: str) -> None:
    """Schema 2 had no credentials.version: create_schema() adds it, stored credentials
    start at version 0, and their first compare-and-set moves them on."""
    if engine == "sqlite":
        store = SQLStore.sqlite(tmp_path / "db.sqlite3")
    else:
        need_postgres()
        store = SQLStore(POSTGRES_URL, prefix=unique_prefix())
        store.create_schema()
    p = store.prefix
    record = {"user_id": "alice", "credential_id": "totp-1", "secret": "plain:S", "digits": 6}
    credentials = table(f"{p}credentials", column("user_id"), column("data"))
    hashes = table(f"{p}recovery_hashes", column("user_id"), column("position"), column("digest"))
    try:
        with store.engine.begin() as conn:  # the tables as stepup with schema 2 left them
            conn.execute(text(f"DROP TABLE {p}credentials"))
            conn.execute(
                text(f"CREATE TABLE {p}credentials (user_id TEXT PRIMARY KEY, data TEXT NOT NULL)")
            )
            conn.execute(credentials.insert().values(user_id="alice", data=json.dumps(record)))
            conn.execute(
                hashes.insert(),
                [
                    {"user_id": "alice", "position": i, "digest": d}
                    for i, d in enumerate(["h1", "h2"])
                ],
            )
            conn.execute(table(f"{p}schema_version", column("version")).update().values(version=2))
        assert store.create_schema() == SCHEMA_VERSION
        stored = store.get_credential("alice")
        assert stored == Credential("alice", "totp-1", "plain:S", recovery_hashes=("h1", "h2"))
        assert stored is not None
        assert stored.version == 0
        assert store.replace_credential(replace(stored, secret="plain:T"), 1) is False
        assert store.replace_credential(replace(stored, secret="plain:T"), 0) is True
        assert store.consume_recovery_hash("alice", "h1") is True
        assert store.get_credential("alice") == replace(
            stored, secret="plain:T", recovery_hashes=("h2",), version=2
        )
    finally:
        if engine == "postgresql":
            store.drop_schema()
        store.close()


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_schema_3_upgrades_with_an_empty_passkeys_table(tmp_path: Path, engine: str) -> None:
    """Schema 3 had no passkeys table: create_schema() adds it (and its user index),
    moves the version to 4 and leaves everything else as it was."""
    if engine == "sqlite":
        store = SQLStore.sqlite(tmp_path / "db.sqlite3")
    else:
        need_postgres()
        store = SQLStore(POSTGRES_URL, prefix=unique_prefix())
        store.create_schema()
    p = store.prefix
    credential = Credential("alice", "totp-1", "plain:S", recovery_hashes=("h1",))
    versions = table(f"{p}schema_version", column("version"))
    try:
        store.put_credential(credential)
        stored = store.get_credential("alice")
        assert stored is not None
        with store.engine.begin() as conn:  # the tables as stepup with schema 3 left them
            conn.execute(text(f"DROP TABLE {p}passkeys"))
            conn.execute(versions.update().values(version=3))
        assert SCHEMA_VERSION == 4
        assert store.create_schema() == 4
        with store.engine.connect() as conn:
            assert conn.execute(select(versions.c.version)).all() == [(4,)]
            indexes = inspect(conn).get_indexes(f"{p}passkeys")
        assert [i["column_names"] for i in indexes] == [["user_id"]]
        assert store.get_credential("alice") == replace(credential, version=stored.version)
        assert store.list_passkeys("alice") == ()
        passkey = Passkey("alice", "cred-1", "key", "Laptop", created_at=T0)
        assert store.add_passkey(passkey, 10) is True
        assert store.add_passkey(replace(passkey, user_id="bob"), 10) is False
        assert store.list_passkeys("alice") == (passkey,)
        assert store.create_schema() == 4  # and again: nothing changes
        assert store.list_passkeys("alice") == (passkey,)
    finally:
        if engine == "postgresql":
            store.drop_schema()
        store.close()


@pytest.mark.parametrize("prefix", ["", "Stepup_", "1x_", "a-b_", "x" * 40, "a;drop table"])
def test_bad_prefixes_are_refused(tmp_path: Path, prefix: str) -> None:
    with pytest.raises(ConfigurationError):
        SQLStore(f"sqlite:///{tmp_path / 'db.sqlite3'}", prefix=prefix)


@pytest.mark.postgres
def test_concurrent_create_schema_on_postgres() -> None:
    need_postgres()
    store = SQLStore(POSTGRES_URL, prefix=unique_prefix())
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def create() -> None:
        barrier.wait()
        try:
            store.create_schema()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=create) for _ in range(8)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        with store.engine.connect() as conn:
            versions = table(f"{store.prefix}schema_version", column("version"))
            rows = conn.execute(select(versions.c.version)).all()
        assert rows == [(SCHEMA_VERSION,)]
    finally:
        store.drop_schema()
        store.close()


# Restarts -------------------------------------------------------------------------


def _remember_everything(store: SQLStore) -> Credential:
    store.put_credential(
        Credential("alice", "totp-1", "v1:k1:c2VhbGVk", recovery_hashes=("h1", "h2"))
    )
    credential = store.get_credential("alice")  # at the version the store chose
    assert credential is not None
    store.totp_attempt("totp-1", 100, T0, POLICY)
    store.put_grant(Grant("alice", "s1", frozenset({"pwd"}), T0), T0 + 600)
    store.put_challenge(Challenge("state-1", "alice", "s1", T0, T0 + 600, {"nonce": "n"}))
    return credential


def _check_everything(store: SQLStore, credential: Credential) -> None:
    assert store.get_credential("alice") == credential
    assert store.totp_attempt("totp-1", 100, T0 + 1, POLICY).outcome is AttemptOutcome.REPLAYED
    assert store.get_grant("alice", "s1") == Grant("alice", "s1", frozenset({"pwd"}), T0)
    challenge = store.take_challenge("state-1", T0 + 1)
    assert challenge is not None
    assert challenge.data == {"nonce": "n"}


def test_sqlite_store_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    with SQLStore.sqlite(path) as first:
        credential = _remember_everything(first)
    with SQLStore.sqlite(path) as second:
        _check_everything(second, credential)


@pytest.mark.postgres
def test_postgres_store_survives_a_restart() -> None:
    need_postgres()
    prefix = unique_prefix()
    first = SQLStore(POSTGRES_URL, prefix=prefix)
    first.create_schema()
    credential = _remember_everything(first)
    first.close()
    second = SQLStore(POSTGRES_URL, prefix=prefix)
    try:
        _check_everything(second, credential)
    finally:
        second.drop_schema()
        second.close()


async def test_sync_and_async_flavours_share_the_tables(sqlite_store: SQLStore) -> None:
    key = f"k-{uuid.uuid4().hex}"
    sqlite_store.totp_attempt(key, 7, T0, POLICY)
    async with AsyncSQLStore.sqlite(sqlite_store.engine.url.database) as store:
        attempt = await store.totp_attempt(key, 7, T0, POLICY)
        assert attempt.outcome is AttemptOutcome.REPLAYED
        assert (await store.totp_attempt(key, 8, T0, POLICY)).outcome is AttemptOutcome.ACCEPTED
    assert sqlite_store.throttle_state(key).last_step == 8


async def test_async_sqlite_never_waits_for_a_lock_on_the_event_loop(tmp_path: Path) -> None:
    """Reads and uncontended writes run on the loop's thread; a write that finds the
    database locked by another process goes to the store's thread and waits there, while
    the loop (and reads, which WAL never blocks) carry on."""
    import sqlite3

    path = tmp_path / "db.sqlite3"
    async with AsyncSQLStore.sqlite(path) as store:
        await store.create_schema()
        await store.put_tenant(Tenant("acme", {"feature_flags": {"on": True}}))
        key = f"k-{uuid.uuid4().hex}"
        assert (await store.totp_attempt(key, 7, T0, POLICY)).outcome is AttemptOutcome.ACCEPTED
        other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")  # another process's write transaction
        try:
            claim = asyncio.ensure_future(store.totp_attempt(key, 8, T0, POLICY))
            for _ in range(20):  # the loop keeps running other work meanwhile
                await asyncio.sleep(0)
            assert not claim.done(), "the write waits for the lock, off the loop"
            # A read goes ahead (it used to queue behind the waiting write).
            tenant = await asyncio.wait_for(store.get_tenant("acme"), timeout=10)
            assert tenant is not None
            assert tenant.flag("on")
        finally:
            other.execute("COMMIT")
            other.close()
        attempt = await asyncio.wait_for(claim, timeout=30)
        assert attempt.outcome is AttemptOutcome.ACCEPTED
        assert (await store.totp_attempt(key, 8, T0, POLICY)).outcome is AttemptOutcome.REPLAYED
    with SQLStore.sqlite(path) as check:
        assert check.throttle_state(key).last_step == 8


# Pooled async engines (one event loop, as in an application) ----------------------


async def _claim_race(store: AsyncSQLStore) -> None:
    for _ in range(5):
        key = f"k-{uuid.uuid4().hex}"
        results = await asyncio.gather(
            *(store.totp_attempt(key, 42, T0, POLICY) for _ in range(32))
        )
        accepted = [r for r in results if r.outcome is AttemptOutcome.ACCEPTED]
        assert len(accepted) == 1


async def test_pooled_aiosqlite_store(tmp_path: Path) -> None:
    async with AsyncSQLStore.sqlite(tmp_path / "db.sqlite3") as store:
        await store.create_schema()
        await _claim_race(store)


def test_unpooled_async_sqlite_store_serves_several_event_loops(aiosqlite_url: str) -> None:
    store = AsyncSQLStore(aiosqlite_url, poolclass=NullPool)
    asyncio.run(_claim_race(store))
    asyncio.run(_claim_race(store))  # a new loop: the writer queue must not be tied to the old


@pytest.mark.postgres
@pytest.mark.parametrize("driver", ["asyncpg", "psycopg"])
async def test_pooled_async_postgres_store(driver: str) -> None:
    need_postgres()
    url = POSTGRES_URL.replace("+psycopg", f"+{driver}", 1)
    async with AsyncSQLStore(url, prefix=unique_prefix()) as store:
        await store.create_schema()
        try:
            await _claim_race(store)
            user = f"u-{uuid.uuid4().hex}"
            await store.put_credential(Credential(user, "c", "s", recovery_hashes=("a",)))
            assert await store.consume_recovery_hash(user, "a") is True
            assert await store.consume_recovery_hash(user, "a") is False
        finally:
            await store.drop_schema()


# Expiry ---------------------------------------------------------------------------


def test_failures_are_forgiven_one_per_max_delay_of_quiet(sqlite_store: SQLStore) -> None:
    key = f"k-{uuid.uuid4().hex}"
    failures = POLICY.free_failures + 1
    for _ in range(failures):
        sqlite_store.totp_attempt(key, None, T0, POLICY)
    assert sqlite_store.totp_attempt(key, 1, T0 + 1, POLICY).outcome is AttemptOutcome.THROTTLED
    end = T0 + POLICY.delay_after(failures)
    # Not forget_after after the last write any more: one failure per max_delay after the
    # block, so the row outlives forget_after while a failure still counts.
    assert end + failures * POLICY.max_delay > T0 + 1 + POLICY.forget_after
    quiet = end + (failures - 1) * POLICY.max_delay
    assert sqlite_store.totp_attempt(key, None, quiet, POLICY).failures == 2
    later = quiet + POLICY.delay_after(2) + 2 * POLICY.max_delay
    assert sqlite_store.totp_attempt(key, None, later, POLICY).failures == 1


def test_prune_removes_only_what_has_expired(tmp_path: Path) -> None:
    store = SQLStore.sqlite(tmp_path / "db.sqlite3")
    short = ThrottlePolicy(base_delay=1, max_delay=1, forget_after=100)
    store.totp_attempt("old", 1, T0, short)
    store.totp_attempt("new", 1, T0 + 50, short)
    store.put_grant(Grant("u", "old", frozenset({"pwd"}), T0), T0 + 10)
    store.put_grant(Grant("u", "new", frozenset({"pwd"}), T0), T0 + 1000)
    store.put_challenge(Challenge("old", "u", "s", T0, T0 + 10))
    store.put_challenge(Challenge("new", "u", "s", T0, T0 + 1000))
    assert store.prune(T0 + 100) == 3
    assert store.prune(T0 + 100) == 0
    assert store.throttle_state("old") == ThrottleState()
    assert store.throttle_state("new").last_step == 1
    assert store.get_grant("u", "old") is None
    assert store.get_grant("u", "new") is not None
    assert store.take_challenge("old", T0) is None
    assert store.take_challenge("new", T0) is not None


# Configuration --------------------------------------------------------------------


def test_default_sqlite_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_sqlite_path() == tmp_path / "data" / "stepup" / "stepup.sqlite3"
    store = SQLStore.sqlite()
    store.put_tenant(Tenant("t1"))
    store.close()
    assert default_sqlite_path().is_file()
    monkeypatch.delenv("XDG_DATA_HOME")
    assert default_sqlite_path() == Path.home() / ".local/share/stepup/stepup.sqlite3"


def test_sqlite_file_is_private_and_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "new" / "db.sqlite3"
    store = SQLStore.sqlite(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000


def test_repr_has_no_credentials() -> None:
    url = "postgresql+psycopg://admin:hunter2@db.example:5433/app?password=hunter3"
    store = SQLStore(url, prefix="app_")
    assert repr(store) == "SQLStore('postgresql+psycopg://db.example:5433/app', prefix='app_')"
    async_store = AsyncSQLStore(url.replace("psycopg", "asyncpg"))
    assert "hunter" not in repr(async_store)
    assert "admin" not in repr(async_store)


def test_bad_url_error_does_not_repeat_it() -> None:
    with pytest.raises(ConfigurationError) as caught:
        SQLStore("not a url with hunter2")
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    "url", ["sqlite://", "sqlite:///:memory:", "sqlite:///file:x?mode=memory&uri=true"]
)
def test_in_memory_sqlite_is_refused(url: str) -> None:
    with pytest.raises(ConfigurationError, match="in-memory"):
        SQLStore(url)


def test_other_databases_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="sqlite and postgresql"):
        SQLStore("mysql+pymysql://u@localhost/db")


def test_plain_urls_pick_the_bundled_drivers(tmp_path: Path) -> None:
    assert SQLStore("postgresql://u@h/db").engine.url.drivername == "postgresql+psycopg"
    sqlite_url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    assert AsyncSQLStore(sqlite_url).engine.url.drivername == "sqlite+aiosqlite"


# Through the core -----------------------------------------------------------------


def test_verifier_and_two_factor_on_sqlite(sqlite_store: SQLStore) -> None:
    clock = SettableClock(T0)
    totp = TOTP(generate_secret())
    verifier = TOTPVerifier(sqlite_store, clock=clock)
    credential_id = f"c-{uuid.uuid4().hex}"
    code = totp.at(T0)
    assert verifier.verify(credential_id, totp, code).reason is VerifyReason.OK
    assert verifier.verify(credential_id, totp, code).reason is VerifyReason.REPLAYED

    user = f"u-{uuid.uuid4().hex}"
    two_factor = TwoFactor(sqlite_store, clock=clock)
    enrolment = two_factor.begin_enrolment(user, "alice@example.com")
    clock.advance(30)
    confirmation = two_factor.confirm_enrolment(user, TOTP(enrolment.secret).at(clock()))
    assert confirmation.ok
    assert len(confirmation.recovery_codes) == 10
    used = two_factor.use_recovery_code(user, confirmation.recovery_codes[0])
    assert used.ok
    assert not two_factor.use_recovery_code(user, confirmation.recovery_codes[0]).ok
    stored = sqlite_store.get_credential(user)
    assert stored is not None
    assert len(stored.recovery_hashes) == 9


def test_only_a_lock_refusal_sends_an_async_sqlite_operation_to_the_thread() -> None:
    """What counts as "the database is locked, nothing changed": SQLITE_BUSY or
    SQLITE_LOCKED, from the driver or wrapped by SQLAlchemy (a refused connect)."""
    import sqlite3

    from sqlalchemy.exc import OperationalError

    from stepup.adapters.storage.sql import _busy

    def refusal(code: int) -> sqlite3.OperationalError:
        error = sqlite3.OperationalError("database is locked")
        error.sqlite_errorcode = code
        return error

    assert _busy(refusal(sqlite3.SQLITE_BUSY))
    assert _busy(refusal(sqlite3.SQLITE_LOCKED))
    assert _busy(OperationalError("PRAGMA journal_mode", {}, refusal(sqlite3.SQLITE_BUSY)))
    assert not _busy(refusal(sqlite3.SQLITE_IOERR))
    assert not _busy(sqlite3.OperationalError("no such table: stepup_tenants"))
    assert not _busy(OSError("disk full"))
    assert not _busy(None)
