"""FastAPI: a dependency that guards an endpoint with a bearer access token (RFC 9470)::

    guard = BearerGuard(AsyncReauth(store, policy), validator)

    delete_token = Depends(require_token(guard, "workspace.delete"))

    @app.delete("/api/workspaces/{name}")
    async def delete(name: str, token: AccessToken = delete_token) -> dict[str, str]:
        ...

A refused request raises FastAPI's ``HTTPException`` with the status and
``WWW-Authenticate`` header :class:`~stepup.integrations.bearer.BearerGuard` built (401
``invalid_token`` or ``insufficient_user_authentication`` with ``acr_values``/``max_age``;
503), so it needs no middleware; the JSON body is FastAPI's ``{"detail": {...}}``, its
``title`` in the locale of the app's stepup pages when the app has stepup's middleware
(see :mod:`stepup.integrations.starlette.bearer`), else in the ``Accept-Language``.

On a websocket route a refused connection is closed before it is accepted, as
``Stepup.require_reauth`` closes one (``WebSocketException``): 1008 with the JSON
answer's ``error`` as its reason (``invalid_token``, ``reauth_required``...), 1013 when
the keys or the store could not answer.

An allowed request's response is sent with ``Cache-Control: private, no-store``
(ASVS 5.0 14.3.2): the dependency sets it on FastAPI's ``Response`` (which FastAPI adds
to what the endpoint returns, unless that is a ``Response`` itself) and marks the
request, for which stepup's middleware (``Stepup.install``, or
``UncacheableMiddleware`` in an app guarded by tokens alone) writes it on any response.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any

from fastapi import Depends, HTTPException, Response, WebSocketException
from starlette.requests import HTTPConnection

from ..tokens import AccessToken
from .bearer import BearerGuard, required_scope
from .cache_control import uncacheable
from .http import HttpResponse
from .marks import mark
from .starlette._util import request_info
from .starlette.bearer import _titled
from .starlette.stepup import GUARDED, POLICY_VIOLATION, TRY_AGAIN_LATER

__all__ = ["require_token"]

#: The ``Cache-Control`` of an allowed request's response.
_UNCACHEABLE = uncacheable(None)


async def _refuse(
    connection: HTTPConnection, response: HttpResponse
) -> HTTPException | WebSocketException:
    """The guard's refusal as FastAPI's ``HTTPException``, titled as the pages read; for
    a websocket, the ``WebSocketException`` that closes it before it is accepted (1013
    for the 503, else 1008; the reason is the JSON answer's ``error``)."""
    if connection.scope["type"] == "websocket":
        error = json.loads(response.body).get("error", "")
        code = TRY_AGAIN_LATER if response.status == 503 else POLICY_VIOLATION
        return WebSocketException(code, error if isinstance(error, str) else "")
    titled = await _titled(connection, response)  # type: ignore[arg-type]
    headers = {k: v for k, v in titled.headers.items() if k != "Content-Type"}
    return HTTPException(titled.status, json.loads(titled.body), headers=headers)


def _let_through(connection: HTTPConnection, response: Response) -> None:
    """Send the response of a request the guard allowed uncacheable: on FastAPI's
    ``Response`` (merged into what the endpoint returns, unless that is a ``Response``)
    and, through the mark, by stepup's middleware on any response."""
    connection.scope[GUARDED] = True
    response.headers["cache-control"] = _UNCACHEABLE


def require_token(
    guard: BearerGuard,
    action: str,
    *,
    context: Callable[..., Any] | None = None,
    scope: str | Collection[str] = (),
) -> Callable[..., Awaitable[AccessToken]]:
    """A dependency returning the validated :class:`~stepup.tokens.AccessToken` when it
    allows ``action`` (checked against the policy now). ``context`` is itself a FastAPI
    dependency returning the rule's context, resolved once the token is valid (a request
    without one gets its 401 or 400 first, never the context's 404).
    ``scope``: what the token must have been granted (else 403 ``insufficient_scope``).
    It guards a websocket route too (closed before it is accepted when refused)."""
    policy = getattr(guard.reauth, "policy", None)
    if policy is not None:
        policy.validate([action])
    needed = required_scope(scope)

    if context is None:

        async def require(request: HTTPConnection, response: Response) -> AccessToken:
            outcome = await guard.acheck(request_info(request), action, scope=needed)
            if isinstance(outcome, HttpResponse):
                raise await _refuse(request, outcome)
            _let_through(request, response)
            return outcome

        mark(require, action)
        return require

    # FastAPI resolves a dependency's own dependencies in the order they are declared, and
    # one that raises stops the rest: the token comes first, so a request without a valid
    # one gets its 401 (or 400, 503) before the app's context, which may look the target
    # up (a 404 would tell a stranger what exists; RFC 6750 section 3).
    async def authenticated(request: HTTPConnection) -> AccessToken:
        token = await guard.aauthenticate(request_info(request))
        if isinstance(token, HttpResponse):
            raise await _refuse(request, token)
        return token

    async def require_in_context(
        request: HTTPConnection,
        response: Response,
        token: AccessToken = Depends(authenticated),  # noqa: B008 (FastAPI DI)
        values: Mapping[str, Any] = Depends(context),
    ) -> AccessToken:
        outcome = guard.decide(token, request_info(request), action, values, scope=needed)
        if isinstance(outcome, HttpResponse):
            raise await _refuse(request, outcome)
        _let_through(request, response)
        return outcome

    mark(require_in_context, action)
    return require_in_context
