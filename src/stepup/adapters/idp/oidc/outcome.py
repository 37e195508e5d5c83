"""What the OIDC adapter hands back, and the errors ``start`` raises."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from ....errors import PermissionDeniedError, StepupError

__all__ = ["OIDCOutcome", "OIDCReason", "ProviderUnavailableError", "WrongProviderError"]


class OIDCReason(StrEnum):
    """Why a callback was accepted or refused. Only ``OK`` grants anything."""

    OK = "ok"
    #: The ``state`` names no pending challenge of this session: unknown, already
    #: consumed (a replay), or another session's.
    UNKNOWN_STATE = "unknown_state"
    #: The challenge was this session's, but its time ran out.
    EXPIRED = "expired"
    #: The provider answered with an error (``login_required``, ``access_denied``...),
    #: or with neither an error nor a code.
    PROVIDER_ERROR = "provider_error"
    #: The token endpoint refused the code (``invalid_grant``...) or returned no ID token.
    TOKEN_ERROR = "token_error"  # noqa: S105 (a reason, not a token)
    #: The ID token (or the authorization response) failed a check: signature, ``alg``,
    #: ``iss``, ``aud``, ``azp``, ``exp``, ``iat``, ``nonce``; ``detail`` says which.
    INVALID_TOKEN = "invalid_token"  # noqa: S105
    #: The ID token carries no ``auth_time``: freshness cannot be proved.
    MISSING_AUTH_TIME = "missing_auth_time"
    #: ``auth_time`` is earlier than the challenge (minus the allowed skew): the provider
    #: answered from an older login instead of authenticating the user again.
    STALE_AUTH_TIME = "stale_auth_time"
    #: ``iss`` + ``sub`` are not the identity this session signed in with.
    WRONG_SUBJECT = "wrong_subject"
    #: An ``acr`` was requested and the token reports none of the requested values.
    ACR_NOT_MET = "acr_not_met"
    #: The challenge store or the provider could not answer (fail closed).
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True, slots=True)
class OIDCOutcome:
    """The verdict on one OIDC callback. Only ``reason == OK`` proves a fresh login.

    On success, ``auth_time`` is the provider's verified login time (Unix seconds), ``acr``
    and ``amr`` what the provider reported, and ``return_to`` / ``action`` what was stored
    with the challenge: record the grant with ``methods=[outcome.method]`` and
    ``authenticated_at=outcome.authenticated_at``. ``transaction`` is the transaction digest
    ``start`` was given for this very trip ("" for none): a transaction-bound grant
    confirms that one, never another trip's. ``resume`` likewise is the token of the
    suspended form ``start`` was given for this trip ("" for none): the integration
    sends that form again, never another tab's. ``otp_proved`` says that ``start`` was
    told a TOTP code was checked for this very trip (record ``otp`` with the grant
    only then, and only on ``OK``): an answer that matches no trip never carries it.
    ``otp_proved_at`` is when that code was checked (the trip's start, on the adapter's
    clock), and :attr:`authenticated_at` the older of it and ``auth_time``: the time to
    date the grant by, never fresher than either of its parts.
    ``return_to`` is also set on later failures, once the challenge is known to be this
    session's.

    ``error`` is the provider's OAuth error code (``PROVIDER_ERROR`` / ``TOKEN_ERROR``),
    ``detail`` a short non-secret word on which check failed. No field ever holds a code,
    a token, a nonce or a secret.
    """

    reason: OIDCReason
    auth_time: float | None = None
    acr: str | None = None
    amr: tuple[str, ...] = ()
    return_to: str | None = None
    action: str = ""
    transaction: str = ""
    resume: str = field(default="", repr=False)
    otp_proved: bool = False
    otp_proved_at: float | None = None
    error: str | None = None
    detail: str = ""
    method: str = field(default="oidc", init=False)

    @property
    def ok(self) -> bool:
        return self.reason is OIDCReason.OK

    @property
    def authenticated_at(self) -> float | None:
        """The time the grant is dated by: ``auth_time``, or when the trip's code was
        proved if that is older (the code is typed before the trip, which may take up to
        ``challenge_ttl``); ``None`` without a verified ``auth_time``."""
        if self.auth_time is None:
            return None
        if self.otp_proved_at is None:
            return self.auth_time
        return min(self.auth_time, self.otp_proved_at)

    def __bool__(self) -> bool:
        return self.ok


class WrongProviderError(PermissionDeniedError):
    """The session did not sign in through this OpenID provider, so it cannot re-authenticate
    there: a login at another provider would prove nothing about who signed in."""


class ProviderUnavailableError(StepupError):
    """The provider could not be reached, or its discovery document or keys were unusable.
    The message names what failed, never a URL's secrets, a code or a token.
    ``misconfigured``: waiting will not help, the configuration (this app's or the
    provider's) must change: a discovery document naming another issuer, or an endpoint
    that is missing or not https."""

    def __init__(self, message: str = "", *, misconfigured: bool = False) -> None:
        super().__init__(message)
        self.misconfigured = misconfigured
