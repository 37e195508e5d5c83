"""Django's request in, Django's response out: the only translation this package does."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import resolve_url
from django.urls import NoReverseMatch, get_script_prefix

from ...redirects import safe_return_path_or_default
from ..cache_control import uncacheable
from ..http import Client, RequestInfo, authentication_required, client_kind
from ..http import HttpResponse as NeutralResponse
from ..views import app_root

__all__ = [
    "home_path",
    "request_info",
    "sign_in_path",
    "sign_in_response",
    "to_response",
    "uncacheable_response",
]


def request_info(request: HttpRequest, *, path: str | None = None) -> RequestInfo:
    """What :func:`stepup.integrations.http.decision_response` reads. ``path`` is the
    location to come back to (default: this request's path and query)."""
    where = request.get_full_path() if path is None else path
    return RequestInfo.from_headers(request.method or "GET", where, request.headers)


def home_path() -> str:
    """The project's root, where a missing or unsafe return location goes: Django's
    script prefix (``FORCE_SCRIPT_NAME``, the server's ``SCRIPT_NAME`` or ASGI
    ``root_path``), ``/`` at the top of the site."""
    return app_root(get_script_prefix())


def sign_in_path() -> str:
    """The project's sign-in page, where "Sign in again" leads: ``settings.LOGIN_URL``
    resolved as Django's ``redirect_to_login`` resolves it (a URL name or a path), else
    :func:`home_path`."""
    login_url = getattr(settings, "LOGIN_URL", None)
    if not login_url:
        return home_path()
    try:
        return str(resolve_url(login_url))
    except NoReverseMatch:  # a name no URLconf has: Django's redirect would fail too
        return home_path()


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
    return to_response(authentication_required(info))


def uncacheable_response(response: Any) -> Any:
    """``response`` made one no cache keeps (``Cache-Control: private, no-store``, the
    view's other directives kept: :func:`~stepup.integrations.cache_control.uncacheable`):
    what a guard let through is this person's, now. Django's cache middleware and
    ``cache_page`` then never store it (they skip a ``private`` response), nor does a
    browser or a proxy. Anything that is not a response is returned as it is."""
    if isinstance(response, HttpResponseBase):
        given = response.get("Cache-Control")
        marked = uncacheable(given)
        if marked != given:  # the decorator's mark, seen again by the middleware: kept
            response["Cache-Control"] = marked
    return response
