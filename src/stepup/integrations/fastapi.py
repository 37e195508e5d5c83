"""FastAPI integration: the Starlette one, plus dependencies.

::

    stepup = Stepup(store=..., secret_key=..., subject_loader=..., tenant_loader=...)
    app = FastAPI()
    stepup.install(app)  # StepupMiddleware + the views under /stepup

    @app.get("/api-key")
    async def read_key(allowed: Allowed = Depends(stepup.require_reauth("api_key.read"))):
        ...

A denied request never reaches the endpoint: the dependency raises the core's typed
error and :class:`StepupMiddleware` answers 303, 401 (JSON or RFC 9470) or 503. On a
websocket route the dependency raises ``WebSocketException`` instead: the connection is
closed before it is accepted, 1008 (1013 when the store could not answer). An allowed
request's response is sent with ``Cache-Control: private, no-store`` (the dependency
marks the request; the middleware writes the header, also on a ``Response`` the endpoint
returns itself). A guarded route of a sub-app mounted in the app (``app.mount("/v1",
v1)``) needs ``stepup.install(v1)`` too: the sub-app's own error handling would answer
each refusal with a 500, so the dependency raises ``ConfigurationError`` without it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from .._extras import needs_extra

with needs_extra(__name__, "fastapi"):
    from fastapi import Depends, HTTPException, Request, WebSocketException
    from starlette.requests import HTTPConnection
    from starlette.responses import Response

    from ..errors import StoreUnavailableError
    from ..reauth import Allowed, ReauthRequired, ReauthRequiredError
    from ..subject import Subject
    from ..tokens import AccessToken
    from ._bearer_deps import require_token
    from .marks import mark
    from .starlette import SignInRequiredError, StepupMiddleware, get_stepup
    from .starlette import Stepup as StarletteStepup
    from .starlette.middleware import UncacheableMiddleware
    from .starlette.stepup import (
        GUARDED,
        NOT_WRAPPED,
        SERVED_BY,
        allowed,
        unanswered,
        websocket_refusal,
    )
    from .transaction import InvalidTransactionError, Transaction, guard_transaction

__all__ = [
    "SignInRequiredError",
    "Stepup",
    "StepupMiddleware",
    "UncacheableMiddleware",
    "get_stepup",
    "require_token",
]
_ = AccessToken  # re-exported for annotations: ``token: AccessToken = Depends(...)``

Dependency = Callable[..., Awaitable[Allowed]]
ReturnTo = str | Callable[[Request], str]
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
#: What else a dependency lets through to the middleware (which answers it over HTTP);
#: a websocket's dependency closes the connection instead.
_REFUSED = (SignInRequiredError, InvalidTransactionError, StoreUnavailableError)


class _ReturningReauthRequiredError(ReauthRequiredError):
    """A refusal that comes back to ``return_path`` after the re-authentication, not to
    the refused request's URL (which a redirect cannot repeat for a POST or DELETE)."""

    def __init__(self, decision: ReauthRequired, return_path: str) -> None:
        super().__init__(decision)
        self.return_path = return_path


def _on_websocket(connection: HTTPConnection, refused: Exception) -> None:
    """A refused websocket is closed before it is accepted (no redirect, no page: a
    browser's websocket can follow neither): raise the ``WebSocketException`` that does
    it. Nothing for an HTTP request."""
    if connection.scope["type"] == "websocket":
        close = websocket_refusal(refused)
        raise WebSocketException(close.code, close.reason) from None


def _come_back(
    stepup: Stepup, request: Request, refused: ReauthRequiredError, return_to: ReturnTo | None
) -> None:
    """A refusal of a request other than GET or HEAD sends the browser back to
    ``return_to`` (else the same-site ``Referer``, else the app's root): raise that
    instead; a websocket is closed. On the refusal path only, so an allowed request
    pays nothing for it."""
    _on_websocket(request, refused)
    back = stepup.return_path(request, return_to)
    if back is not None:  # GET, HEAD: None, back to this URL
        raise _ReturningReauthRequiredError(refused.decision, back) from None


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
        return_to: ReturnTo | None = None,
    ) -> Dependency:
        """A dependency that returns the ``Allowed`` decision or stops the request.

        The action name is checked now, so a typo fails when the app starts.
        ``context`` is itself a FastAPI dependency (it may take path parameters, other
        dependencies...) returning the rule's context, e.g.
        ``{"workspace_type": "full"}``. ``transaction`` is a FastAPI dependency too,
        returning the :class:`~stepup.integrations.transaction.Transaction` a rule with
        ``bind_transaction`` is about to do (the re-authentication then counts once, for
        that target only). Both are resolved only once someone is signed in (a
        signed-out request gets the sign-in answer first, never their 404), after a
        dependency of the guard's own that loads the user, once per request.
        ``return_to`` (a path, or a function of the request) is where a browser comes
        back after re-authenticating for a request other than GET or HEAD, which a
        redirect cannot repeat; without it, the page the request came from (its
        same-site ``Referer``), else the app's root. As in Flask, Django and Starlette.

        The dependency takes the ``HTTPConnection``, so it guards a websocket route too
        (the hooks then get the ``WebSocket``): a connection that may not go ahead is
        closed before it is accepted (``WebSocketException``, 1008; 1013 when the store
        could not answer).

        The response of a request it let through is sent with ``Cache-Control: private,
        no-store`` by :class:`StepupMiddleware`. On a route of a sub-app mounted in the
        app that installed stepup, it raises ``ConfigurationError`` unless stepup is
        installed on that sub-app too (``stepup.install(v1)``): the sub-app's own error
        handling would answer a refusal with a 500.
        """
        self.policy.validate([action])
        guard_transaction(self.policy, action, transaction)
        if context is None and transaction is None:

            async def require(request: HTTPConnection) -> Allowed:
                try:
                    return await self.require(request, action)  # type: ignore[arg-type]
                except ReauthRequiredError as exc:
                    _come_back(self, request, exc, return_to)  # type: ignore[arg-type]
                    raise
                except _REFUSED as exc:
                    _on_websocket(request, exc)
                    raise

            mark(require, action)  # for stepup.testing.coverage
            return require

        # FastAPI resolves a dependency's own dependencies in the order they are declared,
        # and one that raises stops the rest: who is signed in comes first, so nobody is
        # answered before the app's context and transaction, which may look the target
        # up (a 404 would tell a stranger what exists).
        async def signed_in(request: HTTPConnection) -> tuple[Subject, str]:
            scope = request.scope
            if scope.get(SERVED_BY, NOT_WRAPPED) is not scope.get("app"):
                unanswered(scope, "Stepup.require_reauth")  # nobody would answer a refusal
            try:
                return await self._signed_in(request)  # type: ignore[arg-type]
            except _REFUSED as exc:
                _on_websocket(request, exc)
                raise

        async def decide(
            request: HTTPConnection,
            who: tuple[Subject, str],
            values: Mapping[str, Any] | None,
            target: Transaction | None,
        ) -> Allowed:
            subject, tenant_id = who
            try:
                decision = await self._decide(request, subject, tenant_id, action, values, target)  # type: ignore[arg-type]
                decided = allowed(decision)
            except ReauthRequiredError as exc:
                _come_back(self, request, exc, return_to)  # type: ignore[arg-type]
                raise
            except _REFUSED as exc:
                _on_websocket(request, exc)
                raise
            request.scope[GUARDED] = True  # the middleware sends its response uncacheable
            return decided

        if transaction is not None:
            values_of = context if context is not None else _no_context

            async def require_transaction(
                request: HTTPConnection,
                who: tuple[Subject, str] = Depends(signed_in),
                target: Transaction = Depends(transaction),  # noqa: B008 (FastAPI DI)
                values: Mapping[str, Any] | None = Depends(values_of),
            ) -> Allowed:
                return await decide(request, who, values, target)

            mark(require_transaction, action)
            return require_transaction

        async def require_in_context(
            request: HTTPConnection,
            who: tuple[Subject, str] = Depends(signed_in),
            values: Mapping[str, Any] = Depends(context),
        ) -> Allowed:
            return await decide(request, who, values, None)

        mark(require_in_context, action)
        return require_in_context

    async def error_response(self, request: Request, exc: Exception) -> Response:
        """The middleware's answer to :meth:`require`'s errors; a refusal raised by a
        :meth:`require_reauth` dependency comes back to its return path."""
        if isinstance(exc, _ReturningReauthRequiredError):
            return await self.respond(request, exc.decision, exc.return_path)
        return await super().error_response(request, exc)

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
