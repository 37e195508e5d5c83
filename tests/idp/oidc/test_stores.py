"""The adapter needs only the challenge half of a store: a real Redis store, sync or async,
works as well as the memory store, and a store that cannot answer fails closed."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx
import pytest

from idp.oidc.harness import ALICE, free_port
from idp.oidc.useragent import UserAgent, edit_query
from stepup.adapters.idp.oidc import AsyncOIDCReauth, OIDCProviderConfig, OIDCReason, OIDCReauth
from stepup.adapters.storage.redis import AsyncRedisStore, RedisStore
from stepup.errors import StoreUnavailableError
from stepup.subject import Subject
from stepup.testing import SettableClock
from support import REDIS_URL, need, port_open

pytestmark = pytest.mark.oidc


def redis_ready() -> None:
    url = urlsplit(REDIS_URL)
    need(port_open(url.hostname or "127.0.0.1", url.port or 6379), f"Redis at {REDIS_URL}")


@pytest.fixture
async def redis_store() -> AsyncIterator[AsyncRedisStore]:
    redis_ready()
    store = AsyncRedisStore(REDIS_URL, prefix=f"stepup-oidc-test-{uuid.uuid4().hex}:")
    yield store
    await store.aclose()


@pytest.mark.redis
async def test_an_async_redis_store_carries_the_whole_flow(
    config: OIDCProviderConfig,
    redis_store: AsyncRedisStore,
    clock: SettableClock,
    alice: Subject,
    agent: UserAgent,
) -> None:
    async with httpx.AsyncClient(timeout=10.0) as client:
        reauth = AsyncOIDCReauth(config, redis_store, http=client, clock=clock)
        url = await reauth.start(alice, return_to="/keys")
        params = agent.authorize(url, login=ALICE[0], password=ALICE[1])
        outcome = await reauth.complete(alice, params)
        assert (outcome.reason, outcome.return_to) == (OIDCReason.OK, "/keys")
        assert (await reauth.complete(alice, params)).reason is OIDCReason.UNKNOWN_STATE
        assert outcome.auth_time is not None
        clock.set(outcome.auth_time + config.max_skew + 2)
        url = edit_query(await reauth.start(alice, return_to="/"), strip=("prompt", "max_age"))
        stale = await reauth.complete(alice, agent.authorize(url))
        assert stale.reason is OIDCReason.STALE_AUTH_TIME


def test_a_store_that_cannot_answer_fails_closed(
    config: OIDCProviderConfig, http: httpx.Client, clock: SettableClock, alice: Subject
) -> None:
    """A real Redis store pointed at a closed port: start raises, complete answers
    ``unavailable``, and nothing is granted."""
    down = RedisStore(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5)
    try:
        reauth = OIDCReauth(config, down, http=http, clock=clock)
        with pytest.raises(StoreUnavailableError):
            reauth.start(alice, return_to="/")
        outcome = reauth.complete(alice, {"state": "s" * 43, "code": "c", "iss": config.issuer})
        assert (outcome.reason, outcome.detail) == (OIDCReason.UNAVAILABLE, "store")
        assert not outcome
    finally:
        down.close()
