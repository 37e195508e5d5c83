"""An answer sent a little at a time is refused once it has taken too long.

httpx's timeout bounds each read, not the whole answer: a provider (or the host its
discovery names for keys) sending a byte every nine seconds stayed inside a 10 s read
timeout until the size bound, about 60 days at 512 KiB, holding the request. The whole
body must now arrive within ``MAX_BODY_SECONDS`` of the headers. Time is the test's:
each chunk moves the reader's clock on, nothing sleeps."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from stepup.adapters.idp.oidc import resource
from stepup.adapters.idp.oidc.resource import (
    MAX_BODY_SECONDS,
    async_http_jwks_fetcher,
    http_jwks_fetcher,
)
from stepup.tokens import TokenUnavailableError

JWKS = b'{"keys": []}'


class Drip(httpx.SyncByteStream, httpx.AsyncByteStream):
    """``JWKS`` a byte at a time, each byte ``gap`` seconds after the last."""

    def __init__(self, clock: list[float], gap: float) -> None:
        self.clock, self.gap = clock, gap

    def __iter__(self) -> Iterator[bytes]:
        for byte in JWKS:
            self.clock[0] += self.gap
            yield bytes([byte])

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self:
            yield chunk


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1000.0]
    monkeypatch.setattr(resource, "_monotonic", lambda: now[0])
    return now


def transport(clock: list[float], gap: float) -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: httpx.Response(200, stream=Drip(clock, gap)))


def test_an_answer_within_the_bound_is_read(clock: list[float]) -> None:
    gap = MAX_BODY_SECONDS / (2 * len(JWKS))
    with httpx.Client(transport=transport(clock, gap)) as http:
        assert http_jwks_fetcher("https://issuer.example/jwks", http)() == {"keys": []}


def test_a_dripped_answer_is_refused(clock: list[float]) -> None:
    gap = 2 * MAX_BODY_SECONDS / len(JWKS)  # each byte well inside any read timeout
    with (
        httpx.Client(transport=transport(clock, gap)) as http,
        pytest.raises(TokenUnavailableError, match="jwks: answer too slow"),
    ):
        http_jwks_fetcher("https://issuer.example/jwks", http)()


async def test_the_async_reader_is_bounded_too(clock: list[float]) -> None:
    gap = 2 * MAX_BODY_SECONDS / len(JWKS)
    async with httpx.AsyncClient(transport=transport(clock, gap)) as http:
        with pytest.raises(TokenUnavailableError, match="jwks: answer too slow"):
            await async_http_jwks_fetcher("https://issuer.example/jwks", http)()
