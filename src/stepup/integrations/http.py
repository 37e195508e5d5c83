"""Turn a re-authentication decision into an HTTP response, the same way in every framework.

Integrations build a :class:`RequestInfo` from their native request, call the core,
and hand the resulting :class:`HttpResponse` back in their native form. Nothing here
decides whether access is allowed: that was the core's job. The one error every
integration raises, :class:`SignInRequiredError`, lives here too.

- A browser gets ``303 See Other`` to the re-auth page with a safe ``next``.
- A JSON client gets ``401`` with a machine-readable body.
- A bearer-token API client gets the RFC 9470 challenge:
  ``WWW-Authenticate: Bearer error="insufficient_user_authentication", max_age="..."``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final, Protocol, TypeVar
from urllib.parse import urlencode, urlsplit

from ..errors import StepupError
from ..i18n import N_, negotiate, translate
from ..reauth import Decision, ReauthRequired, ReauthUnavailable
from ..redirects import safe_return_path_or_default
from ..tokens import InvalidTokenError, TokenFault

__all__ = [
    "TITLES",
    "Client",
    "HttpResponse",
    "RequestHeaders",
    "RequestInfo",
    "SignInRequiredError",
    "bearer_token",
    "client_kind",
    "decision_response",
    "form_return_path",
    "invalid_token",
    "step_up_challenge",
    "token_required",
    "token_unavailable",
]

R = TypeVar("R")


class RequestHeaders(Protocol):
    """A framework's request headers: names are looked up without regard to case."""

    def get(self, key: str, default: str, /) -> str: ...


class SignInRequiredError(StepupError):
    """Nobody is signed in (the app's subject loader found no one), so there is no
    session to re-authenticate. Raised by ``require`` in every integration; the
    integration's middleware answers it: browsers go to the sign-in page (Django's
    ``LOGIN_URL``, Starlette's ``login_url``) and API clients get 401."""


class Client(StrEnum):
    BROWSER = "browser"
    JSON = "json"
    BEARER = "bearer"


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """What the response depends on, read from the native request."""

    method: str
    path: str  # path and query string, as the client sent them
    accept: str = ""
    authorization: str = ""
    content_type: str = ""
    x_requested_with: str = ""
    accept_language: str = ""

    @classmethod
    def from_headers(cls, method: str, path: str, headers: RequestHeaders) -> RequestInfo:
        """Read the headers the answer depends on from the framework's headers."""
        return cls(
            method=method,
            path=path,
            accept=headers.get("Accept", ""),
            authorization=headers.get("Authorization", ""),
            content_type=headers.get("Content-Type", ""),
            x_requested_with=headers.get("X-Requested-With", ""),
            accept_language=headers.get("Accept-Language", ""),
        )

    @property
    def locale(self) -> str:
        """The locale of the client's ``Accept-Language`` (English when none fits)."""
        return negotiate(self.accept_language)


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def location(self) -> str | None:
        return self.headers.get("Location")


def client_kind(request: RequestInfo) -> Client:
    """Bearer tokens are API clients; JSON-ish requests get JSON; everyone else is a browser."""
    if request.authorization[:7].lower() == "bearer ":
        return Client.BEARER
    accept = request.accept.lower()
    if (
        "json" in request.content_type.lower()
        or request.x_requested_with.lower() == "xmlhttprequest"
        or ("json" in accept and "text/html" not in accept)
    ):
        return Client.JSON
    return Client.BROWSER


def _json(
    status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
) -> HttpResponse:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return HttpResponse(status, {"Content-Type": "application/json", **(headers or {})}, body)


def reauth_location(reauth_url: str, return_to: str, action: str) -> str:
    """The re-auth page URL with a ``next`` that is always a safe same-origin path."""
    query = urlencode({"next": safe_return_path_or_default(return_to), "action": action})
    return f"{reauth_url}?{query}"


def form_return_path(
    method: str, referer: str, return_to: str | Callable[[R], str] | None, request: R
) -> str | None:
    """Where to come back after re-authenticating: ``None`` (this page) for GET and HEAD;
    for anything else, which a redirect cannot repeat, ``return_to`` (called with
    ``request`` if callable), else the page the form was on (``referer``), else ``/``.
    The result still goes through :func:`stepup.redirects.safe_return_path_or_default`."""
    if method in {"GET", "HEAD"}:
        return None
    if return_to is not None:
        return str(return_to(request) if callable(return_to) else return_to)
    page = urlsplit(referer)
    return (page.path + (f"?{page.query}" if page.query else "")) or "/"


#: The ``title`` of each JSON error, a msgid translated for the client's Accept-Language.
TITLES: Final = {
    "authentication_required": N_("Sign in first."),
    "reauth_required": N_("Confirm your identity to continue."),
    "reauth_unavailable": N_("Your identity cannot be confirmed right now. Try again soon."),
    "invalid_token": N_("The access token is not valid. Get a new one."),
}


def _error(request: RequestInfo, error: str, **extra: Any) -> dict[str, Any]:
    """A JSON error body: the machine-readable ``error`` and a ``title`` for a person."""
    return {"error": error, "title": translate(TITLES[error], request.locale), **extra}


def authentication_required(request: RequestInfo) -> HttpResponse:
    """The 401 for a request nobody is signed in to (browsers are sent to the app's
    sign-in page instead, by each framework its own way)."""
    headers = {"Cache-Control": "no-store"}
    if client_kind(request) is Client.BEARER:
        headers["WWW-Authenticate"] = "Bearer"
    return _json(401, _error(request, "authentication_required"), headers)


def decision_response(
    decision: Decision, request: RequestInfo, *, reauth_url: str
) -> HttpResponse | None:
    """``None`` when the decision allows the request; otherwise the response to send."""
    if decision.ok:
        return None
    if isinstance(decision, ReauthUnavailable):
        return _json(
            503,
            _error(request, "reauth_unavailable", action=decision.action),
            {"Retry-After": "5"},
        )
    assert isinstance(decision, ReauthRequired)
    kind = client_kind(request)
    location = reauth_location(reauth_url, request.path, decision.action)
    if kind is Client.BROWSER:
        return HttpResponse(303, {"Location": location, "Cache-Control": "no-store"})
    payload = _error(
        request,
        "reauth_required",
        action=decision.action,
        sensitivity=decision.sensitivity.value,
        methods=list(decision.methods),
        alternatives=[list(alternative) for alternative in decision.alternatives],
        max_age=int(decision.lifetime),
        last_reauth_at=decision.last_reauth_at,
        reauth_url=location,
    )
    if decision.level:
        payload["level"] = decision.level
        payload["acr_values"] = list(decision.acr_values)
    headers = {"Cache-Control": "no-store"}
    if kind is Client.BEARER:
        headers["WWW-Authenticate"] = step_up_challenge(decision)
    return _json(401, payload, headers)


def step_up_challenge(decision: ReauthRequired) -> str:
    """The RFC 9470 section 3 challenge: ``acr_values`` (space-separated, in order of
    preference) when a level of assurance is missing, ``max_age`` (the rule's lifetime in
    seconds) when the authentication is too old or absent, or when nothing else says
    what would do."""
    params = ['Bearer error="insufficient_user_authentication"']
    acr_values = decision.acr_values if decision.level else ()
    if acr_values and not decision.stale:
        params.append('error_description="A different authentication level is required"')
    else:
        params.append('error_description="A more recent authentication is required"')
    if acr_values:
        params.append(f'acr_values="{" ".join(acr_values)}"')
    if decision.stale or not acr_values:
        params.append(f'max_age="{int(decision.lifetime)}"')  # quoted, as RFC 9470's examples
    return ", ".join(params)


def bearer_token(request: RequestInfo) -> str | None:
    """The token of an ``Authorization: Bearer`` header (RFC 6750 section 2.1), or
    ``None`` when there is none or it is not in the b64token syntax."""
    header = request.authorization
    if header[:7].lower() != "bearer ":
        return None
    token = header[7:].strip()
    if not token or _B64TOKEN.fullmatch(token) is None:
        return None
    return token


_B64TOKEN: Final = re.compile(r"[A-Za-z0-9\-._~+/]+=*")

#: What an ``invalid_token`` challenge says, by failed check (never the token itself).
_INVALID_TOKEN_TEXT: Final = {
    TokenFault.EXPIRED: "The access token expired",
    TokenFault.AUDIENCE: "The access token is not meant for this resource",
    TokenFault.INACTIVE: "The access token is not active",
}


def token_required(request: RequestInfo) -> HttpResponse:
    """401 for a request to a bearer-protected endpoint without a usable bearer token:
    ``WWW-Authenticate: Bearer`` and no error code (RFC 6750 section 3.1)."""
    headers = {"Cache-Control": "no-store", "WWW-Authenticate": "Bearer"}
    return _json(401, _error(request, "authentication_required"), headers)


def invalid_token(error: InvalidTokenError, request: RequestInfo) -> HttpResponse:
    """401 with ``WWW-Authenticate: Bearer error="invalid_token"`` (RFC 6750 section 3.1):
    the client should get a new token. ``error_description`` names the kind of failure."""
    text = _INVALID_TOKEN_TEXT.get(error.fault, "The access token is invalid")
    headers = {
        "Cache-Control": "no-store",
        "WWW-Authenticate": f'Bearer error="invalid_token", error_description="{text}"',
    }
    return _json(401, _error(request, "invalid_token", reason=error.fault.value), headers)


def token_unavailable(request: RequestInfo) -> HttpResponse:
    """503 when the issuer's keys or introspection could not be read (fail closed)."""
    return _json(503, _error(request, "reauth_unavailable"), {"Retry-After": "5"})
