"""The resource server's I/O, over httpx: the issuer's JWKS and RFC 7662 introspection.

:func:`http_jwks_fetcher` / :func:`async_http_jwks_fetcher` make the ``fetch_jwks`` an
:class:`~stepup.adapters.idp.oidc.access_token.AccessTokenValidator` needs.
:class:`Introspector` / :class:`AsyncIntrospector` validate opaque access tokens by
asking the issuer (RFC 7662): ``active: false`` is a refusal, and the answer's claims
are checked like a JWT's (issuer, audience, lifetime). Any network or protocol failure
is :class:`~stepup.tokens.TokenUnavailableError` (the request is refused, 503); error
messages name the error type only, never the token or the client secret. Answers are
read up to a bound (256 KiB for a JWKS, 64 KiB for introspection), within one deadline
for the whole exchange (:data:`MAX_EXCHANGE_SECONDS`), and must be one JSON object naming
each member once. Nothing is cached: every request asks, so a revoked token is refused
at once.
"""

from __future__ import annotations

import asyncio
import contextvars
import socket
import threading
import time
import zlib
from collections.abc import Awaitable, Callable, Mapping
from contextlib import suppress
from typing import Any, Final

import httpx

from ....clock import Clock, system_clock
from ....errors import ConfigurationError, StepupError
from ....tokens import AccessToken, InvalidTokenError, TokenFault, TokenUnavailableError
from .access_token import claims_to_token, strict_json_object
from .config import basic_authorization, secure_url

__all__ = [
    "AsyncIntrospector",
    "Introspector",
    "async_http_jwks_fetcher",
    "http_jwks_fetcher",
]

_TIMEOUT: Final = httpx.Timeout(10.0)
_MAX_TOKEN_LENGTH: Final = 16 * 1024
#: The most a JWKS document or an introspection answer may weigh: more is refused
#: before it is parsed (a hostile or broken endpoint cannot exhaust memory).
MAX_JWKS_BYTES: Final = 256 * 1024
MAX_INTROSPECTION_BYTES: Final = 64 * 1024
#: What a request can raise besides an answer: network, protocol and decoding errors.
HTTP_FAILURES: Final = (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError, OSError)
#: The content codings asked for, and decoded by :class:`BoundedAnswer` itself (never by
#: httpx, which inflates a whole network read at once: 64 KiB of gzip can be 64 MiB).
ACCEPT_ENCODING: Final = {"Accept-Encoding": "gzip, deflate"}
#: How long one exchange may take in all, from before the request is sent until the last
#: byte of the answer: waiting for a pooled connection, connecting, TLS, sending, the
#: answer's headers and its body. httpx's timeout bounds each of those reads and writes,
#: not their sum, so headers or a body sent a line or a byte at a time just inside it
#: would hold the request (and a sync worker) for as long as the sender likes.
MAX_EXCHANGE_SECONDS: Final = 20.0
#: The clock of that bound: the machine's, not the decisions' injected one (a timeout).
_monotonic = time.monotonic
#: What httpcore's ``trace`` extension reports when a request opens a connection of its
#: own (to the host, or to a proxy): the stream holds the connection's socket.
_CONNECTED: Final = ("connect_tcp.complete", "connect_unix_socket.complete")
#: ... and when the connection's TLS layer is up (its protocol may be HTTP/2).
_TLS_UP: Final = "start_tls.complete"
#: Said by every sync exchange: its connection is closed with its answer, never handed
#: back to the client's pool, so no later exchange can find it there (see
#: :class:`_Connections`). HTTP/2 has no such header: h2 leaves it out.
_CLOSE: Final = {"Connection": "close"}
#: zlib's ``wbits`` for each coding read (``None``: the body as sent).
_WBITS: Final[Mapping[str, int | None]] = {
    "": None,
    "identity": None,
    "gzip": 31,
    "x-gzip": 31,
    "deflate": 15,
}


def _check_url(url: object, what: str) -> str:
    """https, or http on a loopback host only: the host is parsed, never matched by
    prefix (``http://localhost.attacker.example`` is not loopback), and a URL carrying
    credentials is refused."""
    return secure_url(url, what, query=True)


class BoundedAnswer:
    """One request's answer, bounded in time and in size: the one place both bounds are
    checked, for the sync and the async exchange alike (:func:`fetch`, :func:`afetch`),
    and for the resource server's fetches here as for the re-authentication client's
    (:mod:`.client`).

    Time: the clock starts when this is made, before the request is sent, and the whole
    exchange must be over within :data:`MAX_EXCHANGE_SECONDS` (each chunk of the body
    is checked against it, and the exchange's driver stops a wait for the headers or a
    connection at it). Size: once the headers are in (:meth:`begin`), a declared length
    over ``limit`` bytes is refused before anything is read, and so is the chunk that
    takes the body over it (a length the answer does not declare, or declares falsely).
    A gzip or deflate body is inflated here, never more than one byte past the bound, so
    a small compressed answer cannot grow into a large one in memory; another coding is
    refused. ``refuse`` is the error raised
    (:class:`~stepup.tokens.TokenUnavailableError` unless told)."""

    __slots__ = ("_body", "_deadline", "_inflate", "_limit", "_purpose", "_refuse", "_status")

    def __init__(
        self, limit: int, purpose: str, *, refuse: type[StepupError] = TokenUnavailableError
    ) -> None:
        self._deadline = _monotonic() + MAX_EXCHANGE_SECONDS
        self._limit, self._purpose, self._refuse = limit, purpose, refuse
        self._status = 0
        self._inflate: Any = None
        self._body = bytearray()

    def remaining(self) -> float:
        """Seconds left before the deadline (0 once it has passed)."""
        return max(0.0, self._deadline - _monotonic())

    def too_slow(self) -> StepupError:
        """The error of a missed deadline."""
        return self._refuse(f"{self._purpose}: answer too slow")

    def begin(self, response: httpx.Response) -> None:
        """The answer's headers are in: its status, declared length and coding."""
        self._status = response.status_code
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self._limit:
            raise self._refuse(f"{self._purpose}: answer too large")
        coding = response.headers.get("Content-Encoding", "").strip().lower()
        if coding not in _WBITS:
            raise self._refuse(f"{self._purpose}: answer in an unknown content coding")
        wbits = _WBITS[coding]
        self._inflate = None if wbits is None else zlib.decompressobj(wbits)

    def add(self, raw: bytes) -> None:
        """One chunk as it came over the wire (decoded here)."""
        chunk = raw
        if self._inflate is not None:
            room = self._limit - len(self._body) + 1  # one byte past the bound is enough
            try:
                chunk = self._inflate.decompress(raw, room)
            except zlib.error:
                raise self._refuse(f"{self._purpose}: answer not decodable") from None
        self._body += chunk
        if len(self._body) > self._limit:
            raise self._refuse(f"{self._purpose}: answer too large")
        if _monotonic() > self._deadline:
            raise self.too_slow()

    def add_read(self, content: bytes) -> None:
        """A body the transport had read and decoded before it answered (an in-memory
        transport, such as ``httpx.MockTransport``): held to the bound as it is."""
        self._inflate = None
        self.add(content)

    @property
    def status(self) -> int:
        return self._status

    def content(self) -> bytes:
        """The bytes read, at most ``limit`` of them."""
        return bytes(self._body)

    def document(self) -> Mapping[str, Any]:
        """The answer as one JSON object (an HTTP error or anything else: unavailable)."""
        if self._status != 200:
            raise self._refuse(f"{self._purpose}: HTTP {self._status}")
        try:
            return strict_json_object(bytes(self._body))
        except (ValueError, UnicodeError):
            raise self._refuse(f"{self._purpose}: not one JSON object") from None


def read_within(response: httpx.Response, answer: BoundedAnswer) -> None:
    """Read ``response`` into ``answer`` raw chunk by raw chunk, stopping past its bounds."""
    answer.begin(response)
    if response.is_stream_consumed:  # already in memory: nothing more to read
        answer.add_read(response.content)
        return
    for chunk in response.iter_raw():
        answer.add(chunk)


async def aread_within(response: httpx.Response, answer: BoundedAnswer) -> None:
    """:func:`read_within` for ``httpx.AsyncClient``."""
    answer.begin(response)
    if response.is_stream_consumed:
        answer.add_read(response.content)
        return
    async for chunk in response.aiter_raw():
        answer.add(chunk)


class _Connections:
    """The connections a sync exchange opened for itself, so that an exchange abandoned
    at its deadline does not keep its thread reading from (or shaking hands with) a
    sender that never stops. httpcore's ``trace`` extension names the socket of each
    connection the request opens, before anything is sent over it; a duplicate of it is
    kept, a descriptor of the exchange's own onto the same connection that nothing else
    closes (so shutting it can never reach another connection that took over a freed
    number), and :meth:`abandon` shuts the connection down through it. That ends the
    blocked read at once, whether the answer's or the TLS handshake's (whose socket,
    until the handshake is over, nothing else names: the one the trace named gave its
    descriptor up to it). A connection opened after the deadline is shut as it opens.

    Every sync exchange but introspection's says ``Connection: close`` (:data:`_CLOSE`),
    so a connection it opened is closed with its answer and is never the pool's again.
    One that other requests left open to the same host (an app's client shared with its
    own keep-alive traffic, or with an :class:`Introspector`, which keeps its
    connections for the next API request), or an HTTP/2 one
    that other requests may share, is not the exchange's to shut: :meth:`release` lets
    go of the connection, and its thread ends when the sender stops (or pauses for
    longer than the client's read timeout). The duplicates are closed once the answer
    is (or the exchange has failed, or been abandoned)."""

    __slots__ = ("_abandoned", "_held", "_lock")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: list[socket.socket] | None = []  # None: none of ours to shut, ever
        self._abandoned = False

    def trace(self, event: str, info: Mapping[str, Any]) -> None:
        """httpcore's ``trace`` callback (called on the exchange's thread)."""
        if event.startswith("http2.") or event.endswith("response_closed.started"):
            self.release()
        elif event.endswith(_CONNECTED):
            self._hold(info["return_value"].get_extra_info("socket"))
        elif event.endswith(_TLS_UP):
            ssl_object = info["return_value"].get_extra_info("ssl_object")
            if ssl_object is not None and ssl_object.selected_alpn_protocol() == "h2":
                self.release()

    def _hold(self, sock: object) -> None:
        """A connection the exchange opened (its socket, on the exchange's thread)."""
        if not isinstance(sock, socket.socket):
            return
        with self._lock:
            if self._held is None:
                return
            if self._abandoned:  # too late: the thread that owns the socket is this one
                _shut(sock)
                return
            # no descriptor to be had (or a socket that cannot be duplicated): this
            # connection cannot be shut, but the request goes on
            with suppress(OSError, NotImplementedError):
                self._held.append(sock.dup())

    def release(self) -> None:
        """The exchange's connections are not (or no longer) its to shut."""
        with self._lock:
            held, self._held = self._held or [], None
            for dup in held:
                dup.close()

    def abandon(self) -> None:
        """Shut down the exchange's own connections, and any it opens from now on."""
        with self._lock:
            self._abandoned = True
            for dup in self._held or ():
                _shut(dup)
                dup.close()
            if self._held is not None:
                self._held = []


def _shut(sock: socket.socket) -> None:
    """End a connection's reads and writes, on whichever thread (a closed one: nothing)."""
    with suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def fetch(
    http: httpx.Client,
    request: Mapping[str, Any],
    limit: int,
    purpose: str,
    *,
    refuse: type[StepupError] = TokenUnavailableError,
    keep_alive: bool = False,
) -> BoundedAnswer:
    """Send ``request`` (``httpx.Client.stream``'s arguments) and read its answer within
    :class:`BoundedAnswer`'s bounds. A sync read cannot be interrupted, so the exchange
    runs on a thread of its own (with the caller's context variables), over a connection
    of its own wherever the client allows it (:class:`_Connections`), and the caller
    waits for it until the deadline, then raises ``refuse`` and shuts the exchange's
    connection down; httpx's errors are raised as they are.

    ``keep_alive``: the connection goes back to the pool for the next exchange (no
    ``Connection: close``), for a request made on every API request (introspection),
    where a new TCP and TLS handshake each time would cost more than the exchange. An
    exchange that reused a pooled connection cannot be shut at the deadline: the caller
    is answered then all the same, and the thread ends when the issuer stops or the
    client's own timeout passes (docs/oidc.md)."""
    answer = BoundedAnswer(limit, purpose, refuse=refuse)
    connections = _Connections()
    outcome: list[BoundedAnswer | BaseException] = []
    sent = (
        request if keep_alive else {**request, "headers": {**request.get("headers", {}), **_CLOSE}}
    )

    def exchange() -> None:
        try:
            with http.stream(**sent, extensions={"trace": connections.trace}) as response:
                read_within(response, answer)
            outcome.append(answer)
        except BaseException as exc:  # the caller's to handle
            outcome.append(exc)
        finally:
            connections.release()

    context = contextvars.copy_context()
    worker = threading.Thread(target=context.run, args=(exchange,), name="stepup-http")
    worker.daemon = True
    try:
        worker.start()
    except RuntimeError:  # no thread to be had: no answer either, and typed as one
        raise refuse(f"{purpose}: {RuntimeError.__name__}") from None
    worker.join(answer.remaining())
    if not outcome:
        connections.abandon()
        raise answer.too_slow()
    result = outcome[0]
    if isinstance(result, BaseException):
        raise result
    return result


async def afetch(
    http: httpx.AsyncClient,
    request: Mapping[str, Any],
    limit: int,
    purpose: str,
    *,
    refuse: type[StepupError] = TokenUnavailableError,
) -> BoundedAnswer:
    """:func:`fetch` over ``httpx.AsyncClient``: the exchange is cancelled at the
    deadline (which closes its connection)."""
    answer = BoundedAnswer(limit, purpose, refuse=refuse)
    deadline = asyncio.timeout(answer.remaining())
    try:
        async with deadline, http.stream(**request) as response:
            await aread_within(response, answer)
    except TimeoutError:
        if deadline.expired():
            raise answer.too_slow() from None
        raise
    return answer


def _get(
    http: httpx.Client,
    request: dict[str, Any],
    purpose: str,
    limit: int,
    *,
    keep_alive: bool = False,
) -> Mapping[str, Any]:
    """Send ``request`` and read at most ``limit`` bytes of the answer."""
    try:
        answer = fetch(http, request, limit, purpose, keep_alive=keep_alive)
    except HTTP_FAILURES as exc:
        raise TokenUnavailableError(f"{purpose}: {type(exc).__name__}") from None
    return answer.document()


async def _aget(
    http: httpx.AsyncClient, request: dict[str, Any], purpose: str, limit: int
) -> Mapping[str, Any]:
    """:func:`_get` over ``httpx.AsyncClient``."""
    try:
        answer = await afetch(http, request, limit, purpose)
    except HTTP_FAILURES as exc:
        raise TokenUnavailableError(f"{purpose}: {type(exc).__name__}") from None
    return answer.document()


def _jwks_request(jwks_uri: str) -> dict[str, Any]:
    return {
        "method": "GET",
        "url": _check_url(jwks_uri, "jwks_uri"),
        "timeout": _TIMEOUT,
        "headers": {"Accept": "application/json", **ACCEPT_ENCODING},
        "follow_redirects": False,  # whatever the app's client does
    }


def http_jwks_fetcher(jwks_uri: str, http: httpx.Client) -> Callable[[], Mapping[str, Any]]:
    """``fetch_jwks`` for a validator: GET ``jwks_uri`` (https, or loopback) with
    ``http``; an answer over 256 KiB is refused unread."""
    request = _jwks_request(jwks_uri)

    def fetch() -> Mapping[str, Any]:
        return _get(http, request, "jwks", MAX_JWKS_BYTES)

    return fetch


def async_http_jwks_fetcher(
    jwks_uri: str, http: httpx.AsyncClient
) -> Callable[[], Awaitable[Mapping[str, Any]]]:
    """``fetch_jwks`` for :meth:`AccessTokenValidator.avalidate`, over ``httpx.AsyncClient``."""
    request = _jwks_request(jwks_uri)

    async def fetch() -> Mapping[str, Any]:
        return await _aget(http, request, "jwks", MAX_JWKS_BYTES)

    return fetch


class _IntrospectorBase:
    def __init__(
        self,
        *,
        endpoint: str,
        client_id: str,
        client_secret: str,
        issuer: str,
        audience: str,
        clock: Clock = system_clock,
        leeway: float = 30.0,
        timeout: float = 10.0,
    ) -> None:
        """The resource server authenticates to ``endpoint`` with HTTP Basic
        (``client_id``/``client_secret``). ``issuer`` and ``audience`` are checked on
        the answer as on a JWT access token. ``timeout``: seconds httpx waits for each
        connect, read or write of one request; the whole exchange is held to
        :data:`MAX_EXCHANGE_SECONDS` as well (a slower endpoint makes the request
        unavailable, never allowed)."""
        for name, value in (
            ("endpoint", endpoint),
            ("client_id", client_id),
            ("client_secret", client_secret),
            ("issuer", issuer),
            ("audience", audience),
        ):
            if not isinstance(value, str) or not value:
                raise ConfigurationError(f"an introspector needs {name}")
        _check_url(endpoint, "introspection endpoint")
        if isinstance(leeway, bool) or not 0 <= leeway <= 300:
            raise ConfigurationError("leeway must be between 0 and 300 seconds")
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not 0 < timeout <= 60
        ):
            raise ConfigurationError("timeout must be positive and at most 60 seconds")
        self.endpoint = endpoint
        self.issuer = issuer
        self.audience = audience
        self.clock = clock
        self.leeway = float(leeway)
        self.timeout = httpx.Timeout(float(timeout))
        self._authorization = basic_authorization(client_id, client_secret)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(endpoint={self.endpoint!r}, audience={self.audience!r})"

    def _request(self, token: str) -> dict[str, Any]:
        if not isinstance(token, str) or not token or len(token) > _MAX_TOKEN_LENGTH:
            raise InvalidTokenError(TokenFault.MALFORMED)
        return {
            "method": "POST",
            "url": self.endpoint,
            "data": {"token": token, "token_type_hint": "access_token"},
            "timeout": self.timeout,
            "headers": {
                "Accept": "application/json",
                "Authorization": self._authorization,
                **ACCEPT_ENCODING,
            },
            "follow_redirects": False,  # a redirect would re-send the token and secret
        }

    def _judge(self, data: Mapping[str, Any]) -> AccessToken:
        """``active`` must be JSON ``true`` (not ``"true"``, not 1); a ``token_type``,
        when given, must be ``Bearer`` (a ``DPoP`` or refresh token is no bearer
        access token)."""
        if data.get("active") is not True:
            raise InvalidTokenError(TokenFault.INACTIVE)
        token_type = data.get("token_type")
        if token_type is not None and (
            not isinstance(token_type, str) or token_type.lower() not in ("bearer", "access_token")
        ):
            raise InvalidTokenError(TokenFault.TYPE)
        # RFC 7662 makes iss optional; the issuer's own endpoint answered.
        claims = {"iss": self.issuer, **data}
        return claims_to_token(
            claims,
            issuer=self.issuer,
            audience=self.audience,
            now=self.clock(),
            leeway=self.leeway,
            need_iat=False,
        )


class Introspector(_IntrospectorBase):
    """RFC 7662 introspection over ``httpx.Client``."""

    def __init__(self, *, http: httpx.Client, **settings: Any) -> None:
        super().__init__(**settings)
        self._http = http

    def introspect(self, token: str) -> AccessToken:
        """The active token's claims, or :class:`InvalidTokenError`."""
        request = self._request(token)
        # Asked on every API request: the connection is kept for the next one.
        answer = _get(
            self._http, request, "introspection", MAX_INTROSPECTION_BYTES, keep_alive=True
        )
        return self._judge(answer)


class AsyncIntrospector(_IntrospectorBase):
    """RFC 7662 introspection over ``httpx.AsyncClient``."""

    def __init__(self, *, http: httpx.AsyncClient, **settings: Any) -> None:
        super().__init__(**settings)
        self._http = http

    async def introspect(self, token: str) -> AccessToken:
        request = self._request(token)
        data = await _aget(self._http, request, "introspection", MAX_INTROSPECTION_BYTES)
        return self._judge(data)
