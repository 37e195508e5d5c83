"""Starlette: guard an API endpoint with a bearer access token (RFC 9470 step-up)::

    guard = BearerGuard(AsyncReauth(store, policy), validator)

    @requires_token(guard, "workspace.delete")
    async def delete(request: Request) -> Response:
        token = request.state.stepup_token  # the validated stepup.tokens.AccessToken
        ...

For FastAPI, :func:`stepup.integrations.fastapi.require_token` is the same as a
dependency. A refused request never reaches the endpoint: it gets the 401
(``invalid_token`` or ``insufficient_user_authentication`` with ``acr_values``/
``max_age``) or 503 that :class:`~stepup.integrations.bearer.BearerGuard` built, its
``title`` in the locale of the app's stepup pages (its ``locale_selector``, then
``Accept-Language``) when the app has stepup's middleware (``Stepup.install``); without
it, in the ``Accept-Language``. The hook, which may be async, is awaited only for a
refusal.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..bearer import BearerGuard, required_scope
from ..http import HttpResponse, retitled
from ..marks import mark
from ._util import (
    GUARDED,
    MaybeAwaitable,
    call_hook,
    request_info,
    to_response,
    uncacheable_response,
)

__all__ = ["requires_token"]

Endpoint = Callable[[Request], Awaitable[Response]]


async def _titled(request: Request, refusal: HttpResponse) -> HttpResponse:
    """``refusal`` with its ``title`` in the locale of the app's stepup pages
    (``await stepup.locale(request)``, the ``Stepup`` its middleware put in the scope),
    as it is without one: the ``Accept-Language`` titled it."""
    locale = getattr(request.scope.get("stepup"), "locale", None)
    chosen = await call_hook(locale, request) if callable(locale) else ""
    return retitled(refusal, chosen) if isinstance(chosen, str) else refusal


def requires_token(
    guard: BearerGuard,
    action: str,
    *,
    context: Callable[[Request], MaybeAwaitable[Mapping[str, Any]]] | None = None,
    scope: str | Collection[str] = (),
) -> Callable[[Endpoint], Endpoint]:
    """A decorator for an async endpoint: it runs only when the bearer token allows
    ``action`` (checked against the policy now). ``context`` reads the rule's context
    from the request (e.g. its path parameters), sync or async as for
    :meth:`Stepup.requires_reauth`, once the token is valid (a request
    without one gets its 401 or 400 first, never the context's 404). The token is in
    ``request.state.stepup_token``.
    ``scope``: what the token must have been granted (else 403 ``insufficient_scope``)."""
    policy = getattr(guard.reauth, "policy", None)
    if policy is not None:
        policy.validate([action])
    needed = required_scope(scope)

    def decorate(endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def guarded(request: Request) -> Response:
            info = request_info(request)
            token = await guard.aauthenticate(info)
            if isinstance(token, HttpResponse):
                # Before the context: it may look the target up.
                return to_response(await _titled(request, token))
            values = await call_hook(context, request) if context is not None else None
            outcome = guard.decide(token, info, action, values, scope=needed)
            if isinstance(outcome, HttpResponse):
                return to_response(await _titled(request, outcome))
            request.state.stepup_token = outcome
            request.scope[GUARDED] = True  # an exception handler's answer too (middleware)
            response = await endpoint(request)
            uncacheable_response(response)  # served for this token, now: no cache keeps it
            return response

        mark(guarded, action)
        return guarded

    return decorate
