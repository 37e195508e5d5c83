"""The async client runs the same decisions as the sync one, against the same provider."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from idp.oidc.harness import ALICE, MALLORY, Provider, free_port
from idp.oidc.useragent import UserAgent, edit_query, query_of
from stepup.adapters.idp.oidc import (
    AsyncOIDCReauth,
    OIDCProviderConfig,
    OIDCReason,
    ProviderUnavailableError,
    WrongProviderError,
)
from stepup.adapters.storage.memory import MemoryStore
from stepup.subject import Identity, LoginMethod, Subject
from stepup.testing import SettableClock

pytestmark = pytest.mark.oidc


@pytest.fixture
async def areauth(
    config: OIDCProviderConfig, store: MemoryStore, clock: SettableClock
) -> AsyncIterator[AsyncOIDCReauth]:
    async with httpx.AsyncClient(timeout=10.0) as client:
        yield AsyncOIDCReauth(config, store, http=client, clock=clock)


async def test_happy_path_then_replay(
    areauth: AsyncOIDCReauth, alice: Subject, agent: UserAgent, clock: SettableClock
) -> None:
    digest = "abababababababababababababababababababababababababababababababab"
    url = await areauth.start(
        alice, return_to="/settings", action="user.update", transaction=digest
    )
    assert query_of(url)["prompt"] == "login"
    params = agent.authorize(url, login=ALICE[0], password=ALICE[1])
    outcome = await areauth.complete(alice, params)
    assert outcome.reason is OIDCReason.OK
    assert outcome.auth_time is not None
    assert outcome.auth_time >= clock()
    assert (outcome.return_to, outcome.action, outcome.transaction, outcome.method) == (
        "/settings",
        "user.update",
        digest,
        "oidc",
    )
    assert (await areauth.complete(alice, params)).reason is OIDCReason.UNKNOWN_STATE


async def test_stale_and_wrong_subject(
    areauth: AsyncOIDCReauth, alice: Subject, agent: UserAgent, clock: SettableClock
) -> None:
    url = await areauth.start(alice, return_to="/")
    first = await areauth.complete(alice, agent.authorize(url, login=ALICE[0], password=ALICE[1]))
    assert first.auth_time is not None
    clock.set(first.auth_time + areauth.config.max_skew + 2)
    url = edit_query(await areauth.start(alice, return_to="/"), strip=("prompt", "max_age"))
    stale = await areauth.complete(alice, agent.authorize(url))
    assert stale.reason is OIDCReason.STALE_AUTH_TIME
    url = await areauth.start(alice, return_to="/")
    other = await areauth.complete(
        alice, agent.authorize(url, login=MALLORY[0], password=MALLORY[1])
    )
    assert other.reason is OIDCReason.WRONG_SUBJECT


async def test_expired_and_provider_error(
    areauth: AsyncOIDCReauth, alice: Subject, agent: UserAgent, clock: SettableClock
) -> None:
    url = await areauth.start(alice, return_to="/")
    outcome = await areauth.complete(alice, agent.authorize(url, cancel=True))
    assert (outcome.reason, outcome.error) == (OIDCReason.PROVIDER_ERROR, "access_denied")
    url = await areauth.start(alice, return_to="/")
    params = agent.authorize(url, login=ALICE[0], password=ALICE[1])
    clock.advance(areauth.config.challenge_ttl + 1)
    assert (await areauth.complete(alice, params)).reason is OIDCReason.EXPIRED


async def test_start_refuses_other_sessions_and_unreachable_providers(
    areauth: AsyncOIDCReauth, store: MemoryStore, clock: SettableClock, provider: Provider
) -> None:
    with pytest.raises(WrongProviderError):
        await areauth.start(Subject("u", "s"), return_to="/")
    issuer = f"http://127.0.0.1:{free_port()}"
    config = OIDCProviderConfig(
        issuer=issuer, client_id="c", redirect_uri=areauth.config.redirect_uri
    )
    subject = Subject("u", "s", Identity(LoginMethod.OIDC, issuer=issuer, subject="alice"))
    unreachable = AsyncOIDCReauth(config, store, clock=clock)
    try:
        with pytest.raises(ProviderUnavailableError):
            await unreachable.start(subject, return_to="/")
    finally:
        await unreachable.aclose()
