"""Turn a re-authentication decision into an HTTP response, the same way in every framework.

Integrations build a :class:`RequestInfo` from their native request, call the core,
and hand the resulting :class:`HttpResponse` back in their native form. Nothing here
decides whether access is allowed: that was the core's job. The one error every
integration raises, :class:`SignInRequiredError`, lives here too.

- A browser gets ``303 See Other`` to the re-auth page with a safe ``next``, also when
  no re-authentication this session can give reaches the rule's level (the page says so).
- A JSON client gets ``401`` with a machine-readable body (``403`` when no
  re-authentication would do, ``503`` when the store could not answer).
- A bearer-token API client (a ``Channel.API`` subject) gets the RFC 9470 challenge:
  ``WWW-Authenticate: Bearer error="insufficient_user_authentication", max_age="..."``;
  any other subject that sends ``Authorization: Bearer`` (an API key) gets the JSON 401.
  When no new token can help (``reauth_unreachable``), its 403 says why without that
  error code, which would ask the client to authorize again.
- A ``Bearer`` challenge without an ``error`` (no credentials were sent) names the
  realm, ``Bearer realm="api"`` (RFC 6750 section 3: the scheme is followed by at least
  one auth-param); one with an ``error`` refers to the credentials sent and has none.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Final, Protocol, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit

from ..errors import ConfigurationError, StepupError
from ..i18n import LOCALES, N_, negotiate, translate
from ..reauth import Decision, ReauthRequired, ReauthUnavailable, UnavailableReason
from ..redirects import safe_return_path_or_default
from ..tokens import InvalidTokenError, TokenFault
from ..twofactor import Channel

logger = logging.getLogger(__name__)

__all__ = [
    "BEARER_REALM",
    "RETRY_AFTER",
    "SESSION_CHALLENGE",
    "TITLES",
    "Client",
    "HttpResponse",
    "RequestHeaders",
    "RequestInfo",
    "SignInRequiredError",
    "bearer_challenge",
    "bearer_credentials",
    "bearer_token",
    "challenge_max_age",
    "challenge_params",
    "client_kind",
    "decision_response",
    "error_body",
    "form_return_path",
    "insufficient_scope",
    "invalid_request",
    "invalid_token",
    "quoted",
    "reauth_members",
    "reauth_required",
    "retitled",
    "retry_later",
    "same_origin_page",
    "step_up_challenge",
    "token_required",
    "token_unavailable",
    "token_unreachable_response",
    "with_challenge",
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
    """What the response depends on, read from the native request.

    ``chosen_locale`` is the locale the app's pages use for this request (its locale
    hook, then ``Accept-Language``: :func:`stepup.integrations.pages.choose_locale`), or
    a function that gives it, called only when a ``title`` is translated. An integration
    sets it (:meth:`in_locale`) when it answers, so that a JSON title reads as the page
    would; never up front: the hook is the app's code, and a request that goes ahead
    does not call it. ``""`` (or a locale stepup has no catalog for): the
    ``Accept-Language`` header decides."""

    method: str
    path: str  # path and query string, as the client sent them
    accept: str = ""
    authorization: str = field(default="", repr=False)  # it holds the bearer token
    content_type: str = ""
    x_requested_with: str = ""
    accept_language: str = ""
    chosen_locale: str | Callable[[], str] = field(default="", repr=False, compare=False)

    @classmethod
    def from_headers(cls, method: str, path: str, headers: RequestHeaders) -> RequestInfo:
        """Read the headers the answer depends on from the framework's headers. Several
        ``Authorization`` headers are kept joined by ``", "`` (as a proxy or WSGI server
        folds them), which no single set of credentials contains: a bearer guard
        refuses them as malformed, whichever comes first (an empty one too)."""
        authorization = headers.get("Authorization", "")
        getlist = getattr(headers, "getlist", None)
        if callable(getlist):
            values = getlist("Authorization")
            if len(values) > 1:
                authorization = ", ".join(values)
        return cls(
            method=method,
            path=path,
            accept=headers.get("Accept", ""),
            authorization=authorization,
            content_type=headers.get("Content-Type", ""),
            x_requested_with=headers.get("X-Requested-With", ""),
            accept_language=headers.get("Accept-Language", ""),
        )

    def in_locale(self, locale: str | Callable[[], str]) -> RequestInfo:
        """This request, answered in ``locale`` (or what ``locale()`` gives when a title
        is translated): the locale of its pages."""
        return replace(self, chosen_locale=locale)

    @property
    def locale(self) -> str:
        """The locale of this request's JSON titles: :attr:`chosen_locale` when it is
        one stepup has a catalog for, else the best for the client's
        ``Accept-Language`` (English when none fits)."""
        chosen = self.chosen_locale
        if callable(chosen):
            try:
                chosen = chosen()
            except Exception as exc:  # the app's hook: a title is not worth a 500
                logger.warning(
                    "the locale hook raised %s: this answer's title follows Accept-Language",
                    type(exc).__name__,
                )
                chosen = ""
        return chosen if chosen in LOCALES else negotiate(self.accept_language)


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def location(self) -> str | None:
        return self.headers.get("Location")


#: Every 503 for a store that could not answer asks the client to try again in this
#: many seconds (``Retry-After``): the guard's JSON, the "try again" page, the views' JSON.
RETRY_AFTER: Final = "5"


def retry_later(response: HttpResponse) -> HttpResponse:
    """``response`` (a 503: the store could not answer) with the ``Retry-After`` every
    such 503 carries."""
    headers = {**response.headers, "Retry-After": RETRY_AFTER}
    return HttpResponse(response.status, headers, response.body)


def client_kind(request: RequestInfo) -> Client:
    """Bearer tokens are API clients; JSON-ish requests get JSON; everyone else is a browser."""
    if request.authorization[:7].lower() == "bearer ":
        return Client.BEARER
    if (
        "json" in request.content_type.lower()
        or request.x_requested_with.lower() == "xmlhttprequest"
        or _prefers_json(request.accept.lower())
    ):
        return Client.JSON
    return Client.BROWSER


#: A media range's weight (RFC 9110 section 12.4.2); ``Q=`` too (RFC 5234 2.3).
_WEIGHT_PARAMETER: Final = re.compile(r";\s*q\s*=\s*([^;\s]*)")
_QVALUE: Final = re.compile(r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?")


def _prefers_json(accept: str) -> bool:
    """Does this (lower-cased) ``Accept`` rank a JSON type above ``text/html``? A JSON
    type with a weight of 0 is refused, one weighted above HTML wins (RFC 9110 section
    12.5.1); a range whose weight does not parse is left out."""
    if "json" not in accept:
        return False
    best_json = best_html = 0.0
    for media_range in accept[:_MAX_ACCEPT].split(","):
        media_type, _, parameters = media_range.partition(";")
        media_type = media_type.strip()
        weight = _weight(";" + parameters)
        if weight is None:
            continue
        if "json" in media_type:
            best_json = max(best_json, weight)
        elif media_type == "text/html":
            best_html = max(best_html, weight)
    return best_json > best_html


def _weight(parameters: str) -> float | None:
    found = _WEIGHT_PARAMETER.search(parameters)
    if found is None:
        return 1.0
    value = found.group(1)
    return float(value) if _QVALUE.fullmatch(value) else None


#: The longest ``Accept`` header read for JSON-or-page; servers cap whole headers lower.
_MAX_ACCEPT: Final = 8192


#: RFC 9110 15.5.2: a 401 carries at least one challenge. A signed-in session has no
#: HTTP authentication scheme of its own, so this one names it (no browser prompts for
#: it); a bearer client gets its ``Bearer`` challenge instead.
SESSION_CHALLENGE: Final = 'Session realm="stepup"'


#: The realm of a ``Bearer`` challenge without an error unless the app names its own
#: (``BearerGuard(..., realm=...)``): RFC 6750 section 3 asks the scheme to be followed
#: by at least one auth-param, and its example for a request without credentials is
#: ``Bearer realm="example"``.
BEARER_REALM: Final = "api"


def bearer_challenge(realm: str = BEARER_REALM) -> str:
    """``Bearer realm="..."``: the challenge to a request without bearer credentials
    (RFC 6750 section 3.1: no error code). ``realm`` is sent as a quoted-string; an
    empty one, or one that is not printable ASCII (a CR or LF: header injection), raises
    :class:`ConfigurationError`."""
    if not isinstance(realm, str) or not realm or _PRINTABLE.fullmatch(realm) is None:
        raise ConfigurationError("a bearer realm must be a non-empty text of printable ASCII")
    return f"Bearer realm={quoted(realm)}"


def with_challenge(status: int, headers: dict[str, str]) -> dict[str, str]:
    """``headers``, with :data:`SESSION_CHALLENGE` for a 401 that names no challenge."""
    if status == 401 and "WWW-Authenticate" not in headers:
        return {**headers, "WWW-Authenticate": SESSION_CHALLENGE}
    return headers


def _json(
    status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
) -> HttpResponse:
    body = json.dumps(payload, separators=(",", ":")).encode()
    every = with_challenge(status, {"Content-Type": "application/json", **(headers or {})})
    return HttpResponse(status, every, body)


def reauth_location(reauth_url: str, return_to: str, action: str, transaction: str = "") -> str:
    """The re-auth page URL with a ``next`` that is always a safe same-origin path (and,
    for a rule bound to one transaction, its digest: the page shows only a transaction
    this session's guard kept under it)."""
    params = {"next": safe_return_path_or_default(return_to), "action": action}
    if transaction:
        params["transaction"] = transaction
    return f"{reauth_url}?{urlencode(params)}"


def form_return_path(
    method: str,
    referer: str,
    return_to: str | Callable[[R], str] | None,
    request: R,
    *,
    origin: str = "",
    home: str = "/",
) -> str | None:
    """Where to come back after re-authenticating: ``None`` (this page) for GET and HEAD;
    for anything else, which a redirect cannot repeat, ``return_to`` (called with
    ``request`` if callable), else the page the form was on (``referer``) when it is on
    this request's own ``origin`` (``scheme://host[:port]``, as the framework reads the
    request), else ``home`` (the app's root). A form on another site (or a Referer that
    does not parse, or no ``origin`` given) never chooses the page a person comes back
    to. The result still goes through
    :func:`stepup.redirects.safe_return_path_or_default`."""
    if method in {"GET", "HEAD"}:
        return None
    if return_to is not None:
        return str(return_to(request) if callable(return_to) else return_to)
    return same_origin_page(referer, origin) or home


#: The port a URL of each scheme means when it names none.
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


def _origin(url: str) -> tuple[str, str, int | None] | None:
    """``url``'s origin (RFC 6454: scheme, host, port, the scheme's default port when it
    names none), or ``None`` when it has no host, carries credentials or does not parse."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # ``https://host[``, ``https://host:99999``
        return None
    host = parts.hostname
    if not host or parts.username is not None or parts.password is not None:
        return None
    scheme = parts.scheme.lower()
    return scheme, host, port if port is not None else _DEFAULT_PORTS.get(scheme)


def same_origin_page(referer: str, origin: str) -> str | None:
    """The path and query of ``referer`` when it is on ``origin`` (same scheme, host and
    port), else ``None``: a page another site names is not one to come back to. A
    ``Referer`` that is a path (``/page``: RFC 9110's partial-URI, resolved against the
    request's own URI) is on it; a relative one (``page``) names no page this knows."""
    if not referer or not origin:
        return None
    try:
        page = urlsplit(referer)
    except ValueError:  # ``https://host[``: no page at all
        return None
    if page.scheme or page.netloc:
        mine = _origin(origin)
        if mine is None or _origin(referer) != mine:
            return None
    elif not page.path.startswith("/"):
        return None
    return (page.path or "/") + (f"?{page.query}" if page.query else "")


#: The ``title`` of each JSON error, a msgid translated into the request's locale
#: (:attr:`RequestInfo.locale`: the app's locale hook, then ``Accept-Language``).
TITLES: Final = {
    "authentication_required": N_("Sign in first."),
    "reauth_required": N_("Confirm your identity to continue."),
    "reauth_unavailable": N_("Your identity cannot be confirmed right now. Try again soon."),
    "reauth_unreachable": N_(
        "This action needs a stronger sign-in than this session can give. Sign in another way."
    ),
    "invalid_token": N_("The access token is not valid. Get a new one."),
    "invalid_request": N_("The request's credentials are malformed."),
    "insufficient_scope": N_("The access token does not grant this."),
    "invalid_transaction": N_("This request's target cannot be confirmed. Check its address."),
}


def error_body(request: RequestInfo, error: str, **extra: Any) -> dict[str, Any]:
    """A JSON error body: the machine-readable ``error`` and a ``title`` for a person."""
    return {"error": error, "title": translate(TITLES[error], request.locale), **extra}


def retitled(response: HttpResponse, locale: str) -> HttpResponse:
    """``response``, a JSON error of this module (a ``title`` next to its ``error``), its
    title in ``locale`` when stepup has a catalog for it: for an integration that learns
    the locale of the pages only once it refuses (an async locale hook, awaited then,
    never for a request that goes ahead), and so after the answer was built. Anything
    else (another body, a locale without a catalog) is ``response`` itself."""
    if locale not in LOCALES or response.headers.get("Content-Type") != "application/json":
        return response
    body = json.loads(response.body)
    error = body.get("error") if isinstance(body, dict) and "title" in body else None
    if not isinstance(error, str) or error not in TITLES:
        return response
    title = translate(TITLES[error], locale)
    if body["title"] == title:
        return response
    body["title"] = title
    text = json.dumps(body, separators=(",", ":")).encode()
    return HttpResponse(response.status, response.headers, text)


def authentication_required(request: RequestInfo) -> HttpResponse:
    """The 401 for a request nobody is signed in to (browsers are sent to the app's
    sign-in page instead, by each framework its own way)."""
    headers = {"Cache-Control": "no-store"}
    if client_kind(request) is Client.BEARER:
        headers["WWW-Authenticate"] = bearer_challenge()
    return _json(401, error_body(request, "authentication_required"), headers)


#: Refusals no retry or new token can change (403), unlike a store outage (503).
FOR_GOOD: Final = frozenset(
    {
        UnavailableReason.UNREACHABLE,
        UnavailableReason.TRANSACTION_BOUND,
        UnavailableReason.NON_INTERACTIVE,
    }
)


def unreachable_response(decision: ReauthUnavailable, request: RequestInfo) -> HttpResponse:
    """403 ``reauth_unreachable``: nothing this session (or token) can prove satisfies
    the rule, so trying again will not help; the alternatives name what would (signing
    in another way), and ``reason`` says why (``unreachable``: the rule's level;
    ``transaction_bound``: a bearer token facing a rule bound to one transaction, which
    only a session's confirmation satisfies; ``non_interactive``: an API key or message
    injection facing a rule only a second factor satisfies, which they are never asked
    for)."""
    body = error_body(
        request,
        "reauth_unreachable",
        action=decision.action,
        reason=decision.reason.value,
        level=decision.level,
        alternatives=[list(alternative) for alternative in decision.alternatives],
    )
    return _json(403, body, {"Cache-Control": "no-store"})


#: Why no new token helps, for a bearer client's 403 ``error_description``.
_FOR_GOOD_TEXT: Final = {
    UnavailableReason.TRANSACTION_BOUND: "No access token can confirm this action",
    UnavailableReason.NON_INTERACTIVE: "This action needs a factor this client cannot prove",
}
#: The same 403's ``title`` for a bearer client, which has no session to sign in to
#: another way (the session's title says so).
_FOR_GOOD_TOKEN_TITLES: Final = {
    UnavailableReason.TRANSACTION_BOUND: N_(
        "No access token can confirm this action. Confirm it in the app, signed in."
    ),
    UnavailableReason.NON_INTERACTIVE: N_("This action needs a factor this client cannot prove."),
    UnavailableReason.UNREACHABLE: N_(
        "This action needs a stronger sign-in than an access token can carry."
    ),
}


def token_unreachable_response(decision: ReauthUnavailable, request: RequestInfo) -> HttpResponse:
    """:func:`unreachable_response` for a bearer client: the same 403, with the
    ``WWW-Authenticate: Bearer error_description="..."`` challenge RFC 6750 section 3
    asks of every bearer request its token does not let through, saying why no new
    token would help, and no ``error`` code. Not RFC 9470's
    ``insufficient_user_authentication``: that asks the client to authorize again for a
    stronger or more recent authentication (:func:`step_up_challenge`), which a client
    that follows it would do over and over, each new token refused the same; and none
    of RFC 6750's codes fits (the token is valid, its scope is not what is missing). No
    ``realm``: like every challenge about the token that was sent, it carries none."""
    refusal = unreachable_response(decision, request)
    text = _FOR_GOOD_TEXT.get(decision.reason, "No new authentication can allow this action")
    challenge = f"Bearer error_description={quoted(text)}"
    body = json.loads(refusal.body)
    title = _FOR_GOOD_TOKEN_TITLES.get(decision.reason)
    if title is not None:
        body["title"] = translate(title, request.locale)
    return _json(403, body, {**refusal.headers, "WWW-Authenticate": challenge})


def decision_response(
    decision: Decision, request: RequestInfo, *, reauth_url: str
) -> HttpResponse | None:
    """``None`` when the decision allows the request; otherwise the response to send.

    A browser is sent (303) to the re-auth page for the action, whether a
    re-authentication would allow it or none this session can give reaches the rule's
    level (``unreachable``: the page then says why, in the person's language, offers no
    form, and a way back); a script gets the JSON 401, 403 ``reauth_unreachable`` or 503.
    The other refusals for good (``non_interactive``, ``transaction_bound``) are never a
    person's: an API key, message injection or access token, whose client the re-auth
    page does not serve; they get the 403 whatever they accept."""
    if decision.ok:
        return None
    if isinstance(decision, ReauthUnavailable) and decision.reason in FOR_GOOD:
        if (
            decision.reason is UnavailableReason.UNREACHABLE
            and client_kind(request) is Client.BROWSER
        ):
            return _see_other(reauth_location(reauth_url, request.path, decision.action))
        return unreachable_response(decision, request)
    if isinstance(decision, ReauthUnavailable):
        return _json(
            503,
            error_body(request, "reauth_unavailable", action=decision.action),
            {"Retry-After": RETRY_AFTER, "Cache-Control": "no-store"},
        )
    assert isinstance(decision, ReauthRequired)
    kind = client_kind(request)
    if kind is Client.BEARER and decision.channel is not Channel.API:
        # An API key sent as "Bearer ak_...": no authorization server issued it, so no
        # RFC 9470 challenge; the subject's channel decides, not the header's scheme.
        kind = Client.JSON
    location = reauth_location(reauth_url, request.path, decision.action, decision.transaction)
    if kind is Client.BROWSER:
        return _see_other(location)
    return reauth_required(decision, request, bearer=kind is Client.BEARER, reauth_url=location)


def _see_other(location: str) -> HttpResponse:
    return HttpResponse(303, {"Location": location, "Cache-Control": "no-store"})


def reauth_required(
    decision: ReauthRequired, request: RequestInfo, *, bearer: bool, reauth_url: str = ""
) -> HttpResponse:
    """The 401 ``reauth_required`` of a script (or, ``bearer``, of an access token's
    client: with the RFC 9470 challenge, :func:`step_up_challenge`), saying how to
    re-authenticate in :func:`reauth_members`; ``reauth_url``, the page a session's
    client opens (``""``: none, a token's client has no page)."""
    payload = error_body(
        request,
        "reauth_required",
        action=decision.action,
        **reauth_members(decision, bearer=bearer),
    )
    if reauth_url:
        payload["reauth_url"] = reauth_url
    headers = {"Cache-Control": "no-store"}
    if bearer:
        headers["WWW-Authenticate"] = step_up_challenge(decision)
    return _json(401, payload, headers)


def reauth_members(decision: ReauthRequired, *, bearer: bool = False) -> dict[str, Any]:
    """How to re-authenticate, as every JSON answer to a :class:`ReauthRequired` says it
    (the guard's 401 and the status endpoint's ``required`` answer): ``sensitivity``;
    ``methods``, the alternative the re-auth page asks for; ``alternatives``, every way
    the rule accepts; ``last_reauth_at``; ``level``, the level of assurance missing, when
    one is; ``max_age`` (the rule's lifetime) and, with a level, ``acr_values``, or for
    a ``bearer`` client what its RFC 9470 challenge asks, no more
    (:func:`challenge_params`); ``transaction``, a bound rule's digest; ``enrol``, what
    to add first (a passkey, TOTP), when the user has none of the rule's factors."""
    members: dict[str, Any] = {
        "sensitivity": decision.sensitivity.value,
        "methods": list(decision.methods),
        "alternatives": [list(alternative) for alternative in decision.alternatives],
        "last_reauth_at": decision.last_reauth_at,
    }
    if decision.level:
        members["level"] = decision.level
    if bearer:
        members.update(challenge_params(decision))
    else:
        members["max_age"] = int(decision.lifetime)
        if decision.level:
            members["acr_values"] = list(decision.acr_values)
    if decision.transaction:
        members["transaction"] = decision.transaction
    if decision.enrol:
        members["enrol"] = list(decision.enrol)
    return members


def challenge_max_age(decision: ReauthRequired) -> int:
    """The ``max_age`` a bearer client is asked for: the rule's lifetime in seconds when
    the authentication is too old or absent; ``0`` when it is recent and only a new one
    can prove what is missing (OIDC Core 3.1.2.1: the user must be actively
    re-authenticated; the lifetime would not make an authorization server that honours
    ``max_age`` prompt, and it would hand back the same ``auth_time`` and ``amr``)."""
    return int(decision.lifetime) if decision.stale else 0


def challenge_params(decision: ReauthRequired) -> dict[str, Any]:
    """What the RFC 9470 section 3 challenge asks for, as a bearer answer's JSON body
    carries it: ``acr_values`` (a list, in order of preference) when a level of assurance
    is asked for, ``max_age`` (:func:`challenge_max_age`) when the authentication is too
    old or absent, or recent but nothing else says what would do (no ``acr`` value would
    satisfy: a new authentication, however recent the last one, must prove the methods).
    :func:`step_up_challenge` writes the same into the header, so the two never differ."""
    asked: dict[str, Any] = {}
    if decision.level and decision.acr_values:
        asked["acr_values"] = list(decision.acr_values)
    if decision.stale or not asked:
        asked["max_age"] = challenge_max_age(decision)
    return asked


def step_up_challenge(decision: ReauthRequired) -> str:
    """The RFC 9470 section 3 challenge, asking for :func:`challenge_params`:
    ``acr_values`` space-separated, ``max_age`` quoted (as RFC 9470's examples)."""
    asked = challenge_params(decision)
    params = ['Bearer error="insufficient_user_authentication"']
    if decision.stale:
        params.append('error_description="A more recent authentication is required"')
    elif "acr_values" in asked:
        params.append('error_description="A different authentication level is required"')
    else:
        params.append('error_description="A different authentication is required"')
    if "acr_values" in asked:
        params.append(f"acr_values={quoted(' '.join(asked['acr_values']))}")
    if "max_age" in asked:
        params.append(f'max_age="{asked["max_age"]}"')
    return ", ".join(params)


def quoted(value: str) -> str:
    """An auth-param value as an RFC 9110 quoted-string: ``\\`` and ``"`` escaped.
    Anything but printable ASCII (a CR or LF above all: header injection) is refused,
    never sent."""
    if _PRINTABLE.fullmatch(value) is None:
        raise ConfigurationError("a WWW-Authenticate value must be printable ASCII")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


_PRINTABLE: Final = re.compile(r"[\x20-\x7e]*")


def bearer_token(request: RequestInfo) -> str | None:
    """The token of an ``Authorization: Bearer`` header (RFC 6750 section 2.1), or
    ``None`` when there is none or it is not in the b64token syntax."""
    header = request.authorization
    if header[:7].lower() != "bearer ":
        return None
    token = header[7:].strip(" \t")  # 1*SP before, optional whitespace after
    if not token or _B64TOKEN.fullmatch(token) is None:
        return None
    return token


_B64TOKEN: Final = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
#: A ``Bearer`` credential after a comma: several headers folded, one of them Bearer (a
#: ``Digest`` or AWS SigV4 header's own commas are followed by its parameters).
_FOLDED_BEARER: Final = re.compile(r",[ \t]*bearer(?![^ \t,])", re.IGNORECASE)
#: Longer credentials are refused unread (an access token is at most 16 KiB here).
_MAX_AUTHORIZATION: Final = 16 * 1024 + 64


def bearer_credentials(request: RequestInfo, *, realm: str = BEARER_REALM) -> str | HttpResponse:
    """The bearer token of a request to a bearer-protected endpoint (RFC 6750 section
    2.1), or the answer when there is none to use:

    - no ``Authorization`` header, or another scheme (``Basic``, ``Digest``, AWS
      SigV4..., whose credentials may hold commas): ``401``
      ``WWW-Authenticate: Bearer realm="<realm>"`` without an error code (section 3.1);
      a token in the query string (``access_token``, section 2.3) is never read;
    - the ``Bearer`` scheme (any case, RFC 9110 section 11.1) with no token, a token
      outside the b64token syntax, several credentials (headers folded with ``,``) of
      which one is ``Bearer``, or a token in the header and the query string at once
      (its decoded name: ``access%5Ftoken`` too):
      ``400 invalid_request``. A form body's ``access_token`` (section 2.2) is not seen
      here: :class:`RequestInfo` carries no body;
    - credentials longer than any access token: ``401 invalid_token``, unread.
    """
    header = request.authorization
    if not header:
        return token_required(request, realm=realm)
    scheme = header.split(" ", 1)[0]
    if scheme.lower() != "bearer" and _FOLDED_BEARER.search(header) is None:
        return token_required(request, realm=realm)  # another scheme, alone
    if len(header) > _MAX_AUTHORIZATION:  # no access token is that long: unread
        return invalid_token(InvalidTokenError(TokenFault.MALFORMED), request)
    token = bearer_token(request)
    if token is None or _query_token(request.path):
        return invalid_request(request)
    return token


def _query_token(path: str) -> bool:
    """Does the query string carry an ``access_token`` (RFC 6750 section 2.3)? Decided
    on the decoded names, as the application reads them (``access%5Ftoken`` is one)."""
    query = path.partition("?")[2]
    if "access_token" not in query and "%" not in query:
        return False  # without a percent-escape, decoding cannot make the name
    pairs = parse_qsl(query, keep_blank_values=True, errors="surrogateescape")
    return any(name == "access_token" for name, _ in pairs)


#: What an ``invalid_token`` challenge says, by failed check (never the token itself).
_INVALID_TOKEN_TEXT: Final = {
    TokenFault.EXPIRED: "The access token expired",
    TokenFault.AUDIENCE: "The access token is not meant for this resource",
    TokenFault.INACTIVE: "The access token is not active",
}


def token_required(request: RequestInfo, *, realm: str = BEARER_REALM) -> HttpResponse:
    """401 for a request to a bearer-protected endpoint without a usable bearer token:
    ``WWW-Authenticate: Bearer realm="<realm>"`` and no error code (RFC 6750 section
    3.1)."""
    headers = {"Cache-Control": "no-store", "WWW-Authenticate": bearer_challenge(realm)}
    return _json(401, error_body(request, "authentication_required"), headers)


def invalid_token(error: InvalidTokenError, request: RequestInfo) -> HttpResponse:
    """401 with ``WWW-Authenticate: Bearer error="invalid_token"`` (RFC 6750 section 3.1):
    the client should get a new token. ``error_description`` names the kind of failure."""
    text = _INVALID_TOKEN_TEXT.get(error.fault, "The access token is invalid")
    headers = {
        "Cache-Control": "no-store",
        "WWW-Authenticate": f'Bearer error="invalid_token", error_description="{text}"',
    }
    return _json(401, error_body(request, "invalid_token", reason=error.fault.value), headers)


def invalid_transaction(request: RequestInfo) -> HttpResponse:
    """400 for a transaction-bound request whose parameters cannot be hashed (too large,
    not JSON values: :class:`~stepup.integrations.transaction.InvalidTransactionError`).
    Nothing was checked, spent or kept: the request itself is malformed."""
    return _json(400, error_body(request, "invalid_transaction"), {"Cache-Control": "no-store"})


def invalid_request(request: RequestInfo) -> HttpResponse:
    """400 with ``WWW-Authenticate: Bearer error="invalid_request"`` (RFC 6750 section
    3.1): the credentials are malformed, repeated or sent by more than one method."""
    headers = {
        "Cache-Control": "no-store",
        "WWW-Authenticate": (
            'Bearer error="invalid_request", '
            'error_description="The bearer credentials are malformed"'
        ),
    }
    return _json(400, error_body(request, "invalid_request"), headers)


def insufficient_scope(request: RequestInfo, scope: tuple[str, ...]) -> HttpResponse:
    """403 with ``WWW-Authenticate: Bearer error="insufficient_scope", scope="..."``
    (RFC 6750 section 3.1): the token is valid but was not granted ``scope``; a new
    authentication would not help, a token with that scope would."""
    challenge = (
        'Bearer error="insufficient_scope", '
        'error_description="The access token lacks a required scope", '
        f"scope={quoted(' '.join(scope))}"
    )
    headers = {"Cache-Control": "no-store", "WWW-Authenticate": challenge}
    return _json(403, error_body(request, "insufficient_scope", scope=list(scope)), headers)


def token_unavailable(request: RequestInfo) -> HttpResponse:
    """503 when the issuer's keys or introspection could not be read (fail closed)."""
    headers = {"Retry-After": RETRY_AFTER, "Cache-Control": "no-store"}  # as every token answer
    return _json(503, error_body(request, "reauth_unavailable"), headers)
