"""Fail closed, then recover: the ORM store when its database goes away or refuses a value.

Outside Django's request cycle (``manage.py`` commands, workers, threads) nothing
closes a connection the server dropped, so the store does: the call that meets it is
``StoreUnavailableError`` (naming the call and the error's type, never the driver's
text), and the next call works on a fresh connection, as the SQL store's does
(tests/storage/test_sql_faults.py). Bad input is a typed error, never a raw one.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import psycopg
import pytest
from django.db import connections

from stepup.errors import MalformedInputError, StepupError, StoreUnavailableError
from stepup.integrations.django.store import DjangoStore
from stepup.policy import Policy
from stepup.reauth import Allowed, Reauth, ReauthUnavailable
from stepup.records import Grant, Tenant
from stepup.subject import Subject
from stepup.testing import SettableClock
from stepup.throttle import ThrottlePolicy
from support import POSTGRES_URL

T0 = 1_700_000_000.0
R = TypeVar("R")


def _terminate(alias: str) -> None:
    """What a restart or a failover does to the store's connection on this thread."""
    pid = connections[alias].connection.info.backend_pid
    with psycopg.connect(POSTGRES_URL.replace("+psycopg", ""), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


@pytest.fixture(params=["main thread", "worker thread"])
def on_one_thread(request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    """Runs every call on one thread: the test's, or one a worker pool keeps."""
    if request.param == "main thread":
        yield lambda call, *args: call(*args)
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        yield lambda call, *args: pool.submit(call, *args).result()


@pytest.mark.postgres
def test_a_terminated_connection_fails_closed_once_then_the_next_call_works(
    postgres_database: str, on_one_thread: Callable[..., Any]
) -> None:
    store = DjangoStore(using=postgres_database)
    on_one_thread(store.put_tenant, Tenant("t-drop", {"name": "Drop"}))
    on_one_thread(_terminate, postgres_database)

    with pytest.raises(StoreUnavailableError) as caught:
        on_one_thread(store.get_tenant, "t-drop")
    message = str(caught.value)
    assert message == "DjangoStore.get_tenant: database 'postgres' unavailable (OperationalError)"

    assert on_one_thread(store.get_tenant, "t-drop") == Tenant("t-drop", {"name": "Drop"})
    on_one_thread(_terminate, postgres_database)
    with pytest.raises(StoreUnavailableError, match="put_grant"):  # a write the same way
        on_one_thread(store.put_grant, Grant("u", "s", frozenset({"pwd"}), T0), T0 + 60)
    on_one_thread(store.put_grant, Grant("u", "s", frozenset({"pwd"}), T0), T0 + 60)
    assert on_one_thread(store.get_grant, "u", "s") == Grant("u", "s", frozenset({"pwd"}), T0)


@pytest.mark.postgres
def test_reauth_answers_unavailable_once_then_allows_again(postgres_database: str) -> None:
    """The reviewer's case: ``Reauth.check`` stayed ``unavailable`` until a restart."""
    clock = SettableClock(T0)
    store = DjangoStore(using=postgres_database)
    store.put_tenant(Tenant("acme-drop", {"feature_flags": {"sensitive_actions_reauth": True}}))
    reauth, who = Reauth(store, Policy.default(environ={}), clock=clock), Subject("dj", "s1")
    reauth.record(who, ["pwd"])
    assert isinstance(reauth.check(who, "user.update", "acme-drop"), Allowed)
    _terminate(postgres_database)
    assert isinstance(reauth.check(who, "user.update", "acme-drop"), ReauthUnavailable)
    assert isinstance(reauth.check(who, "user.update", "acme-drop"), Allowed)


@pytest.fixture(params=["default", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest) -> DjangoStore:
    alias = str(request.param)
    if alias == "postgres":
        request.getfixturevalue("postgres_database")
    return DjangoStore(using=alias)


@pytest.mark.parametrize("bad", [5, None, b"bytes", "a\ud800", "\udfff"])
def test_an_id_no_database_can_hold_is_refused_before_any_query(
    store: DjangoStore, bad: object
) -> None:
    grant = Grant(bad, "s", frozenset({"pwd"}), T0)  # type: ignore[arg-type]
    calls: list[Callable[[], object]] = [
        lambda: store.get_tenant(bad),  # type: ignore[arg-type]
        lambda: store.put_tenant(Tenant(bad)),  # type: ignore[arg-type]
        lambda: store.get_grant("u", bad),  # type: ignore[arg-type]
        lambda: store.put_grant(grant, T0 + 60),
        lambda: store.throttle_charge(bad, T0, ThrottlePolicy()),  # type: ignore[arg-type]
    ]
    for call in calls:
        with pytest.raises(MalformedInputError) as caught:
            call()
        assert repr(bad) not in str(caught.value)
    assert store.get_tenant("s") is None


@pytest.mark.postgres
def test_a_nul_postgresql_refuses_is_unavailable_and_the_connection_stays(
    postgres_database: str,
) -> None:
    store = DjangoStore(using=postgres_database)
    with pytest.raises(StoreUnavailableError, match=r"get_tenant: .* \(DataError\)$"):
        store.get_tenant("a\x00b")
    assert store.get_tenant("nobody") is None


def test_a_nan_time_is_a_typed_error_and_nothing_is_kept() -> None:
    """SQLite keeps a NaN as NULL, which the columns refuse: once the store read that
    as "created meanwhile", then failed on a row that was not there (or dropped the
    write)."""
    store = DjangoStore(using="default")
    with pytest.raises(StepupError):
        store.throttle_charge("nan-key", math.nan, ThrottlePolicy())
    assert store.throttle_state("nan-key").failures == 0
    with pytest.raises(StepupError):
        store.put_grant(Grant("nan-u", "s", frozenset({"pwd"}), math.nan), math.nan)
    assert store.get_grant("nan-u", "s") is None


def test_every_operation_has_the_one_failure_path() -> None:
    """Each public method goes through the guard: a new one added without it would
    leak raw Django errors again."""
    public = [
        name
        for name, member in inspect.getmembers(DjangoStore, inspect.isfunction)
        if not name.startswith("_")
    ]
    assert "get_tenant" in public
    assert [name for name in public if not hasattr(getattr(DjangoStore, name), "__wrapped__")] == []
