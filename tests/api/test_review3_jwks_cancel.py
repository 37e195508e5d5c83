"""A request cancelled while the issuer's keys are fetched is not the issuer failing.

The async fetch runs in a task of its own and goes on when the request that started it
is cancelled: its keys (or its failure) count for the requests after it, once, within
the same ``refetch_interval`` budget, so a client that cancels cannot make the resource
server fetch again and again either. A sync fetch stopped by a ``BaseException`` got no
answer at all, so it uses up no budget. Async requests that find no keys while a fetch
is in flight wait for that fetch (bounded), instead of a 503.

No test sleeps: the fake issuer answers when the test releases it, and requests are
cancelled explicitly."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from joserfc import jws
from joserfc.jwk import ECKey

from api.tokens_support import AUDIENCE, ISSUER, KEY, T0, sign
from stepup.adapters.idp.oidc import AccessTokenValidator
from stepup.testing import SettableClock
from stepup.tokens import InvalidTokenError, TokenFault, TokenUnavailableError

NEW_KEY = ECKey.generate_key("P-256", parameters={"kid": "k2", "use": "sig", "alg": "ES256"})


def sign_new(**changes: Any) -> str:
    payload = {"iss": ISSUER, "sub": "bob", "aud": AUDIENCE, "exp": T0 + 7200, "iat": T0 - 5}
    payload.update(changes)
    header = {"alg": "ES256", "typ": "at+jwt", "kid": "k2"}
    return jws.serialize_compact(header, json.dumps(payload).encode(), NEW_KEY)


class Issuer:
    """An async JWKS endpoint that answers (or fails) when the test releases it."""

    def __init__(self, *keys: Any) -> None:
        self.keys = list(keys)
        self.calls = 0
        self.fail = False
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.answered = asyncio.Event()

    async def fetch(self) -> dict[str, Any]:
        self.calls += 1
        self.started.set()
        await self.release.wait()
        self.answered.set()  # the validator reads the answer before the test resumes
        if self.fail:
            raise ConnectionError("the issuer is down")
        return {"keys": [key.as_dict(private=False) for key in self.keys]}

    def hold(self) -> None:
        self.started.clear()
        self.release.clear()
        self.answered.clear()


def make(clock: SettableClock, issuer: Issuer, **settings: Any) -> AccessTokenValidator:
    return AccessTokenValidator(
        issuer=ISSUER, audience=AUDIENCE, fetch_jwks=issuer.fetch, clock=clock, **settings
    )


async def reached(event: asyncio.Event) -> None:
    """Wait for ``event``; the bound only keeps a broken validator from hanging the run."""
    async with asyncio.timeout(5):
        await event.wait()


async def cancelled(request: asyncio.Task[Any]) -> None:
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(T0)


async def test_a_request_cancelled_during_the_first_fetch_leaves_the_keys_to_the_others(
    clock: SettableClock,
) -> None:
    """The reported outage: a request cancelled while the first fetch is awaited used up
    the refetch budget with no keys loaded, so every valid token was a 503 for a minute."""
    issuer = Issuer(KEY)
    check = make(clock, issuer)
    first = asyncio.create_task(check.avalidate(sign()))
    await reached(issuer.started)
    await cancelled(first)
    issuer.release.set()
    clock.set(T0 + 1)
    assert (await check.avalidate(sign())).subject == "alice"  # was a 503 until T0 + 60
    assert check.validate(sign()).subject == "alice"  # the fetch went on, and counts
    assert issuer.calls == 1


async def test_a_request_cancelled_during_the_hourly_refresh_leaves_the_new_keys(
    clock: SettableClock,
) -> None:
    issuer = Issuer(KEY)
    issuer.release.set()
    check = make(clock, issuer)
    assert (await check.avalidate(sign(exp=T0 + 7200))).subject == "alice"
    issuer.hold()
    issuer.keys = [NEW_KEY]  # the issuer rotated: the old key is withdrawn
    clock.advance(3601)  # past max_key_age: the next request fetches again
    refresh = asyncio.create_task(check.avalidate(sign(exp=T0 + 7200)))
    await reached(issuer.started)
    await cancelled(refresh)
    issuer.release.set()
    await reached(issuer.answered)
    clock.advance(1)
    assert (await check.avalidate(sign_new())).subject == "bob"  # the late answer is read
    with pytest.raises(InvalidTokenError) as caught:
        await check.avalidate(sign(exp=T0 + 7200))
    assert caught.value.fault is TokenFault.UNKNOWN_KEY  # withdrawn, and no second fetch
    assert issuer.calls == 2


async def test_cancelling_gives_no_fetch_back(clock: SettableClock) -> None:
    """A client that cancels each request with a forged kid cannot turn the resource
    server into a load generator: the fetch it started counts against the budget."""
    issuer = Issuer(KEY)
    issuer.release.set()
    check = make(clock, issuer)
    assert (await check.avalidate(sign())).subject == "alice"
    issuer.hold()
    clock.advance(61)  # past refetch_interval: an unknown kid may fetch once
    forged = sign_new()  # a kid the cache does not know
    refetch = asyncio.create_task(check.avalidate(forged))
    await reached(issuer.started)
    await cancelled(refetch)
    for _ in range(5):
        with pytest.raises(InvalidTokenError) as caught:
            await check.avalidate(forged)  # the budget is spent: no fetch of its own
        assert caught.value.fault is TokenFault.UNKNOWN_KEY
    issuer.release.set()
    await reached(issuer.answered)
    assert issuer.calls == 2


async def test_a_failed_fetch_whose_request_left_is_logged_and_counts(
    clock: SettableClock, caplog: pytest.LogCaptureFixture
) -> None:
    issuer = Issuer(KEY)
    issuer.fail = True
    check = make(clock, issuer)
    first = asyncio.create_task(check.avalidate(sign()))
    await reached(issuer.started)
    await cancelled(first)
    with caplog.at_level(logging.WARNING, logger="stepup.tokens"):
        issuer.release.set()
        await reached(issuer.answered)
    assert [r.getMessage() for r in caplog.records if r.name == "stepup.tokens"] == [
        "the issuer's keys could not be read: ConnectionError"
    ]
    clock.advance(30)
    with pytest.raises(TokenUnavailableError):  # the issuer did fail: no retry storm
        await check.avalidate(sign())
    assert issuer.calls == 1
    issuer.fail = False
    clock.advance(31)
    assert (await check.avalidate(sign())).subject == "alice"
    assert issuer.calls == 2


async def test_requests_finding_no_keys_wait_for_the_fetch_in_flight(
    clock: SettableClock,
) -> None:
    issuer = Issuer(KEY)
    check = make(clock, issuer)
    first = asyncio.create_task(check.avalidate(sign()))
    await reached(issuer.started)
    waiting = [asyncio.create_task(check.avalidate(sign())) for _ in range(3)]
    leaving = asyncio.create_task(check.avalidate(sign()))
    await asyncio.sleep(0)  # one turn of the loop: each is waiting now
    assert not any(task.done() for task in [first, *waiting, leaving])
    with pytest.raises(TokenUnavailableError):  # a sync request does not wait
        check.validate(sign())
    await cancelled(leaving)  # leaving stops its wait only, not the fetch
    issuer.release.set()
    assert [(await task).subject for task in [first, *waiting]] == ["alice"] * 4
    assert issuer.calls == 1


async def test_the_request_that_fetches_and_those_waiting_may_all_leave(
    clock: SettableClock,
) -> None:
    issuer = Issuer(KEY)
    check = make(clock, issuer)
    first = asyncio.create_task(check.avalidate(sign()))
    await reached(issuer.started)
    second = asyncio.create_task(check.avalidate(sign()))
    await asyncio.sleep(0)
    await cancelled(second)
    await cancelled(first)
    issuer.release.set()
    await reached(issuer.answered)
    assert (await check.avalidate(sign())).subject == "alice"
    assert issuer.calls == 1


async def test_a_wait_for_another_fetch_is_bounded_by_refetch_interval(
    clock: SettableClock,
) -> None:
    """The wait is on the loop's timer (the fetcher's own timeout may be missing); with a
    10 ms refetch_interval the test spends 10 ms, not a minute."""
    issuer = Issuer(KEY)
    check = make(clock, issuer, refetch_interval=0.01)
    first = asyncio.create_task(check.avalidate(sign()))
    await reached(issuer.started)
    with pytest.raises(TokenUnavailableError):
        await check.avalidate(sign())
    assert not first.done()
    issuer.release.set()
    assert (await first).subject == "alice"
    assert issuer.calls == 1


async def test_a_fetch_cancelled_itself_uses_up_no_budget(clock: SettableClock) -> None:
    """The fetch's own task cancelled (its event loop closing): the issuer was not
    asked to the end, so the next request fetches at once."""
    issuer = Issuer(KEY)
    check = make(clock, issuer)
    first = asyncio.create_task(check.avalidate(sign()))
    await reached(issuer.started)
    (fetching,) = check._async_effects._running
    fetching.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    issuer.hold()
    issuer.release.set()
    assert (await check.avalidate(sign())).subject == "alice"
    assert issuer.calls == 2


class Interrupted(BaseException):
    """What a green-thread timeout (gevent's ``Timeout``) or ``KeyboardInterrupt`` is:
    no ``Exception``."""


def test_a_sync_fetch_stopped_by_a_base_exception_uses_up_no_budget(
    clock: SettableClock,
) -> None:
    calls = 0

    def fetch() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise Interrupted
        return {"keys": [KEY.as_dict(private=False)]}

    check = AccessTokenValidator(issuer=ISSUER, audience=AUDIENCE, fetch_jwks=fetch, clock=clock)
    with pytest.raises(Interrupted):
        check.validate(sign())
    clock.advance(1)
    assert check.validate(sign()).subject == "alice"
    assert calls == 2


def test_a_sync_fetch_that_fails_still_counts(clock: SettableClock) -> None:
    calls = 0

    def fetch() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        raise ConnectionError("the issuer is down")

    check = AccessTokenValidator(issuer=ISSUER, audience=AUDIENCE, fetch_jwks=fetch, clock=clock)
    for _ in range(3):
        with pytest.raises(TokenUnavailableError):
            check.validate(sign())
        clock.advance(1)
    assert calls == 1
