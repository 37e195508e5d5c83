"""Flask's request in, Flask's response out: the only translation this package does."""

from __future__ import annotations

from flask import Request, Response, request

from ..http import HttpResponse, RequestInfo
from ..views import app_root

__all__ = ["home_path", "request_info", "to_response"]


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


def to_response(response: HttpResponse) -> Response:
    return Response(response.body, status=response.status, headers=response.headers)
