"""``stepup demo`` deletes (``--reset``) and writes into only its own database: a
``--db`` that names an app's database, or any other file, is refused in one line naming
the path (status 2), and the file is left exactly as it was. A new path, an empty file
and the demo's own database work as before."""

from __future__ import annotations

import socket
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from stepup.adapters.idp.password import CHEAPEST
from stepup.adapters.storage.sql import SQLStore
from stepup.cli import main
from stepup.demo.seed import NotADemoDatabaseError, prepare, remove_database
from stepup.testing import SettableClock

CHEAP = PasswordHasher.from_parameters(CHEAPEST)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _tables(path: Path) -> set[str]:
    with closing(sqlite3.connect(path)) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {name for (name,) in rows}


def _content(path: Path) -> list[str]:
    """Every table and row, as SQL (the file's bytes move with WAL checkpoints)."""
    with closing(sqlite3.connect(path)) as conn:
        return list(conn.iterdump())


@pytest.fixture
def app_db(tmp_path: Path) -> Path:
    """An app's database: stepup's tables and one of the app's own."""
    path = tmp_path / "instance" / "app.sqlite3"
    path.parent.mkdir()
    SQLStore.sqlite(path).close()
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, total INTEGER)")
        conn.execute("INSERT INTO orders (total) VALUES (42)")
    return path


@pytest.fixture
def text_file(tmp_path: Path) -> Path:
    path = tmp_path / "notes.txt"
    path.write_text("precious notes\n")
    return path


def _demo_db(tmp_path: Path) -> Path:
    path = tmp_path / "demo.sqlite3"
    prepare(path, clock=SettableClock(), hasher=CHEAP)
    return path


def test_reset_refuses_an_apps_database(app_db: Path) -> None:
    before = _content(app_db)
    with pytest.raises(NotADemoDatabaseError, match=f"^{app_db} is not a stepup demo database"):
        remove_database(app_db)
    assert _content(app_db) == before
    assert 'INSERT INTO "orders" VALUES(1,42);' in before


def test_reset_refuses_a_file_that_is_not_a_database(text_file: Path) -> None:
    with pytest.raises(NotADemoDatabaseError, match="is not a SQLite database"):
        remove_database(text_file)
    assert text_file.read_text() == "precious notes\n"


def test_reset_deletes_the_demos_own_database(tmp_path: Path) -> None:
    path = _demo_db(tmp_path)
    companion = Path(f"{path}-journal")
    companion.write_bytes(b"")
    remove_database(path)
    assert not path.exists()
    assert not companion.exists()
    remove_database(path)  # nothing there: nothing to do


def test_reset_leaves_an_empty_file_and_the_start_seeds_it(tmp_path: Path) -> None:
    path = tmp_path / "empty.sqlite3"
    path.touch()
    remove_database(path)
    assert path.exists()
    assert prepare(path, clock=SettableClock(), hasher=CHEAP).seeded_now


def test_the_demo_is_not_seeded_into_an_apps_database(app_db: Path) -> None:
    before = _content(app_db)
    with pytest.raises(NotADemoDatabaseError, match="does not add its tables"):
        prepare(app_db, clock=SettableClock(), hasher=CHEAP)
    assert _content(app_db) == before
    assert not any(name.startswith("demo_") for name in _tables(app_db))
    with SQLStore.sqlite(app_db) as store:
        assert store.get_tenant("acme") is None


def test_the_demos_own_database_starts_again(tmp_path: Path) -> None:
    path = _demo_db(tmp_path)
    assert not prepare(path, clock=SettableClock(), hasher=CHEAP).seeded_now


@pytest.mark.parametrize("reset", [True, False], ids=["--reset", "without --reset"])
def test_the_command_refuses_in_one_line_with_status_2(
    app_db: Path, reset: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _content(app_db)
    argv = ["demo", "--port", str(_free_port()), "--db", str(app_db)]
    assert main([*argv, "--reset"] if reset else argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"stepup: error: {app_db} is not a stepup demo database: it has")
    assert "Traceback" not in err
    assert _content(app_db) == before


def test_reset_of_a_text_file_is_refused_by_the_command(
    text_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--port", str(_free_port()), "--db", str(text_file), "--reset"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"stepup: error: {text_file} is not a stepup demo database")
    assert "nothing was deleted" in err
    assert text_file.read_text() == "precious notes\n"
