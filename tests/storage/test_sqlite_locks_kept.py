"""Opening a SQLite store never drops the locks this process already holds on the file.

The file check behind every ``SQLStore.sqlite(path)`` (and a ``sqlite:///`` URL) once read
the database's header with a plain ``open()``; closing that descriptor dropped every
POSIX lock the process held on the file, those of its open SQLite connections included
(sqlite.org/howtocorrupt.html, section 2.2). Another process then found nobody on the
database, took the live WAL for a stale one when it closed and deleted it, and the
writes made since were lost. The check now asks SQLite, whose connections share the
process's locks."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from stepup.adapters.storage.sql import AsyncSQLStore, SQLStore
from stepup.adapters.storage.urls import sqlite_file_problem
from stepup.records import Tenant

#: Another process: reads the database, closes, and says how many tenants it saw.
_OTHER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
print(conn.execute("SELECT count(*) FROM stepup_tenants").fetchone()[0])
conn.close()
"""


def _seen_by_another_process(database: Path) -> int:
    done = subprocess.run(
        [sys.executable, "-c", _OTHER, str(database)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return int(done.stdout)


def test_a_second_store_on_the_file_keeps_the_first_ones_locks(tmp_path: Path) -> None:
    database = tmp_path / "stepup.sqlite3"
    wal = database.with_name(database.name + "-wal")
    first = SQLStore.sqlite(database)
    first.create_schema()
    first.put_tenant(Tenant("t1", {}))
    SQLStore.sqlite(database)  # only the file check runs against the open file
    assert _seen_by_another_process(database) == 1
    assert wal.exists(), "another process took the live WAL for a stale one"
    first.put_tenant(Tenant("t2", {}))
    assert _seen_by_another_process(database) == 2


def test_an_async_store_checks_the_file_without_dropping_locks(tmp_path: Path) -> None:
    database = tmp_path / "stepup.sqlite3"
    first = SQLStore.sqlite(database)
    first.create_schema()
    first.put_tenant(Tenant("t1", {}))

    asyncio.run(AsyncSQLStore.sqlite(database).aclose())
    assert _seen_by_another_process(database) == 1
    first.put_tenant(Tenant("t2", {}))
    assert _seen_by_another_process(database) == 2


def test_a_file_that_is_not_a_database_is_still_named(tmp_path: Path) -> None:
    other = tmp_path / "notes.txt"
    other.write_text("some other file\n" * 10)
    assert sqlite_file_problem(other) == "is not a SQLite database (some other file is there)"
    empty = tmp_path / "empty.sqlite3"
    empty.touch()
    assert sqlite_file_problem(empty) is None  # SQLite makes an empty file a database
    assert sqlite_file_problem(tmp_path) == "is a directory"
