"""A store that cannot be opened at start-up says why, to the person starting the app:
the URL (never its password), what was being done and the driver's reason. Errors that
decisions see stay bare (a type name, no driver text)."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from stepup.adapters.storage.redis import AsyncRedisStore, RedisStore
from stepup.adapters.storage.sql import AsyncSQLStore, SQLStore
from stepup.adapters.storage.urls import driver_reason, safe_url
from stepup.errors import ConfigurationError, StoreConfigurationError, StoreUnavailableError
from support import POSTGRES_URL, REDIS_URL, need, port_open

PASSWORD = "s3cret-pw"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens there once the socket is closed


def test_a_directory_is_named_as_one(tmp_path: Path) -> None:
    with pytest.raises(StoreConfigurationError) as caught:
        SQLStore.sqlite(tmp_path)
    assert str(tmp_path) in str(caught.value)
    assert caught.value.reason == "is a directory"


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("shopping list\n")
    with pytest.raises(StoreConfigurationError) as caught:
        SQLStore.sqlite(notes)
    assert str(notes) in str(caught.value)
    assert "not a SQLite database" in caught.value.reason
    assert notes.read_text() == "shopping list\n"  # nothing changed


def test_a_folder_that_cannot_be_made(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreConfigurationError) as caught:
        SQLStore.sqlite(blocker / "db.sqlite3")
    assert "is not a directory" in str(caught.value)


@pytest.mark.parametrize("url", ["sqlite://relative.db", "sqlite+aiosqlite://data/x.db"])
def test_two_slashes_suggest_three(url: str) -> None:
    name = url.split("://", 1)[1]
    with pytest.raises(ConfigurationError, match=f"sqlite:///{name}") as caught:
        SQLStore(url) if "aiosqlite" not in url else AsyncSQLStore(url)
    assert "in-memory" not in str(caught.value)


def _postgres(database: str = "", port: int | None = None) -> str:
    need(port_open("127.0.0.1", 5432), "PostgreSQL is not running on 127.0.0.1:5432")
    url = make_url(POSTGRES_URL).set(password=PASSWORD)
    if database:
        url = url.set(database=database)
    if port is not None:
        url = url.set(port=port)
    return url.render_as_string(hide_password=False)


@pytest.mark.postgres
def test_a_wrong_postgres_database_name() -> None:
    url = _postgres(database="no_such_database_here")
    with pytest.raises(StoreConfigurationError) as caught:
        SQLStore(url).create_schema()
    message = str(caught.value)
    assert '"no_such_database_here" does not exist' in message
    assert safe_url(url) in message
    assert PASSWORD not in message
    assert "create the tables" in message


@pytest.mark.postgres
def test_a_refused_postgres_port_is_told_apart_from_a_wrong_name() -> None:
    port = _closed_port()
    url = _postgres(port=port)
    with pytest.raises(StoreConfigurationError) as caught:
        SQLStore(url).create_schema()
    message = str(caught.value)
    assert f"port {port}" in message
    assert "refused" in message.lower()
    assert "does not exist" not in message
    assert PASSWORD not in message


@pytest.mark.postgres
def test_the_async_store_says_the_same() -> None:
    url = _postgres(database="no_such_database_here").replace("+psycopg", "+asyncpg")

    async def create() -> None:
        store = AsyncSQLStore(url)
        try:
            await store.create_schema()
        finally:
            await store.aclose()

    with pytest.raises(StoreConfigurationError) as caught:
        asyncio.run(create())
    assert "no_such_database_here" in str(caught.value)
    assert PASSWORD not in str(caught.value)


@pytest.mark.postgres
def test_decisions_still_see_a_bare_unavailable_store() -> None:
    store = SQLStore(_postgres(port=_closed_port()))
    with pytest.raises(StoreUnavailableError) as caught:
        store.get_tenant("acme")
    assert not isinstance(caught.value, StoreConfigurationError)
    assert "refused" not in str(caught.value).lower()
    assert "127.0.0.1" not in str(caught.value)


def test_an_unreachable_redis_names_its_host_and_port() -> None:
    port = _closed_port()
    store = RedisStore(f"redis://:{PASSWORD}@127.0.0.1:{port}/3")
    with pytest.raises(StoreConfigurationError) as caught:
        store.check()
    message = str(caught.value)
    assert f"redis://127.0.0.1:{port}/3" in message
    assert "refused" in message.lower()
    assert PASSWORD not in message
    # An operation after start-up stays bare.
    with pytest.raises(StoreUnavailableError) as bare:
        store.get_tenant("acme")
    assert str(port) not in str(bare.value)


def test_an_unreachable_redis_async() -> None:
    port = _closed_port()

    async def check() -> None:
        store = AsyncRedisStore(f"rediss://user:{PASSWORD}@127.0.0.1:{port}/0")
        try:
            await store.check()
        finally:
            await store.aclose()

    with pytest.raises(StoreConfigurationError) as caught:
        asyncio.run(check())
    assert f"rediss://user@127.0.0.1:{port}/0" in str(caught.value)
    assert PASSWORD not in str(caught.value)


@pytest.mark.redis
def test_a_reachable_redis_passes_the_check() -> None:
    need(port_open("127.0.0.1", 6379), "Redis is not running on 127.0.0.1:6379")
    with RedisStore(REDIS_URL) as store:
        store.check()


def test_urls_in_driver_messages_lose_their_passwords() -> None:
    error = RuntimeError(f"could not reach postgresql://app:{PASSWORD}@db:5432/app?x=1 today")
    reason = driver_reason(error, password=PASSWORD)
    assert PASSWORD not in reason
    assert "postgresql://app@db:5432/app" in reason
    assert reason.endswith("(RuntimeError)")


def test_a_flask_app_on_an_unreachable_redis_says_where_at_start_up() -> None:
    from flask import Flask

    from stepup.integrations.flask import Stepup

    port = _closed_port()
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="test-secret-key-0123456789",
        STEPUP_STORE=f"redis://:{PASSWORD}@127.0.0.1:{port}/0",
    )
    with pytest.raises(StoreConfigurationError) as caught:
        Stepup(app)
    assert f"cannot reach Redis at redis://127.0.0.1:{port}/0" in str(caught.value)
    assert PASSWORD not in str(caught.value)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql", "redis"])
@pytest.mark.parametrize("bad", ["a\ud800", "\udfff", "x\ud83dy"])
def test_an_id_the_driver_cannot_send_is_a_typed_store_error(
    kind: str, bad: str, tmp_path: Path
) -> None:
    """A lone surrogate cannot be encoded for any driver: the store's contract still
    holds ("any driver error is StoreUnavailableError"), never a raw UnicodeEncodeError."""
    store: SQLStore | RedisStore
    if kind == "sqlite":
        store = SQLStore(f"sqlite:///{tmp_path / 'x.db'}")
        store.create_schema()
    elif kind == "postgresql":
        need(port_open("127.0.0.1", 5432), "PostgreSQL is not running on 127.0.0.1:5432")
        store = SQLStore(POSTGRES_URL)
        store.create_schema()
    else:
        need(port_open("127.0.0.1", 6379), "Redis is not running on 127.0.0.1:6379")
        store = RedisStore(REDIS_URL)
    with store:
        for call in (lambda: store.get_tenant(bad), lambda: store.get_grant(bad, "s1")):
            with pytest.raises(StoreUnavailableError, match="UnicodeEncodeError"):
                call()


def test_a_redis_url_option_the_client_does_not_take_is_a_configuration_error() -> None:
    """redis-py takes a URL's query options only when it connects: the start-up check
    names the problem, never the URL (it may hold a password), sync and async."""
    import asyncio

    from stepup.adapters.storage.redis import AsyncRedisStore, RedisStore
    from stepup.errors import ConfigurationError

    url = "redis://u:hunter2@127.0.0.1:6379/6?foo=bar"
    with pytest.raises(ConfigurationError, match="URL option") as sync_error:
        RedisStore(url).check()
    with pytest.raises(ConfigurationError, match="URL option") as async_error:
        asyncio.run(AsyncRedisStore(url).check())
    for error in (sync_error, async_error):
        assert "hunter2" not in str(error.value)
        assert error.value.__cause__ is None
