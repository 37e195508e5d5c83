"""Every sync exchange runs over a connection of its own, which it can shut at its deadline.

A sync exchange missing its deadline is abandoned: the caller is refused, and the
connection the exchange opened is shut down so that its thread, blocked in a read no
timeout ends (a sender trickling within httpx's per-read timeout), ends too. Two ways
round that were found:

- A kept-alive connection: the exchange reused one the pool held, opened by an earlier
  request, so it had none of its own to shut. A provider answering the first request on
  each connection at once and trickling the next one over it kept one thread and one
  pool slot per two calls, until the client's pool was full and a healthy host on it was
  "too slow" too. Now every sync exchange says ``Connection: close`` (its connection is
  never the pool's again) and ``OIDCReauth``'s own client keeps no idle connection.
- A TLS handshake: the socket the trace names gives its descriptor up to the TLS layer
  when the handshake starts, so shutting it did nothing while a provider trickled the
  handshake. Now the exchange holds a duplicate descriptor of its own.

Real loopback servers, a 0.3 s deadline of real time (a blocked socket read is no test
clock's to move)."""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from stepup.adapters.idp.oidc import OIDCProviderConfig, OIDCReauth, resource
from stepup.adapters.idp.oidc.resource import http_jwks_fetcher
from stepup.adapters.storage.memory import MemoryStore
from stepup.subject import Identity, LoginMethod, Subject
from stepup.tokens import TokenUnavailableError

#: The shortened deadline (real time).
DEADLINE = 0.3
#: How long a server trickles before it gives up and hangs up itself: what the old code
#: waited for (a thread it left behind ends then, not at the end of the session).
TRICKLE_FOR = 4.0
#: How long a test waits for what should follow the deadline at once.
PROMPTLY = 1.5


def answer(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
        len(body),
        body,
    )


class Loopback:
    """A loopback server handing each connection to ``serve`` on a thread of its own."""

    def __init__(self, scheme: str = "http") -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"{scheme}://127.0.0.1:{self.listener.getsockname()[1]}"
        self.hung_up = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:  # closed at the end of the test
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                self.serve(conn)
            except OSError:
                self.hung_up.set()

    def serve(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def trickle(self, conn: socket.socket, line: bytes) -> None:
        """Send ``line`` every 0.1 s (each well inside any read timeout) until the client
        hangs up, or ``TRICKLE_FOR`` has passed."""
        end = time.monotonic() + TRICKLE_FOR
        while time.monotonic() < end:
            if select.select([conn], [], [], 0.1)[0] and not conn.recv(65536):
                self.hung_up.set()
                return
            conn.sendall(line)

    def close(self) -> None:
        self.listener.close()


class QuickThenTrickling(Loopback):
    """Answers the first request on each connection at once (and keeps the connection
    alive), then trickles the headers of every later request over it. Counts the
    requests each connection carried."""

    def __init__(self, body: bytes = b'{"keys": []}') -> None:
        super().__init__()
        self.body = body
        self.requests_per_connection: list[int] = []

    def serve(self, conn: socket.socket) -> None:
        self.requests_per_connection.append(0)
        mine = len(self.requests_per_connection) - 1
        pending = b""
        while data := conn.recv(65536):
            pending += data
            while b"\r\n\r\n" in pending:
                _, pending = pending.split(b"\r\n\r\n", 1)  # no request here has a body
                self.requests_per_connection[mine] += 1
                if self.requests_per_connection[mine] == 1:
                    conn.sendall(answer(self.body))
                else:
                    conn.sendall(b"HTTP/1.1 200 OK\r\n")
                    self.trickle(conn, b"X-Slow: a\r\n")
                    return


class Healthy(Loopback):
    def serve(self, conn: socket.socket) -> None:
        while conn.recv(65536):
            conn.sendall(answer(b'{"keys": []}'))


class TrickledHandshake(Loopback):
    """Answers a TLS ClientHello with the header of a 16 KiB handshake record, then sends
    its body a byte every 0.1 s: the client stays in its TLS handshake."""

    def __init__(self) -> None:
        super().__init__("https")

    def serve(self, conn: socket.socket) -> None:
        conn.recv(65536)  # the ClientHello
        conn.sendall(b"\x16\x03\x03\x40\x00")
        self.trickle(conn, b"\x00")


@pytest.fixture(autouse=True)
def deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resource, "MAX_EXCHANGE_SECONDS", DEADLINE)


@pytest.fixture
def servers() -> Iterator[list[Loopback]]:
    started: list[Loopback] = []
    yield started
    for server in started:
        server.close()


def workers() -> set[threading.Thread]:
    return {thread for thread in threading.enumerate() if thread.name == "stepup-http"}


def assert_no_worker_left(before: set[threading.Thread]) -> None:
    """Every exchange thread started since ``before`` has ended (or does, promptly)."""
    for thread in workers() - before:
        thread.join(PROMPTLY)
        assert not thread.is_alive(), "an exchange's thread outlived its deadline"


def test_no_exchange_runs_on_a_connection_an_earlier_one_kept_alive(
    servers: list[Loopback],
) -> None:
    provider, healthy = QuickThenTrickling(), Healthy()
    servers += [provider, healthy]
    before = workers()
    # one connection at most: a single one held by a trickling exchange fills the pool
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    with httpx.Client(timeout=10.0, limits=limits) as http:
        fetch = http_jwks_fetcher(f"{provider.url}/jwks", http)
        for _ in range(3):
            assert fetch() == {"keys": []}  # the old code: "jwks: answer too slow"
        assert provider.requests_per_connection == [1, 1, 1]
        assert_no_worker_left(before)
        assert http_jwks_fetcher(f"{healthy.url}/jwks", http)() == {"keys": []}


def test_oidc_reauths_own_client_keeps_no_connection_for_an_exchange_to_reuse(
    servers: list[Loopback],
) -> None:
    provider = QuickThenTrickling()
    servers.append(provider)
    issuer = provider.url
    provider.body = json.dumps(
        {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": f"{issuer}/token",
            "jwks_uri": f"{issuer}/jwks",
        }
    ).encode()
    config = OIDCProviderConfig(
        issuer=issuer, client_id="c", client_secret="s", redirect_uri="http://127.0.0.1:9/cb"
    )
    subject = Subject("u", "s1", Identity(LoginMethod.OIDC, issuer=issuer, subject="alice"))
    before = workers()
    oidc = OIDCReauth(config, MemoryStore())
    try:
        oidc.http.get(f"{issuer}/status")  # the app's own request, on stepup's client
        url = oidc.start(subject, return_to="/x")  # the old code: "discovery: answer too slow"
    finally:
        oidc.close()
    assert url.startswith(f"{issuer}/authorize?")
    assert provider.requests_per_connection == [1, 1]
    assert_no_worker_left(before)


def test_a_trickled_tls_handshake_is_shut_at_the_deadline(servers: list[Loopback]) -> None:
    provider = TrickledHandshake()
    servers.append(provider)
    before = workers()
    started = time.monotonic()
    with (
        httpx.Client(timeout=10.0) as http,
        pytest.raises(TokenUnavailableError, match="jwks: answer too slow"),
    ):
        http_jwks_fetcher(f"{provider.url}/jwks", http)()
    assert time.monotonic() - started < DEADLINE + 1.0
    # the old code shut a socket the handshake had taken the descriptor from: nothing
    assert provider.hung_up.wait(PROMPTLY), "the connection was left open"
    assert_no_worker_left(before)


class Introspection(Loopback):
    """An issuer's introspection endpoint that keeps each connection alive; counts the
    requests each connection carried."""

    def __init__(self) -> None:
        super().__init__()
        self.requests_per_connection: list[int] = []

    def serve(self, conn: socket.socket) -> None:
        self.requests_per_connection.append(0)
        mine = len(self.requests_per_connection) - 1
        pending = b""
        while data := conn.recv(65536):
            pending += data
            while b"\r\n\r\n" in pending:
                head, rest = pending.split(b"\r\n\r\n", 1)
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                if len(rest) < length:
                    break
                pending = rest[length:]
                self.requests_per_connection[mine] += 1
                now = int(time.time())
                body = {"active": True, "sub": "alice", "aud": "api", "iss": "https://idp"}
                conn.sendall(answer(json.dumps(body | {"exp": now + 600}).encode()))


def test_introspection_keeps_its_connection_for_the_next_request(
    servers: list[Loopback],
) -> None:
    """Asked on every API request: a handshake each time would cost more than the
    exchange, so its connection goes back to the pool (the deadline still answers the
    caller)."""
    from stepup.adapters.idp.oidc import Introspector

    issuer = Introspection()
    servers.append(issuer)
    with httpx.Client(timeout=10.0) as http:
        introspector = Introspector(
            http=http,
            endpoint=f"{issuer.url}/introspect",
            client_id="api",
            client_secret="secret",
            issuer="https://idp",
            audience="api",
        )
        for _ in range(3):
            assert introspector.introspect("opaque").subject == "alice"
    assert issuer.requests_per_connection == [3]
