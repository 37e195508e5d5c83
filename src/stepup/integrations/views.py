"""What the ready-made pages show and keep, the same in every framework.

These are view models and the small rules around them: plain data built from what
the core already decided, so a Flask, Django or Starlette view renders the same page
from the same facts and answers with the same status. Nothing here allows or refuses
anything on its own: the statuses follow the core's typed results, the JSON:API
helpers turn the core's typed tenant errors into response bodies, and the session
helpers keep what a framework's session must carry between two requests (the session
id grants are bound to, how the user signed in, a code proved before an SSO trip).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field, replace
from typing import Any, Final, Protocol

from ..errors import PermissionDeniedError, StoreUnavailableError
from ..policy import SENSITIVE, Policy
from ..reauth import required_methods
from ..records import Tenant
from ..redirects import safe_return_path_or_default
from ..subject import Identity, LoginMethod, Subject
from ..tenants import JSONAPI_MEDIA_TYPE, TenantNotFoundError, TenantPatchError, tenant_document
from ..twofactor import Enrolment
from ..verifier import VerifyReason, VerifyResult
from .http import HttpResponse

__all__ = [
    "OTP_PROOF",
    "RECOVERY_REGENERATE",
    "SESSION_ID",
    "SIGNED_IN_WITH",
    "SSO_NOT_CONFIRMED",
    "TENANT_CONTENT_TYPES",
    "EnrolmentPage",
    "ProviderOutcome",
    "ReauthPage",
    "RecoveryCodesPage",
    "SSOAnswer",
    "default_policy",
    "enrolment_page",
    "forget_otp_proof",
    "is_fresh",
    "jsonapi_error",
    "manual_key",
    "note_otp_proof",
    "note_sign_in",
    "provider_for",
    "reauth_page",
    "refusal_status",
    "session_id",
    "session_identity",
    "sso_answer",
    "take_otp_proof",
    "tenant_content_type_ok",
    "tenant_error_response",
    "tenant_request_refusal",
    "tenant_response",
    "two_factor_message",
]

#: The action that guards regenerating recovery codes. Not in the seed's catalog, so
#: :func:`default_policy` adds it; an app with its own policy must name it too.
RECOVERY_REGENERATE: Final = "2fa.recovery.regenerate"

#: Media types the tenant ``PATCH`` endpoint accepts (without parameters).
TENANT_CONTENT_TYPES: Final = frozenset({JSONAPI_MEDIA_TYPE, "application/json"})


def default_policy() -> Policy:
    """The seed's catalog plus the actions the ready-made views guard."""
    rule = replace(SENSITIVE, description="Regenerating two-factor recovery codes")
    return Policy.default().extend({RECOVERY_REGENERATE: rule})


@dataclass(frozen=True, slots=True)
class ReauthPage:
    """The re-authentication page for one subject and action.

    ``methods`` are the core's :func:`stepup.reauth.required_methods`; the page shows a
    password field for ``pwd``, a code field for ``otp`` and a button to the provider for
    ``oidc`` / ``saml``. ``next`` is already a safe same-origin path.
    """

    action: str
    description: str
    next: str
    methods: tuple[str, ...]
    provider: str = ""
    error: str = ""

    @property
    def password(self) -> bool:
        return "pwd" in self.methods

    @property
    def totp(self) -> bool:
        return "otp" in self.methods

    @property
    def sso(self) -> str:
        """``"oidc"``, ``"saml"`` or ``""``: which provider start view the button calls."""
        for method in ("oidc", "saml"):
            if method in self.methods:
                return method
        return ""

    def with_error(self, error: str) -> ReauthPage:
        """The same page, shown again with ``error``."""
        return replace(self, error=error)


def reauth_page(
    policy: Policy, subject: Subject, action: str, next_value: object, *, error: str = ""
) -> ReauthPage:
    """The page for ``action`` (``""``: no action named, ask as for a sensitive one).

    An unknown action raises :class:`stepup.errors.UnknownActionError` (the caller
    answers 400): the query string is attacker-chosen and must not pick a weaker rule.
    """
    rule = policy.rule_for(action) if action else SENSITIVE
    return ReauthPage(
        action=action,
        description=rule.description,
        next=safe_return_path_or_default(next_value),
        methods=required_methods(subject, rule),
        provider=subject.identity.provider,
        error=error,
    )


def manual_key(secret: str) -> str:
    """The secret in groups of four, for typing into an app that cannot scan."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


@dataclass(frozen=True, slots=True)
class EnrolmentPage:
    """Shown once while enrolling: the QR code (an ``<svg>`` element), the same secret
    for manual entry, and the settings an app needs when typing it in."""

    account: str
    issuer: str
    digits: int
    period: int
    qr_svg: str = field(repr=False)
    manual_key: str = field(repr=False)
    uri: str = field(repr=False)
    error: str = ""


def enrolment_page(
    enrolment: Enrolment,
    *,
    account: str,
    issuer: str,
    digits: int = 6,
    period: int = 30,
    error: str = "",
) -> EnrolmentPage:
    return EnrolmentPage(
        account=account,
        issuer=issuer,
        digits=digits,
        period=period,
        qr_svg=enrolment.qr_svg(),
        manual_key=manual_key(enrolment.secret),
        uri=enrolment.uri,
        error=error,
    )


@dataclass(frozen=True, slots=True)
class RecoveryCodesPage:
    """Ten single-use codes, shown this once (send it with ``Cache-Control: no-store``)."""

    codes: tuple[str, ...] = field(repr=False)


_TWO_FACTOR_MESSAGES: Final = {
    VerifyReason.OK: "",
    VerifyReason.INVALID: "That code is not right. Check your authenticator app and try again.",
    # The seed: a code can be used once; wait for the next one.
    VerifyReason.REPLAYED: "That code was already used. Wait for the next code and try again.",
    VerifyReason.MALFORMED: "Enter the code from your authenticator app (digits only).",
    VerifyReason.THROTTLED: "Too many attempts. Wait a while and try again.",
    VerifyReason.UNAVAILABLE: "Codes cannot be checked right now. Try again in a moment.",
}


def two_factor_message(result: VerifyResult) -> str:
    """What to tell the end user about a code; empty when it was accepted."""
    return _TWO_FACTOR_MESSAGES[result.reason]


_STATUS_BY_REASON: Final[Mapping[str, int]] = {"throttled": 429, "unavailable": 503}


def refusal_status(reason: str) -> int:
    """The status of a page that refuses a code, a password or a provider's answer,
    from the core's or the adapter's reason: 429 while throttled, 503 when it could not
    be checked (the store or the provider is down: fail closed), else 400."""
    return _STATUS_BY_REASON.get(reason, 400)


# The tenant settings endpoint (JSON:API) -------------------------------------------


def _jsonapi(status: int, document: dict[str, Any]) -> HttpResponse:
    body = json.dumps(document, separators=(",", ":")).encode()
    headers = {"Content-Type": JSONAPI_MEDIA_TYPE, "Cache-Control": "no-store"}
    return HttpResponse(status, headers, body)


def jsonapi_error(status: int, code: str, title: str) -> HttpResponse:
    """A JSON:API error document with one error."""
    return _jsonapi(status, {"errors": [{"status": str(status), "code": code, "title": title}]})


def tenant_content_type_ok(content_type: str) -> bool:
    """Is this ``Content-Type`` one the ``PATCH`` endpoint reads?"""
    return content_type.split(";", 1)[0].strip().lower() in TENANT_CONTENT_TYPES


def tenant_request_refusal(signed_in: bool, content_type: str) -> HttpResponse | None:
    """Why the ``PATCH`` cannot be read at all (401 nobody signed in, 415 a body that is
    not JSON), or ``None`` to go ahead. The 415 is also the CSRF defence: a cross-site
    form cannot send a JSON media type."""
    if not signed_in:
        return jsonapi_error(401, "unauthenticated", "Sign in first")
    if not tenant_content_type_ok(content_type):
        title = "Send application/vnd.api+json or application/json"
        return jsonapi_error(415, "unsupported_media_type", title)
    return None


def tenant_response(tenant: Tenant) -> HttpResponse:
    """200 with the tenant's resource document."""
    return _jsonapi(200, tenant_document(tenant))


def tenant_error_response(exc: Exception) -> HttpResponse | None:
    """The JSON:API response for an error of ``TenantSettings.patch``; ``None`` for any
    other exception (let it propagate)."""
    if isinstance(exc, TenantPatchError | TenantNotFoundError):
        return _jsonapi(exc.status, exc.document)
    if isinstance(exc, PermissionDeniedError):
        return jsonapi_error(403, "forbidden", "Only a tenant admin may change tenant settings")
    if isinstance(exc, StoreUnavailableError):
        return jsonapi_error(503, "unavailable", "Tenant settings cannot be changed right now")
    return None


def provider_for(providers: Mapping[str, Any], subject: Subject) -> Any:
    """The SSO adapter for the provider the session signed in with, or the only one
    configured when the session's identity names none; ``None`` if there is none."""
    found = providers.get(subject.identity.provider)
    if found is None and not subject.identity.provider and len(providers) == 1:
        found = next(iter(providers.values()))
    return found


# Re-authentication at an OIDC or SAML provider ---------------------------------------

#: Shown when the provider's answer does not prove a fresh login of this user.
SSO_NOT_CONFIRMED: Final = "Your identity provider did not confirm it is you. Please try again."


class ProviderOutcome(Protocol):
    """What the OIDC and SAML adapters' outcomes both offer."""

    @property
    def ok(self) -> bool: ...

    @property
    def reason(self) -> str: ...

    @property
    def method(self) -> str: ...

    @property
    def return_to(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class SSOAnswer:
    """What a provider's answer comes to. ``ok``: record a grant with ``methods`` at
    ``authenticated_at``, then go to ``next``. Otherwise show :data:`SSO_NOT_CONFIRMED`
    with ``status`` and a link to the re-auth page for ``next``."""

    ok: bool
    next: str
    status: int = 303
    methods: tuple[str, ...] = ()
    authenticated_at: float | None = None


def sso_answer(outcome: ProviderOutcome, proved_code: bool) -> SSOAnswer:
    """Only an ``ok`` outcome grants anything; ``otp`` joins the provider's method when a
    code was proved before leaving (see :func:`take_otp_proof`)."""
    next_path = safe_return_path_or_default(outcome.return_to)
    if not outcome.ok:
        return SSOAnswer(False, next_path, refusal_status(outcome.reason))
    methods = (outcome.method, "otp") if proved_code else (outcome.method,)
    return SSOAnswer(True, next_path, methods=methods, authenticated_at=_login_time(outcome))


def _login_time(outcome: object) -> float | None:
    """The provider's verified login time: OIDC's ``auth_time``, SAML's ``authn_instant``."""
    for name in ("authenticated_at", "auth_time", "authn_instant"):
        value = getattr(outcome, name, None)
        if value is not None:
            return float(value)
    return None


# What stepup keeps in the framework's session ------------------------------------------

#: Session keys (Django and Flask; Starlette's app keeps its own session id).
SESSION_ID: Final = "_stepup_sid"
SIGNED_IN_WITH: Final = "_stepup_identity"
OTP_PROOF: Final = "_stepup_otp_proof"


def is_fresh(at: object, now: float, ttl: float) -> bool:
    """Is ``at``, a time kept in the session, less than ``ttl`` seconds old (and not in
    the future)? The core's rule for every lifetime: ``0 <= now - at < ttl``, so
    something exactly ``ttl`` old has expired."""
    return isinstance(at, int | float) and not isinstance(at, bool) and 0 <= now - at < ttl


def session_id(session: MutableMapping[str, Any]) -> str:
    """A random id for this browser session, renewed at every sign-in: grants are bound
    to it, so another session never benefits from this one's re-authentication. (Not
    the framework's session key: that is a bearer secret, and stores should not hold it.)"""
    sid = session.get(SESSION_ID)
    if not isinstance(sid, str):
        sid = secrets.token_urlsafe(18)
        session[SESSION_ID] = sid
    return sid


def session_identity(session: Mapping[str, Any]) -> Identity:
    """How the user of this session signed in (a password, unless noted otherwise)."""
    saved = session.get(SIGNED_IN_WITH)
    if not isinstance(saved, dict):
        return Identity(LoginMethod.PASSWORD)
    return Identity(
        LoginMethod(saved["method"]),
        issuer=str(saved.get("issuer", "")),
        subject=str(saved.get("subject", "")),
        provider=str(saved.get("provider", "")),
    )


def note_sign_in(session: MutableMapping[str, Any], signed_in_with: Identity | None) -> None:
    """A new session id (no earlier grant carries over) and how the user signed in."""
    session[SESSION_ID] = secrets.token_urlsafe(18)
    session.pop(SIGNED_IN_WITH, None)
    if signed_in_with is not None:
        session[SIGNED_IN_WITH] = {
            "method": signed_in_with.method.value,
            "issuer": signed_in_with.issuer,
            "subject": signed_in_with.subject,
            "provider": signed_in_with.provider,
        }


def forget_otp_proof(session: MutableMapping[str, Any], *, key: str = OTP_PROOF) -> None:
    """Drop a code proved earlier: each trip to the provider proves its own."""
    session.pop(key, None)


def note_otp_proof(
    session: MutableMapping[str, Any], session_id: str, now: float, *, key: str = OTP_PROOF
) -> None:
    """A TOTP code was proved at an SSO start view: keep the fact (never the code) until
    the provider answers, so ``otp`` can join the grant."""
    session[key] = {"session": session_id, "at": now}


def take_otp_proof(
    session: MutableMapping[str, Any],
    session_id: str,
    now: float,
    ttl: float,
    *,
    key: str = OTP_PROOF,
) -> bool:
    """Did this stepup session prove a code less than ``ttl`` seconds ago (see
    :func:`is_fresh`)? The proof is used up either way, whatever the provider said."""
    proof = session.pop(key, None)
    return (
        isinstance(proof, dict)
        and proof.get("session") == session_id
        and is_fresh(proof.get("at"), now, ttl)
    )
