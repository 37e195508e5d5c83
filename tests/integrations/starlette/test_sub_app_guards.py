"""A guard on a route of a sub-app mounted in the app that installed stepup
(``app.mount("/v1", v1)``, ``Mount("/v1", app=Starlette(...))``). The sub-app's own
``ServerErrorMiddleware`` catches a refusal the guard raises before stepup's middleware
around the outer app sees it: it sent a 500 and re-raised ``ReauthRequiredError``, which
the middleware could no longer answer, for every refused request. Now the guard checks,
before it decides anything, that the app serving the request is the one the middleware
wraps, and raises a ``ConfigurationError`` that names the fix otherwise: install stepup
on the sub-app too, and its refusals answer as on the top app (303, 401 JSON), its
allowed responses uncacheable. A websocket's refusal passes a sub-app by, so a websocket
route there keeps working without it.

(No ``from __future__ import annotations`` here: FastAPI must see the real ``Annotated``
objects.)
"""

from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, WebSocket
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from integrations.starlette.starlette_support import PASSWORDS, Browser, TestApp, make_app
from stepup.adapters.storage.memory import MemoryStore
from stepup.errors import ConfigurationError
from stepup.integrations.fastapi import Stepup
from stepup.reauth import Allowed
from stepup.testing import SettableClock

JSON = {"Accept": "application/json"}


def workspace_context(kind: str) -> dict[str, str]:
    return {"workspace_type": kind}


def _fastapi(*, install_on_sub_app: bool) -> TestApp:
    """The test app (FastAPI, stepup installed), with a FastAPI sub-app at ``/v1`` whose
    routes the same ``stepup`` guards: one dependency without a context (the fast path),
    one with, and a websocket."""
    test_app = make_app(
        clock=SettableClock(), store=MemoryStore(), stepup_class=Stepup, app_class=FastAPI
    )
    stepup = test_app.stepup
    assert isinstance(stepup, Stepup)
    key_read = stepup.require_reauth("api_key.read")
    workspace_delete = stepup.require_reauth("workspace.delete", context=workspace_context)
    v1 = FastAPI()

    @v1.get("/key")
    async def read_key(allowed: Annotated[Allowed, Depends(key_read)]) -> dict[str, Any]:
        return {"key": "the key"}

    @v1.delete("/workspaces/{kind}")
    async def delete(allowed: Annotated[Allowed, Depends(workspace_delete)]) -> dict[str, Any]:
        return {"deleted": True}

    @v1.websocket("/ws")
    async def feed(websocket: WebSocket, allowed: Annotated[Allowed, Depends(key_read)]) -> None:
        await websocket.accept()
        await websocket.send_text(allowed.reason.value)
        await websocket.close()

    if install_on_sub_app:
        stepup.install(v1)
    assert isinstance(test_app.app, FastAPI)
    test_app.app.mount("/v1", v1)
    return test_app


def _alice(test_app: TestApp, *, flag: bool = True) -> Browser:
    """alice signed in, the tenant's flag on, no grant."""
    alice = test_app.browser()
    assert alice.login("alice").status_code == 303
    if flag:
        assert alice.patch_tenant(True).status_code == 200
    return alice


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/v1/key"), ("DELETE", "/v1/workspaces/full")]
)
def test_a_guard_in_a_sub_app_without_stepup_says_how_to_fix_it(method: str, path: str) -> None:
    alice = _alice(_fastapi(install_on_sub_app=False))
    try:
        with pytest.raises(ConfigurationError, match=r"stepup\.install\(sub_app\)") as raised:
            alice.client.request(method, path, headers=JSON)
        assert "'/v1'" in str(raised.value)
        # Before it decides anything: signed out, or allowed, it says the same.
        assert alice.post("/_test/grant", data={"method": "pwd"}).status_code == 204
        with pytest.raises(ConfigurationError, match=r"stepup\.install\(sub_app\)"):
            alice.client.request(method, path)
        assert alice.logout().status_code == 303
        with pytest.raises(ConfigurationError, match=r"stepup\.install\(sub_app\)"):
            alice.client.request(method, path, headers=JSON)
    finally:
        alice.close()


def test_the_server_answers_500_with_the_typed_error_not_a_refusal() -> None:
    """What a server sees: the sub-app's 500, and the ConfigurationError in its log."""
    test_app = _fastapi(install_on_sub_app=False)
    client = TestClient(test_app.app, follow_redirects=False, raise_server_exceptions=False)
    with client:
        signed_in = {"user": "alice", "password": PASSWORDS["alice"], "next": "/"}
        assert client.post("/login", data=signed_in).status_code == 303
        assert client.get("/v1/key", headers=JSON).status_code == 500


def test_a_sub_app_with_stepup_installed_answers_as_the_top_app() -> None:
    test_app = _fastapi(install_on_sub_app=True)
    alice = _alice(test_app)
    try:
        refused = alice.get("/v1/key", headers=JSON)
        assert refused.status_code == 401
        body = refused.json()
        assert body["error"] == "reauth_required"
        assert body["reauth_url"] == "/v1/stepup/reauth?next=%2Fv1%2Fkey&action=api_key.read"
        browser = alice.get("/v1/key")
        assert browser.status_code == 303
        location = browser.headers["location"]
        assert location == "/v1/stepup/reauth?next=%2Fv1%2Fkey&action=api_key.read"
        refused_delete = alice.client.delete("/v1/workspaces/full", headers=JSON)
        assert refused_delete.status_code == 401
        assert refused_delete.json()["action"] == "workspace.delete"
        # The re-auth page the redirect names is there, and brings the browser back.
        back = alice.reauth(location, PASSWORDS["alice"])
        assert (back.status_code, back.headers["location"]) == (303, "/v1/key")
        allowed = alice.get("/v1/key")
        assert (allowed.status_code, allowed.json()) == (200, {"key": "the key"})
        assert allowed.headers["cache-control"] == "private, no-store"
        assert alice.client.delete("/v1/workspaces/full").status_code == 200
        # The top app's own guarded route answers as before.
        assert alice.get("/api-key").status_code == 200
    finally:
        alice.close()


def test_a_signed_out_request_in_a_sub_app_with_stepup_gets_the_sign_in_answer() -> None:
    stranger = _fastapi(install_on_sub_app=True).browser()
    try:
        answer = stranger.get("/v1/key", headers=JSON)
        assert (answer.status_code, answer.json()["error"]) == (401, "authentication_required")
    finally:
        stranger.close()


@pytest.mark.parametrize("install_on_sub_app", [False, True], ids=["outer-only", "both"])
def test_a_websocket_in_a_sub_app_is_closed_or_let_through(install_on_sub_app: bool) -> None:
    """A websocket's refusal is no HTTP response: the sub-app lets it by, so its guard
    works with stepup installed on the outer app only, as with both."""
    test_app = _fastapi(install_on_sub_app=install_on_sub_app)
    alice = _alice(test_app)
    try:
        with (
            pytest.raises(WebSocketDisconnect) as closed,
            alice.client.websocket_connect("/v1/ws") as websocket,
        ):
            websocket.receive_text()
        assert (closed.value.code, closed.value.reason) == (1008, "reauth_required")
        assert alice.post("/_test/grant", data={"method": "pwd"}).status_code == 204
        with alice.client.websocket_connect("/v1/ws") as websocket:
            assert websocket.receive_text() == "fresh_grant"
    finally:
        alice.close()


def _starlette(*, install_on_sub_app: bool) -> TestApp:
    """The Starlette test app with a Starlette sub-app at ``/v1`` whose view calls
    ``stepup.require``."""
    holder: dict[str, Any] = {}

    async def copy_key(request: Request) -> Response:
        await holder["stepup"].require(request, "api_key.read")
        return JSONResponse({"key": "the key"})

    inner = Starlette(routes=[Route("/key", copy_key)])

    def extra_routes(stepup: Any) -> list[Any]:
        from starlette.routing import Mount

        holder["stepup"] = stepup
        if install_on_sub_app:
            stepup.install(inner)
        return [Mount("/v1", app=inner)]

    return make_app(clock=SettableClock(), store=MemoryStore(), extra_routes=extra_routes)


def test_stepup_require_in_a_starlette_sub_app() -> None:
    alice = _alice(_starlette(install_on_sub_app=False))
    try:
        with pytest.raises(ConfigurationError, match=r"stepup\.install\(sub_app\)"):
            alice.get("/v1/key", headers=JSON)
    finally:
        alice.close()
    alice = _alice(_starlette(install_on_sub_app=True))
    try:
        refused = alice.get("/v1/key", headers=JSON)
        assert (refused.status_code, refused.json()["error"]) == (401, "reauth_required")
        assert alice.post("/_test/grant", data={"method": "pwd"}).status_code == 204
        allowed = alice.get("/v1/key")
        assert (allowed.status_code, allowed.headers["cache-control"]) == (200, "private, no-store")
    finally:
        alice.close()


def test_without_the_middleware_the_message_says_so() -> None:
    """No StepupMiddleware at all: the message it always gave."""
    test_app = make_app(
        clock=SettableClock(), store=MemoryStore(), stepup_class=Stepup, app_class=FastAPI
    )
    stepup = test_app.stepup
    assert isinstance(stepup, Stepup)
    bare = FastAPI()
    key_read = stepup.require_reauth("api_key.read")

    @bare.get("/key")
    async def read_key(allowed: Annotated[Allowed, Depends(key_read)]) -> dict[str, Any]:
        return {}

    with pytest.raises(ConfigurationError, match="needs StepupMiddleware"):
        TestClient(bare).get("/key")
