"""Engines for the SQL store: URLs, SQLite's settings, and a repr without credentials.

SQLite gets, on every new connection: ``busy_timeout`` (wait for the writer
instead of failing at once), ``journal_mode=WAL`` (readers never block the
writer) and ``synchronous=NORMAL`` (durable across application crashes; with WAL
only an OS crash or power cut can lose the last commits, never corrupt the
file). SQLAlchemy, not the ``sqlite3`` module, emits ``BEGIN``: ``BEGIN
IMMEDIATE`` for the store's writing transactions, so a read-decide-write holds
the write lock from its first statement and two processes cannot interleave.

:class:`DriverStatement` runs one hot statement straight on a pooled driver
connection, as its own transaction, without SQLAlchemy's per-call execution
machinery (which costs several times the statement itself on SQLite).
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import ClauseElement, Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ...errors import ConfigurationError, StoreConfigurationError
from .urls import sqlite_file_problem

__all__ = [
    "IMMEDIATE",
    "DriverStatement",
    "build_async_engine",
    "build_engine",
    "default_sqlite_path",
    "describe",
    "prepare_sqlite_file",
]

#: Execution option that turns a SQLite transaction's BEGIN into BEGIN IMMEDIATE.
IMMEDIATE = "stepup_sqlite_immediate"

_SYNC_DRIVERS = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg"}
_ASYNC_DRIVERS = {
    **_SYNC_DRIVERS,
    "sqlite": "sqlite+aiosqlite",
    "sqlite+pysqlite": "sqlite+aiosqlite",
}
_configured: weakref.WeakSet[Engine] = weakref.WeakSet()


def default_sqlite_path() -> Path:
    """``$XDG_DATA_HOME/stepup/stepup.sqlite3``, else ``~/.local/share/stepup/stepup.sqlite3``."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "stepup" / "stepup.sqlite3"


def prepare_sqlite_file(path: str | os.PathLike[str] | None) -> Path:
    """Create the file's folder and the file itself readable by its owner only.

    SQLite gives the ``-wal`` and ``-shm`` files the same permissions as the database.
    """
    target = Path(path) if path is not None else default_sqlite_path()
    url = f"sqlite:///{target}"
    problem = sqlite_file_problem(target)
    if problem is not None:
        raise StoreConfigurationError(url, "open the SQLite database", problem)
    try:
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not target.exists():
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o600))
    except OSError as exc:
        raise StoreConfigurationError(
            url, "create the SQLite database", f"{exc.strerror or type(exc).__name__}"
        ) from exc
    return target


def _parse(url: str | URL, drivers: dict[str, str]) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError:
        # SQLAlchemy's message repeats the string, which may hold a password.
        raise ConfigurationError("not a valid database URL") from None
    drivername = drivers.get(parsed.drivername, parsed.drivername)
    parsed = parsed.set(drivername=drivername)
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigurationError(
            f"the SQL store supports sqlite and postgresql, not {parsed.get_backend_name()!r}"
        )
    if parsed.get_backend_name() == "sqlite" and parsed.host:
        # sqlite://relative.db puts the file name where a host goes: not a memory database.
        name = f"{parsed.host}{'/' + parsed.database if parsed.database else ''}"
        raise ConfigurationError(
            f"a SQLite URL has no host: for the file {name!r} write sqlite:///{name}"
            f" (three slashes: relative to the working directory; four for an absolute path)"
        )
    if parsed.get_backend_name() == "sqlite" and (
        parsed.database in (None, "", ":memory:") or parsed.query.get("mode") == "memory"
    ):
        raise ConfigurationError(
            "an in-memory SQLite database belongs to one connection: use a file, or MemoryStore"
        )
    return parsed


def _options(url: URL, options: dict[str, Any]) -> dict[str, Any]:
    # Statement parameters (sealed secrets, recovery hashes) stay out of error messages;
    # pre-ping replaces connections a restarted server has dropped before they are used.
    defaults: dict[str, Any] = {"hide_parameters": True}
    if url.get_backend_name() != "sqlite":
        defaults["pool_pre_ping"] = True
    return {**defaults, **options}


def build_engine(url_or_engine: str | URL | Engine, busy_timeout: float, **options: Any) -> Engine:
    if isinstance(url_or_engine, Engine):
        engine = url_or_engine
    else:
        url = _parse(url_or_engine, _SYNC_DRIVERS)
        engine = create_engine(url, **_options(url, options))
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine, busy_timeout)
    return engine


def build_async_engine(
    url_or_engine: str | URL | AsyncEngine, busy_timeout: float, **options: Any
) -> AsyncEngine:
    if isinstance(url_or_engine, AsyncEngine):
        engine = url_or_engine
    else:
        url = _parse(url_or_engine, _ASYNC_DRIVERS)
        engine = create_async_engine(url, **_options(url, options))
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine.sync_engine, busy_timeout)
    return engine


def _configure_sqlite(engine: Engine, busy_timeout: float) -> None:
    """Install the connect and begin hooks once per engine (also under aiosqlite)."""
    if engine in _configured:
        return
    _configured.add(engine)
    busy_ms = max(0, int(busy_timeout * 1000))

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    event.listen(engine, "connect", on_connect)
    event.listen(engine, "begin", _begin)


def _begin(conn: Connection) -> None:
    immediate = conn.get_execution_options().get(IMMEDIATE, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def describe(url: URL) -> str:
    """Driver, host, port and database: never the user, password or query string."""
    if url.get_backend_name() == "sqlite":
        return f"{url.drivername}:///{url.database}"
    host = url.host or ""
    port = f":{url.port}" if url.port else ""
    return f"{url.drivername}://{host}{port}/{url.database or ''}"


class DriverStatement:
    """One statement, compiled once for ``engine``'s driver, run as its own transaction
    on a pooled driver connection; the answer is the number of affected rows.

    A single statement is atomic on its own (SQLite runs it in an implicit transaction
    under the database's write lock, PostgreSQL under the row's lock), so nothing is
    lost by skipping SQLAlchemy's ``begin()``; the driver caches the prepared statement
    by its text. Bind values must already have their driver types (``str``, ``int``,
    ``float``). Driver and pool errors are raised as :exc:`SQLAlchemyError` subclasses
    or the driver's own ``Error``; the connection is then dropped from the pool.
    """

    def __init__(self, engine: Engine, statement: ClauseElement) -> None:
        compiled = statement.compile(dialect=engine.dialect)
        self._engine = engine
        self._sql = compiled.string
        positions = getattr(compiled, "positiontup", None)  # SQLCompiler's, for ?-style drivers
        self._names = tuple(positions) if engine.dialect.positional and positions else None
        dbapi_error: type[Exception] = engine.dialect.loaded_dbapi.Error
        self.errors: tuple[type[BaseException], ...] = (dbapi_error, SQLAlchemyError, OSError)

    def rowcount(self, params: Mapping[str, Any]) -> int:
        args: Any = params if self._names is None else tuple(params[n] for n in self._names)
        connection = self._engine.raw_connection()
        try:
            cursor = connection.cursor()
            try:
                cursor.execute(self._sql, args)
                count = int(cursor.rowcount)
            finally:
                cursor.close()
            connection.commit()
        except BaseException:
            connection.invalidate()  # a broken or half-used connection never goes back
            raise
        finally:
            connection.close()
        return count
