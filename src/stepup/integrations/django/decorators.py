"""Protect a function view in one line, sync or async::

    @reauth_required("api_key.regenerate")
    def regenerate(request): ...

    @reauth_required("workspace.delete", context=lambda r: {"workspace_type": ...})
    async def delete_workspace(request, pk): ...

    @reauth_required("workspace.destroy", transaction=lambda r: Transaction(...))
    def destroy_workspace(request, name): ...

The action name is checked against the policy when the decorator runs (at import), so
a typo stops the project from starting instead of leaving the view unprotected.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest

from ..marks import mark
from ._request import ContextFunction, TransactionFunction, stepup_for
from ._web import uncacheable_response
from .services import validate_action, validate_transaction

__all__ = ["reauth_required"]

V = TypeVar("V", bound=Callable[..., Any])
ReturnTo = str | Callable[[HttpRequest], str] | None


def reauth_required(
    action: str,
    *,
    context: ContextFunction | None = None,
    return_to: ReturnTo = None,
    transaction: TransactionFunction | None = None,
) -> Callable[[V], V]:
    """The view runs only when the core allows ``action`` for this request now.

    ``context(request)`` feeds rules with a condition. ``return_to`` is where a non-GET
    request comes back after re-authenticating (default: the page the form was on).
    ``transaction(request)`` says what a rule with ``bind_transaction`` is about to do
    (a :class:`~stepup.integrations.transaction.Transaction`): the re-authentication
    then counts once, for that target only.

    What the view answers is sent ``Cache-Control: private, no-store`` (its other
    directives kept): no cache keeps it. Never put ``cache_page`` (or another cache)
    above this decorator: it would answer before the guard runs.
    """
    validate_action(action)
    validate_transaction(action, transaction)

    def decorator(view: V) -> V:
        if iscoroutinefunction(view):

            @wraps(view)
            async def protected_async(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                guard = stepup_for(request).aguard
                refusal = await guard(action, context, return_to, transaction)
                if refusal is not None:
                    return refusal
                return uncacheable_response(await view(request, *args, **kwargs))

            mark(protected_async, action)  # for stepup.testing.coverage
            return protected_async  # type: ignore[return-value]

        @wraps(view)
        def protected(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            refusal = stepup_for(request).guard(action, context, return_to, transaction=transaction)
            if refusal is not None:
                return refusal
            return uncacheable_response(view(request, *args, **kwargs))

        mark(protected, action)
        return protected  # type: ignore[return-value]

    return decorator
