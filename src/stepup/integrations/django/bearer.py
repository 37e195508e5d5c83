"""Django: guard an API view with a bearer access token (RFC 9470 step-up)::

    guard = BearerGuard(Reauth(store, policy), validator)

    @csrf_exempt  # a bearer token is not sent by the browser on its own
    @bearer_required(guard, "workspace.delete")
    def delete(request: HttpRequest, name: str) -> HttpResponse:
        token = request.stepup_token  # the validated stepup.tokens.AccessToken
        ...

A refused request never reaches the view: it gets the 401 (``invalid_token`` or
``insufficient_user_authentication`` with ``acr_values``/``max_age``) or 503 that
:class:`~stepup.integrations.bearer.BearerGuard` built, its ``title`` in the locale of
the project's stepup pages (``STEPUP["LOCALE_SELECTOR"]``, the language
``LocaleMiddleware`` activated, then ``Accept-Language``) when ``StepupMiddleware`` is
installed; without it, in the ``Accept-Language``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeVar, cast

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.http import HttpRequest
from django.http import HttpResponse as DjangoResponse

from ..bearer import BearerGuard, required_scope
from ..http import HttpResponse
from ..marks import mark
from ._web import request_info, to_response, uncacheable_response

__all__ = ["bearer_required"]

F = TypeVar("F", bound=Callable[..., Any])


def _pages_locale(request: HttpRequest) -> str:
    """The locale of the project's stepup pages for this request
    (``request.stepup.locale()``: its ``LOCALE_SELECTOR``, the language
    ``LocaleMiddleware`` activated, then ``Accept-Language``), when ``StepupMiddleware``
    put stepup on it; ``""`` (the ``Accept-Language`` decides)
    without it. Called only for a refusal's ``title``."""
    locale = getattr(getattr(request, "stepup", None), "locale", None)
    chosen = locale() if callable(locale) else ""
    return chosen if isinstance(chosen, str) else ""


def bearer_required(
    guard: BearerGuard,
    action: str,
    *,
    context: Callable[..., Mapping[str, Any]] | None = None,
    scope: str | Collection[str] = (),
) -> Callable[[F], F]:
    """A decorator for a view, sync or ``async def`` (awaited): it runs only when the
    bearer token allows ``action`` (checked against the policy now, so a typo fails at
    import). ``context`` is called with the request and the view's keyword arguments,
    once the token is valid (a request without one gets its 401 or 400 first, never the
    context's 404). The token is set as ``request.stepup_token``.
    ``scope``: what the token must have been granted (else 403 ``insufficient_scope``)."""
    policy = getattr(guard.reauth, "policy", None)
    if policy is not None:
        policy.validate([action])
    needed = required_scope(scope)

    def refusal(request: HttpRequest, kwargs: dict[str, Any]) -> DjangoResponse | None:
        """The answer to a request the token does not allow; ``None`` once it is
        ``request.stepup_token``."""
        info = request_info(request).in_locale(functools.partial(_pages_locale, request))
        token = guard.authenticate(info)
        if isinstance(token, HttpResponse):
            return to_response(token)  # before the context: it may look the target up
        values = context(request, **kwargs) if context is not None else None
        outcome = guard.decide(token, info, action, values, scope=needed)
        if isinstance(outcome, HttpResponse):
            return to_response(outcome)
        request.stepup_token = outcome
        return None

    def decorate(view: F) -> F:
        if iscoroutinefunction(view):
            # The token source and the app's context are sync code (a context reads the
            # ORM): they run in sync_to_async's worker, as the session decorator's check
            # does, never on the event loop; then the view is awaited.
            check = sync_to_async(refusal)

            @functools.wraps(view)
            async def guarded_async(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                refused = await check(request, kwargs)
                if refused is not None:
                    return refused
                return uncacheable_response(await view(request, *args, **kwargs))

            mark(guarded_async, action)
            return cast(F, guarded_async)

        @functools.wraps(view)
        def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            refused = refusal(request, kwargs)
            if refused is not None:
                return refused
            return uncacheable_response(view(request, *args, **kwargs))

        mark(guarded, action)
        return cast(F, guarded)

    return decorate
