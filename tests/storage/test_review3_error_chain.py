"""What a SQL store's outage error chains never shows what the statement was sent with.

An app may pass its own SQLAlchemy Engine, built without ``hide_parameters``: the store
chained SQLAlchemy's error under ``StoreUnavailableError``, and its text printed the
statement's parameters, a credential's JSON with, without sealing keys, the tail of a
``plain:`` TOTP secret. PostgreSQL's ``DETAIL`` can quote the failing row too. The store
now chains a :class:`DriverError` (the driver's error class and the first line of its
message) and keeps no SQLAlchemy or driver error in the chain, the context included.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import create_async_engine

from stepup import twofactor
from stepup.adapters.storage.sql import AsyncSQLStore, DriverError, SQLStore
from stepup.errors import StoreConfigurationError, StoreUnavailableError
from stepup.testing import SettableClock
from stepup.throttle import ThrottlePolicy
from stepup.totp import generate_secret
from stepup.twofactor import AsyncTwoFactor, TwoFactor
from support import POSTGRES_URL, need, port_open

T0 = 1_700_000_000.0


def chain(error: BaseException) -> Iterator[BaseException]:
    """``error`` and every exception it keeps, as cause or as context."""
    seen: set[int] = set()
    todo = [error]
    while todo:
        each = todo.pop()
        if id(each) in seen:
            continue
        seen.add(id(each))
        yield each
        todo += [e for e in (each.__cause__, each.__context__) if e is not None]


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every TOTP secret the two-factor flows generate (a renamed pending enrolment
    gets a new one, which the failed write carried and nobody was shown)."""
    made: list[str] = []

    def generate(*args: Any, **kwargs: Any) -> str:
        made.append(generate_secret(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(twofactor, "generate_secret", generate)
    return made


def assert_clean(error: BaseException, secrets: list[str], logs: str) -> DriverError:
    """Neither the error's traceback nor the logs show any part of a secret; nothing in
    its chain is a SQLAlchemy error (which keeps ``params``) or the driver's own; the
    chained DriverError names the driver's error."""
    shown = "".join(traceback.format_exception(error))
    assert secrets
    for secret in secrets:
        for piece in (secret[-6:], secret[:6]):
            assert piece not in shown
            assert piece not in logs
    assert '"name": "x"' not in shown  # nor the rest of the credential's JSON
    assert "[parameters:" not in shown
    assert "[SQL:" not in shown
    kept = list(chain(error))
    assert not [e for e in kept if isinstance(e, SQLAlchemyError)]
    assert all(type(e).__module__.startswith(("stepup", "builtins")) for e in kept), kept
    causes = [e for e in kept if isinstance(e, DriverError)]
    assert len(causes) == 1
    return causes[0]


def test_an_apps_sqlite_engine_without_hidden_parameters(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, secrets: list[str]
) -> None:
    """The reviewer's reproducer: a trigger refuses the rename's UPDATE."""
    caplog.set_level(logging.DEBUG)
    engine = create_engine(f"sqlite:///{tmp_path / 'app.db'}")
    store = SQLStore(engine)
    store.create_schema()
    two_factor = TwoFactor(store, issuer="Acme", clock=SettableClock(T0))
    two_factor.begin_enrolment("alice", account="a")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TRIGGER boom BEFORE UPDATE ON stepup_credentials"
            " BEGIN SELECT raise(ABORT, 'nope'); END"
        )
    with pytest.raises(StoreUnavailableError) as caught:
        two_factor.begin_enrolment("alice", account="a", name="x")
    cause = assert_clean(caught.value, secrets, caplog.text)
    assert len(secrets) == 2
    assert str(caught.value) == (
        "SQLStore.replace_credential: database unavailable (IntegrityError)"
    )
    assert str(cause) == "(sqlite3.IntegrityError) nope"
    assert (cause.kind, cause.driver, cause.reason) == (
        "IntegrityError",
        "sqlite3.IntegrityError",
        "nope",
    )
    store.close()
    engine.dispose()


def test_the_hot_path_chains_the_same(tmp_path: Path) -> None:
    """A claim runs on the driver connection: sqlite3's own error, chained as a copy."""
    engine = create_engine(f"sqlite:///{tmp_path / 'app.db'}")
    store = SQLStore(engine)
    store.create_schema()
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TRIGGER boom BEFORE INSERT ON stepup_attempts"
            " BEGIN SELECT raise(ABORT, 'no claims today'); END"
        )
    key = f"totp:{uuid.uuid4().hex}"
    with pytest.raises(StoreUnavailableError) as caught:
        store.totp_attempt(key, 5, T0, ThrottlePolicy())
    cause = assert_clean(caught.value, [key], "")
    assert cause.reason == "no claims today"
    assert cause.sqlite_errorcode is not None
    store.close()
    engine.dispose()


# PostgreSQL: the DETAIL line quotes the row -----------------------------------------


def need_postgres() -> None:
    need(port_open("127.0.0.1", 5432), "PostgreSQL on 127.0.0.1:5432")


def refuse_renames(prefix: str) -> None:
    """A CHECK constraint that the rename's new row breaks: PostgreSQL's DETAIL then
    reads "Failing row contains (alice, {...the credential's JSON...}, ...)"."""
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(
            text(
                f'ALTER TABLE "{prefix}credentials" ADD CONSTRAINT no_x'
                ' CHECK (data NOT LIKE \'%"name": "x"%\') NOT VALID'
            )
        )
    admin.dispose()


@pytest.mark.postgres
def test_an_apps_psycopg_engine(caplog: pytest.LogCaptureFixture, secrets: list[str]) -> None:
    need_postgres()
    caplog.set_level(logging.DEBUG)
    prefix = f"t{uuid.uuid4().hex[:12]}_"
    engine = create_engine(POSTGRES_URL)
    store = SQLStore(engine, prefix=prefix)
    store.create_schema()
    try:
        two_factor = TwoFactor(store, issuer="Acme", clock=SettableClock(T0))
        two_factor.begin_enrolment("alice", account="a")
        refuse_renames(prefix)
        with pytest.raises(StoreUnavailableError) as caught:
            two_factor.begin_enrolment("alice", account="a", name="x")
        cause = assert_clean(caught.value, secrets, caplog.text)
        assert "Failing row" not in "".join(traceback.format_exception(caught.value))
        assert cause.driver == "psycopg.errors.CheckViolation"
        assert cause.sqlstate == "23514"
        assert 'violates check constraint "no_x"' in cause.reason
    finally:
        store.drop_schema()
        store.close()
        engine.dispose()


@pytest.mark.postgres
async def test_an_apps_asyncpg_engine(caplog: pytest.LogCaptureFixture, secrets: list[str]) -> None:
    need_postgres()
    caplog.set_level(logging.DEBUG)
    prefix = f"t{uuid.uuid4().hex[:12]}_"
    engine = create_async_engine(POSTGRES_URL.replace("+psycopg", "+asyncpg", 1))
    store = AsyncSQLStore(engine, prefix=prefix)
    await store.create_schema()
    try:
        two_factor = AsyncTwoFactor(store, issuer="Acme", clock=SettableClock(T0))
        await two_factor.begin_enrolment("alice", account="a")
        await asyncio.to_thread(refuse_renames, prefix)
        with pytest.raises(StoreUnavailableError) as caught:
            await two_factor.begin_enrolment("alice", account="a", name="x")
        cause = assert_clean(caught.value, secrets, caplog.text)
        assert cause.driver == "asyncpg.exceptions.CheckViolationError"
        assert cause.sqlstate == "23514"
    finally:
        await store.drop_schema()
        await store.aclose()
        await engine.dispose()


def test_a_start_up_error_keeps_the_drivers_reason_and_chains_the_copy(
    tmp_path: Path,
) -> None:
    """create_schema is for a person: the URL and the driver's words stay in the
    message; what it chains is the same copy."""
    engine = create_engine(f"sqlite:///{tmp_path / 'app.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE stepup_schema_version (id INTEGER)")  # no column
    store = SQLStore(engine)
    with pytest.raises(StoreConfigurationError) as caught:
        store.create_schema()
    assert "no such column: stepup_schema_version.version" in str(caught.value)
    assert "(OperationalError)" in str(caught.value)
    assert isinstance(caught.value.__cause__, DriverError)
    assert not [e for e in chain(caught.value) if isinstance(e, SQLAlchemyError)]
    store.close()
    engine.dispose()
