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

PostgreSQL engines built from a URL wait at most ``timeout`` seconds (:data:`TIMEOUT`)
for the server at each step: connecting, a free pooled connection, each answer. A
server that stops answering (frozen, a dead host, a network partition, a lock held for
longer) therefore gives :class:`~stepup.errors.StoreUnavailableError` within that
bound instead of a request that waits for ever. asyncpg bounds its waits itself
(``timeout``, ``command_timeout``); psycopg 3.3.6's ``Connection.wait`` takes a deadline,
which :func:`_psycopg_deadline`'s connection classes give every wait; libpq's
``connect_timeout`` bounds connecting (whole seconds, at least 2). A missed deadline
first asks the server to cancel the statement (a cancel request, waited for at most
:func:`cancel_bound` seconds), so it neither keeps a server session waiting for a lock
nor lands later; then the connection is closed, never reused, and the operation is not
run again: the server may have run it before the cancel came, and its answer is lost
like any other lost reply. Maintenance (the schema, pruning) runs under the store's
``maintenance_timeout`` instead (:func:`answers_within`), unbounded by default.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import os
import select
import threading
import weakref
from collections import deque, namedtuple
from collections.abc import Callable, Generator, Iterator, Mapping
from contextlib import contextmanager, suppress
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple, TypeVar
from urllib.parse import unquote

from ..._extras import needs_extra

with needs_extra(__name__, "sql"):
    import sqlalchemy
    from sqlalchemy import ClauseElement, Connection, Engine, create_engine, event
    from sqlalchemy.engine import URL, ExceptionContext, make_url
    from sqlalchemy.exc import ArgumentError, DisconnectionError, SQLAlchemyError
    from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
    from sqlalchemy.util import asbool, await_only, greenlet_spawn

from ..._data_dir import data_dir
from ...errors import ConfigurationError, StoreConfigurationError
from .urls import sqlite_file_problem

__all__ = [
    "CANCEL_TIMEOUT",
    "IMMEDIATE",
    "TIMEOUT",
    "AsyncDriver",
    "Driver",
    "DriverResult",
    "answers_within",
    "build_async_engine",
    "build_engine",
    "cancel_bound",
    "check_maintenance_timeout",
    "default_sqlite_path",
    "describe",
    "prepare_sqlite_file",
]

#: Execution option that turns a SQLite transaction's BEGIN into BEGIN IMMEDIATE.
IMMEDIATE = "stepup_sqlite_immediate"

#: Default bound (seconds) on each wait for PostgreSQL, for engines the store builds
#: from a URL: connecting, a free pooled connection, each answer of the server. A
#: server that stops answering gives "unavailable" this fast instead of a hang.
TIMEOUT = 5.0

#: The longest wait (seconds) for a cancel request after a missed deadline: the call
#: then answers within its ``timeout`` plus :func:`cancel_bound` even if the server
#: stopped answering.
CANCEL_TIMEOUT = 2.0

_SYNC_DRIVERS = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg"}
_ASYNC_DRIVERS = {
    **_SYNC_DRIVERS,
    "sqlite": "sqlite+aiosqlite",
    "sqlite+pysqlite": "sqlite+aiosqlite",
}
R = TypeVar("R")
_configured: weakref.WeakSet[Engine] = weakref.WeakSet()
#: PostgreSQL engines the store built from a URL (and so bounded): the sync engine of
#: an async one. :func:`answers_within` changes only these connections' bound.
_bounded: weakref.WeakSet[Engine] = weakref.WeakSet()


def cancel_bound(timeout: float) -> float:
    """How long a missed deadline waits for its cancel request: ``timeout``, at most
    :data:`CANCEL_TIMEOUT` seconds."""
    return min(timeout, CANCEL_TIMEOUT)


def default_sqlite_path() -> Path:
    """``$XDG_DATA_HOME/stepup/stepup.sqlite3``, else ``~/.local/share/stepup/stepup.sqlite3``."""
    return data_dir() / "stepup.sqlite3"


def prepare_sqlite_file(path: str | os.PathLike[str] | None) -> Path:
    """Create the file's missing folders and the file itself readable by its owner only
    (0700 and 0600; a file or folder already there is left as it is).

    SQLite gives the ``-wal`` and ``-shm`` files the same permissions as the database.
    """
    target = Path(path) if path is not None else default_sqlite_path()
    url = f"sqlite:///{target}"
    problem = sqlite_file_problem(target)
    if problem is not None:
        raise StoreConfigurationError(url, "open the SQLite database", problem)
    try:
        _make_folders(target.parent)
        if not target.exists():
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o600))
    except OSError as exc:
        raise StoreConfigurationError(
            url, "create the SQLite database", f"{exc.strerror or type(exc).__name__}"
        ) from exc
    return target


def _make_folders(folder: Path) -> None:
    """Create ``folder`` and each missing folder above it 0700 (``mkdir(parents=True)``
    gives all but the last the umask's permissions, often 0755)."""
    missing: list[Path] = []
    while not folder.exists() and folder.parent != folder:
        missing.append(folder)
        folder = folder.parent
    for each in reversed(missing):
        with suppress(FileExistsError):  # another process made it meanwhile
            each.mkdir(mode=0o700)


def _sqlite_file(url: URL) -> Path | None:
    """The file a SQLite URL opens, creating it if missing; ``None`` for one that opens
    none that way: memory, or a URI (``?uri=true``) opening an existing file only
    (``mode=ro``, ``mode=rw``), on another VFS, or on another host."""
    if url.get_backend_name() != "sqlite":
        return None
    database, query = url.database or "", url.query
    if database in ("", ":memory:") or query.get("mode") == "memory":
        return None
    if not asbool(query.get("uri", False)):
        return Path(database)
    if query.get("mode", "rwc") != "rwc" or "vfs" in query:
        return None
    if not database.startswith("file:"):
        return Path(database)  # SQLite reads a name that is no URI as a file name
    rest = database.removeprefix("file:")
    if rest.startswith("//"):
        authority, _, path = rest[2:].partition("/")
        if authority not in ("", "localhost"):
            return None
        rest = "/" + path
    name = unquote(rest)
    return Path(name) if name and name != ":memory:" else None


def _prepare_url(url: URL) -> None:
    """A SQLite file named by a URL is created as :meth:`SQLStore.sqlite` creates one:
    owner-only, in folders created owner-only."""
    target = _sqlite_file(url)
    if target is not None:
        prepare_sqlite_file(target)


def _parse(url: str | URL, drivers: dict[str, str]) -> URL:
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        # SQLAlchemy's message repeats the string, which may hold a password; a port
        # that is not a number ("5432:Sup3rSecret") is in int()'s ValueError.
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


def _check_timeout(timeout: object) -> float:
    """``timeout`` as seconds, if it is a finite positive number."""
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        raise ConfigurationError("timeout must be a finite positive number of seconds")
    return float(timeout)


def check_maintenance_timeout(timeout: object) -> float | None:
    """``maintenance_timeout`` as seconds, or ``None`` (no bound on an answer)."""
    if timeout is None:
        return None
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        raise ConfigurationError(
            "maintenance_timeout must be None or a finite positive number of seconds"
        )
    return float(timeout)


def _options(url: URL, options: dict[str, Any], timeout: float) -> dict[str, Any]:
    # Statement parameters (sealed secrets, recovery hashes) stay out of error messages.
    # No pool_pre_ping: it is a whole round trip (a transaction on psycopg) before every
    # operation; _check_alive finds the connections a server has closed without one.
    options = {"hide_parameters": True, **options}
    if url.get_backend_name() != "postgresql":
        return options
    # PostgreSQL: no wait longer than ``timeout``, unless the URL or the options say
    # otherwise (a pool of the app's own, or another pool class, keeps its own).
    if "pool" not in options and "poolclass" not in options:
        options.setdefault("pool_timeout", timeout)
    connect_args = dict(options.get("connect_args") or {})
    given = set(url.query) | set(connect_args)
    driver = url.get_driver_name()
    if driver == "asyncpg":
        for name in ("timeout", "command_timeout"):  # connecting; each statement
            if name not in given:
                connect_args[name] = timeout
    elif driver in ("psycopg", "psycopg2") and "connect_timeout" not in given:
        connect_args["connect_timeout"] = max(2, math.ceil(timeout))  # libpq's rule
    options["connect_args"] = connect_args
    return options


class _PsycopgDeadline(NamedTuple):
    connection: type[Any]
    async_connection: type[Any]
    error: type[Exception]


@lru_cache(maxsize=1)
def _psycopg_deadline() -> _PsycopgDeadline | None:
    """psycopg connection classes (sync and async) that wait at most their
    ``stepup_timeout`` seconds for each answer, and the error a missed deadline raises;
    ``None`` before psycopg 3.3.6, whose ``wait`` takes no deadline.

    psycopg's ``wait`` runs every exchange with the server (a statement, a pipeline
    sync, a commit); given a ``timeout`` it raises psycopg's private ``_WaitTimeout``
    when the exchange is not done by then. The server is then asked to cancel the
    statement (:func:`_cancel`), as psycopg itself does when a wait is interrupted:
    closing alone leaves the server running it, holding a session (a statement waiting
    for a lock waits on, whatever the pool's size) and committing it later. The
    connection, half-way through the protocol, is then closed at once (as psycopg
    closes one whose cancellation went unanswered), so SQLAlchemy's pool and
    :class:`Driver` drop it, and the error is a ``psycopg.OperationalError``. A wait
    psycopg gives its own deadline keeps it; ``stepup_timeout = None`` gives none."""
    import psycopg

    found = getattr(psycopg.errors, "_WaitTimeout", None)
    if not (
        isinstance(found, type)
        and issubclass(found, Exception)
        and "timeout" in inspect.signature(psycopg.Connection.wait).parameters
        and "timeout" in inspect.signature(psycopg.AsyncConnection.wait).parameters
    ):
        return None
    missed: type[Exception] = found

    class NoAnswerError(psycopg.OperationalError):
        """PostgreSQL did not answer within the store's timeout; the statement's
        cancellation was asked for (where it could be) and the connection is closed."""

    NoAnswerError.__qualname__ = "NoAnswerError"  # as if at the module's top level

    def deadline(connection: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> float | None:
        """The store's deadline for this wait; none for a wait psycopg bounds itself."""
        timeout: float | None = connection.stepup_timeout
        return None if args[1:] or "timeout" in kwargs else timeout

    def no_answer(timeout: float, cancelled: bool) -> NoAnswerError:
        cancel = "a cancel request was sent" if cancelled else "no cancel request went out"
        return NoAnswerError(
            f"no answer from the server within {timeout:g} s (the store's timeout);"
            f" {cancel} and the connection is closed"
        )

    class DeadlineConnection(psycopg.Connection[Any]):
        stepup_timeout: float | None = None

        def wait(self, gen: Any, *args: Any, **kwargs: Any) -> Any:
            timeout = deadline(self, args, kwargs)
            if timeout is None:
                return super().wait(gen, *args, **kwargs)
            kwargs["timeout"] = timeout
            try:
                return super().wait(gen, *args, **kwargs)
            except missed:
                pass
            cancelled = False
            try:
                cancelled = _cancel(self, cancel_bound(timeout))
            finally:
                self.pgconn.finish()
            raise no_answer(timeout, cancelled)

    class AsyncDeadlineConnection(psycopg.AsyncConnection[Any]):
        stepup_timeout: float | None = None

        async def wait(self, gen: Any, *args: Any, **kwargs: Any) -> Any:
            timeout = deadline(self, args, kwargs)
            if timeout is None:
                return await super().wait(gen, *args, **kwargs)
            kwargs["timeout"] = timeout
            try:
                return await super().wait(gen, *args, **kwargs)
            except missed:
                pass
            cancelled = False
            try:
                cancelled = await _cancel_async(self, cancel_bound(timeout))
            finally:
                self.pgconn.finish()
            raise no_answer(timeout, cancelled)

    DeadlineConnection.__qualname__ = "DeadlineConnection"
    AsyncDeadlineConnection.__qualname__ = "AsyncDeadlineConnection"
    return _PsycopgDeadline(DeadlineConnection, AsyncDeadlineConnection, NoAnswerError)


def _cancel_safe_available() -> bool:
    """Whether psycopg's ``cancel_safe`` can be bounded: libpq 17 or later; before it,
    psycopg falls back to libpq's blocking ``PQcancel``, which waits for the server."""
    from psycopg import capabilities

    return bool(capabilities.has_cancel_safe())


def _blocking_cancel_can_wait_aside() -> bool:
    """Whether libpq's blocking ``PQcancel`` can wait in a thread of its own: psycopg's
    Python implementation (ctypes) lets the other threads run meanwhile; its C
    implementation (``psycopg[c]``, ``psycopg[binary]``) keeps the interpreter's lock,
    so the whole process would wait for a server that may never answer."""
    from psycopg import pq

    return bool(pq.__impl__ == "python")


def _cancel_in_thread(connection: Any, done: Callable[[bool], None]) -> None:
    """libpq before 17: its blocking cancel, in a daemon thread of its own (one that
    a server that stopped answering keeps waiting is left behind); ``done(sent)``
    after."""
    request = connection.pgconn.get_cancel()  # taken now: the connection closes next

    def send() -> None:
        sent = False
        with suppress(Exception):  # the missed deadline is the error to report
            request.cancel()
            sent = True
        done(sent)

    threading.Thread(target=send, name="stepup-pg-cancel", daemon=True).start()


def _cancel(connection: Any, within: float) -> bool:
    """Ask the server to cancel what ``connection`` runs, waiting at most ``within``
    seconds for the request to be delivered (never for the statement to end); whether
    it was. With libpq before 17 under psycopg's C implementation no request is sent:
    nothing could bound its wait (docs/storage.md)."""
    if _cancel_safe_available():
        try:
            connection.cancel_safe(timeout=within)
        except Exception:  # CancellationTimeout, a refused connection
            return False
        return True
    if not _blocking_cancel_can_wait_aside():
        return False
    answers: list[bool] = []
    finished = threading.Event()

    def done(sent: bool) -> None:
        answers.append(sent)
        finished.set()

    _cancel_in_thread(connection, done)
    return finished.wait(within) and answers[0]


async def _cancel_async(connection: Any, within: float) -> bool:
    """:func:`_cancel` for an async connection; the event loop never blocks."""
    if _cancel_safe_available():
        try:
            await connection.cancel_safe(timeout=within)
        except Exception:
            return False
        return True
    if not _blocking_cancel_can_wait_aside():
        return False
    loop = asyncio.get_running_loop()
    finished: asyncio.Future[bool] = loop.create_future()

    def settle(sent: bool) -> None:
        if not finished.done():
            finished.set_result(sent)

    def done(sent: bool) -> None:
        with suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            loop.call_soon_threadsafe(settle, sent)

    _cancel_in_thread(connection, done)
    try:
        return await asyncio.wait_for(finished, within)
    except TimeoutError:
        return False


def _missed_deadline(exc: BaseException) -> bool:
    """Whether ``exc`` is a psycopg connection's missed deadline (not a dropped
    connection: the server may still be running what was sent)."""
    if not _psycopg_deadline.cache_info().currsize:
        return False  # never looked up: no connection of the store's has a deadline
    deadline = _psycopg_deadline()
    return deadline is not None and isinstance(exc, deadline.error)


def _sqlalchemy_version() -> tuple[int, ...]:
    return tuple(int(part) for part in sqlalchemy.__version__.split(".")[:3] if part.isdigit())


def _bound_psycopg_waits(engine: Engine, timeout: float, *, is_async: bool) -> None:
    """Every connection of a psycopg engine the store built waits at most ``timeout``
    seconds for each answer (see :func:`_psycopg_deadline`). The async one needs
    SQLAlchemy 2.0.16 or later (``async_creator_fn``); a ``creator`` of the app's own
    connects its own way."""
    deadline = _psycopg_deadline() if engine.dialect.driver == "psycopg" else None
    if deadline is None:
        return
    if not is_async:

        def connect(_dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
            connection = deadline.connection.connect(*cargs, **cparams)
            connection.stepup_timeout = timeout
            return connection

        event.listen(engine, "do_connect", connect)
        return
    if _sqlalchemy_version() < (2, 0, 16):
        return

    async def create(*args: Any, **kwargs: Any) -> Any:
        connection = await deadline.async_connection.connect(*args, **kwargs)
        connection.stepup_timeout = timeout
        return connection

    def use_creator(_dialect: Any, _record: Any, _cargs: Any, cparams: Any) -> None:
        cparams.setdefault("async_creator_fn", create)

    event.listen(engine, "do_connect", use_creator)


async def close_within(driver: Any, within: float) -> None:
    """Close an asyncpg connection whose statement missed its deadline, or whose caller
    gave up: asyncpg has sent the server a cancel request for it (in the background);
    closing politely waits for that and for the server's goodbye, at most ``within``
    seconds, and a connection still not closed then (a server that stopped answering)
    is terminated. Terminating at once cancelled asyncpg's cancel request, and the
    server ran on what was sent (waiting for a lock, holding a session, committing
    later)."""
    try:
        await asyncio.wait_for(driver.close(timeout=within), within)
    except asyncio.CancelledError:
        driver.terminate()
        raise
    except Exception:  # TimeoutError, a broken protocol: the first error is reported
        driver.terminate()


def _drop_on_timeout(within: float) -> Callable[[ExceptionContext], None]:
    """asyncpg through SQLAlchemy: a statement that missed ``command_timeout`` (asyncpg
    raises ``TimeoutError``, which SQLAlchemy does not take for a disconnect) leaves its
    connection waiting for the server to confirm the cancelled statement, and the
    rollback after it would wait out a second timeout. The connection is closed
    (:func:`close_within`, at most ``within`` seconds) and SQLAlchemy drops it, as
    :class:`AsyncDriver` does on its own path."""

    def drop(context: ExceptionContext) -> None:
        if not isinstance(context.original_exception, TimeoutError):
            return
        context.is_disconnect = True
        connection = context.connection
        if connection is None or connection.invalidated or connection.closed:
            return
        driver = connection.connection.driver_connection
        if driver is None or not callable(getattr(driver, "terminate", None)):
            return
        try:  # SQLAlchemy runs this in its greenlet, where it may await
            await_only(close_within(driver, within))
        except Exception:  # the timeout is the error to report
            with suppress(Exception):
                driver.terminate()

    return drop


def _looks_closed(dbapi_connection: Any) -> bool:
    """Whether the server has closed this idle pooled connection, known without a round
    trip: asyncpg has seen the socket close; a psycopg socket that is readable while idle
    holds the server's goodbye (an error and EOF), since nothing else is sent unasked
    (a NOTIFY or a parameter change, too, only costs a new connection)."""
    driver = getattr(dbapi_connection, "driver_connection", None) or dbapi_connection
    is_closed = getattr(driver, "is_closed", None)  # asyncpg
    if callable(is_closed):
        return bool(is_closed())
    if getattr(driver, "closed", False) or getattr(driver, "broken", False):
        return True
    fileno = getattr(driver, "fileno", None)  # psycopg, sync or async
    if not callable(fileno):
        return False
    try:
        readable, _, _ = select.select([fileno()], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def _check_alive(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    if _looks_closed(dbapi_connection):
        raise DisconnectionError("the server closed this pooled connection")


def _watch_pool(engine: Engine) -> None:
    """Checkouts replace connections the server closed (a restart, an idle timeout,
    ``pg_terminate_backend``): the pool retries with a new connection, unnoticed."""
    if engine.dialect.name != "sqlite" and engine not in _configured:
        _configured.add(engine)
        event.listen(engine.pool, "checkout", _check_alive)


@contextmanager
def answers_within(engine: Engine, connection: Any, seconds: float | None) -> Iterator[None]:
    """While the block runs, each answer on ``connection`` (a pooled connection of
    ``engine``, the sync engine of an async one) is waited for at most ``seconds``
    (``None``: for as long as it takes) instead of the engine's per-answer ``timeout``,
    for maintenance that a request never waits for. Only engines the store built from
    a URL change; connecting and the wait for a pooled connection keep their bounds."""
    if engine not in _bounded:
        yield
        return
    driver = connection.driver_connection
    if hasattr(driver, "stepup_timeout"):  # psycopg: the deadline of every wait
        before, driver.stepup_timeout = driver.stepup_timeout, seconds
        try:
            yield
        finally:
            driver.stepup_timeout = before
        return
    config = getattr(driver, "_config", None)  # asyncpg: its command_timeout
    if config is None or not hasattr(config, "command_timeout"):
        yield
        return
    driver._config = config._replace(command_timeout=seconds)
    try:
        yield
    finally:
        driver._config = config


def build_engine(
    url_or_engine: str | URL | Engine,
    busy_timeout: float,
    timeout: float = TIMEOUT,
    **options: Any,
) -> Engine:
    timeout = _check_timeout(timeout)
    if isinstance(url_or_engine, Engine):
        engine = url_or_engine
    else:
        url = _parse(url_or_engine, _SYNC_DRIVERS)
        _prepare_url(url)
        engine = create_engine(url, **_options(url, options, timeout))
        _bound_psycopg_waits(engine, timeout, is_async=False)
        if engine.dialect.name == "postgresql":
            _bounded.add(engine)
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine, busy_timeout)
    _watch_pool(engine)
    return engine


def build_async_engine(
    url_or_engine: str | URL | AsyncEngine,
    busy_timeout: float,
    timeout: float = TIMEOUT,
    **options: Any,
) -> AsyncEngine:
    timeout = _check_timeout(timeout)
    if isinstance(url_or_engine, AsyncEngine):
        engine = url_or_engine
    else:
        url = _parse(url_or_engine, _ASYNC_DRIVERS)
        _prepare_url(url)
        engine = create_async_engine(url, **_options(url, options, timeout))
        _bound_psycopg_waits(engine.sync_engine, timeout, is_async=True)
        if engine.dialect.driver == "asyncpg":
            drop = _drop_on_timeout(cancel_bound(timeout))
            event.listen(engine.sync_engine, "handle_error", drop)
        if engine.dialect.name == "postgresql":
            _bounded.add(engine.sync_engine)
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine.sync_engine, busy_timeout)
    _watch_pool(engine.sync_engine)
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


class DriverResult:
    """The answer to one statement run by :class:`Driver`: the rows (fetched at once)
    and the affected-row count (-1: not known, inside a pipeline), read the way
    :mod:`.sql_ops` reads a ``CursorResult``."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def all(self) -> list[Any]:
        return self._rows

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def one(self) -> Any:
        if len(self._rows) != 1:
            raise SQLAlchemyError(f"expected one row, got {len(self._rows)}")
        return self._rows[0]

    def one_or_none(self) -> Any:
        if len(self._rows) > 1:
            raise SQLAlchemyError(f"expected at most one row, got {len(self._rows)}")
        return self._rows[0] if self._rows else None

    def scalar_one_or_none(self) -> Any:
        row = self.one_or_none()
        return None if row is None else row[0]


@lru_cache(maxsize=256)
def _row_type(names: tuple[str, ...]) -> Any:
    return namedtuple("Row", names, rename=True)


def _numbered(sql: str, names: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """``?`` placeholders as SQLite's numbered ``?NNN``, one number per distinct name:
    a parameter the statement uses several times (the throttle's ``now`` in a failure's
    arithmetic, 34 placeholders for 10 values) is bound once. Unchanged when no name
    repeats, or when the text has a ``?`` that is not a placeholder."""
    distinct = tuple(dict.fromkeys(names))
    pieces = sql.split("?")
    if len(distinct) == len(names) or len(pieces) != len(names) + 1:
        return sql, names
    number = {name: index for index, name in enumerate(distinct, 1)}
    numbered = [pieces[0]]
    for name, piece in zip(names, pieces[1:], strict=True):
        numbered.append(f"?{number[name]}{piece}")
    return "".join(numbered), distinct


class Compiled:
    """One statement compiled once for a dialect: the driver's SQL text, the bind names
    in the driver's order (positional drivers) and the statement's constant binds."""

    __slots__ = ("columns", "defaults", "make", "names", "returns_rows", "sql")

    def __init__(self, statement: ClauseElement, dialect: Any) -> None:
        compiled: Any = statement.compile(dialect=dialect)
        self.sql: str = compiled.string
        positions = getattr(compiled, "positiontup", None)  # SQLCompiler's, for ?/$n drivers
        self.names = tuple(positions) if dialect.positional and positions else None
        if self.names is not None and dialect.paramstyle == "qmark":
            self.sql, self.names = _numbered(self.sql, self.names)
        # Constants in the statement (``values(failures=0)``) are binds with a value.
        self.defaults: dict[str, Any] = {
            name: value
            for name, value in compiled.params.items()
            if not compiled.binds[name].required
        }
        self.columns: tuple[str, ...] | None = None  # the result's, after the first run
        self.make: Callable[[Any], Any] = tuple  # a row from the driver's, after the first run
        self.returns_rows = bool(getattr(compiled, "returning", None)) or bool(
            getattr(statement, "is_select", False)
        )

    def args(self, params: Mapping[str, Any]) -> Any:
        merged = {**self.defaults, **params} if self.defaults else params
        if self.names is None:
            return merged
        return tuple(map(merged.get, self.names))

    def rows(self, names: tuple[str, ...], values: Any) -> list[Any]:
        """The driver's rows as named tuples (``row.data``), columns named once."""
        if self.columns is None:  # the statement's columns never change: read them once
            self.columns = names
            self.make = _row_type(names)._make
        make = self.make
        return [make(row) for row in values]


class Statements:
    """Compiled statements of one dialect, each compiled on first use.

    SQLite's keep SQLAlchemy's positional parameters (``?``), bound from a tuple:
    ``sqlite3`` releases the GIL to look up each *named* parameter's name
    (``sqlite3_bind_parameter_name``), and under a threaded server every release is a
    hand-off of the GIL (measured: three named parameters cost a guarded request about
    three more context switches than the same read bound by position)."""

    def __init__(self, dialect: Any) -> None:
        self._dialect = dialect
        self._cache: dict[int, tuple[ClauseElement, Compiled]] = {}

    def __call__(self, statement: ClauseElement) -> Compiled:
        found = self._cache.get(id(statement))
        if found is None or found[0] is not statement:
            found = self._cache[id(statement)] = (statement, Compiled(statement, self._dialect))
        return found[1]


#: Every Driver and AsyncDriver, so a forked child forgets the connections they keep
#: (their sockets are the parent's), as SQLAlchemy's ``dispose(close=False)`` does.
_drivers: weakref.WeakSet[Any] = weakref.WeakSet()


def _after_fork() -> None:
    for driver in list(_drivers):
        driver._forget()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def _abandon(connection: Any, driver: Any, cursor: Any) -> None:
    """A broken or half-used connection never goes back to the pool, and keeps nothing:
    its cursor is closed and its transaction rolled back before it is dropped. sqlite3's
    ``close`` waits until every statement is finalized, and the failed one lives on in
    the error's traceback: without this, a write that failed inside ``BEGIN IMMEDIATE``
    (a value SQLite cannot bind) kept the database's write lock until garbage collection,
    and every other write meanwhile was "database is locked"."""
    with suppress(Exception):
        cursor.close()
    with suppress(Exception):
        driver.rollback()
    connection.invalidate()
    connection.close()


class Driver:
    """Runs the hot operations of :mod:`.sql_ops` straight on a pooled driver connection
    (psycopg or sqlite3), statements compiled once, without SQLAlchemy's per-call
    execution machinery (which costs several times the statement itself on SQLite).

    :meth:`single` runs each statement as its own transaction (the connection in
    autocommit): for an operation of one statement, which is atomic on its own (SQLite
    runs it under the database's write lock, PostgreSQL under the row's lock), and for
    independent reads. :meth:`transaction` wraps the statements in ``BEGIN`` (SQLite:
    ``BEGIN IMMEDIATE``) and ``COMMIT``; on PostgreSQL each statement whose answer the
    operation waits for is one round trip, and the last statement goes out with the
    ``COMMIT`` (a psycopg pipeline). Errors are raised as :attr:`errors`; the connection
    is then dropped, never returned to the pool half-used.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        self.compiled = Statements(engine.dialect)
        dbapi_error: type[Exception] = engine.dialect.loaded_dbapi.Error
        self.errors: tuple[type[BaseException], ...] = (dbapi_error, SQLAlchemyError, OSError)
        # Connections kept checked out of the engine's pool between operations (a pool
        # checkout and checkin cost several times a SQLite statement). At most
        # ``_keep`` wait here; the rest go back to the pool. PostgreSQL ones stay in
        # autocommit while here, and leave it when they go back.
        self._idle: deque[Any] = deque()
        size = getattr(engine.pool, "size", None)
        self._keep = max(1, int(size())) if callable(size) else 1
        _drivers.add(self)

    def _forget(self) -> None:
        """In a forked child: the kept connections are the parent's; leave them alone."""
        self._idle = deque()

    def _checkout(self) -> tuple[Any, Any, Any]:
        """A pooled connection, its driver connection and a cursor of it (kept too)."""
        driver: Any
        while True:
            try:
                connection, driver, cursor = self._idle.pop()
            except IndexError:
                connection = self._engine.raw_connection()
                driver = connection.driver_connection
                if not self._sqlite:
                    driver.autocommit = True
                return connection, driver, driver.cursor()
            if self._sqlite or not _looks_closed(driver):
                return connection, driver, cursor
            connection.invalidate()
            connection.close()

    def _checkin(self, connection: Any, driver: Any, cursor: Any) -> None:
        if len(self._idle) < self._keep:
            self._idle.append((connection, driver, cursor))
        else:
            cursor.close()
            self._release(connection, driver)

    def _release(self, connection: Any, driver: Any) -> None:
        if not self._sqlite and connection.is_valid:
            driver.autocommit = False
        connection.close()

    def close(self) -> None:
        """Give the kept connections back to the pool (before it is disposed)."""
        while self._idle:
            try:
                connection, driver, cursor = self._idle.pop()
            except IndexError:
                break
            with suppress(*self.errors):
                cursor.close()
                self._release(connection, driver)

    def _execute(
        self, cursor: Any, statement: ClauseElement, params: Any, *, piped: bool = False
    ) -> DriverResult:
        compiled = self.compiled(statement)
        if isinstance(params, (list, tuple)):  # several rows: executemany (a C type check)
            cursor.executemany(compiled.sql, [compiled.args(p) for p in params])
            return DriverResult([], -1 if piped else int(cursor.rowcount))
        cursor.execute(compiled.sql, compiled.args(params))
        if compiled.returns_rows:
            values = cursor.fetchall()  # in a pipeline: waits for this statement's answer
            names = compiled.columns
            if names is None:  # psycopg builds the description's Column objects each read
                names = tuple(column[0] for column in cursor.description)
            return DriverResult(compiled.rows(names, values), cursor.rowcount)
        # In a pipeline the count is known only at the next sync: nothing may read it.
        return DriverResult([], -1 if piped else int(cursor.rowcount))

    def _drive(
        self, driver: Any, cursor: Any, op: Generator[Any, Any, R], *, piped: bool = False
    ) -> R:
        """Run ``op``'s statements on ``cursor`` (each its own transaction unless the
        caller began one)."""
        try:
            statement, params = next(op)
            while True:
                result = self._execute(cursor, statement, params, piped=piped)
                statement, params = op.send(result)
        except StopIteration as stop:
            value: R = stop.value
            return value

    def single(self, make: Callable[[], Generator[Any, Any, R]]) -> R:
        """Run the operation ``make()`` builds, each statement its own transaction."""
        return self._retrying(make, self._drive)

    def transaction(self, make: Callable[[], Generator[Any, Any, R]]) -> R:
        """Run the operation ``make()`` builds as one transaction (SQLite: ``BEGIN
        IMMEDIATE``)."""
        return self._retrying(make, self._transaction)

    def _retrying(
        self,
        make: Callable[[], Generator[Any, Any, R]],
        run: Callable[[Any, Any, Generator[Any, Any, R]], R],
    ) -> R:
        # A connection the server dropped so recently that the checkout could not see it
        # (pg_terminate_backend, a restart) fails on first use: the operation runs once
        # more on a new connection. Only if the drop came after the server ran it could
        # it run twice, and then the second run is the stricter answer (a claim is
        # replayed, a failure counted twice), never a looser one.
        for attempt in (1, 2):
            connection, driver, cursor = self._checkout()
            try:
                result = run(driver, cursor, make())
            except BaseException as exc:
                _abandon(connection, driver, cursor)
                if attempt == 2 or self._sqlite or not self._dropped(driver, exc):
                    raise
            else:
                self._checkin(connection, driver, cursor)
                return result
        raise AssertionError("unreachable")

    def _dropped(self, driver: Any, exc: BaseException) -> bool:
        """Did the server drop the connection? A missed deadline closed it too, but
        that is no drop: the server may have run the statement (or be running it),
        and a second run could count a failure twice."""
        dbapi = self._engine.dialect.loaded_dbapi
        return (
            isinstance(exc, dbapi.OperationalError)
            and not _missed_deadline(exc)
            and bool(self._engine.dialect.is_disconnect(exc, driver, None))
        )

    def _transaction(self, driver: Any, cursor: Any, op: Generator[Any, Any, R]) -> R:
        if self._sqlite:
            cursor.execute("BEGIN IMMEDIATE")
            result = self._drive(driver, cursor, op)
            cursor.execute("COMMIT")
            return result
        # psycopg (autocommit): BEGIN goes out with the first statement, COMMIT with the
        # last; the round trips are the statements whose answer the op waits for.
        with driver.pipeline():
            cursor.execute("BEGIN")
            result = self._drive(driver, cursor, op, piped=True)
            cursor.execute("COMMIT")
        return result


class AsyncDriver:
    """:class:`Driver` for asyncpg: the operation runs straight on the pooled asyncpg
    connection (its statement cache prepares each statement once per connection), each
    statement its own transaction or, with ``transaction``, all in one."""

    def __init__(self, engine: AsyncEngine, *, timeout: float = TIMEOUT) -> None:
        import asyncpg  # type: ignore[import-untyped]

        self._engine = engine
        # How long a connection whose statement was cancelled may take to close.
        self._cancel_within = cancel_bound(timeout)
        self.compiled = Statements(engine.dialect)
        # As Driver: a few connections kept checked out between operations, one list
        # per event loop (an asyncpg connection belongs to its loop); none for pools
        # without a size (NullPool: connections are not kept).
        size = getattr(engine.sync_engine.pool, "size", None)
        self._keep = max(1, int(size())) if callable(size) else 0
        self._idle: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, deque[Any]] = (
            weakref.WeakKeyDictionary()
        )
        _drivers.add(self)
        # asyncpg's own state errors (``InternalClientError``: "another operation is in
        # progress", a result with no one waiting) come from a connection whose protocol
        # a dropped socket left half-way; they are neither a PostgresError nor an
        # InterfaceError, and the connection is no use afterwards.
        self._broken: type[BaseException] = asyncpg.exceptions.InternalClientError
        self.errors: tuple[type[BaseException], ...] = (
            asyncpg.PostgresError,
            asyncpg.InterfaceError,
            self._broken,
            SQLAlchemyError,
            OSError,
            TimeoutError,
        )

    async def run(
        self,
        make: Callable[[], Generator[Any, Any, R]],
        *,
        transaction: bool,
        read_only: bool = False,
    ) -> R:
        """Run the operation ``make()`` builds (once more on a new connection if the
        server had dropped this one; see :meth:`Driver._retrying`). A connection that
        failed is always discarded; one whose protocol broke (:attr:`_broken`) is retried
        only for a ``read_only`` operation: asyncpg may raise it after the server ran a
        statement, and a read cannot take effect twice."""
        loop = asyncio.get_running_loop()
        idle = self._idle.get(loop)
        if idle is None:
            idle = self._idle[loop] = deque()
        for attempt in (1, 2):
            if idle and not idle[-1][1].is_closed():  # a kept connection: no await
                connection, driver = idle.pop()
            else:
                connection, driver = await self._checkout(idle)
            try:
                if not transaction:
                    result = await self._drive(make(), driver)
                else:
                    async with driver.transaction():
                        result = await self._drive(make(), driver)
            except BaseException as exc:
                # Whether the server had dropped the connection, read before the
                # discard below closes it (after which every connection reads closed,
                # and a write whose protocol broke half-way ran twice). A cancelled
                # operation is never run again: the caller has given up on it.
                dropped = driver.is_closed()
                if isinstance(exc, TimeoutError | asyncio.CancelledError):
                    # No answer in time (command_timeout), or the caller gave up:
                    # asyncpg is sending the server a cancel request; the connection
                    # closes once it is through, or is terminated after a short bound
                    # (a server that stopped answering confirms nothing).
                    try:
                        await close_within(driver, self._cancel_within)
                    finally:  # even if cancelled again meanwhile
                        await self._discard(connection)
                else:
                    await self._discard(connection)
                again = isinstance(exc, Exception) and (
                    dropped or (read_only and isinstance(exc, self._broken))
                )
                if attempt == 2 or not again:
                    raise
            else:
                if len(idle) < self._keep:
                    idle.append((connection, driver))
                else:
                    await greenlet_spawn(connection.close)
                return result
        raise AssertionError("unreachable")

    def _forget(self) -> None:
        """In a forked child: the kept connections are the parent's; leave them alone."""
        self._idle = weakref.WeakKeyDictionary()

    async def _checkout(self, idle: deque[Any]) -> tuple[Any, Any]:
        while idle:
            connection, driver = idle.pop()
            if not driver.is_closed():
                return connection, driver
            await self._discard(connection)
        connection = await self._engine.raw_connection()
        return connection, connection.driver_connection

    @staticmethod
    async def _discard(connection: Any) -> None:
        # Closing may await (asyncpg's close): in a greenlet, as SQLAlchemy does.
        await greenlet_spawn(connection.invalidate)
        await greenlet_spawn(connection.close)

    async def close(self) -> None:
        """Give this loop's kept connections back to the pool (before it is disposed)."""
        idle = self._idle.pop(asyncio.get_running_loop(), None)
        while idle:
            connection, _ = idle.pop()
            with suppress(*self.errors):
                await greenlet_spawn(connection.close)

    async def _drive(self, op: Generator[Any, Any, R], driver: Any) -> R:
        try:
            statement, params = next(op)
            while True:
                compiled = self.compiled(statement)
                result: DriverResult
                if isinstance(params, (list, tuple)):  # several rows
                    await driver.executemany(compiled.sql, [compiled.args(p) for p in params])
                    result = DriverResult([], -1)
                elif compiled.returns_rows:
                    records = await driver.fetch(compiled.sql, *compiled.args(params))
                    if not records:
                        result = DriverResult([], 0)
                    else:
                        names = compiled.columns or tuple(records[0].keys())
                        result = DriverResult(compiled.rows(names, records), len(records))
                else:
                    status = await driver.execute(compiled.sql, *compiled.args(params))
                    count = status.rpartition(" ")[2]
                    result = DriverResult([], int(count) if count.isdigit() else -1)
                statement, params = op.send(result)
        except StopIteration as stop:
            value: R = stop.value
            return value
