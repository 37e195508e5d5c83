"""The resource server's I/O, over httpx: the issuer's JWKS and RFC 7662 introspection.

:func:`http_jwks_fetcher` / :func:`async_http_jwks_fetcher` make the ``fetch_jwks`` an
:class:`~stepup.adapters.idp.oidc.access_token.AccessTokenValidator` needs.
:class:`Introspector` / :class:`AsyncIntrospector` validate opaque access tokens by
asking the issuer (RFC 7662): ``active: false`` is a refusal, and the answer's claims
are checked like a JWT's (issuer, audience, lifetime). Any network or protocol failure
is :class:`~stepup.tokens.TokenUnavailableError` (the request is refused, 503); error
messages name the error type only, never the token or the client secret. Answers are
read up to a bound (256 KiB for a JWKS, 64 KiB for introspection) and must be one JSON
object naming each member once. Nothing is cached: every request asks, so a revoked
token is refused at once.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Awaitable, Callable, Mapping
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
#: The content codings asked for, and decoded by :class:`BoundedBody` itself (never by
#: httpx, which inflates a whole network read at once: 64 KiB of gzip can be 64 MiB).
ACCEPT_ENCODING: Final = {"Accept-Encoding": "gzip, deflate"}
#: How long a whole answer may take to arrive once its headers have: httpx's timeout
#: bounds each read, not their sum, so a body sent a byte at a time just inside it would
#: hold the request (and a sync worker) for as long as the sender likes.
MAX_BODY_SECONDS: Final = 20.0
#: The clock of that bound: the machine's, not the decisions' injected one (a timeout).
_monotonic = time.monotonic
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


class BoundedBody:
    """An answer's body, collected raw chunk by raw chunk (``iter_raw``) up to ``limit``
    bytes. The one place the bound is checked, for the sync and the async reader alike,
    and for the resource server's fetches here as for the re-authentication client's
    (:mod:`.client`): a declared length over it is refused before anything is read, and
    so is the chunk that takes the body over it, or that arrives more than
    :data:`MAX_BODY_SECONDS` after the headers (a length the answer does not declare,
    or declares falsely). A gzip or deflate body is inflated here, never more than one
    byte past the bound, so a small compressed answer cannot grow into a large one in
    memory; another coding is refused. ``refuse`` is the error raised
    (:class:`~stepup.tokens.TokenUnavailableError` unless told)."""

    __slots__ = ("_body", "_deadline", "_inflate", "_limit", "_purpose", "_refuse", "_status")

    def __init__(
        self,
        response: httpx.Response,
        limit: int,
        purpose: str,
        *,
        refuse: type[StepupError] = TokenUnavailableError,
    ) -> None:
        self._limit, self._purpose, self._status = limit, purpose, response.status_code
        self._refuse = refuse
        self._deadline = _monotonic() + MAX_BODY_SECONDS
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise refuse(f"{purpose}: answer too large")
        coding = response.headers.get("Content-Encoding", "").strip().lower()
        if coding not in _WBITS:
            raise refuse(f"{purpose}: answer in an unknown content coding")
        wbits = _WBITS[coding]
        self._inflate = None if wbits is None else zlib.decompressobj(wbits)
        self._body = bytearray()

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
            raise self._refuse(f"{self._purpose}: answer too slow")

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


def read_within(response: httpx.Response, body: BoundedBody) -> None:
    """Read ``response`` into ``body`` raw chunk by raw chunk, stopping past its bound."""
    if response.is_stream_consumed:  # already in memory: nothing more to read
        body.add_read(response.content)
        return
    for chunk in response.iter_raw():
        body.add(chunk)


async def aread_within(response: httpx.Response, body: BoundedBody) -> None:
    """:func:`read_within` for ``httpx.AsyncClient``."""
    if response.is_stream_consumed:
        body.add_read(response.content)
        return
    async for chunk in response.aiter_raw():
        body.add(chunk)


def _get(
    http: httpx.Client, request: dict[str, Any], purpose: str, limit: int
) -> Mapping[str, Any]:
    """Send ``request`` and read at most ``limit`` bytes of the answer."""
    try:
        with http.stream(**request) as response:
            body = BoundedBody(response, limit, purpose)
            read_within(response, body)
    except HTTP_FAILURES as exc:
        raise TokenUnavailableError(f"{purpose}: {type(exc).__name__}") from None
    return body.document()


async def _aget(
    http: httpx.AsyncClient, request: dict[str, Any], purpose: str, limit: int
) -> Mapping[str, Any]:
    """:func:`_get` over ``httpx.AsyncClient``."""
    try:
        async with http.stream(**request) as response:
            body = BoundedBody(response, limit, purpose)
            await aread_within(response, body)
    except HTTP_FAILURES as exc:
        raise TokenUnavailableError(f"{purpose}: {type(exc).__name__}") from None
    return body.document()


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
        the answer as on a JWT access token. ``timeout``: seconds for one request (a
        slower endpoint makes the request unavailable, never allowed)."""
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
        return self._judge(_get(self._http, request, "introspection", MAX_INTROSPECTION_BYTES))


class AsyncIntrospector(_IntrospectorBase):
    """RFC 7662 introspection over ``httpx.AsyncClient``."""

    def __init__(self, *, http: httpx.AsyncClient, **settings: Any) -> None:
        super().__init__(**settings)
        self._http = http

    async def introspect(self, token: str) -> AccessToken:
        request = self._request(token)
        data = await _aget(self._http, request, "introspection", MAX_INTROSPECTION_BYTES)
        return self._judge(data)
