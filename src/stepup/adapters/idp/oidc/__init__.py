"""Federated re-authentication over OpenID Connect.

A session that signed in through an OpenID provider proves it is still the same person
by logging in there again: :meth:`OIDCReauth.start` sends it with ``prompt=login`` and
``max_age=0``; :meth:`OIDCReauth.complete` accepts the answer only with a verified ID
token for the session's own ``iss`` + ``sub`` whose ``auth_time`` is not older than the
challenge. See ``docs/oidc.md``.
"""

from .client import AsyncChallengeStore, AsyncOIDCReauth, OIDCReauth
from .config import SAFE_ID_TOKEN_ALGORITHMS, ClientAuth, OIDCProviderConfig
from .idtoken import IDTokenClaims, TokenFault, TokenRejected, verify_id_token
from .outcome import OIDCOutcome, OIDCReason, ProviderUnavailableError, WrongProviderError

__all__ = [
    "SAFE_ID_TOKEN_ALGORITHMS",
    "AsyncChallengeStore",
    "AsyncOIDCReauth",
    "ClientAuth",
    "IDTokenClaims",
    "OIDCOutcome",
    "OIDCProviderConfig",
    "OIDCReason",
    "OIDCReauth",
    "ProviderUnavailableError",
    "TokenFault",
    "TokenRejected",
    "WrongProviderError",
    "verify_id_token",
]
