"""The store URLs the command line takes.

``stepup operator`` is given the app's ``STEPUP_STORE``, and docs/storage.md names
``postgresql+asyncpg://`` (and ``sqlite+aiosqlite``) as the async store's URL: the
commands open that same database through the sync driver, with no SQLAlchemy internals
and no ``RuntimeWarning`` block on the terminal; without the sync driver they refuse in
one line that names it. ``stepup demo --db`` takes a SQLite file's path: a URL there is
refused in one line, without its password, and nothing is created."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from stepup.adapters.storage.sql import SQLStore
from stepup.cli import build_parser, main
from stepup.tenants import TenantSettings
from support import POSTGRES_URL, need, port_open

STEPUP = Path(sys.executable).parent / "stepup"


def _async(url: str) -> str:
    """The PostgreSQL test database's URL as an async app names it."""
    scheme, rest = url.split("://", 1)
    assert scheme.startswith("postgresql")
    return f"postgresql+asyncpg://{rest}"


@pytest.fixture
def postgres() -> Iterator[tuple[str, str]]:
    """A PostgreSQL store with stepup's tables under a prefix of its own, and tenant acme
    in it: the URL an async app would use, and the prefix."""
    parts = urlsplit(POSTGRES_URL)
    need(port_open(parts.hostname or "127.0.0.1", parts.port or 5432), "PostgreSQL")
    prefix = f"r3{uuid.uuid4().hex[:10]}_"
    store = SQLStore(POSTGRES_URL, prefix=prefix)
    store.create_schema()
    try:
        TenantSettings(store).ensure("acme")
        yield _async(POSTGRES_URL), prefix
    finally:
        store.drop_schema()
        store.close()


def _run(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The console script, as an operator runs it: what reaches the terminal, whole."""
    clean = {k: v for k, v in os.environ.items() if k != "STEPUP_STORE"}
    return subprocess.run(
        [str(STEPUP), *argv],
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_an_asyncpg_url_opens_the_same_database(postgres: tuple[str, str]) -> None:
    url, prefix = postgres
    done = _run("operator", "tenant", "show", "acme", "--store", url, "--prefix", prefix)
    assert (done.returncode, done.stderr) == (0, "")
    assert '"id": "acme"' in done.stdout


def test_the_apps_async_store_url_works_from_the_environment(postgres: tuple[str, str]) -> None:
    url, prefix = postgres
    ssl = f"{url}?ssl=disable"  # asyncpg's name for libpq's sslmode
    done = _run("operator", "tenant", "show", "acme", "--prefix", prefix, env={"STEPUP_STORE": ssl})
    assert (done.returncode, done.stderr) == (0, "")
    assert '"id": "acme"' in done.stdout


@pytest.mark.parametrize(
    "options",
    [
        "prepared_statement_cache_size=0",  # SQLAlchemy's pgbouncer advice for asyncpg
        "command_timeout=30&timeout=10&statement_cache_size=0",
        "ssl=disable&prepared_statement_cache_size=0",
    ],
)
def test_asyncpg_only_options_are_left_out_for_the_sync_driver(
    postgres: tuple[str, str], options: str
) -> None:
    """The app's async URL may carry asyncpg's own connect arguments, which libpq
    refused as "invalid connection option": the operator command left the app's URL
    unusable."""
    url, prefix = postgres
    done = _run(
        "operator", "tenant", "show", "acme", "--store", f"{url}?{options}", "--prefix", prefix
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert '"id": "acme"' in done.stdout


def test_ssl_given_twice_is_one_line(postgres: tuple[str, str]) -> None:
    url, _prefix = postgres
    done = _run("operator", "tenant", "show", "acme", "--store", f"{url}?ssl=disable&ssl=require")
    assert done.returncode == 2
    assert "ssl more than once" in done.stderr
    assert "Traceback" not in done.stderr


def test_psycopgs_async_name_opens_the_same_database(postgres: tuple[str, str]) -> None:
    url, prefix = postgres
    psycopg_async = url.replace("+asyncpg", "+psycopg_async")
    done = _run("operator", "tenant", "show", "acme", "--store", psycopg_async, "--prefix", prefix)
    assert (done.returncode, done.stderr) == (0, "")


def test_an_unreachable_asyncpg_database_is_one_line_without_the_password() -> None:
    done = _run(
        "operator", "totp-devices", "alice",
        "--store", "postgresql+asyncpg://app:S3cretPw@127.0.0.1:1/app",
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("stepup: error: cannot connect to the database at ")
    assert "S3cretPw" not in done.stderr
    assert "greenlet" not in done.stderr.lower()
    assert "Warning" not in done.stderr


def test_an_aiosqlite_url_opens_the_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "app.sqlite3"
    store = SQLStore(f"sqlite:///{path}")
    store.create_schema()
    TenantSettings(store).ensure("acme")
    store.close()
    done = _run("operator", "tenant", "show", "acme", "--store", f"sqlite+aiosqlite:///{path}")
    assert (done.returncode, done.stderr) == (0, "")
    assert '"id": "acme"' in done.stdout


def test_an_async_url_without_the_sync_driver_names_what_to_install(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STEPUP_STORE", raising=False)
    monkeypatch.setitem(sys.modules, "psycopg", None)  # not installed
    url = "postgresql+asyncpg://app:S3cretPw@db.internal/app"
    status = main(["operator", "totp-devices", "alice", "--store", url])
    out, err = capsys.readouterr()
    assert (status, out) == (2, "")
    assert err.count("\n") == 1
    assert "async driver" in err
    assert "psycopg" in err
    assert "pip install" in err
    assert "S3cretPw" not in err


# stepup demo --db ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "postgresql://user:S3cretPw@db.internal/x",
        "sqlite:///demo.sqlite3",
        "redis://:S3cretPw@cache:6379/0",
    ],
)
def test_demo_refuses_a_url_for_its_database_file(
    value: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    # A host no interface has: should --db be taken, no server starts either.
    status = main(["demo", "--db", value, "--host", "203.0.113.1", "--port", "8765"])
    out, err = capsys.readouterr()
    assert (status, out) == (2, "")
    assert err.splitlines()[-1].startswith("stepup demo: error: argument --db: takes the path")
    assert "SQLite" in err.splitlines()[-1]
    assert "S3cretPw" not in err
    assert list(tmp_path.iterdir()) == []  # no folder named after the URL


@pytest.mark.parametrize("value", ["demo.sqlite3", "data/demo.sqlite3", "C://demo.sqlite3"])
def test_demo_takes_a_path_as_it_is(value: str) -> None:
    args = build_parser().parse_args(["demo", "--db", value])
    assert args.db == Path(value)
