"""A SQLite store opened from a URL (``SQLStore("sqlite:///path")``, what Flask's
``STEPUP_STORE`` and Django's ``STEPUP["STORE"]`` build) creates its file as
``SQLStore.sqlite(path)`` does: the file owner-only (0600, and so its -wal and -shm),
every missing folder above it 0700, sync and async; under a umask that would give
0644 and 0755."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from stepup.adapters.storage.sql import AsyncSQLStore, SQLStore
from stepup.errors import StoreUnavailableError
from stepup.integrations.stores import store_from_url
from stepup.throttle import ThrottlePolicy


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def assert_owner_only(database: Path, *, top: Path) -> None:
    """The database, its -wal and -shm are 0600; each folder from ``top`` down, 0700."""
    files = [database, database.with_name(database.name + "-wal")]
    files.append(database.with_name(database.name + "-shm"))
    assert {path.name: oct(mode(path)) for path in files} == {path.name: "0o600" for path in files}
    folders = [top, *(parent for parent in database.parents if top in parent.parents)]
    assert {str(folder): oct(mode(folder)) for folder in folders} == {
        str(folder): "0o700" for folder in folders
    }


def use(store: SQLStore) -> None:
    store.create_schema()
    store.totp_attempt("k", 1, 1e9, ThrottlePolicy())  # a write: -wal and -shm exist now


def test_a_store_from_a_url_creates_its_file_and_folders_owner_only(tmp_path: Path) -> None:
    database = tmp_path / "a" / "b" / "c" / "stepup.sqlite3"
    with SQLStore(f"sqlite:///{database}") as store:
        use(store)
        assert_owner_only(database, top=tmp_path / "a")


def test_the_settings_url_relative_to_the_working_directory_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    url = "sqlite:///data/stepup.sqlite3"
    store = store_from_url(url, setting="STEPUP_STORE", create_schema=True)
    try:
        assert isinstance(store, SQLStore)
        store.totp_attempt("k", 1, 1e9, ThrottlePolicy())
        assert_owner_only(tmp_path / "data" / "stepup.sqlite3", top=tmp_path / "data")
    finally:
        store.close()


def test_an_async_store_from_a_url_creates_its_file_owner_only(tmp_path: Path) -> None:
    database = tmp_path / "x" / "y" / "stepup.sqlite3"

    async def use_async() -> None:
        store = AsyncSQLStore(f"sqlite:///{database}")
        try:
            await store.create_schema()
            await store.totp_attempt("k", 1, 1e9, ThrottlePolicy())
            assert_owner_only(database, top=tmp_path / "x")
        finally:
            await store.aclose()

    asyncio.run(use_async())


def test_the_sqlite_constructor_makes_every_missing_folder_owner_only(tmp_path: Path) -> None:
    database = tmp_path / "deep" / "er" / "stepup.sqlite3"
    with SQLStore.sqlite(database) as store:
        store.totp_attempt("k", 1, 1e9, ThrottlePolicy())
        assert_owner_only(database, top=tmp_path / "deep")


def test_a_file_and_folder_already_there_keep_their_permissions(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir(mode=0o750)
    database = folder / "stepup.sqlite3"
    with SQLStore(f"sqlite:///{database}") as store:
        use(store)
    os.chmod(database, 0o640)
    with SQLStore(f"sqlite:///{database}") as store:
        store.totp_attempt("k", 1, 1e9, ThrottlePolicy())
    assert (oct(mode(folder)), oct(mode(database))) == ("0o750", "0o640")


def test_a_sqlite_uri_that_may_create_the_file_creates_it_owner_only(tmp_path: Path) -> None:
    database = tmp_path / "uri" / "stepup.sqlite3"
    with SQLStore(f"sqlite:///file:{database}?uri=true") as store:
        use(store)
        assert_owner_only(database, top=tmp_path / "uri")


def test_a_read_only_sqlite_uri_creates_nothing(tmp_path: Path) -> None:
    database = tmp_path / "ro" / "stepup.sqlite3"
    url = f"sqlite:///file:{database}?mode=ro&uri=true"
    with SQLStore(url) as store, pytest.raises(StoreUnavailableError):
        store.get_credential("alice")
    assert not (tmp_path / "ro").exists()
