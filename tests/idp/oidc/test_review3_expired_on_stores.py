"""A trip answered after ``challenge_ttl`` is ``expired`` on every store (review 3, issue 5).

The challenge was stored to live exactly ``challenge_ttl``: a Redis key with that TTL,
a SQL row that ``prune`` deletes once it has passed. So on Redis, and on SQL after
``prune``, the late answer found no challenge and was ``unknown_state`` (the generic
page, no ``return_to``, no ``ReauthFailed`` saying ``expired``); only the memory store,
which kept a challenge until it was taken, said ``expired``. Now the trip's deadline
rides in the challenge, which every store keeps one ``challenge_ttl`` longer, as the
SAML adapter does: an answer up to one more TTL late is ``expired`` everywhere, a later
one ``unknown_state`` everywhere, and the window itself is not widened.

Memory, SQLite and PostgreSQL forget by the injected clock (``prune`` is run at each
moment); Redis forgets by its own wall-clock TTL, so there the TTL the store was asked
to set is read back as well.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy.pool import NullPool

from idp.oidc.useragent import query_of
from stepup.adapters.idp.oidc import AsyncOIDCReauth, OIDCProviderConfig, OIDCReason, OIDCReauth
from stepup.adapters.storage.memory import MemoryStore
from stepup.adapters.storage.redis import AsyncRedisStore, RedisStore
from stepup.adapters.storage.sql import AsyncSQLStore
from stepup.records import Challenge
from stepup.subject import Identity, LoginMethod, Subject
from stepup.testing import SettableClock
from storage.redis_cluster import delete_prefix, need_shared_redis
from storage.redis_cluster import unique_prefix as redis_prefix
from store_kinds import STORE_KINDS, open_store
from support import POSTGRES_URL, REDIS_URL, need, port_open

ISS = "https://op.example"
NOW = 1_800_000_000.0
TTL = 600.0
DEADLINE = NOW + TTL
ALICE = Subject("u", "s1", Identity(LoginMethod.OIDC, issuer=ISS, subject="alice", provider="p"))
DISCOVERY = {
    "issuer": ISS,
    "authorization_endpoint": ISS + "/auth",
    "token_endpoint": ISS + "/token",
    "jwks_uri": ISS + "/jwks",
}
CONFIG = OIDCProviderConfig(
    issuer=ISS,
    client_id="rp",
    client_secret="s",
    redirect_uri="https://app.example/cb",
    challenge_ttl=TTL,
)


def discovery(request: httpx.Request) -> httpx.Response:
    """An OP that publishes its discovery document only: no answer here goes further."""
    if request.url.path == "/.well-known/openid-configuration":
        return httpx.Response(200, json=DISCOVERY)
    return httpx.Response(404)


def redis_ttl_ms(prefix: str, state: str) -> int:
    """The remaining TTL of the challenge key of ``state``, in ms (Redis's own clock)."""
    with redis.Redis.from_url(REDIS_URL) as client:
        return int(client.pttl(RedisStore(client, prefix=prefix).keys.challenge(state)))


class Trips:
    """One sync ``OIDCReauth`` on one store, with its clock. Before each answer the
    store forgets what has expired: SQL's ``prune`` at that moment (docs/storage.md asks
    apps to run it regularly); memory and Redis judge ``expires_at`` on the clock."""

    def __init__(self, store: Any, http: httpx.Client) -> None:
        self.store, self.clock = store, SettableClock(NOW)
        self.reauth = OIDCReauth(CONFIG, store, http=http, clock=self.clock)

    def start(self) -> str:
        self.clock.set(NOW)
        url = self.reauth.start(ALICE, return_to="/keys", action="api_key.read")
        return str(query_of(url)["state"])

    def answer(self, state: str, at: float, **params: str) -> Any:
        self.clock.set(at)
        if hasattr(self.store, "prune"):
            self.store.prune(at)
        return self.reauth.complete(ALICE, {"state": state, "iss": ISS, **params})


@pytest.fixture(params=STORE_KINDS)
def trips(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Trips]:
    with (
        open_store(request.param, tmp_path) as store,
        httpx.Client(transport=httpx.MockTransport(discovery)) as http,
    ):
        yield Trips(store, http)


# every store, sync ----------------------------------------------------------------------


def test_an_answer_after_the_deadline_is_expired_with_its_way_back(trips: Trips) -> None:
    """The reviewer's reproducer: memory said ``expired /keys``, Redis and pruned SQL
    ``unknown_state None``. The state still works once only."""
    for late in (DEADLINE, DEADLINE + 1, DEADLINE + TTL - 1):
        state = trips.start()
        outcome = trips.answer(state, late, code="abc")
        assert (outcome.reason, outcome.return_to) == (OIDCReason.EXPIRED, "/keys"), late
        assert outcome.action == "api_key.read"
        assert not outcome
        again = trips.answer(state, late, code="abc")
        assert (again.reason, again.return_to) == (OIDCReason.UNKNOWN_STATE, None)


def test_an_answer_before_the_deadline_is_judged_not_expired(trips: Trips) -> None:
    """The window is ``challenge_ttl``, as before: the last moment inside it is judged
    (here the OP's error answer), the first moment outside it is not."""
    state = trips.start()
    outcome = trips.answer(state, DEADLINE - 0.001, error="access_denied")
    assert (outcome.reason, outcome.error) == (OIDCReason.PROVIDER_ERROR, "access_denied")
    assert outcome.return_to == "/keys"
    state = trips.start()
    assert trips.answer(state, DEADLINE, error="access_denied").reason is OIDCReason.EXPIRED


def test_two_ttls_after_the_start_it_is_unknown_on_every_store(trips: Trips) -> None:
    """The challenge is kept one TTL past the deadline and no longer, by every store
    alike (the memory store too: it no longer hands out what has expired)."""
    state = trips.start()
    outcome = trips.answer(state, DEADLINE + TTL, code="abc")
    assert (outcome.reason, outcome.return_to) == (OIDCReason.UNKNOWN_STATE, None)


@pytest.mark.redis
def test_redis_is_asked_to_keep_the_challenge_one_ttl_past_the_deadline(
    tmp_path: Path,
) -> None:
    """Redis drops the key by its own clock: the TTL asked for is the trip's window and
    one more, where it was the window alone (gone when the answer would be expired)."""
    with (
        open_store("redis", tmp_path) as store,
        httpx.Client(transport=httpx.MockTransport(discovery)) as http,
    ):
        state = Trips(store, http).start()
        remaining = redis_ttl_ms(store.keys.prefix, state)
        assert 2 * TTL * 1000 - 5000 < remaining <= 2 * TTL * 1000


# a stored challenge of another shape ----------------------------------------------------


def _stored(data: dict[str, Any], expires_at: float) -> tuple[MemoryStore, str]:
    store = MemoryStore()
    state = "oidc:" + "A" * 43
    store.put_challenge(Challenge(state, "u", "s1", NOW, expires_at, data))
    return store, state


def _legacy_data() -> dict[str, Any]:
    """What the previous version stored: no ``deadline``, ``expires_at`` was it."""
    return {
        "kind": "oidc", "issuer": ISS, "subject": "alice", "nonce": "n" * 43,
        "verifier": "v" * 43, "return_to": "/old", "action": "", "acr_values": [],
        "transaction": "", "resume": "", "otp_proved": False, "otp_proved_at": None,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("at", "reason"),
    [(DEADLINE - 1, OIDCReason.PROVIDER_ERROR), (DEADLINE, OIDCReason.UNKNOWN_STATE)],
)
def test_a_trip_stored_by_the_previous_version_keeps_its_deadline(
    at: float, reason: OIDCReason
) -> None:
    """Its ``expires_at`` is its deadline: judged before it, gone from it (as before)."""
    store, state = _stored(_legacy_data(), DEADLINE)
    with httpx.Client(transport=httpx.MockTransport(discovery)) as http:
        assert Trips(store, http).answer(state, at, error="access_denied").reason is reason


@pytest.mark.parametrize("deadline", [None, "soon", True, float("nan"), float("inf")])
def test_a_stored_deadline_that_is_no_time_grants_nothing(deadline: object) -> None:
    store, state = _stored(_legacy_data() | {"deadline": deadline}, DEADLINE + TTL)
    with httpx.Client(transport=httpx.MockTransport(discovery)) as http:
        reauth = OIDCReauth(CONFIG, store, http=http, clock=SettableClock(NOW + 1))
        outcome = reauth.complete(ALICE, {"state": state, "iss": ISS, "error": "access_denied"})
    assert outcome.reason is OIDCReason.UNKNOWN_STATE


# async stores: the same flow ------------------------------------------------------------


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="aiosqlite"),
        pytest.param("postgresql", marks=pytest.mark.postgres, id="asyncpg"),
        pytest.param("redis", marks=pytest.mark.redis, id="async-redis"),
    ]
)
async def async_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    if request.param == "sqlite":
        store: Any = AsyncSQLStore.sqlite(tmp_path / "stepup.sqlite3")
        await store.create_schema()
        yield store
        await store.aclose()
    elif request.param == "postgresql":
        need(port_open("127.0.0.1", 5432), "PostgreSQL on 127.0.0.1:5432")
        url = POSTGRES_URL.replace("+psycopg", "+asyncpg", 1)
        store = AsyncSQLStore(url, prefix=f"t{uuid.uuid4().hex[:12]}_", poolclass=NullPool)
        await store.create_schema()
        yield store
        await store.drop_schema()
        await store.aclose()
    else:
        need_shared_redis()
        prefix = redis_prefix()
        store = AsyncRedisStore(REDIS_URL, prefix=prefix)
        yield store
        await store.aclose()
        with redis.Redis.from_url(REDIS_URL) as client:
            delete_prefix(client, prefix)


async def test_an_async_store_reports_a_late_answer_as_expired_too(async_store: Any) -> None:
    clock = SettableClock(NOW)
    async with httpx.AsyncClient(transport=httpx.MockTransport(discovery)) as http:
        reauth = AsyncOIDCReauth(CONFIG, async_store, http=http, clock=clock)
        url = await reauth.start(ALICE, return_to="/keys", action="api_key.read")
        state = query_of(url)["state"]
        if isinstance(async_store, AsyncRedisStore):
            remaining = redis_ttl_ms(async_store.keys.prefix, state)
            assert 2 * TTL * 1000 - 5000 < remaining <= 2 * TTL * 1000
        clock.set(DEADLINE)
        if hasattr(async_store, "prune"):
            await async_store.prune(DEADLINE)
        params = {"state": state, "code": "abc", "iss": ISS}
        outcome = await reauth.complete(ALICE, params)
        assert (outcome.reason, outcome.return_to) == (OIDCReason.EXPIRED, "/keys")
        again = await reauth.complete(ALICE, params)
        assert again.reason is OIDCReason.UNKNOWN_STATE
