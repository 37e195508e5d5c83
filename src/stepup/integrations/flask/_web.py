"""Flask's request in, Flask's response out: the only translation this package does."""

from __future__ import annotations

from flask import Request, Response, current_app, request, url_for
from werkzeug.routing import BuildError

from ..cache_control import uncacheable
from ..http import HttpResponse, RequestInfo
from ..views import app_root

__all__ = [
    "home_path",
    "request_info",
    "sign_in_path",
    "to_response",
    "uncacheable_response",
]


def request_info(request: Request, *, path: str | None = None) -> RequestInfo:
    """What :func:`stepup.integrations.http.decision_response` reads. ``path`` is the
    location to come back to (default: this request's path and query)."""
    if path is None:
        path = request.script_root + request.path
        if request.query_string:
            path += "?" + request.query_string.decode("latin-1")
    return RequestInfo.from_headers(request.method, path, request.headers)


def home_path() -> str:
    """The app's root, where a missing or unsafe return location goes: ``/`` under the
    path the app is served at (``request.script_root``: ``SCRIPT_NAME``, Werkzeug's
    ``DispatcherMiddleware``)."""
    return app_root(request.script_root)


def sign_in_path() -> str:
    """The app's sign-in page, where "Sign in again" leads: the view Flask-Login's
    ``unauthorized()`` sends a browser to (``login_manager.login_view``, or its
    ``blueprint_login_views`` entry for this blueprint; an endpoint, or a URL as
    Flask-Login takes it) when the app has one, else :func:`home_path`."""
    manager = getattr(current_app, "login_manager", None)
    view = getattr(manager, "login_view", None)
    per_blueprint = getattr(manager, "blueprint_login_views", None)
    if isinstance(per_blueprint, dict) and request.blueprint in per_blueprint:
        view = per_blueprint[request.blueprint]
    if not isinstance(view, str) or not view:
        return home_path()
    if view.startswith(("https://", "http://", "/")):  # a URL, as Flask-Login takes it
        return view
    try:
        return url_for(view)
    except BuildError:  # no such endpoint: Flask-Login's own redirect would fail too
        return home_path()


def to_response(response: HttpResponse) -> Response:
    return Response(response.body, status=response.status, headers=response.headers)


def uncacheable_response(response: Response) -> Response:
    """What a guard let through is this person's, now: no cache may keep it."""
    headers = response.headers
    value = headers.get("Cache-Control")
    if value is None:  # most views set none: one header added, nothing replaced
        headers.add("Cache-Control", uncacheable(None))
    else:
        headers["Cache-Control"] = uncacheable(value)
    return response
