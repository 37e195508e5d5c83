"""Validate JWT access tokens (RFC 9068) on the resource server: pure, no I/O.

:class:`AccessTokenValidator` checks the header ``typ`` (``at+jwt``), the algorithm
against an allow-list (``none`` and HMAC are never allowed: a resource server holds no
shared secret with the issuer), the signature against the issuer's published keys, the
issuer, the audience and the lifetime (``exp``, ``iat``, ``nbf`` with a small leeway, on
the injected clock). The keys come from an injected ``fetch_jwks`` (see
:func:`stepup.adapters.idp.oidc.http_jwks_fetcher`): they are cached, and a token signed
with an unknown ``kid`` triggers one refetch (the issuer may have rotated its keys), at
most once per ``refetch_interval`` so a stream of forged ``kid`` values cannot turn the
resource server into a load generator against the issuer.

Sync (:meth:`~AccessTokenValidator.validate`) and async
(:meth:`~AccessTokenValidator.avalidate`) share one flow (:mod:`stepup._flow`).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any, Final

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry, Key

from ...._flow import Flow, run, run_async
from ....clock import Clock, system_clock
from ....errors import ConfigurationError, StoreUnavailableError
from ....tokens import AccessToken, InvalidTokenError, TokenFault, TokenUnavailableError

__all__ = [
    "SAFE_ACCESS_TOKEN_ALGORITHMS",
    "AccessTokenValidator",
    "JwksFetcher",
    "claims_to_token",
    "parse_jwks_document",
]

#: Asymmetric signatures only.
SAFE_ACCESS_TOKEN_ALGORITHMS: Final = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
_TYPES: Final = frozenset({"at+jwt", "application/at+jwt"})
_KEY_TYPES: Final = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}
_MAX_TOKEN_LENGTH: Final = 16 * 1024
_PRIVATE: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "k"})

JwksFetcher = Callable[[], Mapping[str, Any] | Awaitable[Mapping[str, Any]]]


def parse_jwks_document(data: object) -> tuple[Key, ...]:
    """The public signing keys of a JWKS document; unreadable, encryption-only and
    symmetric keys are left out. No usable key: :class:`TokenUnavailableError`."""
    entries = data.get("keys") if isinstance(data, Mapping) else None
    if not isinstance(entries, list):
        raise TokenUnavailableError("jwks: no 'keys' list")
    keys = []
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("use") not in (None, "sig"):
            continue
        if entry.get("kty") == "oct":
            continue
        public = {k: v for k, v in entry.items() if k not in _PRIVATE}
        try:
            keys.append(JWKRegistry.import_key(public))
        except (JoseError, ValueError, TypeError):
            continue
    if not keys:
        raise TokenUnavailableError("jwks: no usable signing key")
    return tuple(keys)


def _key_type(alg: str) -> str | None:
    return "OKP" if alg == "EdDSA" else _KEY_TYPES.get(alg[:2])


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


class _Effects:
    """What the flow may ask for: the issuer's JWKS."""

    def __init__(self, fetch: JwksFetcher) -> None:
        self._fetch = fetch

    def fetch_jwks(self) -> object:
        return self._fetch()


class AccessTokenValidator:
    """Validate RFC 9068 JWT access tokens from one issuer for one resource (audience)."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        fetch_jwks: JwksFetcher,
        clock: Clock = system_clock,
        algorithms: Collection[str] = ("RS256", "PS256", "ES256", "EdDSA"),
        leeway: float = 30.0,
        refetch_interval: float = 60.0,
    ) -> None:
        """``issuer`` and ``audience`` must match exactly (``aud`` may be a list that
        contains ``audience``). ``leeway``: seconds of clock skew tolerated on ``exp``,
        ``iat`` and ``nbf`` (at most 300). Bad settings raise :class:`ConfigurationError`."""
        if not isinstance(issuer, str) or not issuer:
            raise ConfigurationError("an access token validator needs the issuer")
        if not isinstance(audience, str) or not audience:
            raise ConfigurationError(
                "an access token validator needs the audience (this resource's identifier)"
            )
        chosen = frozenset(algorithms)
        unsafe = chosen - SAFE_ACCESS_TOKEN_ALGORITHMS
        if not chosen or unsafe:
            raise ConfigurationError(
                f"access token algorithms must be some of {sorted(SAFE_ACCESS_TOKEN_ALGORITHMS)}"
                + (f", not {sorted(unsafe)}" if unsafe else "")
            )
        if isinstance(leeway, bool) or not 0 <= leeway <= 300:
            raise ConfigurationError("leeway must be between 0 and 300 seconds")
        if isinstance(refetch_interval, bool) or not 0 < refetch_interval <= 86400:
            raise ConfigurationError("refetch_interval must be positive and at most a day")
        if not callable(fetch_jwks):
            raise ConfigurationError("fetch_jwks must be callable")
        self.issuer = issuer
        self.audience = audience
        self.algorithms = chosen
        self.leeway = float(leeway)
        self.refetch_interval = float(refetch_interval)
        self.clock = clock
        self._effects = _Effects(fetch_jwks)
        self._keys: tuple[Key, ...] = ()
        # One registry per allowed algorithm, built once (joserfc builds one per call
        # otherwise): each accepts exactly its algorithm.
        self._registries = {alg: jws.JWSRegistry(algorithms=[alg]) for alg in chosen}
        self._fetched_at: float | None = None

    def __repr__(self) -> str:
        return f"AccessTokenValidator(issuer={self.issuer!r}, audience={self.audience!r})"

    def validate(self, token: str) -> AccessToken:
        """The token's claims, or :class:`InvalidTokenError` naming the failed check
        (:class:`TokenUnavailableError` when the keys cannot be read)."""
        return run(self._flow(token), self._effects)

    async def avalidate(self, token: str) -> AccessToken:
        """:meth:`validate` with an async (or sync) ``fetch_jwks``."""
        return await run_async(self._flow(token), self._effects)

    # the flow ------------------------------------------------------------------------

    def _refresh(self) -> Flow[bool]:
        """Fetch the keys unless fetched within ``refetch_interval``; True if fetched."""
        now = self.clock()
        if self._fetched_at is not None and 0 <= now - self._fetched_at < self.refetch_interval:
            return False
        self._fetched_at = now  # a failed fetch counts too: no retry storm
        try:
            document = yield ("fetch_jwks", ())
        except StoreUnavailableError as exc:
            raise TokenUnavailableError("jwks: the issuer's keys could not be fetched") from exc
        self._keys = parse_jwks_document(document)
        return True

    def _flow(self, token: str) -> Flow[AccessToken]:
        compact, header = self._parse(token)
        alg, kid = header["alg"], header.get("kid")
        if not self._keys:
            yield from self._refresh()
        candidates = self._candidates(alg, kid)
        if not candidates and (yield from self._refresh()):
            candidates = self._candidates(alg, kid)  # the issuer may have rotated its keys
        if not candidates:
            raise InvalidTokenError(TokenFault.UNKNOWN_KEY)
        registry = self._registries[alg]
        for key in candidates:
            try:
                if jws.validate_compact(compact, key, registry=registry):
                    break
            except (JoseError, ValueError, TypeError):
                continue
        else:
            raise InvalidTokenError(TokenFault.SIGNATURE)
        try:
            payload = json.loads(compact.payload)
        except (ValueError, UnicodeError):
            raise InvalidTokenError(TokenFault.MALFORMED) from None
        if not isinstance(payload, dict):
            raise InvalidTokenError(TokenFault.MALFORMED)
        return claims_to_token(
            payload,
            issuer=self.issuer,
            audience=self.audience,
            now=self.clock(),
            leeway=self.leeway,
            need_iat=True,
        )

    def _parse(self, token: str) -> tuple[Any, Mapping[str, Any]]:
        if not isinstance(token, str) or not token or len(token) > _MAX_TOKEN_LENGTH:
            raise InvalidTokenError(TokenFault.MALFORMED)
        try:
            compact = jws.extract_compact(token.encode("ascii"))
            header = compact.headers()
        except (JoseError, ValueError, TypeError, UnicodeError):
            raise InvalidTokenError(TokenFault.MALFORMED) from None
        alg, kid, typ = header.get("alg"), header.get("kid"), header.get("typ")
        if "crit" in header or "b64" in header or (kid is not None and not isinstance(kid, str)):
            raise InvalidTokenError(TokenFault.MALFORMED)
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise InvalidTokenError(TokenFault.ALGORITHM)
        if not isinstance(typ, str) or typ.lower() not in _TYPES:
            raise InvalidTokenError(TokenFault.TYPE)
        return compact, header

    def _candidates(self, alg: str, kid: object) -> list[Key]:
        """Keys that could have made this signature: the token's ``kid`` when it names
        one, the algorithm's key type, no other ``alg``."""
        kty = _key_type(alg)
        return [
            key
            for key in self._keys
            if (kid is None or key.kid == kid) and key.key_type == kty and key.alg in (None, alg)
        ]


def _strings(value: object) -> tuple[str, ...] | None:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


def claims_to_token(
    payload: Mapping[str, Any],
    *,
    issuer: str,
    audience: str,
    now: float,
    leeway: float,
    need_iat: bool,
) -> AccessToken:
    """Check the claims of a JWT access token or an introspection answer (RFC 9068
    section 4, RFC 7662 section 2.2) and read what a decision needs. Shared by both."""
    iss, sub = payload.get("iss"), payload.get("sub")
    if not isinstance(iss, str) or iss != issuer:
        raise InvalidTokenError(TokenFault.ISSUER)
    if not isinstance(sub, str) or not sub:
        raise InvalidTokenError(TokenFault.MALFORMED)
    audiences = _strings(payload.get("aud"))
    if audiences is None or audience not in audiences:
        raise InvalidTokenError(TokenFault.AUDIENCE)
    exp = _number(payload.get("exp"))
    if exp is None:
        raise InvalidTokenError(TokenFault.MALFORMED)
    if now >= exp + leeway:
        raise InvalidTokenError(TokenFault.EXPIRED)
    iat = _number(payload.get("iat")) if "iat" in payload else None
    if ("iat" in payload and iat is None) or (need_iat and iat is None):
        raise InvalidTokenError(TokenFault.MALFORMED)
    if iat is not None and iat > now + leeway:
        raise InvalidTokenError(TokenFault.ISSUED_AT)
    if "nbf" in payload:
        nbf = _number(payload["nbf"])
        if nbf is None or nbf > now + leeway:
            raise InvalidTokenError(TokenFault.NOT_BEFORE)
    auth_time = None
    if "auth_time" in payload:
        auth_time = _number(payload["auth_time"])
        if auth_time is None:
            raise InvalidTokenError(TokenFault.MALFORMED)
        if auth_time > now + leeway:  # an authentication in the future
            raise InvalidTokenError(TokenFault.ISSUED_AT)
    acr = payload.get("acr")
    amr = _strings(payload.get("amr", []))
    if (acr is not None and not isinstance(acr, str)) or amr is None:
        raise InvalidTokenError(TokenFault.MALFORMED)
    scope = payload.get("scope", "")
    client_id = payload.get("client_id", "")
    jti = payload.get("jti", "")
    return AccessToken(
        issuer=iss,
        subject=sub,
        audience=audiences,
        expires_at=exp,
        issued_at=iat,
        auth_time=auth_time,
        acr=acr,
        amr=amr,
        client_id=client_id if isinstance(client_id, str) else "",
        scope=tuple(scope.split()) if isinstance(scope, str) else (),
        token_id=jti if isinstance(jti, str) else "",
    )
