"""Federated re-authentication over OpenID Connect.

A session that signed in through an OpenID provider proves it is still the same person
by logging in there again: :meth:`OIDCReauth.start` sends it with ``prompt=login`` and
``max_age=0``; :meth:`OIDCReauth.complete` accepts the answer only with a verified ID
token for the session's own ``iss`` + ``sub`` whose ``auth_time`` is not older than the
challenge. See ``docs/oidc.md``.
"""

from ...._extras import needs_extra

with needs_extra(__name__, "oidc"):
    from .access_token import SAFE_ACCESS_TOKEN_ALGORITHMS, AccessTokenValidator
    from .client import AsyncChallengeStore, AsyncOIDCReauth, OIDCReauth
    from .config import SAFE_ID_TOKEN_ALGORITHMS, ClientAuth, OIDCProviderConfig
    from .idtoken import IDTokenClaims, TokenFault, TokenRejected, verify_id_token
    from .outcome import OIDCOutcome, OIDCReason, ProviderUnavailableError, WrongProviderError
    from .resource import (
        AsyncIntrospector,
        Introspector,
        async_http_jwks_fetcher,
        http_jwks_fetcher,
    )

__all__ = [
    "SAFE_ACCESS_TOKEN_ALGORITHMS",
    "SAFE_ID_TOKEN_ALGORITHMS",
    "AccessTokenValidator",
    "AsyncChallengeStore",
    "AsyncIntrospector",
    "AsyncOIDCReauth",
    "ClientAuth",
    "IDTokenClaims",
    "Introspector",
    "OIDCOutcome",
    "OIDCProviderConfig",
    "OIDCReason",
    "OIDCReauth",
    "ProviderUnavailableError",
    "TokenFault",
    "TokenRejected",
    "WrongProviderError",
    "async_http_jwks_fetcher",
    "http_jwks_fetcher",
    "verify_id_token",
]
