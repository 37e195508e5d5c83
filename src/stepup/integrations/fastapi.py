"""FastAPI integration: the Starlette one, plus dependencies.

::

    stepup = Stepup(store=..., secret_key=..., subject_loader=..., tenant_loader=...)
    app = FastAPI()
    stepup.install(app)  # StepupMiddleware + the views under /stepup

    @app.get("/api-key")
    async def read_key(allowed: Allowed = Depends(stepup.require_reauth("api_key.read"))):
        ...

A denied request never reaches the endpoint: the dependency raises the core's typed
error and :class:`StepupMiddleware` answers 303, 401 (JSON or RFC 9470) or 503.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import Depends, HTTPException, Request

from ..reauth import Allowed
from ..tokens import AccessToken
from ._bearer_deps import require_token
from .marks import mark
from .starlette import SignInRequiredError, StepupMiddleware, get_stepup
from .starlette import Stepup as StarletteStepup
from .transaction import Transaction, guard_transaction

__all__ = ["SignInRequiredError", "Stepup", "StepupMiddleware", "get_stepup", "require_token"]
_ = AccessToken  # re-exported for annotations: ``token: AccessToken = Depends(...)``

Dependency = Callable[..., Awaitable[Allowed]]
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


async def _no_context() -> None:
    """The context of a rule without a condition."""
    return


class Stepup(StarletteStepup):
    """:class:`stepup.integrations.starlette.Stepup` with FastAPI dependencies."""

    def require_reauth(
        self,
        action: str,
        *,
        context: Callable[..., Any] | None = None,
        transaction: Callable[..., Any] | None = None,
    ) -> Dependency:
        """A dependency that returns the ``Allowed`` decision or stops the request.

        The action name is checked now, so a typo fails when the app starts.
        ``context`` is itself a FastAPI dependency (it may take path parameters, other
        dependencies...) returning the rule's context, e.g.
        ``{"workspace_type": "full"}``. ``transaction`` is a FastAPI dependency too,
        returning the :class:`~stepup.integrations.transaction.Transaction` a rule with
        ``bind_transaction`` is about to do (the re-authentication then counts once, for
        that target only).
        """
        self.policy.validate([action])
        guard_transaction(self.policy, action, transaction)
        if transaction is not None:
            values_of = context if context is not None else _no_context

            async def require_transaction(
                request: Request,
                target: Transaction = Depends(transaction),  # noqa: B008 (FastAPI DI)
                values: Mapping[str, Any] | None = Depends(values_of),
            ) -> Allowed:
                return await self.require(request, action, values, transaction=target)

            mark(require_transaction, action)
            return require_transaction
        if context is None:

            async def require(request: Request) -> Allowed:
                return await self.require(request, action)

            mark(require, action)  # for stepup.testing.coverage
            return require

        async def require_in_context(
            request: Request, values: Mapping[str, Any] = Depends(context)
        ) -> Allowed:
            return await self.require(request, action, values)

        mark(require_in_context, action)
        return require_in_context

    def csrf_protected(self) -> Callable[..., Awaitable[None]]:
        """A dependency for the app's own state-changing endpoints: ``403`` unless the
        request carries this session's CSRF token (form field ``csrf_token`` or header
        ``X-CSRF-Token``; see :meth:`csrf_token`)."""

        async def protected(request: Request) -> None:
            form = None
            if request.headers.get("content-type", "").startswith(_FORM_TYPES):
                form = await request.form()
            if not await self.csrf_ok(request, form):
                raise HTTPException(403, "This form expired or did not come from this site.")

        return protected
