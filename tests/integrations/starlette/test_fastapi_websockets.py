"""FastAPI websocket routes with a ``stepup.require_reauth`` dependency: it takes the
``HTTPConnection``, so FastAPI hands it the websocket (it asked for a ``Request``, which
a websocket dependency never gets: every connection failed with a TypeError). An allowed
connection runs the endpoint; any other is closed before it is accepted by the
dependency's ``WebSocketException``: 1008 with the JSON answers' ``error`` as its reason,
1013 when the store could not answer.

(No ``from __future__ import annotations`` here: FastAPI must see the real ``Annotated``
objects.)
"""

from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, WebSocket
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from integrations.outage_support import StoreDown
from integrations.starlette.starlette_support import Browser, TestApp, make_app
from stepup.integrations.fastapi import Stepup
from stepup.reauth import Allowed
from stepup.testing import SettableClock


def workspace_context(kind: str) -> dict[str, str]:
    return {"workspace_type": kind}


def _app(store: Any) -> TestApp:
    test_app = make_app(clock=SettableClock(), store=store, stepup_class=Stepup, app_class=FastAPI)
    app, stepup = test_app.app, test_app.stepup
    assert isinstance(app, FastAPI)
    assert isinstance(stepup, Stepup)
    key_read = stepup.require_reauth("api_key.read")
    workspace_delete = stepup.require_reauth("workspace.delete", context=workspace_context)

    @app.websocket("/fa/ws")
    async def read_key(
        websocket: WebSocket, allowed: Annotated[Allowed, Depends(key_read)]
    ) -> None:
        await websocket.accept()
        await websocket.send_text(allowed.reason.value)
        await websocket.close()

    @app.websocket("/fa/ws/workspaces/{kind}")
    async def workspace(
        websocket: WebSocket, kind: str, allowed: Annotated[Allowed, Depends(workspace_delete)]
    ) -> None:
        await websocket.accept()
        await websocket.send_text(allowed.reason.value)
        await websocket.close()

    return test_app


def _refused(client: TestClient, path: str) -> tuple[int, str]:
    with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect(path) as websocket:
        websocket.receive_text()  # never: closed before it was accepted
    return closed.value.code, closed.value.reason


def _signed_in(test_app: TestApp) -> Browser:
    alice = test_app.browser()
    assert alice.login("alice").status_code == 303
    return alice


def _reason(client: TestClient, path: str) -> str:
    with client.websocket_connect(path) as websocket:
        return websocket.receive_text()


def test_allowed_and_refused_websockets() -> None:
    alice = _signed_in(_app(StoreDown()))
    try:
        assert _reason(alice.client, "/fa/ws") == "flag_off"
        assert alice.patch_tenant(True).status_code == 200  # and no grant left
        assert _refused(alice.client, "/fa/ws") == (1008, "reauth_required")
        assert _refused(alice.client, "/fa/ws/workspaces/full") == (1008, "reauth_required")
        assert _reason(alice.client, "/fa/ws/workspaces/sandbox") == "not_sensitive"
        assert alice.post("/_test/grant", data={"method": "pwd"}).status_code == 204
        assert _reason(alice.client, "/fa/ws") == "fresh_grant"
        assert _reason(alice.client, "/fa/ws/workspaces/full") == "fresh_grant"
    finally:
        alice.close()


def test_a_signed_out_websocket() -> None:
    stranger = _app(StoreDown()).browser()
    try:
        assert _refused(stranger.client, "/fa/ws") == (1008, "authentication_required")
    finally:
        stranger.close()


def test_a_websocket_during_an_outage() -> None:
    store = StoreDown()
    alice = _signed_in(_app(store))
    try:
        assert alice.patch_tenant(True).status_code == 200
        store.down = True
        assert _refused(alice.client, "/fa/ws") == (1013, "reauth_unavailable")
        assert _refused(alice.client, "/fa/ws/workspaces/full") == (1013, "reauth_unavailable")
    finally:
        store.down = False
        alice.close()


def test_http_requests_keep_their_answers() -> None:
    """The dependency now takes the HTTPConnection: over HTTP it is the Request, as before."""
    test_app = _app(StoreDown())
    app, stepup = test_app.app, test_app.stepup
    assert isinstance(stepup, Stepup)
    app.get("/fa/key", dependencies=[Depends(stepup.require_reauth("api_key.read"))])(
        lambda: {"key": "the key"}
    )
    alice = _signed_in(test_app)
    try:
        assert alice.get("/fa/key").json() == {"key": "the key"}
        assert alice.patch_tenant(True).status_code == 200
        refused = alice.get("/fa/key")
        assert refused.status_code == 303
        assert refused.headers["location"] == "/stepup/reauth?next=%2Ffa%2Fkey&action=api_key.read"
    finally:
        alice.close()
