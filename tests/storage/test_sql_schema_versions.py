"""``create_schema()`` with a stored schema version no release wrote (0, negative, one
with no migration from it) is the documented start-up error, a
``StoreConfigurationError`` naming the version found, never a bare ``KeyError``; the
tables are left as they were. SQLite and PostgreSQL, sync and async."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import update

from stepup.adapters.storage import sql_schema
from stepup.adapters.storage.sql import AsyncSQLStore, SQLStore
from stepup.errors import ConfigurationError, StoreConfigurationError
from stepup.records import Credential
from support import POSTGRES_URL, need, port_open


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'app.sqlite3'}"
    need(port_open("127.0.0.1", 5432), f"PostgreSQL at {POSTGRES_URL}")
    return POSTGRES_URL


@pytest.fixture
def store(url: str) -> Iterator[SQLStore]:
    store = SQLStore(url, prefix=f"sv{uuid.uuid4().hex[:10]}_")
    store.create_schema()
    store.put_credential(Credential(user_id="alice", credential_id="c", secret="s"))
    try:
        yield store
    finally:
        store.drop_schema()
        store.close()


def set_version(store: SQLStore, version: int) -> None:
    table = sql_schema.Tables.build(store.prefix).schema_version
    with store.engine.begin() as conn:
        conn.execute(update(table).values(version=version))


def stored_version(store: SQLStore) -> int:
    table = sql_schema.Tables.build(store.prefix).schema_version
    with store.engine.connect() as conn:
        return int(conn.execute(table.select()).one().version)


@pytest.mark.parametrize("version", [0, -1])
def test_a_version_no_release_wrote_is_a_store_configuration_error(
    store: SQLStore, version: int
) -> None:
    set_version(store, version)
    with pytest.raises(StoreConfigurationError) as caught:
        store.create_schema()
    error = caught.value
    assert error.operation == "upgrade the tables"
    assert f"records schema version {version}," in error.reason
    assert f"{store.prefix}schema_version" in error.reason
    assert error.url.startswith(("sqlite", "postgresql"))
    assert stored_version(store) == version  # nothing changed
    assert store.get_credential("alice") is not None


def test_the_async_store_says_the_same(store: SQLStore, url: str) -> None:
    set_version(store, 0)

    async def create() -> None:
        async_store = AsyncSQLStore(url, prefix=store.prefix)
        try:
            await async_store.create_schema()
        finally:
            await async_store.aclose()

    with pytest.raises(StoreConfigurationError, match="records schema version 0,"):
        asyncio.run(create())


def test_a_gap_in_the_migrations_is_refused_the_same_way(
    store: SQLStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_version(store, 1)
    migrations = {k: v for k, v in sql_schema.MIGRATIONS.items() if k != 2}
    monkeypatch.setattr(sql_schema, "MIGRATIONS", migrations)
    with pytest.raises(StoreConfigurationError, match="records schema version 1,"):
        store.create_schema()
    assert stored_version(store) == 1


def test_known_and_newer_versions_are_unchanged(store: SQLStore) -> None:
    set_version(store, 1)
    assert store.create_schema() == sql_schema.SCHEMA_VERSION
    set_version(store, sql_schema.SCHEMA_VERSION + 5)
    with pytest.raises(ConfigurationError, match="upgrade stepup"):
        store.create_schema()
