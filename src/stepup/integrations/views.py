"""What the ready-made pages show, the same in every framework.

These are view models: plain data built from what the core already decided, so a
Flask, Django or Starlette template renders the same page from the same facts. Nothing
here allows or refuses anything; the JSON:API helpers only turn the core's typed
tenant errors into response bodies.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

from ..errors import PermissionDeniedError, StoreUnavailableError
from ..policy import SENSITIVE, Policy
from ..reauth import required_methods
from ..records import Tenant
from ..redirects import safe_return_path_or_default
from ..subject import Subject
from ..tenants import JSONAPI_MEDIA_TYPE, TenantNotFoundError, TenantPatchError, tenant_document
from ..twofactor import Enrolment
from ..verifier import VerifyReason, VerifyResult
from .http import HttpResponse

__all__ = [
    "RECOVERY_REGENERATE",
    "TENANT_CONTENT_TYPES",
    "EnrolmentPage",
    "ReauthPage",
    "RecoveryCodesPage",
    "default_policy",
    "enrolment_page",
    "jsonapi_error",
    "manual_key",
    "provider_for",
    "reauth_page",
    "tenant_content_type_ok",
    "tenant_error_response",
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
