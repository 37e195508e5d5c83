"""Small translations between Starlette and the framework-neutral pieces."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeAlias, TypeVar

from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from ...errors import ConfigurationError
from ...subject import Subject
from ..cache_control import uncacheable
from ..http import HttpResponse, RequestInfo

__all__ = [
    "GUARDED",
    "MaybeAwaitable",
    "call_hook",
    "is_awaitable",
    "request_info",
    "session_of",
    "to_response",
    "uncacheable_headers",
    "uncacheable_response",
]

T = TypeVar("T")
MaybeAwaitable: TypeAlias = T | Awaitable[T]


#: What hooks answer most (a subject, a tenant id, nothing): known not to be awaitable.
#: Looking ``__await__`` up on a type that lacks it builds and drops an AttributeError.
_PLAIN_ANSWERS = frozenset({type(None), str, Subject})


def is_awaitable(value: object) -> bool:
    """``inspect.isawaitable`` for hook results, without its slow ABC check (this runs on
    every guarded request)."""
    cls = type(value)
    return cls not in _PLAIN_ANSWERS and hasattr(cls, "__await__")


async def call_hook(hook: Callable[..., MaybeAwaitable[T]], *args: Any) -> T:
    """Call an app hook that may be sync or async (async hooks keep I/O off the loop)."""
    result = hook(*args)
    if is_awaitable(result):
        return await result  # type: ignore[no-any-return,misc]
    return result  # type: ignore[return-value]


def request_info(request: HTTPConnection, path: str | None = None) -> RequestInfo:
    """What the answer depends on; ``path`` is where to come back (default: this URL).
    A websocket's is its handshake's, a ``GET``."""
    if path is None:
        query = request.scope.get("query_string", b"").decode("latin-1")
        path = request.url.path + (f"?{query}" if query else "")
    return RequestInfo.from_headers(request.scope.get("method", "GET"), path, request.headers)


def to_response(response: HttpResponse) -> Response:
    return Response(response.body, status_code=response.status, headers=response.headers)


def session_of(request: Request) -> dict[str, Any]:
    """Starlette's session; the sign-in code step and SSO codes keep state there."""
    if "session" not in request.scope:
        raise ConfigurationError("stepup needs starlette.middleware.sessions.SessionMiddleware")
    return request.session


#: The scope key a guard sets on a request it let through: the middleware sends its
#: response uncacheable (``Cache-Control: private, no-store``, ASVS 5.0 14.3.2).
GUARDED: Final = "stepup.guarded"
#: The ``Cache-Control`` header of a guarded response that had none (the usual case).
_UNCACHEABLE: Final = (b"cache-control", uncacheable(None).encode("latin-1"))


def uncacheable_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """ASGI ``headers`` with their ``Cache-Control`` (any number of them) made one that no
    cache may keep the response by: the answer to a request a guard let through (see
    :mod:`stepup.integrations.cache_control`). On every such response: one pass, and
    the value parsed only when the app gave one."""
    given = [value for name, value in headers if name.lower() == b"cache-control"]
    if not given:
        return [*headers, _UNCACHEABLE]
    value = uncacheable(b", ".join(given).decode("latin-1")).encode("latin-1")
    kept = [(name, v) for name, v in headers if name.lower() != b"cache-control"]
    return [*kept, (b"cache-control", value)]


def uncacheable_response(response: object) -> None:
    """Make ``response`` (when it is a Starlette ``Response``) one no cache may keep."""
    if isinstance(response, Response):
        response.raw_headers[:] = uncacheable_headers(response.raw_headers)
