"""Bearer access tokens on the resource-server side (RFC 9068, RFC 7662, RFC 9470).

What a validated access token says about the person behind it (:class:`AccessToken`),
and the typed ways a token is refused. Validation itself lives in the OIDC adapter
(:mod:`stepup.adapters.idp.oidc.access_token`, which needs the JOSE library); the
decision is :meth:`stepup.reauth.Reauth.check_token`: the same policy, lifetimes and
:data:`~stepup.reauth.Decision` as for sessions. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, TypeGuard

from .errors import StepupError, StoreUnavailableError

__all__ = [
    "AccessToken",
    "InvalidTokenError",
    "TokenFault",
    "TokenUnavailableError",
    "is_scope_token",
    "scope_tokens",
]

#: ``scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`` (RFC 6749 section 3.3): printable
#: ASCII but space, ``"`` and ``\``. The one definition, for the scopes a token grants
#: and the scopes an endpoint requires alike.
_SCOPE_TOKEN: Final = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


def is_scope_token(value: object) -> TypeGuard[str]:
    """Whether ``value`` is one RFC 6749 scope-token."""
    return isinstance(value, str) and _SCOPE_TOKEN.fullmatch(value) is not None


def scope_tokens(scope: str) -> tuple[str, ...] | None:
    """The scope-tokens of a ``scope`` value, or ``None`` when it is not
    ``scope-token *( SP scope-token )`` (RFC 6749 section 3.3, RFC 9068 section 2.2.3,
    RFC 7662 section 2.2). Split on a single space only: ``str.split()`` would also
    split on a tab, a no-break space or a unit separator, and so turn the one (odd)
    scope ``"read\\u00a0write"`` into ``write``. The empty string grants nothing: ``()``."""
    if scope == "":
        return ()
    tokens = tuple(scope.split(" "))
    return tokens if all(map(is_scope_token, tokens)) else None


class TokenFault(StrEnum):
    """Which check an access token failed (each is RFC 6750 ``invalid_token``)."""

    MALFORMED = "malformed"
    TYPE = "typ"  # the JWT header's typ is not at+jwt (RFC 9068 section 4)
    ALGORITHM = "alg"  # not on the allow-list (none and HMAC never are)
    UNKNOWN_KEY = "unknown_key"  # no published key, even after one refetch
    SIGNATURE = "signature"
    ISSUER = "iss"
    AUDIENCE = "aud"
    EXPIRED = "exp"
    ISSUED_AT = "iat"
    NOT_BEFORE = "nbf"
    INACTIVE = "inactive"  # introspection said active: false (RFC 7662)
    #: bound to a key or certificate (``cnf``: DPoP, mTLS), which a bearer header
    #: cannot prove (RFC 9449 section 7.1, RFC 8705 section 3)
    SENDER_CONSTRAINED = "cnf"


class InvalidTokenError(StepupError):
    """The bearer token is not acceptable: answered with ``401`` and
    ``WWW-Authenticate: Bearer error="invalid_token"`` (RFC 6750 section 3.1). The message
    names the failed check, never the token."""

    def __init__(self, fault: TokenFault) -> None:
        super().__init__(f"invalid access token ({fault.value})")
        self.fault = fault


class TokenUnavailableError(StoreUnavailableError):
    """The issuer's keys or its introspection endpoint could not be read: the request is
    refused (fail closed) with ``503``, as for an unavailable store."""


@dataclass(frozen=True, slots=True)
class AccessToken:
    """The claims of a token whose signature (or introspection), type, issuer, audience
    and lifetime held. ``auth_time`` is ``None`` when the token does not say when the
    user authenticated: then no sensitive action is allowed with it."""

    issuer: str
    subject: str
    audience: tuple[str, ...]
    expires_at: float
    issued_at: float | None = None
    auth_time: float | None = None
    acr: str | None = None
    amr: tuple[str, ...] = ()
    client_id: str = ""
    scope: tuple[str, ...] = ()
    token_id: str = ""
