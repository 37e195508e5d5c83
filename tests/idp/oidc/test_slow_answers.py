"""An answer sent a little at a time is refused once it has taken too long.

httpx's timeout bounds each read, not the whole answer: a provider (or the host its
discovery names for keys) sending a byte every nine seconds stayed inside a 10 s read
timeout until the size bound, about 60 days at 512 KiB, holding the request. And once
the body had a deadline of its own, the headers still had none: a status line, then a
header line every two seconds, held ``OIDCReauth.start`` for as long as the sender
liked. The whole exchange, from before the request is sent to the body's last byte,
must now be over within ``MAX_EXCHANGE_SECONDS``.

Time of a dripped body is the test's: each chunk moves the reader's clock on, nothing
sleeps. Headers trickled by a real loopback server block in a socket read no test clock
can move, so those tests shorten the deadline to 0.3 s of real time instead."""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from stepup.adapters.idp.oidc import (
    AsyncIntrospector,
    AsyncOIDCReauth,
    OIDCProviderConfig,
    OIDCReauth,
    ProviderUnavailableError,
    resource,
)
from stepup.adapters.idp.oidc.resource import (
    MAX_EXCHANGE_SECONDS,
    async_http_jwks_fetcher,
    http_jwks_fetcher,
)
from stepup.adapters.storage.memory import MemoryStore
from stepup.subject import Identity, LoginMethod, Subject
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
    gap = MAX_EXCHANGE_SECONDS / (2 * len(JWKS))
    with httpx.Client(transport=transport(clock, gap)) as http:
        assert http_jwks_fetcher("https://issuer.example/jwks", http)() == {"keys": []}


def test_a_dripped_answer_is_refused(clock: list[float]) -> None:
    gap = 2 * MAX_EXCHANGE_SECONDS / len(JWKS)  # each byte well inside any read timeout
    with (
        httpx.Client(transport=transport(clock, gap)) as http,
        pytest.raises(TokenUnavailableError, match="jwks: answer too slow"),
    ):
        http_jwks_fetcher("https://issuer.example/jwks", http)()


async def test_the_async_reader_is_bounded_too(clock: list[float]) -> None:
    gap = 2 * MAX_EXCHANGE_SECONDS / len(JWKS)
    async with httpx.AsyncClient(transport=transport(clock, gap)) as http:
        with pytest.raises(TokenUnavailableError, match="jwks: answer too slow"):
            await async_http_jwks_fetcher("https://issuer.example/jwks", http)()


#: The shortened deadline of the trickled-headers tests (real time).
DEADLINE = 0.3
#: How long the server trickles before it ends its headers and answers in full: what
#: the old code waited for (a test failing there fails in this time, not in hours).
TRICKLE_FOR = 4.0


class TrickledHeaders:
    """A loopback HTTP server answering every request with a status line and then one
    header line every 0.1 s, each read well inside httpx's timeout. It notes when the
    client hangs up; after ``TRICKLE_FOR`` it ends the headers with a small JSON body."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.hung_up = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:  # closed at the end of the test
                return
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\n")
                end = time.monotonic() + TRICKLE_FOR
                while time.monotonic() < end:
                    # the gap between two lines, or the client's hanging up (EOF)
                    if select.select([conn], [], [], 0.1)[0] and not conn.recv(65536):
                        self.hung_up.set()
                        return
                    conn.sendall(b"X-Slow: a\r\n")
                body = b'{"keys": [], "active": false}'
                conn.sendall(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            except OSError:
                self.hung_up.set()

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[TrickledHeaders]:
    monkeypatch.setattr(resource, "MAX_EXCHANGE_SECONDS", DEADLINE)
    started = TrickledHeaders()
    yield started
    started.close()


class Stopwatch:
    """Asserts the call under it ended by the deadline (and not long before it: it was
    the deadline, not another failure), and that its connection was let go."""

    def __init__(self, server: TrickledHeaders) -> None:
        self.server = server

    def __enter__(self) -> None:
        self.started = time.monotonic()

    def __exit__(self, *exc_info: object) -> None:
        took = time.monotonic() - self.started
        assert DEADLINE * 0.9 <= took < DEADLINE + 1.0, took  # the old code: TRICKLE_FOR
        assert self.server.hung_up.wait(2.0), "the connection was left open"


def oidc_config(server: TrickledHeaders) -> OIDCProviderConfig:
    return OIDCProviderConfig(
        issuer=server.url, client_id="c", client_secret="s", redirect_uri="http://127.0.0.1:9/cb"
    )


def subject(server: TrickledHeaders) -> Subject:
    return Subject("u", "s1", Identity(LoginMethod.OIDC, issuer=server.url, subject="alice"))


def test_trickled_headers_end_the_sync_start_at_the_deadline(server: TrickledHeaders) -> None:
    oidc = OIDCReauth(oidc_config(server), MemoryStore())  # its own httpx.Client
    try:
        with (
            pytest.raises(ProviderUnavailableError, match="discovery: answer too slow"),
            Stopwatch(server),
        ):
            oidc.start(subject(server), return_to="/x")
    finally:
        oidc.close()


async def test_trickled_headers_end_the_async_start_at_the_deadline(
    server: TrickledHeaders,
) -> None:
    oidc = AsyncOIDCReauth(oidc_config(server), MemoryStore())
    try:
        with (
            pytest.raises(ProviderUnavailableError, match="discovery: answer too slow"),
            Stopwatch(server),
        ):
            await oidc.start(subject(server), return_to="/x")
    finally:
        await oidc.aclose()


def test_trickled_headers_end_a_jwks_fetch_at_the_deadline(server: TrickledHeaders) -> None:
    with (
        httpx.Client(timeout=10.0) as http,
        pytest.raises(TokenUnavailableError, match="jwks: answer too slow"),
        Stopwatch(server),
    ):
        http_jwks_fetcher(f"{server.url}/jwks", http)()


async def test_trickled_headers_end_an_async_introspection_at_the_deadline(
    server: TrickledHeaders,
) -> None:
    async with httpx.AsyncClient(timeout=10.0) as http:
        introspector = AsyncIntrospector(
            http=http,
            endpoint=f"{server.url}/introspect",
            client_id="api",
            client_secret="s3cret",
            issuer=server.url,
            audience="api",
        )
        with (
            pytest.raises(TokenUnavailableError, match="introspection: answer too slow"),
            Stopwatch(server),
        ):
            await introspector.introspect("token")
