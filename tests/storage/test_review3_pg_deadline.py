"""A PostgreSQL server that stops answering: verification answers ``unavailable``
within the store's timeout instead of waiting for ever.

A relay in front of PostgreSQL is frozen (SIGSTOP): its sockets stay open and the
kernel still acknowledges what is sent, but nothing answers, as with a stopped server,
a dead host behind a live route or a partition. TwoFactor.verify on psycopg (sync and
async) and asyncpg waited for ever; with a short ``timeout`` (0.5 s, waited inside the
store, not by the test) every one now returns ``unavailable``, on a connection it held
and when it has to connect, the write paths too. Once the relay runs again the store
works, and no code is accepted twice.
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from stepup.adapters.storage.sql import AsyncSQLStore, SQLStore
from stepup.adapters.storage.sql_engine import TIMEOUT, _options, cancel_bound
from stepup.errors import ConfigurationError, StoreUnavailableError
from stepup.records import Grant
from stepup.testing import SettableClock
from stepup.throttle import ThrottlePolicy
from stepup.totp import TOTP
from stepup.twofactor import AsyncTwoFactor, TwoFactor
from stepup.verifier import VerifyReason
from support import need, port_open

pytestmark = pytest.mark.postgres

T0 = 1_700_000_000.0
#: The store's timeout in these tests: how long the store itself waits for an answer.
DEADLINE = 0.5

#: A TCP relay to PostgreSQL in a process of its own, so that it can be frozen: it
#: prints its port, then relays every connection until it is killed.
RELAY = """
import asyncio

async def pump(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()

async def serve(client_reader, client_writer):
    try:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", 5432)
    except OSError:
        client_writer.close()
        return
    await asyncio.gather(
        pump(client_reader, server_writer), pump(server_reader, client_writer)
    )

async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()

asyncio.run(main())
"""


class FrozenRelay:
    """The relay process: :meth:`freeze` stops it (SIGSTOP), :meth:`thaw` lets it run."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", RELAY], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL
        )
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())

    def url(self, driver: str) -> str:
        return f"postgresql+{driver}://postgres@127.0.0.1:{self.port}/test"

    def freeze(self) -> None:
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        self.thaw()
        self.process.kill()
        self.process.wait(timeout=10)
        assert self.process.stdout is not None
        self.process.stdout.close()


@pytest.fixture
def relay() -> Iterator[FrozenRelay]:
    need(port_open("127.0.0.1", 5432), "PostgreSQL on 127.0.0.1:5432")
    started = FrozenRelay()
    try:
        yield started
    finally:
        started.stop()


def unique_prefix() -> str:
    return f"t{uuid.uuid4().hex[:12]}_"


def grant() -> tuple[Grant, float]:
    return Grant("alice", "s1", frozenset({"pwd"}), T0), T0 + 60


def test_sync_psycopg(relay: FrozenRelay) -> None:
    clock = SettableClock(T0)
    store = SQLStore(relay.url("psycopg"), prefix=unique_prefix(), timeout=DEADLINE)
    store.create_schema()
    two_factor = TwoFactor(store, issuer="Acme", clock=clock)
    totp = TOTP(two_factor.begin_enrolment("alice", account="a").secret)
    assert two_factor.confirm_enrolment("alice", totp.at(clock())).ok
    fresh = SQLStore(relay.url("psycopg"), prefix=store.prefix, timeout=DEADLINE)
    try:
        relay.freeze()
        clock.advance(30)
        second = totp.at(clock())
        # On the connections it keeps (the driver's hot path) and through SQLAlchemy.
        assert two_factor.verify("alice", second).reason is VerifyReason.UNAVAILABLE
        with pytest.raises(StoreUnavailableError):
            store.put_grant(*grant())
        # A store that has to connect first (libpq's connect_timeout: at least 2 s).
        late = TwoFactor(fresh, issuer="Acme", clock=clock)
        assert late.verify("alice", second).reason is VerifyReason.UNAVAILABLE

        relay.thaw()
        clock.advance(30)
        third = totp.at(clock())
        assert two_factor.verify("alice", third).reason is VerifyReason.OK
        assert late.verify("alice", third).reason is VerifyReason.REPLAYED
        # The claim sent while frozen may have reached the server after all: the code
        # is then replayed, never accepted twice.
        assert two_factor.verify("alice", second).reason is not VerifyReason.OK
    finally:
        relay.thaw()
        store.drop_schema()
        store.close()
        fresh.close()


@pytest.mark.parametrize("driver", ["asyncpg", "psycopg"])
async def test_async(relay: FrozenRelay, driver: str) -> None:
    """asyncpg (its own connection for the hot path, SQLAlchemy for the rest) and
    psycopg's async mode (SQLAlchemy throughout)."""
    clock = SettableClock(T0)
    store = AsyncSQLStore(relay.url(driver), prefix=unique_prefix(), timeout=DEADLINE)
    await store.create_schema()
    two_factor = AsyncTwoFactor(store, issuer="Acme", clock=clock)
    totp = TOTP((await two_factor.begin_enrolment("alice", account="a")).secret)
    assert (await two_factor.confirm_enrolment("alice", totp.at(clock()))).ok
    fresh = AsyncSQLStore(relay.url(driver), prefix=store.prefix, timeout=DEADLINE)
    try:
        relay.freeze()
        clock.advance(30)
        second = totp.at(clock())
        assert (await two_factor.verify("alice", second)).reason is VerifyReason.UNAVAILABLE
        with pytest.raises(StoreUnavailableError):
            await store.put_grant(*grant())
        late = AsyncTwoFactor(fresh, issuer="Acme", clock=clock)
        assert (await late.verify("alice", second)).reason is VerifyReason.UNAVAILABLE

        relay.thaw()
        clock.advance(30)
        third = totp.at(clock())
        assert (await two_factor.verify("alice", third)).reason is VerifyReason.OK
        assert (await late.verify("alice", third)).reason is VerifyReason.REPLAYED
        assert (await two_factor.verify("alice", second)).reason is not VerifyReason.OK
    finally:
        relay.thaw()
        await store.drop_schema()
        await store.aclose()
        await fresh.aclose()


# The cancel request a missed deadline sends is bounded too ----------------------------


@pytest.mark.parametrize(
    ("flavour", "driver", "cancel_safe"),
    [
        ("sync", "psycopg", True),
        ("sync", "psycopg", False),
        ("async", "psycopg", True),
        ("async", "psycopg", False),
        ("async", "asyncpg", True),
    ],
    ids=[
        "sync-psycopg",
        "sync-psycopg-c-libpq16",
        "async-psycopg",
        "async-psycopg-c-libpq16",
        "asyncpg",
    ],
)
def test_a_frozen_server_answers_within_the_timeout_and_the_cancel_bound(
    relay: FrozenRelay,
    monkeypatch: pytest.MonkeyPatch,
    flavour: str,
    driver: str,
    cancel_safe: bool,
) -> None:
    """A missed deadline asks the server to cancel the statement; a server that stopped
    answering never confirms it, and the call still answers unavailable within
    ``timeout`` plus the cancel's bound (``min(timeout, 2 s)``): with libpq 17's
    ``cancel_safe`` and with asyncpg's cancel (the connection then terminated). Before
    libpq 17 (``c-libpq16``: psycopg told it has no ``cancel_safe``) psycopg's C
    implementation could only send libpq's blocking cancel, which would hold the whole
    process: none is sent. Its Python implementation sends it from a thread
    (test_review3_pg_cancel.py runs these cases on it, with the system's libpq)."""
    if not cancel_safe:
        import psycopg

        monkeypatch.setattr(psycopg.capabilities, "has_cancel_safe", lambda *_, **__: False)
    bound = DEADLINE + cancel_bound(DEADLINE) + 1.0  # the last second: scheduling
    times: list[float] = []

    def timed(call: Callable[[], object]) -> None:
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError):
            call()
        times.append(time.monotonic() - started)

    if flavour == "sync":
        store = SQLStore(relay.url(driver), prefix=unique_prefix(), timeout=DEADLINE)
        store.create_schema()
        # A connection kept by the hot path, and one in SQLAlchemy's pool (connecting
        # has a bound of its own: libpq's connect_timeout, at least 2 s).
        store.get_credential("alice")
        store.put_grant(*grant())
        try:
            relay.freeze()
            timed(lambda: store.get_credential("alice"))  # the hot path
            timed(lambda: store.put_grant(*grant()))  # through SQLAlchemy
        finally:
            relay.thaw()
            store.drop_schema()
            store.close()
    else:

        async def frozen() -> None:
            store = AsyncSQLStore(relay.url(driver), prefix=unique_prefix(), timeout=DEADLINE)
            await store.create_schema()
            await store.get_credential("alice")
            await store.put_grant(*grant())
            calls: list[Callable[[], Awaitable[object]]] = [
                lambda: store.get_credential("alice"),  # asyncpg: its hot path
                lambda: store.put_grant(*grant()),  # through SQLAlchemy
            ]
            try:
                relay.freeze()
                for call in calls:
                    started = time.monotonic()
                    with pytest.raises(StoreUnavailableError):
                        await call()
                    times.append(time.monotonic() - started)
            finally:
                relay.thaw()
                await store.drop_schema()
                await store.aclose()

        asyncio.run(frozen())
    assert len(times) == 2
    assert times[0] < bound, times
    # SQLAlchemy takes the closed connection for a disconnect and replaces the pooled
    # ones (psycopg's async mode: the second call connects, bounded by libpq's
    # connect_timeout, at least 2 s).
    assert times[1] < max(bound, 2 + 1.0), times


# A server that answers, but not this statement --------------------------------------


@pytest.mark.parametrize("driver", ["psycopg", "asyncpg"])
def test_a_claim_waiting_for_a_lock_gives_up_at_the_deadline(driver: str) -> None:
    """Another connection holds the table: the claim waits for its lock, and the store
    answers unavailable at its deadline, cancelling it on the server: once the lock is
    free the next claim is accepted, the one after replayed (never accepted twice;
    tests/storage/test_review3_pg_cancel.py shows the sync store's old claim landing)."""
    need(port_open("127.0.0.1", 5432), "PostgreSQL on 127.0.0.1:5432")
    url = f"postgresql+{driver}://postgres@127.0.0.1:5432/test"
    prefix = unique_prefix()
    admin = create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/test")
    policy = ThrottlePolicy()

    async def claims(store: AsyncSQLStore) -> list[str]:
        await store.create_schema()
        outcomes = []
        with admin.connect() as holder:
            holder.execute(text(f'LOCK TABLE "{prefix}attempts" IN ACCESS EXCLUSIVE MODE'))
            try:
                await store.totp_attempt("k", 7, T0, policy)
            except StoreUnavailableError:
                outcomes.append("unavailable")
            holder.rollback()
        for _ in range(2):
            outcomes.append((await store.totp_attempt("k", 7, T0, policy)).outcome.value)
        await store.drop_schema()
        await store.aclose()
        return outcomes

    if driver == "asyncpg":
        outcomes = asyncio.run(claims(AsyncSQLStore(url, prefix=prefix, timeout=DEADLINE)))
    else:
        store = SQLStore(url, prefix=prefix, timeout=DEADLINE)
        store.create_schema()
        outcomes = []
        with admin.connect() as holder:
            holder.execute(text(f'LOCK TABLE "{prefix}attempts" IN ACCESS EXCLUSIVE MODE'))
            with pytest.raises(StoreUnavailableError):
                store.totp_attempt("k", 7, T0, policy)
            outcomes.append("unavailable")
            holder.rollback()
        for _ in range(2):
            outcomes.append(store.totp_attempt("k", 7, T0, policy).outcome.value)
        store.drop_schema()
        store.close()
    admin.dispose()
    assert outcomes == ["unavailable", "accepted", "replayed"]


# What a URL engine is given ---------------------------------------------------------


def test_the_timeout_reaches_each_driver_unless_the_url_or_options_say_otherwise() -> None:
    def given(url: str, **options: object) -> dict[str, object]:
        return _options(make_url(url), dict(options), 3.5)

    psycopg = given("postgresql+psycopg://app@db/app")
    assert psycopg["connect_args"] == {"connect_timeout": 4}  # libpq: whole seconds
    assert psycopg["pool_timeout"] == 3.5
    assert given("postgresql+asyncpg://app@db/app")["connect_args"] == {
        "timeout": 3.5,
        "command_timeout": 3.5,
    }
    assert _options(make_url("postgresql+psycopg://a@db/app"), {}, 0.5)["connect_args"] == {
        "connect_timeout": 2  # libpq's least
    }
    # The app's own values stay.
    assert given("postgresql+psycopg://app@db/app?connect_timeout=9")["connect_args"] == {}
    mine = given("postgresql+asyncpg://app@db/app", connect_args={"command_timeout": 30})
    assert mine["connect_args"] == {"command_timeout": 30, "timeout": 3.5}
    assert given("postgresql+psycopg://app@db/app", pool_timeout=12)["pool_timeout"] == 12
    assert "pool_timeout" not in given("postgresql+psycopg://app@db/app", poolclass=object)
    # The default, 5 s.
    assert _options(make_url("postgresql+psycopg://a@db/app"), {}, TIMEOUT)["connect_args"] == {
        "connect_timeout": 5
    }
    # SQLite has its busy_timeout.
    assert given("sqlite:////tmp/x.db") == {"hide_parameters": True}


@pytest.mark.parametrize("timeout", [0, -1, math.inf, math.nan, True, "5", None])
def test_a_timeout_that_is_no_positive_number_is_refused(timeout: object) -> None:
    with pytest.raises(ConfigurationError, match="timeout"):
        SQLStore("postgresql+psycopg://app@db/app", timeout=timeout)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="timeout"):
        AsyncSQLStore("postgresql+asyncpg://app@db/app", timeout=timeout)  # type: ignore[arg-type]


def test_an_engine_the_app_passes_keeps_its_own_settings() -> None:
    engine = create_engine("postgresql+psycopg://app@db/app")
    before = engine.pool._timeout  # type: ignore[attr-defined]
    store = SQLStore(engine, timeout=1.0)
    assert store.engine is engine
    assert engine.pool._timeout == before  # type: ignore[attr-defined]
