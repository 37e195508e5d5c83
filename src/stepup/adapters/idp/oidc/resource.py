"""The resource server's I/O, over httpx: the issuer's JWKS and RFC 7662 introspection.

:func:`http_jwks_fetcher` / :func:`async_http_jwks_fetcher` make the ``fetch_jwks`` an
:class:`~stepup.adapters.idp.oidc.access_token.AccessTokenValidator` needs.
:class:`Introspector` / :class:`AsyncIntrospector` validate opaque access tokens by
asking the issuer (RFC 7662): ``active: false`` is a refusal, and the answer's claims
are checked like a JWT's (issuer, audience, lifetime). Any network or protocol failure
is :class:`~stepup.tokens.TokenUnavailableError` (the request is refused, 503); error
messages name the error type only, never the token or the client secret.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

import httpx

from ....clock import Clock, system_clock
from ....errors import ConfigurationError
from ....tokens import AccessToken, InvalidTokenError, TokenFault, TokenUnavailableError
from .access_token import claims_to_token

__all__ = [
    "AsyncIntrospector",
    "Introspector",
    "async_http_jwks_fetcher",
    "http_jwks_fetcher",
]

_TIMEOUT: Final = httpx.Timeout(10.0)
_MAX_TOKEN_LENGTH: Final = 16 * 1024


def _document(response: httpx.Response, purpose: str) -> Mapping[str, Any]:
    if response.status_code != 200:
        raise TokenUnavailableError(f"{purpose}: HTTP {response.status_code}")
    try:
        data = response.json()
    except ValueError:
        raise TokenUnavailableError(f"{purpose}: not JSON") from None
    if not isinstance(data, dict):
        raise TokenUnavailableError(f"{purpose}: not a JSON object")
    return data


def http_jwks_fetcher(jwks_uri: str, http: httpx.Client) -> Callable[[], Mapping[str, Any]]:
    """``fetch_jwks`` for a validator: GET ``jwks_uri`` with ``http``."""

    def fetch() -> Mapping[str, Any]:
        try:
            response = http.get(jwks_uri, timeout=_TIMEOUT, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise TokenUnavailableError(f"jwks: {type(exc).__name__}") from None
        return _document(response, "jwks")

    return fetch


def async_http_jwks_fetcher(
    jwks_uri: str, http: httpx.AsyncClient
) -> Callable[[], Awaitable[Mapping[str, Any]]]:
    """``fetch_jwks`` for :meth:`AccessTokenValidator.avalidate`, over ``httpx.AsyncClient``."""

    async def fetch() -> Mapping[str, Any]:
        try:
            response = await http.get(
                jwks_uri, timeout=_TIMEOUT, headers={"Accept": "application/json"}
            )
        except httpx.HTTPError as exc:
            raise TokenUnavailableError(f"jwks: {type(exc).__name__}") from None
        return _document(response, "jwks")

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
    ) -> None:
        """The resource server authenticates to ``endpoint`` with HTTP Basic
        (``client_id``/``client_secret``). ``issuer`` and ``audience`` are checked on
        the answer as on a JWT access token."""
        for name, value in (
            ("endpoint", endpoint),
            ("client_id", client_id),
            ("client_secret", client_secret),
            ("issuer", issuer),
            ("audience", audience),
        ):
            if not isinstance(value, str) or not value:
                raise ConfigurationError(f"an introspector needs {name}")
        if not endpoint.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise ConfigurationError("the introspection endpoint must be https (or loopback)")
        if isinstance(leeway, bool) or not 0 <= leeway <= 300:
            raise ConfigurationError("leeway must be between 0 and 300 seconds")
        self.endpoint = endpoint
        self.issuer = issuer
        self.audience = audience
        self.clock = clock
        self.leeway = float(leeway)
        self._auth = httpx.BasicAuth(client_id, client_secret)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(endpoint={self.endpoint!r}, audience={self.audience!r})"

    def _request(self, token: str) -> dict[str, Any]:
        if not isinstance(token, str) or not token or len(token) > _MAX_TOKEN_LENGTH:
            raise InvalidTokenError(TokenFault.MALFORMED)
        return {
            "url": self.endpoint,
            "data": {"token": token, "token_type_hint": "access_token"},
            "auth": self._auth,
            "timeout": _TIMEOUT,
            "headers": {"Accept": "application/json"},
        }

    def _judge(self, response: httpx.Response) -> AccessToken:
        data = _document(response, "introspection")
        if data.get("active") is not True:
            raise InvalidTokenError(TokenFault.INACTIVE)
        token_type = data.get("token_type")
        if token_type is not None and str(token_type).lower() not in ("bearer", "access_token"):
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
        try:
            response = self._http.post(**request)
        except httpx.HTTPError as exc:
            raise TokenUnavailableError(f"introspection: {type(exc).__name__}") from None
        return self._judge(response)


class AsyncIntrospector(_IntrospectorBase):
    """RFC 7662 introspection over ``httpx.AsyncClient``."""

    def __init__(self, *, http: httpx.AsyncClient, **settings: Any) -> None:
        super().__init__(**settings)
        self._http = http

    async def introspect(self, token: str) -> AccessToken:
        request = self._request(token)
        try:
            response = await self._http.post(**request)
        except httpx.HTTPError as exc:
            raise TokenUnavailableError(f"introspection: {type(exc).__name__}") from None
        return self._judge(response)
