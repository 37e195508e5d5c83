"""Pure ASGI middleware: make the stepup services reachable from every HTTP request.

In the spirit of Starlette's ``AuthenticationMiddleware``: lifespan scopes pass through
untouched; HTTP and websocket scopes get ``scope["stepup"]`` and the path the app is
served under (``APP_ROOT``: the ``root_path`` as the request enters the app, which stays
the app's own when the app is a sub-app mounted in another); the typed errors that
``Stepup.require`` raises anywhere below (a FastAPI dependency, a view) become responses
through the app's replaceable ``reauth_response`` hook; and a store outage that escapes
a view (``begin_sign_in`` in the app's login view, say) is the 503 that says to try
again in a moment, not a 500. On a websocket not yet accepted, they close it instead
(``websocket_refusal``: 1008, or 1013 for an outage). It also notes the app it wraps
(``SERVED_BY``), so a guard in a sub-app mounted in it, whose own error handling would
turn each refusal into a 500, says so (``ConfigurationError``) instead.

The response of a request a guard let through (``GUARDED`` in the scope: a FastAPI
dependency, ``Stepup.require``) is sent with ``Cache-Control: private, no-store``
(ASVS 5.0 14.3.2); every other response passes untouched, at the cost of one look-up.
:class:`UncacheableMiddleware` does only that, for an app guarded by bearer tokens alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ...errors import StoreUnavailableError
from ...reauth import ReauthRequiredError, ReauthUnavailableError
from ..http import SignInRequiredError
from ..transaction import InvalidTransactionError
from ._util import uncacheable_headers
from .stepup import APP_ROOT, GUARDED, SERVED_BY, websocket_refusal

if TYPE_CHECKING:
    from .stepup import StepupCore

__all__ = ["StepupMiddleware", "UncacheableMiddleware"]

_HANDLED = (
    ReauthRequiredError,
    ReauthUnavailableError,
    SignInRequiredError,
    InvalidTransactionError,
    StoreUnavailableError,  # the 503 "try again", never a 500
)
#: What answers a websocket's handshake: after one, a refusal can no longer close it so.
_ANSWERS = frozenset({"websocket.accept", "websocket.close", "websocket.http.response.start"})


def uncacheable_start(message: Message) -> Message:
    """An ``http.response.start`` message with its ``Cache-Control`` headers (any number)
    made one that forbids storing the response."""
    return {**message, "headers": uncacheable_headers(list(message.get("headers", ())))}


class StepupMiddleware:
    def __init__(self, app: ASGIApp, stepup: StepupCore) -> None:
        self.app = app
        self.stepup = stepup

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await self.websocket(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return

        scope["stepup"] = self.stepup
        scope[APP_ROOT] = scope.get("root_path", "")
        scope[SERVED_BY] = scope.get("app")
        started = False

        async def send_watching(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if GUARDED in scope:  # a guard let it through: no cache may keep it
                    message = uncacheable_start(message)
            await send(message)

        try:
            await self.app(scope, receive, send_watching)
        except _HANDLED as exc:
            if started:  # too late to answer differently
                raise
            response = await self.stepup.error_response(Request(scope), exc)
            await response(scope, receive, send)

    async def websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A websocket: a refusal raised before it was accepted closes it unaccepted (a
        browser's websocket follows no redirect and shows no page)."""
        scope["stepup"] = self.stepup
        scope[APP_ROOT] = scope.get("root_path", "")
        scope[SERVED_BY] = scope.get("app")
        answered = False

        async def send_watching(message: Message) -> None:
            nonlocal answered
            answered = answered or message["type"] in _ANSWERS
            await send(message)

        try:
            await self.app(scope, receive, send_watching)
        except _HANDLED as exc:
            if answered:  # accepted (or closed already): too late to refuse
                raise
            await websocket_refusal(exc)(scope, receive, send)


class UncacheableMiddleware:
    """Send the response of a request a guard let through with ``Cache-Control: private,
    no-store``, as :class:`StepupMiddleware` does: for a FastAPI app guarded by bearer
    tokens alone (``require_token``, no ``Stepup.install``) whose endpoints return a
    ``Response`` themselves, which FastAPI sends without the headers a dependency set.
    ``app.add_middleware(UncacheableMiddleware)``; other responses pass untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_uncacheable(message: Message) -> None:
            if message["type"] == "http.response.start" and GUARDED in scope:
                message = uncacheable_start(message)
            await send(message)

        await self.app(scope, receive, send_uncacheable)
