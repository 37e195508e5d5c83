"""Deterministic races between PostgreSQL connections, for the grant move and the
revocation (the SQL store and the Django store): a third connection holds one row's
lock (``SELECT ... FOR UPDATE`` in an open transaction); the racing calls start one
after the other, each in its own thread (its own connection), and each is seen waiting
on that lock (``pg_stat_activity``) before the next starts; then the lock is released.
PostgreSQL serves a row's waiters in the order they queued, so the order is decided,
with no sleep: the first call goes first, the second waits on it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import psycopg

#: How long a racing call may take to be seen waiting (or to finish, once released).
DEADLINE = 15.0


class Outcome:
    """What one racing call answered, or raised."""

    def __init__(self) -> None:
        self.value: Any = None
        self.error: BaseException | None = None
        self.done = threading.Event()

    def result(self) -> Any:
        """The answer, or the exception raised here."""
        assert self.done.wait(DEADLINE), "a racing call never finished"
        if self.error is not None:
            raise self.error
        return self.value


def _start(call: Callable[[], Any]) -> Outcome:
    outcome = Outcome()

    def run() -> None:
        try:
            outcome.value = call()
        except BaseException as exc:  # handed to the test through Outcome.result
            outcome.error = exc
        finally:
            outcome.done.set()

    threading.Thread(target=run, daemon=True).start()
    return outcome


def _waiting(monitor: psycopg.Connection[Any], table: str) -> int:
    """How many other backends of this database wait on a lock in a statement on
    ``table``."""
    row = monitor.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'"
        " AND position(%s in query) > 0",
        [table],
    ).fetchone()
    assert row is not None
    return int(row[0])


def _until_waiting(monitor: psycopg.Connection[Any], table: str, count: int) -> None:
    deadline = time.monotonic() + DEADLINE
    while _waiting(monitor, table) < count:
        assert time.monotonic() < deadline, f"{count} call(s) never waited on the lock"


@contextmanager
def _row_held(
    connect: Mapping[str, Any], table: str, user_id: str, session_id: str
) -> Iterator[None]:
    with psycopg.connect(**connect) as holder:  # one transaction until the block ends
        held = holder.execute(
            f"SELECT 1 FROM {table} WHERE user_id = %s AND session_id = %s FOR UPDATE",  # noqa: S608
            [user_id, session_id],
        ).fetchone()
        assert held is not None, "no row to hold"
        yield
        holder.commit()


def race(
    connect: Mapping[str, Any],
    table: str,
    held: tuple[str, str],
    first: Callable[[], Any],
    second: Callable[[], Any],
) -> tuple[Outcome, Outcome]:
    """Hold the row ``held`` (user id, session id) of ``table``, start ``first`` and see
    it wait on the row, then ``second`` and see it wait too, release the row, and answer
    both outcomes once both are done. ``connect``: psycopg's connection arguments."""
    monitor = psycopg.connect(**connect, autocommit=True)
    with monitor, _row_held(connect, table, *held):
        one = _start(first)
        _until_waiting(monitor, table, 1)
        two = _start(second)
        _until_waiting(monitor, table, 2)
    for outcome in (one, two):
        assert outcome.done.wait(DEADLINE), "a racing call never finished"
    return one, two
