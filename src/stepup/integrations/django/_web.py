"""Django's request in, Django's response out: the only translation this package does."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from django.http import HttpRequest, HttpResponse

from ...redirects import safe_return_path_or_default
from ..http import Client, RequestInfo, client_kind
from ..http import HttpResponse as NeutralResponse

__all__ = ["form_return_path", "request_info", "sign_in_response", "to_response"]


def request_info(request: HttpRequest, *, path: str | None = None) -> RequestInfo:
    """What :func:`stepup.integrations.http.decision_response` reads. ``path`` is the
    location to come back to (default: this request's path and query)."""
    headers = request.headers
    return RequestInfo(
        method=request.method or "GET",
        path=request.get_full_path() if path is None else path,
        accept=headers.get("Accept", ""),
        authorization=headers.get("Authorization", ""),
        content_type=headers.get("Content-Type", ""),
        x_requested_with=headers.get("X-Requested-With", ""),
    )


def form_return_path(request: HttpRequest, return_to: Any) -> str | None:
    """Where to come back after re-authenticating: this page for GET; for a form POST
    (a redirect cannot repeat it) ``return_to``, else the page the form was on. The
    result still goes through :func:`stepup.redirects.safe_return_path_or_default`."""
    if request.method in {"GET", "HEAD"}:
        return None
    if return_to is not None:
        return str(return_to(request) if callable(return_to) else return_to)
    referrer = urlsplit(request.headers.get("Referer", ""))
    return (referrer.path + (f"?{referrer.query}" if referrer.query else "")) or "/"


def to_response(response: NeutralResponse) -> HttpResponse:
    native = HttpResponse(response.body, status=response.status)
    for name, value in response.headers.items():
        native[name] = value
    return native


def sign_in_response(request: HttpRequest) -> HttpResponse:
    """Nobody is signed in: browsers go to ``settings.LOGIN_URL``, API clients get 401."""
    info = request_info(request)
    kind = client_kind(info)
    if kind is Client.BROWSER:
        from django.contrib.auth.views import redirect_to_login

        return redirect_to_login(safe_return_path_or_default(info.path))
    response = HttpResponse(
        json.dumps({"error": "authentication_required"}),
        status=401,
        content_type="application/json",
    )
    response["Cache-Control"] = "no-store"
    if kind is Client.BEARER:
        response["WWW-Authenticate"] = "Bearer"
    return response
