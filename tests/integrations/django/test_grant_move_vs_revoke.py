"""The Django store on PostgreSQL: ``replace_grant`` moving a session's grant to a
renewed id and ``revoke_grants(user)`` (a password change) in another worker, each on
its own connection, in a decided order (see :mod:`storage.pg_row_lock`). Whichever
goes first, the user has no grant afterwards. The move updates the grant's row (its
key too); a delete and a new row left the new row out of the revocation's snapshot."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from django.db import connections

from stepup.errors import StoreUnavailableError
from stepup.integrations.django.models import GrantRecord
from stepup.integrations.django.store import DjangoStore
from stepup.records import Grant
from storage.pg_row_lock import race

T0 = 1_700_000_000.0
#: The new id sorts (and is written) before the old one, so a revocation reaches a
#: grant already stored under the new id before it waits on the row being moved.
OLD, NEW = "b-old", "a-new"

pytestmark = pytest.mark.postgres


def _connect(alias: str) -> dict[str, Any]:
    database = settings.DATABASES[alias]
    return {
        "host": database["HOST"],
        "port": int(database["PORT"]),
        "user": database["USER"],
        "password": database["PASSWORD"] or None,
        "dbname": database["NAME"],
    }


def _in_worker(alias: str, method: str, *args: Any) -> Callable[[], Any]:
    """The store call, in a thread of its own (its own connection, closed after)."""

    def call() -> Any:
        try:
            return getattr(DjangoStore(using=alias), method)(*args)
        finally:
            connections.close_all()

    return call


def _setup(alias: str, *sessions: str) -> tuple[str, Grant, Grant]:
    user = f"u-{uuid.uuid4().hex}"
    store = DjangoStore(using=alias)
    for session in sessions:
        store.put_grant(Grant(user, session, frozenset({"pwd"}), T0), T0 + 3600)
    store.put_grant(Grant(user, OLD, frozenset({"otp"}), T0), T0 + 3600)
    read = store.get_grant(user, OLD)
    assert read is not None
    return user, read, Grant(user, NEW, frozenset({"otp", "pwd"}), T0)


def _grants_left(alias: str, user: str) -> list[Grant]:
    store = DjangoStore(using=alias)
    return [g for s in (OLD, NEW) if (g := store.get_grant(user, s)) is not None]


def test_a_revocation_waiting_behind_a_move_deletes_the_moved_grant(
    postgres_database: str,
) -> None:
    user, read, merged = _setup(postgres_database)
    move, revoke = race(
        _connect(postgres_database),
        GrantRecord._meta.db_table,
        (user, OLD),
        _in_worker(postgres_database, "replace_grant", merged, T0 + 3600, read, OLD),
        _in_worker(postgres_database, "revoke_grants", user),
    )
    assert move.result() is True
    assert revoke.result() == 1, "the revocation missed the moved grant"
    assert _grants_left(postgres_database, user) == []


def test_a_move_waiting_behind_a_revocation_moves_nothing(postgres_database: str) -> None:
    user, read, merged = _setup(postgres_database)
    revoke, move = race(
        _connect(postgres_database),
        GrantRecord._meta.db_table,
        (user, OLD),
        _in_worker(postgres_database, "revoke_grants", user),
        _in_worker(postgres_database, "replace_grant", merged, T0 + 3600, read, OLD),
    )
    assert revoke.result() == 1
    assert move.result() is False
    assert _grants_left(postgres_database, user) == []


def test_a_revocation_never_fails_on_a_move_over_a_grant_it_deleted(
    postgres_database: str,
) -> None:
    """A grant already under the new id: the revocation deletes it, then waits on the
    row being moved; the move gives way (fails, changing nothing) instead of a
    deadlock that PostgreSQL breaks by failing one of them, perhaps the revocation."""
    user, read, merged = _setup(postgres_database, NEW)
    move, revoke = race(
        _connect(postgres_database),
        GrantRecord._meta.db_table,
        (user, OLD),
        _in_worker(postgres_database, "replace_grant", merged, T0 + 3600, read, OLD),
        _in_worker(postgres_database, "revoke_grants", user),
    )
    assert revoke.result() == 2
    with pytest.raises(StoreUnavailableError):
        move.result()
    assert _grants_left(postgres_database, user) == []
