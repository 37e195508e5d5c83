"""FastAPI's ``require_token`` on a websocket route. The dependency asked for a
``Request``, which FastAPI hands only to HTTP routes: every connection failed with a
``TypeError`` (the route was still marked guarded, so ``assert_guarded`` counted it). It
takes the ``HTTPConnection`` now and refuses as ``Stepup.require_reauth`` does on a
websocket: closed before it is accepted, 1008 with the JSON answer's ``error`` as its
reason, 1013 when the issuer's keys could not be read; a token that allows the action
runs the endpoint, and the rule's ``context`` dependency is resolved only for a valid
token.

(No ``from __future__ import annotations`` here: FastAPI must see the real objects.)
"""

from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, HTTPException, WebSocket
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from api.tokens_support import T0, guard, sign
from stepup.adapters.storage.memory import MemoryStore
from stepup.integrations.bearer import BearerGuard
from stepup.integrations.fastapi import require_token
from stepup.reauth import AsyncReauth
from stepup.testing import SettableClock
from stepup.testing.coverage import assert_guarded
from stepup.tokens import AccessToken, TokenUnavailableError

WORKSPACES = {"prod": "full", "scratch": "sandbox"}


class KeysDown:
    """A token source whose issuer cannot be reached."""

    async def avalidate(self, raw: str) -> AccessToken:
        raise TokenUnavailableError("the issuer's keys could not be read")


def _app(calls: list[str], the_guard: BearerGuard | None = None) -> FastAPI:
    the_guard = the_guard or guard(SettableClock(T0), asynchronous=True)

    def workspace(name: str) -> dict[str, str]:
        calls.append(name)
        if name not in WORKSPACES:
            raise HTTPException(404)
        return {"workspace_type": WORKSPACES[name]}

    delete = require_token(the_guard, "workspace.delete")
    delete_in = require_token(the_guard, "workspace.delete", context=workspace)
    app = FastAPI()

    @app.websocket("/ws")
    async def feed(websocket: WebSocket, token: Annotated[AccessToken, Depends(delete)]) -> None:
        await websocket.accept()
        await websocket.send_text(token.subject)
        await websocket.close()

    @app.websocket("/ws/workspaces/{name}")
    async def workspace_feed(
        websocket: WebSocket, name: str, token: Annotated[AccessToken, Depends(delete_in)]
    ) -> None:
        await websocket.accept()
        await websocket.send_text(f"{name} for {token.subject}")
        await websocket.close()

    return app


def _closed(client: TestClient, path: str, headers: dict[str, str]) -> tuple[int, str]:
    with (
        pytest.raises(WebSocketDisconnect) as closed,
        client.websocket_connect(path, headers=headers) as websocket,
    ):
        websocket.receive_text()  # never: closed before it was accepted
    return closed.value.code, closed.value.reason


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("path", ["/ws", "/ws/workspaces/prod"])
def test_refused_connections_are_closed_before_they_are_accepted(path: str) -> None:
    calls: list[str] = []
    client = TestClient(_app(calls))
    assert _closed(client, path, {}) == (1008, "authentication_required")
    assert _closed(client, path, {"Authorization": "Bearer a b"}) == (1008, "invalid_request")
    assert _closed(client, path, _bearer("x.y.z")) == (1008, "invalid_token")
    too_old = sign(auth_time=T0 - 3600)  # the rule's lifetime is 300 s
    assert _closed(client, path, _bearer(too_old)) == (1008, "reauth_required")
    # Only the valid token's connection reached the context (of the route that has one).
    assert calls == (["prod"] if "workspaces" in path else [])


def test_an_allowed_connection_runs_the_endpoint() -> None:
    calls: list[str] = []
    client = TestClient(_app(calls))
    with client.websocket_connect("/ws", headers=_bearer(sign())) as websocket:
        assert websocket.receive_text() == "alice"
    with client.websocket_connect("/ws/workspaces/scratch", headers=_bearer(sign())) as websocket:
        assert websocket.receive_text() == "scratch for alice"
    assert calls == ["scratch"]


def test_unreachable_keys_close_with_try_again_later() -> None:
    down = BearerGuard(
        AsyncReauth(MemoryStore(), guard(SettableClock(T0)).reauth.policy), KeysDown()
    )
    client = TestClient(_app([], down))
    assert _closed(client, "/ws", _bearer(sign())) == (1013, "reauth_unavailable")


def test_the_websocket_routes_count_as_guarded() -> None:
    """Marked guarded, and guarded indeed (above)."""
    app = _app([])
    policy: Any = guard(SettableClock(T0)).reauth.policy
    assert_guarded(app, policy)
