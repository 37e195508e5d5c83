"""Validate an ID token: pure, no I/O, shared by the sync and the async client.

The signature is checked with joserfc (authlib's JOSE implementation) against the
provider's published keys; the claims (OpenID Connect Core 1.0, 3.1.3.7) are checked
here, each failure naming the one check that failed.
"""

from __future__ import annotations

import hmac
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeGuard

from joserfc import jws
from joserfc.jwk import Key

from ....strict_json import strict_json_object

__all__ = ["IDTokenClaims", "TokenFault", "TokenRejected", "verify_id_token"]

_KEY_TYPES = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}
_MAX_TOKEN_LENGTH = 64 * 1024


class TokenFault(StrEnum):
    """Which check an ID token failed."""

    MALFORMED = "malformed"
    ALGORITHM = "alg"
    UNKNOWN_KEY = "unknown_key"
    SIGNATURE = "signature"
    ISSUER = "iss"
    AUDIENCE = "aud"
    AUTHORIZED_PARTY = "azp"
    EXPIRED = "exp"
    ISSUED_AT = "iat"
    NOT_BEFORE = "nbf"
    NONCE = "nonce"


@dataclass(frozen=True, slots=True)
class TokenRejected:
    fault: TokenFault


@dataclass(frozen=True, slots=True)
class IDTokenClaims:
    """The claims of a token whose signature, issuer, audience, lifetime and nonce held.

    ``auth_time`` is ``None`` when the provider left it out; it is never replaced by
    ``iat``, which only says when the token was minted.
    """

    issuer: str
    subject: str
    issued_at: float
    expires_at: float
    auth_time: float | None
    acr: str | None = None
    amr: tuple[str, ...] = ()


#: 9999-12-31T23:59:59Z: the last NumericDate a claim may carry.
_MAX_DATE = 253_402_300_799.0


def _number(value: object) -> float | None:
    """A NumericDate (RFC 7519 section 2): a finite JSON number from 1970 to 9999 (a
    NaN ``exp`` would never expire; a huge integer would overflow ``float``)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, int) and not 0 <= value <= _MAX_DATE:
        return None
    number = float(value)
    return number if 0.0 <= number <= _MAX_DATE else None  # NaN fails both


def _key_type(alg: str) -> str | None:
    return "OKP" if alg in ("EdDSA", "Ed25519") else _KEY_TYPES.get(alg[:2])


def _candidates(keys: Sequence[Key], alg: str, kid: object) -> list[Key]:
    """Signing keys that could have made this signature: same ``kid`` when the token names
    one, a matching key type, no ``use`` other than ``sig``, no ``alg`` other than this."""
    kty = _key_type(alg)
    found = []
    for key in keys:
        if kid is not None and key.kid != kid:
            continue
        if key.key_type != kty or key.get("use") not in (None, "sig"):
            continue
        if key.alg not in (None, alg):
            continue
        found.append(key)
    return found


def _verifies(compact: jws.CompactSignature, key: Key, alg: str) -> bool:
    """Whether ``key`` made the signature; a key the JOSE library cannot verify with
    (whatever it raises) verified nothing."""
    try:
        return bool(jws.validate_compact(compact, key, algorithms=[alg]))
    except Exception:
        return False


def _signed_payload(
    token: str, keys: Sequence[Key], algorithms: Collection[str]
) -> dict[str, Any] | TokenRejected:
    if not isinstance(token, str) or not token or len(token) > _MAX_TOKEN_LENGTH:
        return TokenRejected(TokenFault.MALFORMED)
    try:
        compact = jws.extract_compact(token.encode("ascii"))
        header = compact.headers()
    except Exception:  # not a JWS (ValueError, JoseError), or too deeply nested to read
        return TokenRejected(TokenFault.MALFORMED)
    alg, kid = header.get("alg"), header.get("kid")
    if "crit" in header or "b64" in header or (kid is not None and not isinstance(kid, str)):
        return TokenRejected(TokenFault.MALFORMED)
    if not isinstance(alg, str) or alg not in algorithms:
        return TokenRejected(TokenFault.ALGORITHM)
    candidates = _candidates(keys, alg, kid)
    if not candidates:
        return TokenRejected(TokenFault.UNKNOWN_KEY)
    if not any(_verifies(compact, key, alg) for key in candidates):
        return TokenRejected(TokenFault.SIGNATURE)
    try:
        # RFC 8259 JSON: nested too deep to read (RecursionError), a member name twice,
        # NaN: all MALFORMED, as for access tokens (never an exception)
        return strict_json_object(compact.payload)
    except ValueError:  # NotStrictJSONError
        return TokenRejected(TokenFault.MALFORMED)


def _text(value: object) -> TypeGuard[str]:
    """A string that is text: JSON's ``\\ud800`` escapes make lone surrogates, which
    raise wherever the value is encoded (a comparison of bytes, a log line, a database)."""
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _audience_fault(payload: Mapping[str, Any], client_id: str) -> TokenFault | None:
    """The client must be the one audience (no other party is trusted); ``azp``, when
    present, must name the client too."""
    aud = payload.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud
    if not isinstance(audiences, list) or audiences != [client_id]:
        return TokenFault.AUDIENCE
    if "azp" in payload and payload["azp"] != client_id:
        return TokenFault.AUTHORIZED_PARTY
    return None


def verify_id_token(
    token: str,
    keys: Sequence[Key],
    *,
    issuer: str,
    client_id: str,
    nonce: str,
    now: float,
    max_skew: float,
    algorithms: Collection[str],
) -> IDTokenClaims | TokenRejected:
    """Check ``token`` completely, or say which check failed.

    ``UNKNOWN_KEY`` means no published key matches: the caller may refresh the keys once
    and try again (the provider may have rotated them).
    """
    payload = _signed_payload(token, keys, algorithms)
    if isinstance(payload, TokenRejected):
        return payload
    iss, sub = payload.get("iss"), payload.get("sub")
    if not isinstance(sub, str) or not sub or not isinstance(iss, str):
        return TokenRejected(TokenFault.MALFORMED)
    if iss != issuer:
        return TokenRejected(TokenFault.ISSUER)
    audience_fault = _audience_fault(payload, client_id)
    if audience_fault is not None:
        return TokenRejected(audience_fault)
    exp, iat = _number(payload.get("exp")), _number(payload.get("iat"))
    if exp is None or iat is None:
        return TokenRejected(TokenFault.MALFORMED)
    if now >= exp + max_skew:
        return TokenRejected(TokenFault.EXPIRED)
    if iat > now + max_skew:
        return TokenRejected(TokenFault.ISSUED_AT)
    if "nbf" in payload:
        nbf = _number(payload["nbf"])
        if nbf is None or nbf > now + max_skew:
            return TokenRejected(TokenFault.NOT_BEFORE)
    claimed_nonce = payload.get("nonce")
    # surrogatepass: any str encodes, so neither a signed lone surrogate nor a stored
    # nonce can make the comparison raise; a nonce that is no text matches nothing
    if not _text(claimed_nonce) or not hmac.compare_digest(
        claimed_nonce.encode("utf-8", "surrogatepass"), nonce.encode("utf-8", "surrogatepass")
    ):
        return TokenRejected(TokenFault.NONCE)
    auth_time = None
    if "auth_time" in payload:
        auth_time = _number(payload["auth_time"])
        if auth_time is None:
            return TokenRejected(TokenFault.MALFORMED)
    acr, amr = payload.get("acr"), payload.get("amr", [])
    # acr and amr reach the outcome, and the app's logs and database: text only
    if (acr is not None and not _text(acr)) or not isinstance(amr, list):
        return TokenRejected(TokenFault.MALFORMED)
    return IDTokenClaims(
        issuer=iss,
        subject=sub,
        issued_at=iat,
        expires_at=exp,
        auth_time=auth_time,
        acr=acr,
        amr=tuple(m for m in amr if _text(m)),
    )
