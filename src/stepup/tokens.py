"""Bearer access tokens on the resource-server side (RFC 9068, RFC 7662, RFC 9470).

What a validated access token says about the person behind it (:class:`AccessToken`),
and the typed ways a token is refused. Validation itself lives in the OIDC adapter
(:mod:`stepup.adapters.idp.oidc.access_token`, which needs the JOSE library); the
decision is :meth:`stepup.reauth.Reauth.check_token`: the same policy, lifetimes and
:data:`~stepup.reauth.Decision` as for sessions. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .errors import StepupError, StoreUnavailableError

__all__ = ["AccessToken", "InvalidTokenError", "TokenFault", "TokenUnavailableError"]


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
