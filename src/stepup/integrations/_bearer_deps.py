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
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any

from fastapi import Depends, HTTPException, Request

from ..tokens import AccessToken
from .bearer import BearerGuard, required_scope
from .http import HttpResponse
from .marks import mark
from .starlette._util import request_info
from .starlette.bearer import _titled

__all__ = ["require_token"]


async def _refuse(request: Request, response: HttpResponse) -> HTTPException:
    """The guard's refusal as FastAPI's ``HTTPException``, titled as the pages read."""
    titled = await _titled(request, response)
    headers = {k: v for k, v in titled.headers.items() if k != "Content-Type"}
    return HTTPException(titled.status, json.loads(titled.body), headers=headers)


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
    ``scope``: what the token must have been granted (else 403 ``insufficient_scope``)."""
    policy = getattr(guard.reauth, "policy", None)
    if policy is not None:
        policy.validate([action])
    needed = required_scope(scope)

    if context is None:

        async def require(request: Request) -> AccessToken:
            outcome = await guard.acheck(request_info(request), action, scope=needed)
            if isinstance(outcome, HttpResponse):
                raise await _refuse(request, outcome)
            return outcome

        mark(require, action)
        return require

    # FastAPI resolves a dependency's own dependencies in the order they are declared, and
    # one that raises stops the rest: the token comes first, so a request without a valid
    # one gets its 401 (or 400, 503) before the app's context, which may look the target
    # up (a 404 would tell a stranger what exists; RFC 6750 section 3).
    async def authenticated(request: Request) -> AccessToken:
        token = await guard.aauthenticate(request_info(request))
        if isinstance(token, HttpResponse):
            raise await _refuse(request, token)
        return token

    async def require_in_context(
        request: Request,
        token: AccessToken = Depends(authenticated),  # noqa: B008 (FastAPI DI)
        values: Mapping[str, Any] = Depends(context),
    ) -> AccessToken:
        outcome = guard.decide(token, request_info(request), action, values, scope=needed)
        if isinstance(outcome, HttpResponse):
            raise await _refuse(request, outcome)
        return outcome

    mark(require_in_context, action)
    return require_in_context
