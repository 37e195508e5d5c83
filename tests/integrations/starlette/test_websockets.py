"""Starlette websocket routes under ``@stepup.requires_reauth`` (and ``stepup.require``
inside a websocket endpoint): an allowed connection runs the endpoint; any other is
closed before it is accepted, 1008 "Policy Violation" with the JSON answers' ``error``
as its reason (a websocket follows no redirect and shows no page), 1013 "Try Again
Later" when the store could not answer. The guard's HTTP answers are unchanged."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from starlette.routing import WebSocketRoute
from starlette.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from integrations.outage_support import StoreDown
from integrations.starlette.starlette_support import Browser, TestApp, make_app
from stepup.integrations.starlette import Stepup, StepupMiddleware
from stepup.integrations.starlette.stepup import APP_ROOT
from stepup.testing import SettableClock


def _routes(stepup: Stepup) -> list[Any]:
    @stepup.requires_reauth("api_key.read")
    async def guarded(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("the key")
        await websocket.close()

    async def imperative(websocket: WebSocket) -> None:
        allowed = await stepup.require(websocket, "api_key.read")  # type: ignore[arg-type]
        await websocket.accept()
        await websocket.send_text(allowed.reason.value)
        await websocket.close()

    return [WebSocketRoute("/ws", guarded), WebSocketRoute("/ws/require", imperative)]


def _app(store: Any | None = None) -> TestApp:
    return make_app(clock=SettableClock(), store=store or StoreDown(), extra_routes=_routes)


def _refused(client: TestClient, path: str) -> tuple[int, str]:
    with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect(path) as websocket:
        websocket.receive_text()  # never: closed before it was accepted
    return closed.value.code, closed.value.reason


def _signed_in(test_app: TestApp) -> Browser:
    alice = test_app.browser()
    assert alice.login("alice").status_code == 303
    return alice


@pytest.mark.parametrize("path", ["/ws", "/ws/require"])
def test_an_allowed_websocket_runs(path: str) -> None:
    alice = _signed_in(_app())
    try:
        with alice.client.websocket_connect(path) as websocket:
            text = websocket.receive_text()
        assert text in {"the key", "flag_off"}
    finally:
        alice.close()


@pytest.mark.parametrize("path", ["/ws", "/ws/require"])
def test_a_websocket_that_needs_a_reauth_is_closed_unaccepted(path: str) -> None:
    test_app = _app()
    alice = _signed_in(test_app)
    try:
        assert alice.patch_tenant(True).status_code == 200  # and no grant left
        assert _refused(alice.client, path) == (1008, "reauth_required")
        # Over HTTP, the same guard still redirects a browser to the re-auth page.
        assert alice.get("/api-key").status_code == 303
        assert alice.post("/_test/grant", data={"method": "pwd"}).status_code == 204
        with alice.client.websocket_connect(path) as websocket:
            assert websocket.receive_text() in {"the key", "fresh_grant"}
    finally:
        alice.close()


@pytest.mark.parametrize("path", ["/ws", "/ws/require"])
def test_a_signed_out_websocket_is_closed_unaccepted(path: str) -> None:
    stranger = _app().browser()
    try:
        assert _refused(stranger.client, path) == (1008, "authentication_required")
    finally:
        stranger.close()


@pytest.mark.parametrize("path", ["/ws", "/ws/require"])
def test_a_websocket_during_an_outage_is_asked_to_try_again_later(path: str) -> None:
    store = StoreDown()
    test_app = _app(store)
    alice = _signed_in(test_app)
    try:
        assert alice.patch_tenant(True).status_code == 200
        store.down = True
        assert _refused(alice.client, path) == (1013, "reauth_unavailable")
        assert alice.get("/api-key").status_code == 503  # HTTP: as before
    finally:
        store.down = False
        alice.close()


def test_the_middleware_gives_a_websocket_the_services_and_nothing_else() -> None:
    """``scope["stepup"]`` (for ``get_stepup`` and ``require``) and the app's root; a
    websocket nobody refuses is the app's alone: the middleware sends nothing."""
    test_app = _app()
    seen: list[dict[str, Any]] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(dict(scope))

    async def receive() -> Message:
        return {"type": "websocket.disconnect"}

    async def send(message: Message) -> None:
        raise AssertionError("the middleware must not answer")

    scope: dict[str, Any] = {"type": "websocket", "path": "/ws", "root_path": "/sub"}
    anyio.run(StepupMiddleware(inner, test_app.stepup), scope, receive, send)
    assert seen[0]["stepup"] is test_app.stepup
    assert seen[0][APP_ROOT] == "/sub"
