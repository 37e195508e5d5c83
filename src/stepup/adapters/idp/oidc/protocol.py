"""The provider's messages, built and read without I/O: discovery, keys, the authorization
request and the token request. The sync and async clients only send what this builds."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from joserfc import jwt
from joserfc.jwk import JWKRegistry, Key

from .config import ClientAuth, OIDCProviderConfig, basic_authorization, secure_url
from .outcome import ProviderUnavailableError

__all__ = [
    "HttpRequest",
    "HttpResponse",
    "ProviderMetadata",
    "TokenReply",
    "authorization_url",
    "discovery_request",
    "jwks_request",
    "new_secret",
    "oauth_error_code",
    "parse_discovery",
    "parse_jwks",
    "parse_token_reply",
    "s256",
    "token_request",
]

#: The most a provider's answer (discovery, keys, token) may weigh, decoded: the clients
#: stop reading past it (see :mod:`.client`), and nothing larger is parsed here.
MAX_PROVIDER_BYTES: Final = 512 * 1024
_ERROR_CODE: Final = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_JSON: Final = {"Accept": "application/json"}
_KEY_TYPES: Final = frozenset({"RSA", "EC", "OKP"})
_EDWARDS: Final = frozenset({"Ed25519", "Ed448"})
#: RSA keys shorter than this sign nothing here (NIST SP 800-131A; as for access tokens).
_MIN_RSA_BITS: Final = 2048
#: Private and symmetric members, never imported from a published set.
_PRIVATE: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "k", "oth"})


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """One request to the provider. ``purpose`` names it in errors; the form and headers
    (code, verifier, client credentials) never appear in a repr."""

    purpose: str
    method: str
    url: str
    form: Mapping[str, str] | None = field(default=None, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    body: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    """The parts of the discovery document stepup uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    #: RFC 9207: the provider puts ``iss`` in every authorization response.
    iss_parameter_supported: bool = False


@dataclass(frozen=True, slots=True)
class TokenReply:
    """The token endpoint's answer: an ID token, an OAuth error code, or neither
    (``unavailable``: a server error or an unreadable answer, ``cause`` saying which)."""

    id_token: str | None = field(default=None, repr=False)
    error: str | None = None
    unavailable: bool = False
    cause: str = ""


def new_secret() -> str:
    """256 random bits, URL-safe: for ``state``, ``nonce`` and the PKCE verifier."""
    return secrets.token_urlsafe(32)


def s256(verifier: str) -> str:
    """The PKCE ``S256`` code challenge of ``verifier`` (RFC 7636, 4.2): BASE64URL(SHA256)
    without padding. Written here so the ``oidc`` extra needs no OAuth client library."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def oauth_error_code(value: object) -> str:
    """A provider's ``error`` value, kept only if it looks like an OAuth error code: it is
    attacker-reachable text that ends up in logs."""
    if isinstance(value, str) and _ERROR_CODE.fullmatch(value):
        return value
    return "invalid_error_code"


def _json_object(response: HttpResponse, purpose: str) -> dict[str, Any]:
    if response.status != 200:
        raise ProviderUnavailableError(f"{purpose}: the provider answered HTTP {response.status}")
    if len(response.body) > MAX_PROVIDER_BYTES:
        raise ProviderUnavailableError(f"{purpose}: the answer is too large")
    try:
        data = json.loads(response.body)
    except Exception:  # not JSON (ValueError), or nested too deep for it (RecursionError)
        raise ProviderUnavailableError(f"{purpose}: the answer is not JSON") from None
    if not isinstance(data, dict):
        raise ProviderUnavailableError(f"{purpose}: the answer is not a JSON object")
    return data


def discovery_request(config: OIDCProviderConfig) -> HttpRequest:
    return HttpRequest("discovery", "GET", config.discovery_url, headers=_JSON)


def parse_discovery(config: OIDCProviderConfig, response: HttpResponse) -> ProviderMetadata:
    """Read the discovery document; its ``issuer`` must be exactly the configured one
    (Discovery 1.0, 4.3), and every endpoint https (or loopback http)."""
    data = _json_object(response, "discovery")
    if data.get("issuer") != config.issuer:
        raise ProviderUnavailableError(
            "discovery: the document's issuer is not the configured one", misconfigured=True
        )
    endpoints = {}
    # An https issuer's endpoints are https too: loopback http is for a provider that
    # runs on this machine (development, tests), never a way for a document served over
    # https to send the code, the verifier and the client's secret in clear to whatever
    # local process holds a port.
    https_only = config.issuer.startswith("https://")
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        try:
            endpoints[name] = secure_url(data.get(name), name, query=True)
            if https_only and not endpoints[name].lower().startswith("https://"):
                raise ValueError(name)
        except ValueError:
            raise ProviderUnavailableError(
                f"discovery: {name} is missing or insecure", misconfigured=True
            ) from None
    return ProviderMetadata(
        issuer=config.issuer,
        iss_parameter_supported=data.get("authorization_response_iss_parameter_supported") is True,
        **endpoints,
    )


def jwks_request(metadata: ProviderMetadata) -> HttpRequest:
    return HttpRequest("jwks", "GET", metadata.jwks_uri, headers=_JSON)


def _signing_key(entry: object) -> Key | None:
    """One JWKS entry as a public signing key, or None. An entry that cannot be read
    for any reason is left out: the JOSE library raises ``KeyError`` for an unknown
    curve (joserfc 1.8, ``"crv": ""``), and may raise anything else for members of the
    wrong type, so every exception here means "not a key"; the set's other keys still
    count. Only public members are imported; symmetric keys, encryption keys, keys whose
    ``key_ops`` do not allow ``verify``, RSA keys under 2048 bits and key-agreement
    curves (X25519, X448) are no signing keys."""
    try:
        if not isinstance(entry, dict) or entry.get("use") not in (None, "sig"):
            return None
        if entry.get("kty") not in _KEY_TYPES:
            return None
        ops = entry.get("key_ops")
        if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
            return None
        public = {k: v for k, v in entry.items() if k not in _PRIVATE}
        key = JWKRegistry.import_key(public)
        if key.key_type == "OKP" and key.get("crv") not in _EDWARDS:
            return None
        if key.key_type == "RSA" and getattr(key.raw_value, "key_size", 0) < _MIN_RSA_BITS:
            return None
        return key if key.key_type in _KEY_TYPES else None
    except Exception:  # whatever it is, this entry is no key
        return None


def parse_jwks(response: HttpResponse) -> tuple[Key, ...]:
    """The provider's public signing keys, each entry read on its own: entries that
    cannot be read, or are no signing keys, are left out and the others still count.
    No ``keys`` list, or no usable key at all: :class:`ProviderUnavailableError` (a
    failed fetch, never an empty key set). Raises nothing else."""
    data = _json_object(response, "jwks")
    entries = data.get("keys")
    if not isinstance(entries, list):
        raise ProviderUnavailableError("jwks: no 'keys' list")
    keys = tuple(key for key in map(_signing_key, entries) if key is not None)
    if not keys:
        raise ProviderUnavailableError("jwks: no usable signing key")
    return keys


def authorization_url(
    config: OIDCProviderConfig,
    metadata: ProviderMetadata,
    *,
    state: str,
    nonce: str,
    verifier: str,
    acr_values: Sequence[str],
) -> str:
    """The authorization request that forces a fresh login: ``prompt=login`` and
    ``max_age=0`` (either alone is enough at a correct provider; both are sent so that
    one ignored parameter does not silently turn re-authentication into a no-op)."""
    params = {
        "response_type": "code",
        "client_id": config.client_id,
        "redirect_uri": config.redirect_uri,
        "scope": " ".join(config.scopes),
        "state": state,
        "nonce": nonce,
        "code_challenge": s256(verifier),
        "code_challenge_method": "S256",
        "prompt": "login",
        "max_age": "0",
    }
    if acr_values:
        params["acr_values"] = " ".join(acr_values)
        if config.essential_acr:
            wanted = {"acr": {"essential": True, "values": list(acr_values)}}
            params["claims"] = json.dumps({"id_token": wanted}, separators=(",", ":"))
    parts = urlsplit(metadata.authorization_endpoint)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in params]
    return urlunsplit(parts._replace(query=urlencode([*query, *params.items()])))


def _client_assertion(config: OIDCProviderConfig, now: float) -> str:
    """A ``private_key_jwt`` assertion (RFC 7523), audience the issuer identifier."""
    assert config.private_key is not None
    key = JWKRegistry.import_key(dict(config.private_key))
    header = {"alg": config.private_key_alg, "typ": "JWT"}
    if key.kid:
        header["kid"] = key.kid
    claims = {
        "iss": config.client_id,
        "sub": config.client_id,
        "aud": config.issuer,
        "jti": new_secret(),
        "iat": int(now),
        "exp": int(now) + 60,
    }
    return jwt.encode(header, claims, key, algorithms=[config.private_key_alg])


def token_request(
    config: OIDCProviderConfig,
    metadata: ProviderMetadata,
    *,
    code: str,
    verifier: str,
    now: float,
) -> HttpRequest:
    """Exchange ``code`` (with its PKCE verifier) for tokens, authenticating the client."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": config.redirect_uri,
        "code_verifier": verifier,
    }
    headers = dict(_JSON)
    method = config.token_auth_method
    if method is ClientAuth.CLIENT_SECRET_BASIC:
        assert config.client_secret is not None
        headers["Authorization"] = basic_authorization(config.client_id, config.client_secret)
    elif method is ClientAuth.CLIENT_SECRET_POST:
        assert config.client_secret is not None
        form |= {"client_id": config.client_id, "client_secret": config.client_secret}
    elif method is ClientAuth.PRIVATE_KEY_JWT:
        form |= {
            "client_id": config.client_id,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": _client_assertion(config, now),
        }
    else:
        form["client_id"] = config.client_id
    return HttpRequest("token", "POST", metadata.token_endpoint, form=form, headers=headers)


def parse_token_reply(response: HttpResponse) -> TokenReply:
    """A 4xx is the provider refusing (``invalid_grant``...); a 5xx or garbage is an outage."""
    if 400 <= response.status < 500:
        try:
            data = json.loads(response.body) if len(response.body) <= MAX_PROVIDER_BYTES else None
        except Exception:  # not JSON, or nested too deep for it (RecursionError)
            data = None
        error = data.get("error") if isinstance(data, dict) else None
        return TokenReply(error=oauth_error_code(error))
    try:
        data = _json_object(response, "token")
    except ProviderUnavailableError as exc:
        return TokenReply(unavailable=True, cause=str(exc))
    id_token = data.get("id_token")
    if not isinstance(id_token, str) or not id_token:
        return TokenReply(error="no_id_token")
    return TokenReply(id_token=id_token)
