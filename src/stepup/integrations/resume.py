"""Resumed requests and the re-auth status endpoint, the same in every framework.

- A browser form POST that the guard refuses is suspended (:mod:`stepup.resume`) and
  its token rides along to the re-auth page (``?resume=...``, then a hidden field).
  The 303 that kept it sets :data:`BROWSER_COOKIE` (a random value per browser; the
  store keeps its digest with the form). After the re-authentication the integration
  takes the form back, and only when this browser presents that cookie renders
  ``stepup/resume.html``: a form with the saved fields and a fresh CSRF token (only for
  a request whose own token held when it was kept) that the browser submits at once
  (``stepup-reauth.js``, or the Continue button without JavaScript). The replay is a
  new POST, so the app's own CSRF check and the guard run on it again. A form another
  browser sent (someone with a copy of the session cookie) is discarded and
  ``stepup/not_resumed.html`` says so.
- ``GET .../reauth/status?action=...`` answers whether the action needs a
  re-authentication now, and how, without performing it (:func:`status_response`).
- ``stepup-reauth.js``, served by each integration, is the single-page apps' helper.

Nothing here decides: the decisions are the core's.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, ClassVar, Final, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..reauth import Allowed, Decision, ReauthRequired, ReauthUnavailable, UnavailableReason
from ..redirects import safe_return_path_or_default
from ..resume import TTL, NotResumed, Resumed, SuspendedRequest, SuspendReason, is_resume_token
from ..subject import Subject
from .http import (
    HttpResponse,
    RequestInfo,
    authentication_required,
    error_body,
    reauth_location,
    reauth_members,
    retry_later,
    unreachable_response,
)

__all__ = [
    "BROWSER_COOKIE",
    "DONE_MESSAGE",
    "RESUME_FIELD",
    "SCRIPT",
    "BindingCookie",
    "DonePage",
    "NotResumedPage",
    "ResumeClaim",
    "ResumePage",
    "binding_cookie",
    "browser_binding",
    "note_resume_after_sso",
    "presented_binding",
    "resume_answer",
    "resume_claim",
    "resume_page",
    "retry_query",
    "script_response",
    "status_response",
    "take_resume_after_sso",
    "with_resume",
]

#: The query parameter and hidden form field carrying a suspended request's token.
RESUME_FIELD: Final = "resume"
#: The helper script's file name (served under each integration's prefix).
SCRIPT: Final = "stepup-reauth.js"
#: What the done page posts to the window that opened it.
DONE_MESSAGE: Final = "stepup:reauth-done"
#: The cookie that binds a kept form to the browser that sent it: a random value per
#: browser (HttpOnly, SameSite=Lax), set on the 303 that kept the form; the store keeps
#: only its digest. A copy of the session cookie elsewhere does not carry it.
BROWSER_COOKIE: Final = "stepup_resume"
#: The shape of a binding value stepup makes (``secrets.token_urlsafe(32)``: 43 characters).
_BINDING: Final = re.compile(r"[A-Za-z0-9_-]{32,64}")


def presented_binding(cookie: object) -> str:
    """The binding value a request's :data:`BROWSER_COOKIE` presents (``""``: none, or
    not one of stepup's making)."""
    return cookie if isinstance(cookie, str) and _BINDING.fullmatch(cookie) else ""


def browser_binding(cookie: object) -> str:
    """The binding for a form this browser sends now: the value its cookie already
    presents (so each tab's kept form stays this browser's), else a new random one."""
    return presented_binding(cookie) or secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class BindingCookie:
    """:data:`BROWSER_COOKIE` as each framework sets it on the 303 that kept a form:
    for the app's whole path, ``Secure`` on https, gone when no kept form can wait."""

    value: str = field(repr=False)
    path: str
    secure: bool
    max_age: int
    name: ClassVar[str] = BROWSER_COOKIE
    httponly: ClassVar[bool] = True
    samesite: ClassVar[str] = "Lax"

    def set_on(self, response: Any) -> None:
        """Set it on a Flask, Django or Starlette response: their ``set_cookie`` take
        the same names (and each reads ``SameSite`` without regard to case)."""
        response.set_cookie(
            self.name,
            self.value,
            max_age=self.max_age,
            path=self.path,
            secure=self.secure,
            httponly=self.httponly,
            samesite=self.samesite,
        )


def binding_cookie(value: str, *, root: str, secure: bool, ttl: float = TTL) -> BindingCookie:
    """The cookie for ``value``; ``root`` is the path the app is mounted at (``""``:
    the site's root)."""
    path = root if root.startswith("/") else "/"
    return BindingCookie(value, path, secure, max(1, int(ttl)))


@dataclass(frozen=True, slots=True)
class ResumeClaim:
    """The kept form a re-authentication is to send again, named but not taken yet: the
    integration takes it only once the grant is stored, so a store failure while
    recording the grant loses nothing (the next try still finds it). ``session_id`` is
    the session's id before the re-authentication renewed it."""

    token: str
    action: str
    session_id: str


def resume_claim(subject: Subject, token: object, action: str) -> ResumeClaim | None:
    """The claim on the kept form ``token`` names (``None``: no token of that shape)."""
    if not is_resume_token(token):
        return None
    assert isinstance(token, str)
    return ResumeClaim(token, action, subject.session_id)


class _Retried(Protocol):
    """What a re-auth page carries into its next try (``ReauthPage``)."""

    @property
    def next(self) -> str: ...

    @property
    def action(self) -> str: ...

    @property
    def resume(self) -> str: ...

    @property
    def transaction(self) -> str: ...


def retry_query(page: _Retried) -> str:
    """The re-auth page's query for another try (after a store failure): its ``next``,
    action, kept form and transaction, so the next try loses none of them."""
    query = {"next": page.next, "action": page.action}
    if page.resume:
        query["resume"] = page.resume
    if page.transaction:
        query["transaction"] = page.transaction
    return urlencode(query)


@dataclass(frozen=True, slots=True)
class NotResumedPage:
    """Shown instead of the replay when the kept form came from another browser: the
    re-authentication counts, the form is gone (nothing of it is shown), and ``next`` is
    where to go on."""

    next: str


def resume_answer(outcome: object, next_path: str) -> SuspendedRequest | NotResumedPage | None:
    """What follows a re-authentication: the kept form to send again, the page that says
    why it is not sent (it came from another browser), or ``None`` (nothing kept, or
    nothing that concerns this browser: go to ``next_path``)."""
    if isinstance(outcome, Resumed):
        return outcome.request
    if isinstance(outcome, NotResumed) and outcome.reason is SuspendReason.OTHER_BROWSER:
        return NotResumedPage(safe_return_path_or_default(next_path))
    return None


#: The session key of a kept form a SAML answer (posted cross-site, without the
#: SameSite=Lax binding cookie) left for the same-site resume view.
RESUME_AFTER_SSO: Final = "_stepup_resume_after_sso"


def note_resume_after_sso(
    session: MutableMapping[str, Any],
    session_id: str,
    token: str,
    action: str,
    now: float,
    *,
    key: str = RESUME_AFTER_SSO,
) -> None:
    """After a SAML re-authentication: the kept form ``token`` names waits for the
    resume view, where the browser's binding cookie is sent (a cross-site POST does not
    carry a SameSite=Lax cookie). Kept for this session id only; a later one replaces it."""
    session[key] = {"session": session_id, "token": token, "action": action, "at": now}


def _fresh(at: object, now: float, ttl: float) -> bool:
    """``0 <= now - at < ttl``, the core's rule for every lifetime (as ``views.is_fresh``)."""
    return isinstance(at, int | float) and not isinstance(at, bool) and 0 <= now - at < ttl


def take_resume_after_sso(
    session: MutableMapping[str, Any],
    session_id: str,
    now: float,
    *,
    ttl: float = TTL,
    key: str = RESUME_AFTER_SSO,
) -> tuple[str, str] | None:
    """The kept form's token and action :func:`note_resume_after_sso` left for this
    session id less than ``ttl`` seconds ago, used up either way."""
    noted = session.pop(key, None)
    if not isinstance(noted, dict) or noted.get("session") != session_id:
        return None
    token, action, at = noted.get("token"), noted.get("action"), noted.get("at")
    if not is_resume_token(token) or not isinstance(action, str) or not _fresh(at, now, ttl):
        return None
    assert isinstance(token, str)
    return token, action


@dataclass(frozen=True, slots=True)
class ResumePage:
    """The page that sends a suspended form again: ``path`` is where it posts,
    ``fields`` the saved fields (values out of reprs), ``csrf_name``/``csrf_value`` the
    app's CSRF field with a token made for this (renewed) session (``""``: none, the
    kept request had no valid one)."""

    path: str
    fields: tuple[tuple[str, str], ...] = field(repr=False)
    csrf_name: str
    csrf_value: str = field(repr=False)


def resume_page(request: SuspendedRequest, csrf_name: str, csrf_value: str) -> ResumePage:
    """The replay form; any field with the CSRF name that slipped through is dropped. It
    carries ``csrf_value`` only when the kept request passed the CSRF check: a forged
    form goes back without a token, and the app's check refuses it as it would have."""
    fields = tuple((n, v) for n, v in request.fields if n != csrf_name)
    return ResumePage(request.path, fields, csrf_name, csrf_value if request.csrf_checked else "")


@dataclass(frozen=True, slots=True)
class DonePage:
    """Shown in the window the helper opened, once the re-authentication succeeded: it
    tells the opener (same origin only) and hands it the renewed session's CSRF token."""

    csrf_token: str = field(repr=False)


def with_resume(response: HttpResponse, token: str) -> HttpResponse:
    """The 303 to the re-auth page, with the suspended request's token in its URL."""
    location = response.location
    if location is None:
        return response
    parts = urlsplit(location)
    query = urlencode([*parse_qsl(parts.query), (RESUME_FIELD, token)])
    headers = {**response.headers, "Location": urlunsplit(parts._replace(query=query))}
    return HttpResponse(response.status, headers, response.body)


def resume_token(values: Any) -> str | None:
    """The token a re-auth form or URL carries, if any."""
    token = values.get(RESUME_FIELD) if values is not None else None
    return token if isinstance(token, str) and token else None


def _json(status: int, payload: dict[str, Any]) -> HttpResponse:
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "Cache-Control": "no-store"}
    return HttpResponse(status, headers, body)


def status_response(
    decision: Decision | None,
    request: RequestInfo,
    *,
    reauth_url: str,
    done_path: str,
    action: str,
) -> HttpResponse:
    """The status endpoint's answer: 200 with ``required`` false (and until when the
    grant covers the action) or true (with the re-auth page to open, which comes back to
    ``done_path``, the SSO ``provider``, and how to re-authenticate in the members of the
    guard's 401 JSON, built by the same
    :func:`~stepup.integrations.http.reauth_members`: the methods, alternatives,
    lifetime, a missing level and its ``acr_values``, ``enrol``); 401 when nobody is
    signed in; 503 with ``Retry-After`` when the store could not answer; 403
    ``reauth_unreachable`` (the guard's answer) when no re-authentication of this
    session would allow it, which trying again does not change. Nothing is recorded or
    changed."""
    if decision is None:
        return authentication_required(request)
    if isinstance(decision, ReauthUnavailable):
        if decision.reason is not UnavailableReason.STORE:
            return unreachable_response(decision, request)
        return retry_later(_json(503, error_body(request, "reauth_unavailable", action=action)))
    if isinstance(decision, Allowed):
        return _json(
            200,
            {
                "action": action,
                "required": False,
                "reason": decision.reason.value,
                "valid_until": decision.valid_until,
            },
        )
    assert isinstance(decision, ReauthRequired)
    body = {
        "action": action,
        "required": True,
        # How, in the guard's 401 JSON's own words (one builder for both).
        **reauth_members(decision),
        "provider": decision.provider,
        "reauth_url": reauth_location(reauth_url, done_path, action),
    }
    return _json(200, body)


def status_action(actions: list[str]) -> str | None:
    """The one action a status question names (``""``: none), or ``None`` when it names
    ``action`` more than once (answer :func:`repeated_action_response`): frameworks read
    a repeated parameter differently (Flask the first, the others the last), so stepup
    reads none."""
    if len(actions) > 1:
        return None
    return actions[0] if actions else ""


def repeated_action_response() -> HttpResponse:
    """400 for a status question with more than one ``action`` parameter."""
    return _json(400, {"error": "repeated_action"})


def unknown_action_response(action: str) -> HttpResponse:
    """400 for a status question about an action the policy does not name."""
    return _json(400, {"error": "unknown_action", "action": action[:100]})


def transaction_bound_response(action: str) -> HttpResponse:
    """400 for a status question about a transaction-bound action: its answer depends on
    the one transaction, which a status question does not name (and a check would spend
    the proof)."""
    return _json(400, {"error": "transaction_bound", "action": action[:100]})


def script() -> bytes:
    """``stepup/integrations/static/stepup-reauth.js``."""
    return resources.files("stepup.integrations").joinpath(f"static/{SCRIPT}").read_bytes()


def script_response() -> HttpResponse:
    headers = {
        "Content-Type": "text/javascript; charset=utf-8",
        "Cache-Control": "public, max-age=3600",
    }
    return HttpResponse(200, headers, script())
