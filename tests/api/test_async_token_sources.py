"""In async code a sync token source never runs on the event loop: the validator's sync
JWKS fetcher (``http_jwks_fetcher`` over ``httpx.Client``) and a sync introspector run in
a worker thread, so a slow issuer stalls no other request; async ones stay on the loop."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from api.tokens_support import AUDIENCE, ISSUER, KEY, POLICY, T0, sign
from stepup.adapters.idp.oidc import AccessTokenValidator
from stepup.adapters.storage.memory import MemoryStore
from stepup.integrations.bearer import BearerGuard
from stepup.integrations.http import HttpResponse, RequestInfo
from stepup.reauth import AsyncReauth
from stepup.testing import SettableClock
from stepup.tokens import AccessToken, InvalidTokenError, TokenFault


def request(token: str) -> RequestInfo:
    return RequestInfo("DELETE", "/workspaces/prod", authorization=f"Bearer {token}")


class Threads:
    """Where each call ran."""

    def __init__(self) -> None:
        self.seen: list[int] = []

    def note(self) -> None:
        self.seen.append(threading.get_ident())


def validator(fetch: Any, clock: SettableClock) -> AccessTokenValidator:
    return AccessTokenValidator(issuer=ISSUER, audience=AUDIENCE, fetch_jwks=fetch, clock=clock)


async def test_a_sync_jwks_fetcher_runs_off_the_loop() -> None:
    threads = Threads()

    def fetch() -> dict[str, Any]:
        threads.note()
        return {"keys": [KEY.as_dict(private=False)]}

    token = await validator(fetch, SettableClock(T0)).avalidate(sign())
    assert token.subject == "alice"
    assert threads.seen
    assert threading.get_ident() not in threads.seen


async def test_an_async_jwks_fetcher_stays_on_the_loop() -> None:
    threads = Threads()

    async def fetch() -> dict[str, Any]:
        threads.note()
        return {"keys": [KEY.as_dict(private=False)]}

    assert (await validator(fetch, SettableClock(T0)).avalidate(sign())).subject == "alice"
    assert threads.seen == [threading.get_ident()]


async def test_a_fetcher_returning_an_awaitable_is_awaited() -> None:
    async def document() -> dict[str, Any]:
        return {"keys": [KEY.as_dict(private=False)]}

    def fetch() -> Any:
        return document()

    assert (await validator(fetch, SettableClock(T0)).avalidate(sign())).subject == "alice"


class SyncIntrospector:
    """A sync token source (as ``Introspector`` over ``httpx.Client``)."""

    def __init__(self, answer: AccessToken | None) -> None:
        self.answer = answer
        self.threads = Threads()

    def introspect(self, token: str) -> AccessToken:
        self.threads.note()
        if self.answer is None:
            raise InvalidTokenError(TokenFault.INACTIVE)
        return self.answer


async def test_acheck_runs_a_sync_introspector_off_the_loop() -> None:
    clock = SettableClock(T0)
    good = await validator(lambda: {"keys": [KEY.as_dict(private=False)]}, clock).avalidate(sign())
    source = SyncIntrospector(good)
    guard = BearerGuard(AsyncReauth(MemoryStore(), POLICY, clock=clock), source)
    answers = await asyncio.gather(
        *(guard.acheck(request("opaque"), "workspace.delete") for _ in range(3))
    )
    assert all(isinstance(answer, AccessToken) for answer in answers)
    assert len(source.threads.seen) == 3
    assert threading.get_ident() not in source.threads.seen
    source.answer = None
    refused = await guard.acheck(request("opaque"), "workspace.delete")
    assert isinstance(refused, HttpResponse)
    assert refused.status == 401
