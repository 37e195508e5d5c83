"""The SQL store: SQLite (the embedded default) or PostgreSQL, sync and async.

Everything survives a restart and is shared by every process that opens the same
database. Each method is one transaction running one operation of
:mod:`.sql_ops` (the same code for both flavours); any driver error becomes
:class:`~stepup.errors.StoreUnavailableError`, so verification fails closed, and
the next call simply opens a fresh connection. What it chains is a
:class:`DriverError`: the driver's error class and the first line of its message, never
SQLAlchemy's error, which carries the statement's parameters (sealed secrets, or a
``plain:`` one without sealing keys), whoever built the engine.

SQLite has one writer at a time. Inside one process the store queues its writing
transactions on a lock (cheaper than SQLite's busy handler, which polls with
sleeps); between processes ``BEGIN IMMEDIATE`` and ``busy_timeout`` do it. The async
store runs its SQLite operations on sync stores, where a caller's timeout can cut a
wait for the lock short (see :meth:`AsyncSQLStore._on_sqlite`).

Quick start::

    store = SQLStore.sqlite("/var/lib/myapp/stepup.sqlite3")    # creates the tables
    store = SQLStore("postgresql+psycopg://app@db/app"); store.create_schema()
    store = AsyncSQLStore("postgresql+asyncpg://app@db/app"); await store.create_schema()
"""

from __future__ import annotations

import asyncio
import math
import os
import queue
import sqlite3
import threading
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager, nullcontext, suppress
from functools import partial
from typing import Any, ClassVar, TypeVar

from ..._extras import needs_extra

with needs_extra(__name__, "sql"):
    from sqlalchemy import Connection, CursorResult, Engine, select
    from sqlalchemy.engine import URL
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ...errors import StoreConfigurationError, StoreUnavailableError
from ...records import Attempt, Challenge, Credential, Grant, Passkey, Tenant, ThrottleState
from ...throttle import ThrottlePolicy
from . import boundary
from . import sql_ops as ops
from .sql_engine import (
    IMMEDIATE,
    TIMEOUT,
    AsyncDriver,
    Driver,
    answers_within,
    build_async_engine,
    build_engine,
    check_maintenance_timeout,
    default_sqlite_path,
    describe,
    prepare_sqlite_file,
)
from .sql_schema import DEFAULT_PREFIX, Tables, create_schema, drop_schema
from .urls import startup_error

__all__ = ["AsyncSQLStore", "DriverError", "SQLStore", "default_sqlite_path"]

R = TypeVar("R")

#: What "the database could not answer" looks like: SQLAlchemy wraps driver errors;
#: sockets and timeouts can surface raw from async drivers.
_DRIVER_ERRORS = (SQLAlchemyError, OSError, UnicodeError)


#: Compare-and-set rounds an asyncpg attempt may lose before it takes the row lock.
_SWAP_TRIES = 3


#: How much of a driver's message a :class:`DriverError` keeps.
_MAX_REASON = 300


class DriverError(Exception):
    """What the SQL store chains under :class:`~stepup.errors.StoreUnavailableError`:
    which error the database's driver raised and what it said, for the operator's logs,
    and nothing the statement was sent with.

    SQLAlchemy's errors carry the statement and its parameters (a credential's JSON,
    hashes) and print them unless the engine hides them, which an engine the app passes
    in need not; PostgreSQL's ``DETAIL`` line can quote the failing row, and its
    ``CONTEXT`` a value. So the store chains this copy instead: ``driver``, the driver's
    error class (``psycopg.errors.UniqueViolation``); ``reason``, the first line of its
    message (the store's password cut out, at most 300 characters); ``kind``, the name
    of the error the store caught, as the unavailable error's message gives it;
    ``sqlstate`` (PostgreSQL) and ``sqlite_errorcode`` when the driver gave one.
    """

    def __init__(
        self,
        kind: str,
        driver: str,
        reason: str,
        *,
        sqlstate: str | None = None,
        sqlite_errorcode: int | None = None,
    ) -> None:
        super().__init__(f"({driver}) {reason}" if reason else f"({driver})")
        self.kind = kind
        self.driver = driver
        self.reason = reason
        self.sqlstate = sqlstate
        self.sqlite_errorcode = sqlite_errorcode


def _driver_error(exc: BaseException, password: str | None) -> DriverError:
    """``exc`` as a :class:`DriverError`: the driver's own error under SQLAlchemy's
    wrapper (``orig``, and under an emulated DB-API error such as asyncpg's, its
    ``orig``), else ``exc`` itself; of a SQLAlchemy error without one, its message
    without the statement and parameters SQLAlchemy prints after it."""
    if isinstance(exc, DriverError):
        return exc
    inner = exc
    for _ in range(2):
        orig = getattr(inner, "orig", None)
        if not isinstance(orig, BaseException) or orig is inner:
            break
        inner = orig
    if inner is exc and isinstance(exc, SQLAlchemyError):
        text = str(exc.args[0]) if exc.args else ""
    else:
        text = str(inner)
    reason = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if password:
        reason = reason.replace(password, "***")
    if len(reason) > _MAX_REASON:
        reason = reason[: _MAX_REASON - 1] + "…"
    sqlstate = getattr(inner, "sqlstate", None)
    code = getattr(inner, "sqlite_errorcode", None)
    return DriverError(
        type(exc).__name__,
        f"{type(inner).__module__}.{type(inner).__qualname__}",
        reason,
        sqlstate=sqlstate if isinstance(sqlstate, str) else None,
        sqlite_errorcode=code if isinstance(code, int) else None,
    )


def _unavailable(store: _Base, operation: str, exc: BaseException) -> StoreUnavailableError:
    """The error a failed operation raises: its message names the operation and the
    error's type only (driver messages can carry the URL); the driver's error is chained
    as a :class:`DriverError`. Raise it outside the ``except`` that caught ``exc``, so
    that Python does not keep ``exc`` as its context either."""
    cause = _driver_error(exc, store._url.password)
    error = StoreUnavailableError(
        f"{type(store).__name__}.{operation}: database unavailable ({cause.kind})"
    )
    error.__cause__ = cause
    return error


def _startup_error(store: _Base, exc: BaseException) -> StoreConfigurationError:
    """``create_schema``'s error for the person starting the app: the URL without its
    password and the driver's reason (:func:`.urls.startup_error`), the driver's error
    chained as a :class:`DriverError`."""
    password = store._url.password
    error = startup_error(store._url, "create the tables", exc, password=password)
    error.__cause__ = _driver_error(exc, password)
    return error


def _drive(op: ops.Op[R], conn: Connection) -> R:
    try:
        request = next(op)
        while True:
            request = op.send(conn.execute(*request))
    except StopIteration as stop:
        result: R = stop.value
        return result


async def _drive_async(op: ops.Op[R], conn: AsyncConnection) -> R:
    try:
        request = next(op)
        while True:
            executed: CursorResult[Any] = await conn.execute(*request)
            request = op.send(executed)
    except StopIteration as stop:
        result: R = stop.value
        return result


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if not future.done():  # the awaiting task may have been cancelled meanwhile
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)


async def _until_done(future: asyncio.Future[Any]) -> None:
    """Wait for ``future`` to be settled, whatever it answers, however often the waiting
    task is cancelled meanwhile (anyio's cancel scopes cancel it again at every turn of
    the loop until it leaves the scope): a call that began must end before its task
    goes on, or what it does would land behind the caller's back."""
    while not future.done():
        # Its own error too: the cancelled task's answer is the cancellation.
        with suppress(asyncio.CancelledError, Exception):
            await asyncio.shield(future)
    if not future.cancelled():
        future.exception()  # retrieved, so never logged as never retrieved


#: Every _Worker, so a forked child starts its own thread (the parent's is not there).
_workers: weakref.WeakSet[_Worker] = weakref.WeakSet()


class _Worker:
    """One thread of its own that runs calls for event loops: a call in through a queue,
    its answer back through the loop's ``call_soon_threadsafe``. One thread hop each
    way, with less machinery than ``run_in_executor`` (an executor work item, a
    concurrent future and the asyncio future chained to it)."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[
            tuple[asyncio.Future[Any], threading.Lock, Callable[[], Any]] | None
        ] = queue.SimpleQueue()
        self.alive = True
        threading.Thread(target=self._serve, name="stepup-sqlite", daemon=True).start()
        _workers.add(self)

    def _serve(self) -> None:
        jobs = self._jobs
        while (job := jobs.get()) is not None:
            future, claim, call = job
            if claim.acquire(blocking=False):  # else its task was cancelled before it began
                try:
                    result, error = call(), None
                except BaseException as exc:  # handed to the awaiting task, as an executor does
                    result, error = None, exc
                with suppress(RuntimeError):  # a closed loop: nobody is waiting any more
                    future.get_loop().call_soon_threadsafe(_settle, future, result, error)
                del result, error
            del job, future, claim, call

    async def run(self, call: Callable[[threading.Event], R]) -> R:
        """``call(given_up)`` in the thread. A task cancelled while it waits (a timeout)
        gets its ``CancelledError`` at once if the call has not begun, and the call never
        runs; if it has, ``given_up`` is set and the task waits for the call to end (one
        waiting for SQLite's lock stops at its next slice: :func:`_waiting`), so nothing
        the call does lands after the task was cancelled."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        claim, given_up = threading.Lock(), threading.Event()
        self._jobs.put((future, claim, partial(call, given_up)))
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            given_up.set()
            if not claim.acquire(blocking=False):  # begun: its answer no longer matters
                await _until_done(future)
            raise

    def stop(self) -> None:
        """The thread ends after the calls already queued."""
        self.alive = False
        self._jobs.put(None)


def _forget_workers() -> None:
    for worker in list(_workers):
        worker.alive = False  # its thread is the parent's: a new one on next use


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_workers)


_BUSY_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
#: How a SQLite refusal reads as a DriverError's ``driver``.
_SQLITE_REFUSAL = "sqlite3.OperationalError"


def _busy(cause: BaseException | None) -> bool:
    """Did SQLite refuse at once because another connection holds a lock
    (``SQLITE_BUSY``, ``SQLITE_LOCKED``)? Nothing was changed then. ``cause``: what the
    sync store chained (a driver's error, wrapped or not, is read the same way)."""
    if cause is None:
        return False
    error = _driver_error(cause, None)
    return error.driver == _SQLITE_REFUSAL and error.sqlite_errorcode in _BUSY_CODES


#: The longest wait (seconds) of the async SQLite store's thread in SQLite's busy handler
#: at a time: nothing can stop that wait (``Connection.interrupt`` does not), so the
#: thread waits ``busy_timeout`` in slices and stops at the next one once the task that
#: awaits the operation is cancelled.
_LOCK_SLICE = 0.1


def _waiting(call: Callable[[], R], tries: int, given_up: threading.Event) -> R:
    """``call()`` in the async SQLite store's thread, on the sync store whose
    ``busy_timeout`` is one slice: run again while SQLite refuses it for a lock held
    elsewhere (it changed nothing then), ``tries`` times in all, and not again once
    ``given_up`` is set."""
    while True:
        try:
            return call()
        except StoreUnavailableError as exc:
            tries -= 1
            if tries <= 0 or given_up.is_set() or not _busy(exc.__cause__):
                raise


class _Base:
    _url: URL
    #: Each operation is one statement or transaction (the contract's forced race cases
    #: have no read of this store's own to interleave; its thread cases test it).
    atomic_operations: ClassVar[bool] = True

    def __init__(self, engine: Engine | AsyncEngine, prefix: str) -> None:
        self._tables = Tables.build(prefix)
        self._s = ops.Statements(self._tables, engine.dialect.name)
        self._url = engine.url

    @property
    def prefix(self) -> str:
        return self._tables.prefix

    def __repr__(self) -> str:
        return f"{type(self).__name__}({describe(self._url)!r}, prefix={self.prefix!r})"


class SQLStore(_Base):
    """Implements :class:`stepup.adapters.storage.base.Store` on SQLAlchemy Core.

    ``url_or_engine`` is a URL (``sqlite:///path``, ``postgresql+psycopg://...``; plain
    ``postgresql://`` means psycopg 3) or an :class:`~sqlalchemy.Engine` you built
    (give it before first use: SQLite engines get the store's connect hooks).
    ``engine_options`` go to :func:`sqlalchemy.create_engine`. Call
    :meth:`create_schema` once at deploy or start-up.

    On PostgreSQL, an engine built from a URL waits at most ``timeout`` seconds
    (default :data:`~.sql_engine.TIMEOUT`, 5) for a connection, for a free pooled one
    and for each answer of the server (psycopg 3.3 or later; before it, connecting
    only), so an operation on a server that stopped answering fails closed in about
    that time (a statement that missed it is cancelled on the server, waited for at
    most :data:`~.sql_engine.CANCEL_TIMEOUT` more); an engine you pass keeps its own
    settings (docs/storage.md says which). Maintenance, which no request waits for
    (:meth:`create_schema`, :meth:`drop_schema`, :meth:`prune`,
    :meth:`credential_user_ids`), waits for each answer at most
    ``maintenance_timeout`` seconds instead (``None``, the default: as long as it
    takes), connecting still bounded by ``timeout``. ``busy_timeout`` is SQLite's.
    """

    def __init__(
        self,
        url_or_engine: str | URL | Engine,
        *,
        prefix: str = DEFAULT_PREFIX,
        busy_timeout: float = 10.0,
        timeout: float = TIMEOUT,
        maintenance_timeout: float | None = None,
        **engine_options: Any,
    ) -> None:
        self._maintenance_timeout = check_maintenance_timeout(maintenance_timeout)
        self.engine = build_engine(url_or_engine, busy_timeout, timeout, **engine_options)
        super().__init__(self.engine, prefix)
        self._writer = self.engine.execution_options(**{IMMEDIATE: True})
        self._write_lock: AbstractContextManager[Any] = (
            threading.Lock() if self.engine.dialect.name == "sqlite" else nullcontext()
        )
        self._driver = Driver(self.engine)

    @classmethod
    def sqlite(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        prefix: str = DEFAULT_PREFIX,
        create: bool = True,
        **options: Any,
    ) -> SQLStore:
        """A store on the SQLite file ``path`` (default: :func:`default_sqlite_path`),
        created owner-only if new, with the tables created unless ``create=False``."""
        target = prepare_sqlite_file(path)
        store = cls(URL.create("sqlite+pysqlite", database=str(target)), prefix=prefix, **options)
        if create:
            store.create_schema()
        return store

    def _run(self, name: str, op: ops.Op[R], *, write: bool) -> R:
        try:
            if not write:
                with self.engine.begin() as conn:
                    return _drive(op, conn)
            with self._write_lock, self._writer.begin() as conn:
                return _drive(op, conn)
        except _DRIVER_ERRORS as exc:
            failure = _unavailable(self, name, exc)
        raise failure

    def _direct(
        self,
        name: str,
        make: Callable[..., ops.Op[R]],
        *args: Any,
        write: bool,
        transaction: bool = False,
    ) -> R:
        """Run the operation ``make(statements, *args)`` on the driver connection (see
        :class:`.sql_engine.Driver`): each statement its own transaction, or, with
        ``transaction``, all in one."""
        driver, op = self._driver, partial(make, self._s, *args)
        run = driver.transaction if transaction else driver.single
        try:
            if not write:  # reads take no lock (the hot path of every check)
                return run(op)
            with self._write_lock:
                return run(op)
        except driver.errors as exc:
            failure = _unavailable(self, name, exc)
        except UnicodeError as exc:  # a lone surrogate cannot be sent
            failure = _unavailable(self, name, exc)
        raise failure

    def _maintain(self, work: Callable[[Connection], R], *, write: bool = True) -> R:
        """Run ``work`` in one transaction (a writing one unless ``write`` is false),
        each answer waited for at most ``maintenance_timeout`` seconds."""
        lock = self._write_lock if write else nullcontext()
        with lock, (self._writer if write else self.engine).connect() as conn:
            bound = answers_within(self.engine, conn.connection, self._maintenance_timeout)
            with bound, conn.begin():
                return work(conn)

    def _maintenance(self, name: str, work: Callable[[Connection], R], *, write: bool = True) -> R:
        try:
            return self._maintain(work, write=write)
        except _DRIVER_ERRORS as exc:
            failure = _unavailable(self, name, exc)
        raise failure

    # lifecycle (maintenance: no request waits for these) ------------------------

    def create_schema(self) -> int:
        """Create or upgrade the tables (idempotent; see :mod:`.sql_schema`). A start-up
        step: failure is a :class:`~stepup.errors.StoreConfigurationError` naming the
        URL (no password), and the driver's reason (a schema version it cannot upgrade:
        in its own words). A migration of a large table takes what it takes: each
        answer is bounded by ``maintenance_timeout``, not ``timeout``."""
        try:
            return self._maintain(lambda conn: create_schema(conn, self._tables))
        except _DRIVER_ERRORS as exc:
            failure = _startup_error(self, exc)
        raise failure

    def drop_schema(self) -> None:
        """Drop this prefix's tables and everything in them."""
        self._maintenance("drop_schema", lambda conn: drop_schema(conn, self._tables))

    def prune(self, now: float) -> int:
        """Delete throttle state past its ``keep_until``, expired grants and challenges;
        returns rows. A large backlog takes what it takes (``maintenance_timeout``)."""
        op = ops.prune(self._s, now)
        return self._maintenance("prune", lambda conn: _drive(op, conn))

    def credential_user_ids(self) -> list[str]:
        """Every user id with a stored TOTP credential, in order: what the operator's
        ``reseal`` goes through. Bounded by ``maintenance_timeout``, as a large table's
        list may take longer than a request's ``timeout``."""
        return self._maintenance("credential_user_ids", self._user_ids, write=False)

    def _user_ids(self, conn: Connection) -> list[str]:
        user_id = self._tables.credentials.c.user_id
        return [str(row[0]) for row in conn.execute(select(user_id).order_by(user_id))]

    def close(self) -> None:
        """Close pooled connections (the store opens new ones if used again)."""
        self._driver.close()
        self.engine.dispose()

    def __enter__(self) -> SQLStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # attempts -------------------------------------------------------------------

    def totp_attempt(
        self, key: str, step: int | None, now: float, throttle: ThrottlePolicy
    ) -> Attempt:
        boundary.check_totp_attempt(key, step, now)
        # The common cases, a later step by a credential that is not blocked, a key's
        # first step, or a wrong code from a credential that is not blocked, are one
        # statement; only if it decides nothing does the locked read-decide-write
        # transaction run.
        if step is None:
            counted = self._direct(
                "totp_attempt", ops.count_failure, key, now, throttle, write=True
            )
            if counted is not None:
                return counted
        elif self._direct("totp_attempt", ops.claim_step, key, step, now, throttle, write=True):
            return ops.ACCEPTED
        locked = partial(ops.totp_attempt, claim=False)
        args = (key, step, now, throttle)
        return self._direct("totp_attempt", locked, *args, write=True, transaction=True)

    def throttle_charge(self, key: str, now: float, throttle: ThrottlePolicy) -> Attempt:
        boundary.check_throttle_charge(key, now)
        charge = ops.throttle_charge
        return self._direct(
            "throttle_charge", charge, key, now, throttle, write=True, transaction=True
        )

    def throttle_refund(self, key: str, charge: Attempt, at: float) -> None:
        boundary.check_throttle_refund(key, charge, at)
        self._run("throttle_refund", ops.throttle_refund(self._s, key, charge, at), write=True)

    def throttle_clear(self, key: str) -> None:
        boundary.check_throttle_clear(key)
        self._run("throttle_clear", ops.throttle_clear(self._s, key), write=True)

    def throttle_state(self, key: str) -> ThrottleState:
        boundary.check_throttle_state(key)
        return self._run("throttle_state", ops.throttle_state(self._s, key), write=False)

    # credentials ----------------------------------------------------------------

    def get_credential(self, user_id: str) -> Credential | None:
        boundary.check_user_read(user_id)
        return self._direct("get_credential", ops.get_credential, user_id, write=False)

    def put_credential(self, credential: Credential) -> None:
        boundary.check_credential_write(credential)
        self._run("put_credential", ops.put_credential(self._s, credential), write=True)

    def add_credential(self, credential: Credential) -> bool:
        boundary.check_credential_write(credential)
        return self._run("add_credential", ops.add_credential(self._s, credential), write=True)

    def delete_credential(self, user_id: str) -> bool:
        boundary.check_delete_credential(user_id)
        return self._run("delete_credential", ops.delete_credential(self._s, user_id), write=True)

    def consume_recovery_hash(self, user_id: str, digest: str) -> bool:
        boundary.check_consume_recovery_hash(user_id, digest)
        op = ops.consume_recovery_hash(self._s, user_id, digest)
        return self._run("consume_recovery_hash", op, write=True)

    def replace_credential(self, credential: Credential, expected_version: int) -> bool:
        boundary.check_replace_credential(credential, expected_version)
        op = ops.replace_credential(self._s, credential, expected_version)
        return self._run("replace_credential", op, write=True)

    # tenants --------------------------------------------------------------------

    def get_tenant(self, tenant_id: str) -> Tenant | None:
        return self._direct("get_tenant", ops.get_tenant, tenant_id, write=False)

    def put_tenant(self, tenant: Tenant) -> None:
        boundary.check_tenant_write(tenant)
        self._run("put_tenant", ops.put_tenant(self._s, tenant), write=True)

    def add_tenant(self, tenant: Tenant) -> Tenant:
        boundary.check_tenant_write(tenant)
        return self._run("add_tenant", ops.add_tenant(self._s, tenant), write=True)

    def patch_tenant(
        self, tenant_id: str, attributes: Mapping[str, Any], flags: Mapping[str, Any]
    ) -> tuple[Tenant, Tenant] | None:
        boundary.check_patch_tenant(tenant_id)
        op = ops.patch_tenant(self._s, tenant_id, attributes, flags)
        return self._run("patch_tenant", op, write=True)

    # grants ---------------------------------------------------------------------

    def put_grant(self, grant: Grant, expires_at: float) -> None:
        boundary.check_put_grant(grant, expires_at)
        self._run("put_grant", ops.put_grant(self._s, grant, expires_at), write=True)

    def get_grant(self, user_id: str, session_id: str) -> Grant | None:
        return self._direct("get_grant", ops.get_grant, user_id, session_id, write=False)

    # batch ----------------------------------------------------------------------

    #: The methods :meth:`batch` answers (flows read it as ``store.batchable``).
    batchable: frozenset[str] = ops.BATCHABLE

    def batch(self, calls: Sequence[tuple[str, tuple[Any, ...]]]) -> tuple[Any, ...]:
        """Answer several independent reads (``(method, args)`` pairs, methods from
        :attr:`batchable`) on one connection; a tenant and a grant (a re-authentication
        check) are one statement. Not a snapshot: each read sees the latest commit. For
        decision code: a tenant read here is shared with other checks, read-only;
        :meth:`get_tenant` gives a caller its own."""
        return self._direct("batch", ops.batch, calls, write=False)

    def replace_grant(
        self, grant: Grant, expires_at: float, expected: Grant, from_session: str
    ) -> bool:
        boundary.check_replace_grant(grant, expires_at, expected, from_session)
        op = ops.replace_grant(self._s, grant, expires_at, expected, from_session)
        return self._run("replace_grant", op, write=True)

    def revoke_grants(self, user_id: str, session_id: str | None = None) -> int:
        boundary.check_revoke_grants(user_id, session_id)
        op = ops.revoke_grants(self._s, user_id, session_id)
        return self._run("revoke_grants", op, write=True)

    # challenges -----------------------------------------------------------------

    def put_challenge(self, challenge: Challenge) -> None:
        boundary.check_put_challenge(challenge)
        self._run("put_challenge", ops.put_challenge(self._s, challenge), write=True)

    def take_challenge(self, challenge_id: str, now: float) -> Challenge | None:
        boundary.check_take_challenge(challenge_id)
        op = ops.take_challenge(self._s, challenge_id, now)
        return self._run("take_challenge", op, write=True)

    # passkeys -------------------------------------------------------------------

    def list_passkeys(self, user_id: str) -> tuple[Passkey, ...]:
        boundary.check_user_read(user_id)
        return self._run("list_passkeys", ops.list_passkeys(self._s, user_id), write=False)

    def add_passkey(self, passkey: Passkey, max_per_user: int) -> bool:
        boundary.check_add_passkey(passkey, max_per_user)
        op = ops.add_passkey(self._s, passkey, max_per_user)
        return self._run("add_passkey", op, write=True)

    def remove_passkey(self, user_id: str, credential_id: str) -> bool:
        boundary.check_remove_passkey(user_id, credential_id)
        op = ops.remove_passkey(self._s, user_id, credential_id)
        return self._run("remove_passkey", op, write=True)

    def record_passkey_use(self, passkey: Passkey, expected_count: int) -> bool:
        boundary.check_record_passkey_use(passkey, expected_count)
        op = ops.record_passkey_use(self._s, passkey, expected_count)
        return self._run("record_passkey_use", op, write=True)

    def rename_passkey(self, user_id: str, credential_id: str, name: str) -> bool:
        boundary.check_rename_passkey(user_id, credential_id, name)
        op = ops.rename_passkey(self._s, user_id, credential_id, name)
        return self._run("rename_passkey", op, write=True)


class AsyncSQLStore(_Base):
    """Implements :class:`stepup.adapters.storage.base.AsyncStore` on SQLAlchemy's asyncio.

    URLs: ``sqlite+aiosqlite:///path`` (plain ``sqlite:///`` is mapped to it),
    ``postgresql+asyncpg://...`` or ``postgresql+psycopg://...`` (psycopg's async mode).
    Create it anywhere; it connects on first use, on the running event loop.
    ``timeout`` and ``maintenance_timeout``: as :class:`SQLStore`'s (asyncpg's
    ``timeout`` and ``command_timeout``).
    """

    def __init__(
        self,
        url_or_engine: str | URL | AsyncEngine,
        *,
        prefix: str = DEFAULT_PREFIX,
        busy_timeout: float = 10.0,
        timeout: float = TIMEOUT,
        maintenance_timeout: float | None = None,
        **engine_options: Any,
    ) -> None:
        self._maintenance_timeout = check_maintenance_timeout(maintenance_timeout)
        self.engine = build_async_engine(url_or_engine, busy_timeout, timeout, **engine_options)
        super().__init__(self.engine, prefix)
        self._writer = self.engine.execution_options(**{IMMEDIATE: True})
        self._queue_writers = self.engine.dialect.name == "sqlite"
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        # The hot operations skip SQLAlchemy's async layer. asyncpg: straight on the
        # pooled asyncpg connection. SQLite: every operation but maintenance runs on
        # sync stores on the same file, right here unless the database is locked, then
        # in one worker thread of this store (see _on_sqlite; aiosqlite makes a thread
        # hop per call: execute, fetch, commit, and cannot be cut short by a timeout
        # while it waits for the lock).
        self._busy_timeout = busy_timeout
        self._lock_tries = 1
        asyncpg = self.engine.dialect.driver == "asyncpg"
        self._pg = AsyncDriver(self.engine, timeout=timeout) if asyncpg else None
        self._here: SQLStore | None = None
        self._patient: SQLStore | None = None
        self._thread: _Worker | None = None

    @classmethod
    def sqlite(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        prefix: str = DEFAULT_PREFIX,
        **options: Any,
    ) -> AsyncSQLStore:
        """A store on the SQLite file ``path`` (default: :func:`default_sqlite_path`);
        ``await store.create_schema()`` before first use."""
        target = prepare_sqlite_file(path)
        return cls(URL.create("sqlite+aiosqlite", database=str(target)), prefix=prefix, **options)

    def _write_lock(self) -> AbstractAsyncContextManager[Any]:
        # An asyncio.Lock belongs to one loop: keep one per loop (SQLite's own lock
        # still orders writers across loops, threads and processes).
        if not self._queue_writers:
            return nullcontext()
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        return lock

    def _sqlite(self) -> tuple[SQLStore, SQLStore, _Worker]:
        """SQLite: two sync stores on the same file, one that never waits for a lock (used
        on the event loop's thread) and one that waits for it in slices of at most
        :data:`_LOCK_SLICE`, ``busy_timeout`` in all (used in this store's worker thread,
        see :func:`_waiting`), and that thread; all made anew in a forked child, whose
        thread and connections are the parent's."""
        thread, here, patient = self._thread, self._here, self._patient
        if thread is None or not thread.alive or here is None or patient is None:
            url = self._url.set(drivername="sqlite+pysqlite")
            here = self._here = SQLStore(url, prefix=self.prefix, busy_timeout=0)
            tries = self._lock_tries = max(1, math.ceil(self._busy_timeout / _LOCK_SLICE))
            patient = self._patient = SQLStore(
                url, prefix=self.prefix, busy_timeout=self._busy_timeout / tries
            )
            thread = self._thread = _Worker()
        return here, patient, thread

    async def _on_sqlite(self, name: str, *args: Any) -> Any:
        """SQLite: the sync store's ``name(*args)``, right here if the database lets it go
        at once, else in the worker thread.

        Reading a local file, or writing it while no other connection holds the write
        lock, costs a few microseconds: less than the two thread wake-ups of a hop (25
        to 130 µs on the machine in docs/performance.md, depending on where the
        scheduler puts the threads). An operation that finds the database locked (by
        another process, or by this store's own thread) fails at once with
        ``SQLITE_BUSY`` before it has changed anything, and goes to the worker thread,
        which waits up to ``busy_timeout``: the event loop never waits for a lock. A task
        cancelled meanwhile (a timeout) gets its ``CancelledError`` within one
        :data:`_LOCK_SLICE`, and the operation has then either run whole or not at all,
        and will not run later (:meth:`_Worker.run`)."""
        here, patient, thread = self._sqlite()
        try:
            try:
                return getattr(here, name)(*args)
            except StoreUnavailableError as exc:
                if not _busy(exc.__cause__):
                    raise
            wait = partial(_waiting, partial(getattr(patient, name), *args), self._lock_tries)
            return await thread.run(wait)
        except StoreUnavailableError as exc:
            failure = _unavailable(self, name, exc.__cause__ or exc)
        raise failure

    async def _hot(
        self,
        name: str,
        make: Callable[..., ops.Op[R]],
        *args: Any,
        write: bool,
        transaction: bool = False,
    ) -> R:
        """A hot operation: on SQLite right here or in the store's thread (see
        :meth:`_on_sqlite`), on the asyncpg connection, or (psycopg's async mode)
        through SQLAlchemy."""
        if self._queue_writers:
            result: R = await self._on_sqlite(name, *args)
            return result
        if self._pg is not None:
            try:
                return await self._pg.run(
                    partial(make, self._s, *args), transaction=transaction, read_only=not write
                )
            except self._pg.errors as exc:
                failure = _unavailable(self, name, exc)
            raise failure
        return await self._run(name, make(self._s, *args), write=write)

    async def _call(self, name: str, make: Callable[..., ops.Op[R]], *args: Any, write: bool) -> R:
        """Any other operation: on SQLite as a hot one (:meth:`_on_sqlite`), elsewhere
        ``make(statements, *args)`` through SQLAlchemy, in one transaction."""
        if self._queue_writers:
            result: R = await self._on_sqlite(name, *args)
            return result
        return await self._run(name, make(self._s, *args), write=write)

    async def _run(self, name: str, op: ops.Op[R], *, write: bool) -> R:
        try:
            if not write:
                async with self.engine.begin() as conn:
                    return await _drive_async(op, conn)
            async with self._write_lock(), self._writer.begin() as conn:
                return await _drive_async(op, conn)
        except _DRIVER_ERRORS as exc:
            failure = _unavailable(self, name, exc)
        raise failure

    async def _maintain(self, work: Callable[[AsyncConnection], Awaitable[R]]) -> R:
        """Run ``work`` in one writing transaction, each answer waited for at most
        ``maintenance_timeout`` seconds (see :meth:`SQLStore._maintain`)."""
        async with self._write_lock(), self._writer.connect() as conn:
            pooled = await conn.get_raw_connection()
            sync_engine = self.engine.sync_engine
            with answers_within(sync_engine, pooled, self._maintenance_timeout):
                async with conn.begin():
                    return await work(conn)

    async def _maintenance(self, name: str, work: Callable[[AsyncConnection], Awaitable[R]]) -> R:
        try:
            return await self._maintain(work)
        except _DRIVER_ERRORS as exc:
            failure = _unavailable(self, name, exc)
        raise failure

    # lifecycle (maintenance: no request waits for these) ------------------------

    async def create_schema(self) -> int:
        """Create or upgrade the tables (idempotent; see :mod:`.sql_schema`); fails with
        a :class:`~stepup.errors.StoreConfigurationError` like :meth:`SQLStore.create_schema`,
        and is bounded like it (``maintenance_timeout``)."""
        try:
            return await self._maintain(lambda conn: conn.run_sync(create_schema, self._tables))
        except _DRIVER_ERRORS as exc:
            failure = _startup_error(self, exc)
        raise failure

    async def drop_schema(self) -> None:
        """Drop this prefix's tables and everything in them."""
        await self._maintenance(
            "drop_schema", lambda conn: conn.run_sync(drop_schema, self._tables)
        )

    async def prune(self, now: float) -> int:
        """Delete throttle state past its ``keep_until``, expired grants and challenges;
        returns rows (bounded by ``maintenance_timeout``, as :meth:`SQLStore.prune`)."""
        op = ops.prune(self._s, now)
        return await self._maintenance("prune", lambda conn: _drive_async(op, conn))

    async def aclose(self) -> None:
        """Close pooled connections, on the loop that opened them (and, on SQLite, the
        worker thread and its connections)."""
        if self._pg is not None:
            await self._pg.close()
        await self.engine.dispose()
        thread, patient, here = self._thread, self._patient, self._here
        self._thread = self._patient = self._here = None
        if here is not None:
            here.close()
        if thread is not None and patient is not None:
            try:
                if thread.alive:
                    await thread.run(lambda _given_up: patient.close())
            finally:  # a cancelled close still ends the thread, after what is queued
                thread.stop()

    async def __aenter__(self) -> AsyncSQLStore:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    # attempts -------------------------------------------------------------------

    async def totp_attempt(
        self, key: str, step: int | None, now: float, throttle: ThrottlePolicy
    ) -> Attempt:
        if not self._queue_writers:  # on SQLite the sync store runs it, and checks
            boundary.check_totp_attempt(key, step, now)
        args = (key, step, now, throttle)
        if self._pg is not None:
            # As SQLStore: the one-statement claim first. Then, as asyncpg cannot pipeline
            # a locked transaction (four round trips), a compare-and-set of the decided
            # state (two); after a few lost races, the locked transaction.
            if step is None:
                fail, fail_args = ops.count_failure, (key, now, throttle)
                counted = await self._hot("totp_attempt", fail, *fail_args, write=True)
                if counted is not None:
                    return counted
            elif await self._hot("totp_attempt", ops.claim_step, *args, write=True):
                return ops.ACCEPTED
            for _ in range(_SWAP_TRIES):
                swap = ops.totp_attempt_swap
                answer = await self._hot("totp_attempt", swap, *args, write=True)
                if answer is not None:
                    return answer
            locked = partial(ops.totp_attempt, claim=False)
            return await self._hot("totp_attempt", locked, *args, write=True, transaction=True)
        return await self._hot(
            "totp_attempt", ops.totp_attempt, *args, write=True, transaction=True
        )

    async def throttle_charge(self, key: str, now: float, throttle: ThrottlePolicy) -> Attempt:
        if not self._queue_writers:  # on SQLite the sync store runs it, and checks
            boundary.check_throttle_charge(key, now)
        charge, args = ops.throttle_charge, (key, now, throttle)
        return await self._hot("throttle_charge", charge, *args, write=True, transaction=True)

    async def throttle_refund(self, key: str, charge: Attempt, at: float) -> None:
        boundary.check_throttle_refund(key, charge, at)
        await self._call("throttle_refund", ops.throttle_refund, key, charge, at, write=True)

    async def throttle_clear(self, key: str) -> None:
        boundary.check_throttle_clear(key)
        await self._call("throttle_clear", ops.throttle_clear, key, write=True)

    async def throttle_state(self, key: str) -> ThrottleState:
        boundary.check_throttle_state(key)
        return await self._call("throttle_state", ops.throttle_state, key, write=False)

    # credentials ----------------------------------------------------------------

    async def get_credential(self, user_id: str) -> Credential | None:
        if not self._queue_writers:  # on SQLite the sync store runs it, and checks
            boundary.check_user_read(user_id)
        return await self._hot("get_credential", ops.get_credential, user_id, write=False)

    async def put_credential(self, credential: Credential) -> None:
        boundary.check_credential_write(credential)
        await self._call("put_credential", ops.put_credential, credential, write=True)

    async def add_credential(self, credential: Credential) -> bool:
        boundary.check_credential_write(credential)
        return await self._call("add_credential", ops.add_credential, credential, write=True)

    async def delete_credential(self, user_id: str) -> bool:
        boundary.check_delete_credential(user_id)
        return await self._call("delete_credential", ops.delete_credential, user_id, write=True)

    async def consume_recovery_hash(self, user_id: str, digest: str) -> bool:
        boundary.check_consume_recovery_hash(user_id, digest)
        return await self._call(
            "consume_recovery_hash", ops.consume_recovery_hash, user_id, digest, write=True
        )

    async def replace_credential(self, credential: Credential, expected_version: int) -> bool:
        boundary.check_replace_credential(credential, expected_version)
        return await self._call(
            "replace_credential", ops.replace_credential, credential, expected_version, write=True
        )

    # tenants --------------------------------------------------------------------

    async def get_tenant(self, tenant_id: str) -> Tenant | None:
        return await self._hot("get_tenant", ops.get_tenant, tenant_id, write=False)

    async def put_tenant(self, tenant: Tenant) -> None:
        boundary.check_tenant_write(tenant)
        await self._call("put_tenant", ops.put_tenant, tenant, write=True)

    async def add_tenant(self, tenant: Tenant) -> Tenant:
        boundary.check_tenant_write(tenant)
        return await self._call("add_tenant", ops.add_tenant, tenant, write=True)

    async def patch_tenant(
        self, tenant_id: str, attributes: Mapping[str, Any], flags: Mapping[str, Any]
    ) -> tuple[Tenant, Tenant] | None:
        boundary.check_patch_tenant(tenant_id)
        return await self._call(
            "patch_tenant", ops.patch_tenant, tenant_id, attributes, flags, write=True
        )

    # grants ---------------------------------------------------------------------

    async def put_grant(self, grant: Grant, expires_at: float) -> None:
        boundary.check_put_grant(grant, expires_at)
        await self._call("put_grant", ops.put_grant, grant, expires_at, write=True)

    async def get_grant(self, user_id: str, session_id: str) -> Grant | None:
        return await self._hot("get_grant", ops.get_grant, user_id, session_id, write=False)

    # batch ----------------------------------------------------------------------

    #: The methods :meth:`batch` answers (flows read it as ``store.batchable``).
    batchable: frozenset[str] = ops.BATCHABLE

    async def batch(self, calls: Sequence[tuple[str, tuple[Any, ...]]]) -> tuple[Any, ...]:
        """See :meth:`SQLStore.batch`."""
        return await self._hot("batch", ops.batch, calls, write=False)

    async def replace_grant(
        self, grant: Grant, expires_at: float, expected: Grant, from_session: str
    ) -> bool:
        boundary.check_replace_grant(grant, expires_at, expected, from_session)
        args = (grant, expires_at, expected, from_session)
        return await self._call("replace_grant", ops.replace_grant, *args, write=True)

    async def revoke_grants(self, user_id: str, session_id: str | None = None) -> int:
        boundary.check_revoke_grants(user_id, session_id)
        return await self._call("revoke_grants", ops.revoke_grants, user_id, session_id, write=True)

    # challenges -----------------------------------------------------------------

    async def put_challenge(self, challenge: Challenge) -> None:
        boundary.check_put_challenge(challenge)
        await self._call("put_challenge", ops.put_challenge, challenge, write=True)

    async def take_challenge(self, challenge_id: str, now: float) -> Challenge | None:
        boundary.check_take_challenge(challenge_id)
        return await self._call("take_challenge", ops.take_challenge, challenge_id, now, write=True)

    # passkeys -------------------------------------------------------------------

    async def list_passkeys(self, user_id: str) -> tuple[Passkey, ...]:
        boundary.check_user_read(user_id)
        return await self._call("list_passkeys", ops.list_passkeys, user_id, write=False)

    async def add_passkey(self, passkey: Passkey, max_per_user: int) -> bool:
        boundary.check_add_passkey(passkey, max_per_user)
        return await self._call("add_passkey", ops.add_passkey, passkey, max_per_user, write=True)

    async def remove_passkey(self, user_id: str, credential_id: str) -> bool:
        boundary.check_remove_passkey(user_id, credential_id)
        return await self._call(
            "remove_passkey", ops.remove_passkey, user_id, credential_id, write=True
        )

    async def record_passkey_use(self, passkey: Passkey, expected_count: int) -> bool:
        boundary.check_record_passkey_use(passkey, expected_count)
        return await self._call(
            "record_passkey_use", ops.record_passkey_use, passkey, expected_count, write=True
        )

    async def rename_passkey(self, user_id: str, credential_id: str, name: str) -> bool:
        boundary.check_rename_passkey(user_id, credential_id, name)
        return await self._call(
            "rename_passkey", ops.rename_passkey, user_id, credential_id, name, write=True
        )
