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

__all__ = ["SignInRequiredError", "Stepup", "StepupMiddleware", "get_stepup", "require_token"]
_ = AccessToken  # re-exported for annotations: ``token: AccessToken = Depends(...)``

Dependency = Callable[..., Awaitable[Allowed]]
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class Stepup(StarletteStepup):
    """:class:`stepup.integrations.starlette.Stepup` with FastAPI dependencies."""

    def require_reauth(
        self, action: str, *, context: Callable[..., Any] | None = None
    ) -> Dependency:
        """A dependency that returns the ``Allowed`` decision or stops the request.

        The action name is checked now, so a typo fails when the app starts.
        ``context`` is itself a FastAPI dependency (it may take path parameters, other
        dependencies...) returning the rule's context, e.g.
        ``{"workspace_type": "full"}``.
        """
        self.policy.validate([action])
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
