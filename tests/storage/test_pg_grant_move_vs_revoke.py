"""PostgreSQL: ``replace_grant`` moving a session's grant to a renewed id and
``revoke_grants(user)`` (a password change) in another worker, each on its own
connection, in a decided order (see :mod:`storage.pg_row_lock`). Whichever goes first, the
user has no grant afterwards: a revocation never returns while the proofs it revoked
stay under the new id (one store instance would hide this: its calls never overlap).

The move updates the grant's row in place (its key too), so a revocation that waited on
the row deletes it as moved; a move that deleted the row and inserted a new one left
the new row out of the revocation's snapshot, and the revocation answered 0."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy.pool import NullPool

from stepup.adapters.storage.sql import AsyncSQLStore, SQLStore
from stepup.errors import StoreUnavailableError
from stepup.records import Grant
from storage.pg_row_lock import race
from support import POSTGRES_URL, need, port_open

T0 = 1_700_000_000.0
ASYNC_POSTGRES_URL = POSTGRES_URL.replace("+psycopg", "+asyncpg", 1)
_PG = urlsplit(POSTGRES_URL.replace("+psycopg", ""))
CONNECT = {
    "host": _PG.hostname or "127.0.0.1",
    "port": _PG.port or 5432,
    "user": _PG.username or "postgres",
    "password": _PG.password or None,
    "dbname": _PG.path.lstrip("/") or "test",
}
#: The new id sorts (and is written) before the old one, so a revocation reaches a
#: grant already stored under the new id before it waits on the row being moved.
OLD, NEW = "b-old", "a-new"


@pytest.fixture(scope="module")
def prefix() -> Iterator[str]:
    need(port_open(CONNECT["host"], CONNECT["port"]), "PostgreSQL on 127.0.0.1:5432")
    prefix = f"t{uuid.uuid4().hex[:12]}_"
    store = SQLStore(POSTGRES_URL, prefix=prefix)
    store.create_schema()
    yield prefix
    store.drop_schema()
    store.close()


#: A store operation run in a worker of its own: ``(prefix, method, *args) -> answer``.
Worker = Callable[..., Any]


def _sync_worker(prefix: str, method: str, *args: Any) -> Any:
    store = SQLStore(POSTGRES_URL, prefix=prefix, poolclass=NullPool)
    try:
        return getattr(store, method)(*args)
    finally:
        store.close()


def _async_worker(prefix: str, method: str, *args: Any) -> Any:
    async def call() -> Any:
        store = AsyncSQLStore(ASYNC_POSTGRES_URL, prefix=prefix, poolclass=NullPool)
        try:
            return await getattr(store, method)(*args)
        finally:
            await store.aclose()

    return asyncio.run(call())


WORKERS = [pytest.param(_sync_worker, id="SQLStore"), pytest.param(_async_worker, id="async")]


def _setup(prefix: str, *grants: Grant) -> tuple[str, Grant, Grant]:
    """A fresh user with the old id's grant (and ``grants``), the grant read there,
    and the merged grant a record moves to the new id."""
    user = f"u-{uuid.uuid4().hex}"
    store = SQLStore(POSTGRES_URL, prefix=prefix, poolclass=NullPool)
    try:
        for grant in grants:
            store.put_grant(Grant(user, grant.session_id, grant.methods, T0), T0 + 3600)
        store.put_grant(Grant(user, OLD, frozenset({"otp"}), T0), T0 + 3600)
        read = store.get_grant(user, OLD)
    finally:
        store.close()
    assert read is not None
    return user, read, Grant(user, NEW, frozenset({"otp", "pwd"}), T0)


def _grants_left(prefix: str, user: str) -> list[Grant]:
    store = SQLStore(POSTGRES_URL, prefix=prefix, poolclass=NullPool)
    try:
        return [g for s in (OLD, NEW) if (g := store.get_grant(user, s)) is not None]
    finally:
        store.close()


@pytest.mark.parametrize("worker", WORKERS)
def test_a_revocation_waiting_behind_a_move_deletes_the_moved_grant(
    prefix: str, worker: Worker
) -> None:
    user, read, merged = _setup(prefix)
    move, revoke = race(
        CONNECT,
        f"{prefix}grants",
        (user, OLD),
        lambda: worker(prefix, "replace_grant", merged, T0 + 3600, read, OLD),
        lambda: worker(prefix, "revoke_grants", user),
    )
    assert move.result() is True
    assert revoke.result() == 1, "the revocation missed the moved grant"
    assert _grants_left(prefix, user) == []


@pytest.mark.parametrize("worker", WORKERS)
def test_a_move_waiting_behind_a_revocation_moves_nothing(prefix: str, worker: Worker) -> None:
    user, read, merged = _setup(prefix)
    revoke, move = race(
        CONNECT,
        f"{prefix}grants",
        (user, OLD),
        lambda: worker(prefix, "revoke_grants", user),
        lambda: worker(prefix, "replace_grant", merged, T0 + 3600, read, OLD),
    )
    assert revoke.result() == 1
    assert move.result() is False
    assert _grants_left(prefix, user) == []


@pytest.mark.parametrize("worker", WORKERS)
def test_a_revocation_never_fails_on_a_move_over_a_grant_it_deleted(
    prefix: str, worker: Worker
) -> None:
    """A grant already under the new id: the revocation deletes it, then waits on the
    row being moved, which the move holds. The move gives way (it fails, and changes
    nothing) instead of both waiting on each other until PostgreSQL breaks the deadlock
    by failing one of them, perhaps the revocation."""
    user, read, merged = _setup(prefix, Grant("-", NEW, frozenset({"pwd"}), T0))
    move, revoke = race(
        CONNECT,
        f"{prefix}grants",
        (user, OLD),
        lambda: worker(prefix, "replace_grant", merged, T0 + 3600, read, OLD),
        lambda: worker(prefix, "revoke_grants", user),
    )
    assert revoke.result() == 2
    with pytest.raises(StoreUnavailableError):
        move.result()
    assert _grants_left(prefix, user) == []
