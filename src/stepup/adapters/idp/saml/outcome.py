"""What the SAML adapter hands back: a redirect to start, a typed outcome to finish."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from ....errors import PermissionDeniedError

__all__ = ["SAMLOutcome", "SAMLReason", "SAMLRedirect", "WrongIdentityProviderError"]


class SAMLReason(StrEnum):
    """Why a SAML response was accepted or refused. Only ``OK`` grants anything."""

    OK = "ok"
    #: Not a SAML ``Response`` this adapter can read (bad base64 or XML, a document type
    #: declaration, encrypted parts).
    MALFORMED = "malformed"
    #: The IdP answered with an error status (user cancelled, authentication failed...).
    IDP_ERROR = "idp_error"
    #: Neither the response nor the assertion carries a signature.
    UNSIGNED = "unsigned"
    #: A signature is there but does not verify with the IdP's key from its metadata
    #: (tampered content, another key, a weak algorithm).
    INVALID_SIGNATURE = "invalid_signature"
    #: ``InResponseTo`` names no pending request of this session (unknown, already
    #: consumed, another session's, or inconsistent within the response).
    UNKNOWN_REQUEST = "unknown_request"
    #: The request was known but its time ran out.
    EXPIRED = "expired"
    #: Destination, audience, validity window or subject confirmation do not hold.
    INVALID_CONDITIONS = "invalid_conditions"
    #: ``AuthnInstant`` is earlier than the request: the IdP did not authenticate anew.
    STALE_AUTHN_INSTANT = "stale_authn_instant"
    #: The issuer or ``NameID`` differ from the identity the session signed in with.
    WRONG_SUBJECT = "wrong_subject"
    #: An authentication context was requested and the IdP reported another one.
    AUTHN_CONTEXT_NOT_MET = "authn_context_not_met"
    #: The challenge store could not answer (fail closed).
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True, slots=True)
class SAMLOutcome:
    """The verdict on one SAML response. Only ``reason == OK`` proves a fresh login.

    On success ``authn_instant`` is the IdP's verified ``AuthnInstant`` (Unix time) and
    ``authn_context`` its ``AuthnContextClassRef``: record the grant with
    ``methods=[outcome.method]`` and ``authenticated_at=outcome.authn_instant``.
    ``return_to`` / ``action`` / ``transaction`` are what was stored with the request
    (``transaction`` the digest ``start`` was given for this very request, "" for none;
    ``resume`` the token of the suspended form it was given, "" for none; ``otp_proved``
    whether ``start`` was told a TOTP code was checked for this very request: record
    ``otp`` with the grant only then, and only on ``OK``, dated by
    :attr:`authenticated_at`, the older of ``authn_instant`` and ``otp_proved_at``, when
    the code was checked); they are also set on later
    failures, once the request is known to be this session's, an ``IDP_ERROR`` answering
    one included.

    ``idp_status`` is the IdP's status code on ``IDP_ERROR``; ``detail`` a short
    non-secret word on which check failed. No field ever holds the response itself.
    """

    reason: SAMLReason
    authn_instant: float | None = None
    authn_context: str | None = None
    return_to: str | None = None
    action: str = ""
    transaction: str = ""
    resume: str = field(default="", repr=False)
    otp_proved: bool = False
    otp_proved_at: float | None = None
    idp_status: str | None = None
    detail: str = ""
    method: str = field(default="saml", init=False)

    @property
    def ok(self) -> bool:
        return self.reason is SAMLReason.OK

    @property
    def authenticated_at(self) -> float | None:
        """The time the grant is dated by: ``authn_instant``, or when the request's code
        was proved if that is older (the code is typed before the trip, which may take
        up to ``challenge_ttl``); ``None`` without a verified ``authn_instant``."""
        if self.authn_instant is None:
            return None
        if self.otp_proved_at is None:
            return self.authn_instant
        return min(self.authn_instant, self.otp_proved_at)

    def __bool__(self) -> bool:
        return self.ok


@dataclass(frozen=True, slots=True)
class SAMLRedirect:
    """Where to send the browser: the IdP's single sign-on URL carrying the
    ``AuthnRequest`` (HTTP-Redirect binding). ``request_id`` is the pending challenge."""

    url: str = field(repr=False)
    request_id: str
    expires_at: float


class WrongIdentityProviderError(PermissionDeniedError):
    """The session did not sign in through this SAML IdP, so it cannot re-authenticate
    there: sending it would prove nothing about the person who signed in."""
