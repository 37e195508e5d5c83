"""StepupMiddleware: HTTP scopes get the services, everything else passes untouched, and
``require`` errors raised anywhere below become responses."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from integrations.starlette.starlette_support import PASSWORDS, TestApp, make_app, next_of
from stepup.adapters.storage.memory import MemoryStore
from stepup.adapters.storage.sql import AsyncSQLStore
from stepup.integrations.starlette import StepupMiddleware, get_stepup
from stepup.reauth import Decision, ReauthRequired
from stepup.testing import SettableClock


class Recorder:
    """An ASGI app that keeps a copy of every scope it is called with."""

    def __init__(self) -> None:
        self.scopes: list[dict[str, Any]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scopes.append(dict(scope))
        if scope["type"] == "http":
            await PlainTextResponse("ok")(scope, receive, send)


@pytest.mark.parametrize("kind", ["lifespan"])  # websockets: test_websockets.py
def test_non_http_scopes_pass_through_untouched(test_app: TestApp, kind: str) -> None:
    inner = Recorder()
    middleware = StepupMiddleware(inner, test_app.stepup)
    scope: dict[str, Any] = {"type": kind, "asgi": {"version": "3.0"}, "path": "/"}
    before = dict(scope)

    async def receive() -> Message:
        return {"type": f"{kind}.disconnect"}

    async def send(message: Message) -> None:
        raise AssertionError("the middleware must not answer")

    anyio.run(middleware, scope, receive, send)
    assert inner.scopes == [before]
    assert scope == before


def test_http_scope_gets_the_services(test_app: TestApp) -> None:
    inner = Recorder()
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": b""}
    anyio.run(StepupMiddleware(inner, test_app.stepup), scope, receive, send)
    assert inner.scopes[0]["stepup"] is test_app.stepup
    assert sent[0]["status"] == 200


def test_websocket_and_lifespan_work_in_an_app(clock: SettableClock) -> None:
    seen: dict[str, Any] = {}

    async def echo(websocket: WebSocket) -> None:
        seen["has_stepup"] = "stepup" in websocket.scope
        await websocket.accept()
        await websocket.send_text(await websocket.receive_text())
        await websocket.close()

    def routes(stepup: Any) -> list[Any]:
        return [WebSocketRoute("/ws", echo)]

    async def setup() -> None:
        seen["started"] = True

    test_app = make_app(clock=clock, store=MemoryStore(), extra_routes=routes, setup=setup)
    with TestClient(test_app.app) as client, client.websocket_connect("/ws") as ws:
        ws.send_text("ping")
        assert ws.receive_text() == "ping"
    assert seen == {"has_stepup": True, "started": True}  # require() works on a websocket


def imperative_app(clock: SettableClock, store: Any, **options: Any) -> TestApp:
    """Views that call ``require`` themselves; the middleware answers for them."""

    async def export(request: Request) -> Response:
        allowed = await get_stepup(request).require(request, "api_key.copy")
        return JSONResponse({"reason": allowed.reason.value})

    def routes(stepup: Any) -> list[Any]:
        return [Route("/export", export)]

    return make_app(clock=clock, store=store, extra_routes=routes, **options)


def test_require_errors_become_responses(clock: SettableClock) -> None:
    test_app = imperative_app(clock, MemoryStore())
    alice = test_app.browser()
    stranger = test_app.browser()
    try:
        assert stranger.get("/export").status_code == 401  # nobody signed in
        alice.login("alice")
        assert alice.get("/export").json() == {"reason": "flag_off"}
        assert alice.patch_tenant(True).status_code == 200
        denied = alice.get("/export")
        assert denied.status_code == 303
        assert next_of(denied.headers["location"]) == "/export"
        assert alice.reauth(denied.headers["location"], PASSWORDS["alice"]).status_code == 303
        assert alice.get("/export").json() == {"reason": "fresh_grant"}
    finally:
        alice.close()
        stranger.close()


def test_store_down_means_503(clock: SettableClock) -> None:
    # A real store whose database cannot be reached: every check fails closed.
    down = AsyncSQLStore("postgresql+asyncpg://postgres@127.0.0.1:9/test")
    test_app = imperative_app(clock, down, ensure_tenant=False)
    alice = test_app.browser()
    try:
        assert alice.login("alice").status_code == 503  # is 2FA on? unknown: no sign-in
        for url in ("/api-key", "/export"):
            answer = alice.get(url, headers={"authorization": "Bearer alice-token"})
            assert answer.status_code == 503
            assert answer.headers["retry-after"]
            assert answer.json()["error"] == "reauth_unavailable"
    finally:
        alice.close()


def test_sign_in_required(clock: SettableClock) -> None:
    test_app = make_app(clock=clock, store=MemoryStore(), login_url="/login")
    stranger = test_app.browser()
    try:
        browser = stranger.get("/api-key", headers={"accept": "text/html"})
        assert browser.status_code == 303
        assert browser.headers["location"] == "/login?next=%2Fapi-key"
        as_json = stranger.get("/api-key", headers={"accept": "application/json"})
        assert as_json.status_code == 401
        assert as_json.json() == {"error": "authentication_required", "title": "Sign in first."}
        assert stranger.post("/stepup/2fa/enrol").status_code == 303
    finally:
        stranger.close()


def test_app_replaces_the_responses(clock: SettableClock) -> None:
    async def reauth_response(request: Request, decision: Decision) -> Response | None:
        if request.url.path == "/api-key" and isinstance(decision, ReauthRequired):
            return JSONResponse({"custom": decision.methods}, 428)
        return None  # keep the default everywhere else

    test_app = make_app(clock=clock, store=MemoryStore(), reauth_response=reauth_response)
    alice = test_app.browser()
    try:
        alice.login("alice")
        assert alice.patch_tenant(True).status_code == 200
        custom = alice.get("/api-key")
        assert (custom.status_code, custom.json()) == (428, {"custom": ["pwd"]})
        assert alice.post("/api-key/regenerate").status_code == 303
    finally:
        alice.close()


def test_get_stepup_without_the_middleware() -> None:
    from stepup.errors import ConfigurationError

    async def view(request: Request) -> Response:
        get_stepup(request)
        return PlainTextResponse("unreachable")

    with (
        TestClient(Starlette(routes=[Route("/", view)])) as client,
        pytest.raises(ConfigurationError),
    ):
        client.get("/")
