"""How to reach one OpenID provider: checked once, at start-up, never silently defaulted."""

from __future__ import annotations

import base64
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final
from urllib.parse import quote, urlsplit

from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry

from ....errors import ConfigurationError

__all__ = ["SAFE_ID_TOKEN_ALGORITHMS", "ClientAuth", "OIDCProviderConfig"]

#: Asymmetric signature algorithms only: never ``none``, never an HMAC keyed with the
#: client secret (a secret the app holds cannot prove what the provider said).
SAFE_ID_TOKEN_ALGORITHMS: Final = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
    "Ed25519",
)
_ASSERTION_ALGORITHMS: Final = frozenset(SAFE_ID_TOKEN_ALGORITHMS)


class ClientAuth(StrEnum):
    """How the client authenticates at the token endpoint."""

    CLIENT_SECRET_BASIC = "client_secret_basic"  # noqa: S105 (a method name, not a secret)
    CLIENT_SECRET_POST = "client_secret_post"  # noqa: S105
    PRIVATE_KEY_JWT = "private_key_jwt"
    NONE = "none"  # a public client: PKCE alone binds the code


#: host[:port], the host a name or a bracketed IPv6 address (credentials are refused).
_AUTHORITY: Final = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[^\s/?#@:\[\]\\]+)(?::[0-9]{1,5})?")


def basic_authorization(client_id: str, client_secret: str) -> str:
    """The ``Authorization`` header value of HTTP Basic client authentication: RFC 6749,
    2.3.1 form-encodes both parts before the Basic encoding (a client id that is a URL,
    a secret with ``:`` or ``%``), for the token endpoint and RFC 7662 introspection."""
    pair = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


def _is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def secure_url(value: object, name: str, *, query: bool) -> str:
    """``https://`` anywhere, ``http://`` only on a loopback host (development and tests)."""
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"OIDC {name} must be a non-empty URL")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (raises for a port that is not one)
    except ValueError:
        raise ConfigurationError(f"OIDC {name} must be a URL") from None
    secure = parts.scheme == "https" or (parts.scheme == "http" and _is_loopback(parts.hostname))
    if not secure or not parts.netloc:
        raise ConfigurationError(f"OIDC {name} must be an https URL (http only on loopback)")
    if parts.fragment or (parts.query and not query) or parts.username or parts.password:
        raise ConfigurationError(f"OIDC {name} must not carry a fragment, query or credentials")
    # The host must be all of the authority: ``urlsplit`` reads ``[::1].evil.example`` as
    # the host ``::1``, which another parser would send elsewhere.
    if _AUTHORITY.fullmatch(parts.netloc) is None:
        raise ConfigurationError(f"OIDC {name} must name its host plainly (host or host:port)")
    return value


def _words(values: object, name: str) -> tuple[str, ...]:
    if isinstance(values, str) or not isinstance(values, list | tuple | frozenset | set):
        raise ConfigurationError(f"OIDC {name} must be a list of strings")
    words = tuple(values)
    for word in words:
        if not isinstance(word, str) or not word or any(c.isspace() for c in word):
            raise ConfigurationError(f"OIDC {name} must be non-empty strings without spaces")
    return words


def _seconds(value: object, name: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ConfigurationError(f"OIDC {name} must be a number of seconds from {low} to {high}")
    return float(value)


@dataclass(frozen=True, slots=True)
class OIDCProviderConfig:
    """One OpenID provider and this app's client registration with it.

    ``issuer`` is compared exactly (it is the ``iss`` of every ID token and the identity
    the session signed in with); the endpoints come from its discovery document.
    Client authentication is ``client_secret_basic`` when ``client_secret`` is given,
    ``private_key_jwt`` when ``private_key`` (a private JWK, as a dict) is given, else
    ``none`` (a public client); set ``auth_method`` to choose explicitly.

    ``max_skew`` is the clock difference tolerated between this app and the provider,
    ``challenge_ttl`` how long the user may take at the provider. ``acr_values`` are
    requested (and then required) on every re-authentication unless a call names others.
    ``essential_acr`` also sends them as an essential ``acr`` claim (OpenID Connect Core
    5.5.1.1: ``claims={"id_token": {"acr": {"essential": true, "values": [...]}}}``), which
    providers that treat ``acr_values`` as a mere preference must honour or refuse.

    The provider's keys are trusted for ``jwks_max_key_age`` after they were fetched, then
    fetched again (a key the provider withdrew stops verifying); ``jwks_refresh_interval``
    is the least time between two fetches, whether they succeed or not.
    """

    issuer: str
    client_id: str
    redirect_uri: str
    client_secret: str | None = field(default=None, repr=False)
    private_key: Mapping[str, Any] | None = field(
        default=None, repr=False, compare=False, hash=False
    )
    private_key_alg: str = "RS256"
    auth_method: ClientAuth | None = None
    scopes: tuple[str, ...] = ("openid",)
    acr_values: tuple[str, ...] = ()
    max_skew: float = 60.0
    challenge_ttl: float = 600.0
    name: str = ""
    id_token_algorithms: tuple[str, ...] = SAFE_ID_TOKEN_ALGORITHMS
    metadata_ttl: float = 3600.0
    jwks_refresh_interval: float = 60.0
    jwks_max_key_age: float = 3600.0
    essential_acr: bool = False

    def __post_init__(self) -> None:
        secure_url(self.issuer, "issuer", query=False)
        secure_url(self.redirect_uri, "redirect_uri", query=True)
        if not isinstance(self.client_id, str) or not self.client_id:
            raise ConfigurationError("OIDC client_id must be a non-empty string")
        scopes = _words(self.scopes, "scopes")
        if "openid" not in scopes:
            raise ConfigurationError("OIDC scopes must include 'openid'")
        object.__setattr__(self, "scopes", scopes)
        object.__setattr__(self, "acr_values", _words(self.acr_values, "acr_values"))
        if not isinstance(self.essential_acr, bool):
            raise ConfigurationError("OIDC essential_acr must be True or False")
        algorithms = _words(self.id_token_algorithms, "id_token_algorithms")
        if not algorithms or not set(algorithms) <= set(SAFE_ID_TOKEN_ALGORITHMS):
            raise ConfigurationError(
                f"OIDC id_token_algorithms must be some of {list(SAFE_ID_TOKEN_ALGORITHMS)}"
            )
        object.__setattr__(self, "id_token_algorithms", algorithms)
        object.__setattr__(self, "max_skew", _seconds(self.max_skew, "max_skew", 0, 300))
        ttl = _seconds(self.challenge_ttl, "challenge_ttl", 30, 3600)
        object.__setattr__(self, "challenge_ttl", ttl)
        object.__setattr__(
            self, "metadata_ttl", _seconds(self.metadata_ttl, "metadata_ttl", 0, 86400)
        )
        interval = _seconds(self.jwks_refresh_interval, "jwks_refresh_interval", 0, 3600)
        object.__setattr__(self, "jwks_refresh_interval", interval)
        max_key_age = _seconds(self.jwks_max_key_age, "jwks_max_key_age", 1, 7 * 86400)
        if max_key_age < interval:
            raise ConfigurationError("OIDC jwks_max_key_age must be at least jwks_refresh_interval")
        object.__setattr__(self, "jwks_max_key_age", max_key_age)
        object.__setattr__(self, "auth_method", self._resolve_auth_method())

    def _resolve_auth_method(self) -> ClientAuth:
        secret, key = self.client_secret, self.private_key
        if secret is not None and (not isinstance(secret, str) or not secret):
            raise ConfigurationError("OIDC client_secret must be a non-empty string")
        if key is not None:
            self._check_private_key(key)
        method = self.auth_method
        if method is None:
            if secret is not None and key is not None:
                raise ConfigurationError(
                    "OIDC client_secret and private_key are both set: choose auth_method"
                )
            if key is not None:
                return ClientAuth.PRIVATE_KEY_JWT
            return ClientAuth.CLIENT_SECRET_BASIC if secret is not None else ClientAuth.NONE
        method = ClientAuth(method)
        if method in (ClientAuth.CLIENT_SECRET_BASIC, ClientAuth.CLIENT_SECRET_POST):
            if secret is None:
                raise ConfigurationError(f"OIDC auth_method {method} needs client_secret")
        elif method is ClientAuth.PRIVATE_KEY_JWT and key is None:
            raise ConfigurationError("OIDC auth_method private_key_jwt needs private_key")
        return method

    def _check_private_key(self, key: Mapping[str, Any]) -> None:
        if self.private_key_alg not in _ASSERTION_ALGORITHMS:
            raise ConfigurationError("OIDC private_key_alg must be an asymmetric JWS algorithm")
        try:
            imported = JWKRegistry.import_key(dict(key))
        except (JoseError, ValueError, TypeError) as exc:
            # The message names the error type only: a key parser may echo key material.
            raise ConfigurationError(
                f"OIDC private_key is not a usable JWK ({type(exc).__name__})"
            ) from None
        if not imported.is_private:
            raise ConfigurationError("OIDC private_key must be a private JWK")

    @property
    def discovery_url(self) -> str:
        """``<issuer>/.well-known/openid-configuration`` (OpenID Connect Discovery 1.0, 4)."""
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"

    @property
    def token_auth_method(self) -> ClientAuth:
        method = self.auth_method
        assert method is not None  # resolved in __post_init__
        return method
