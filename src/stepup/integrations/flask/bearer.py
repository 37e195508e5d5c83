"""Flask: guard an API view with a bearer access token (RFC 9470 step-up)::

    guard = BearerGuard(Reauth(store, policy), validator)

    @app.post("/api/workspaces/<name>/delete")
    @bearer_required(guard, "workspace.delete")
    def delete(name: str) -> Response:
        token = g.stepup_token  # the validated stepup.tokens.AccessToken
        ...

A refused request never reaches the view: it gets the 401 (``invalid_token`` or
``insufficient_user_authentication`` with ``acr_values``/``max_age``) or 503 that
:class:`~stepup.integrations.bearer.BearerGuard` built, its ``title`` in the locale of
the app's stepup pages (``@stepup.locale_selector``, then ``Accept-Language``).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeVar, cast

from flask import Response, after_this_request, current_app, g, request

from ..bearer import BearerGuard, required_scope
from ..http import HttpResponse
from ..marks import mark
from ._web import request_info, to_response, uncacheable_response

__all__ = ["bearer_required"]

F = TypeVar("F", bound=Callable[..., Any])


def _pages_locale() -> str:
    """The locale of the app's stepup pages for this request (its ``locale_selector``,
    then ``Accept-Language``), when the app has the stepup extension; ``""`` (the
    ``Accept-Language`` decides) without it. Called only for a refusal's ``title``."""
    locale = getattr(current_app.extensions.get("stepup"), "locale", None)
    chosen = locale() if callable(locale) else ""
    return chosen if isinstance(chosen, str) else ""


def bearer_required(
    guard: BearerGuard,
    action: str,
    *,
    context: Callable[..., Mapping[str, Any]] | None = None,
    scope: str | Collection[str] = (),
) -> Callable[[F], F]:
    """A decorator: the view (sync or ``async def``, which is awaited) runs only when the
    bearer token allows ``action`` (checked against the policy now, so a typo fails at
    import). ``context`` is called with the view's keyword arguments and returns the
    rule's context, once the token is valid (a request without one gets its 401 or 400
    first, never the context's 404). The token is in ``g.stepup_token``.
    ``scope``: what the token must have been granted (else 403 ``insufficient_scope``)."""
    policy = getattr(guard.reauth, "policy", None)
    if policy is not None:
        policy.validate([action])
    needed = required_scope(scope)

    def refusal(kwargs: dict[str, Any]) -> Response | None:
        """The answer to a request the token does not allow; ``None`` once it is in
        ``g.stepup_token``."""
        info = request_info(request).in_locale(_pages_locale)
        token = guard.authenticate(info)
        if isinstance(token, HttpResponse):
            return to_response(token)  # before the context: it may look the target up
        values = context(**kwargs) if context is not None else None
        outcome = guard.decide(token, info, action, values, scope=needed)
        if isinstance(outcome, HttpResponse):
            return to_response(outcome)
        g.stepup_token = outcome
        after_this_request(uncacheable_response)  # served for this token now: no cache keeps it
        return None

    def decorate(view: F) -> F:
        if inspect.iscoroutinefunction(view):
            # Flask runs an async view on an event loop of its own, one per call (asgiref's
            # async_to_sync): the check, sync as for a sync view, holds up no other
            # request there; then the view is awaited.
            @functools.wraps(view)
            async def guarded_async(*args: Any, **kwargs: Any) -> Any:
                refused = refusal(kwargs)
                if refused is not None:
                    return refused
                return await view(*args, **kwargs)

            mark(guarded_async, action)
            return cast(F, guarded_async)

        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            refused = refusal(kwargs)
            if refused is not None:
                return refused
            return view(*args, **kwargs)

        mark(guarded, action)
        return cast(F, guarded)

    return decorate
