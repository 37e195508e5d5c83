"""What the coverage check lists of a Starlette app is what the app answers: every
handler an ``HTTPEndpoint`` has (``query``, ``options``, and, where Starlette sends any
method to the handler of its name, ``propfind``), each a route of its own; a guarded
``WebSocketEndpoint.on_connect`` guards its connection; strict mode wants every method
but the safe ones guarded or public (``PURGE`` too); a ``"METHOD /path"`` key speaks for
that method only; and an app it cannot see into is refused, saying what to pass."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.endpoints import HTTPEndpoint, WebSocketEndpoint
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from integrations.starlette.starlette_support import make_app
from stepup.adapters.storage.memory import MemoryStore
from stepup.integrations.marks import guarded_by
from stepup.integrations.views import default_policy
from stepup.testing import SettableClock
from stepup.testing.coverage import assert_guarded, routes_of, starlette_routes

POLICY = default_policy()
UNGUARDED = "can change something but has no stepup guard"
#: Methods a client may send to an endpoint; HEAD is GET's (the endpoint has no ``head``).
ASKED = ("GET", "POST", "PUT", "DELETE", "OPTIONS", "QUERY", "PROPFIND", "PURGE", "RENDER")


class Secret(HTTPEndpoint):
    """A guarded ``get``, and handlers for other methods nobody guarded."""

    @guarded_by("api_key.read")
    async def get(self, request: Request) -> Response:
        return PlainTextResponse("get")

    async def query(self, request: Request) -> Response:
        return PlainTextResponse("query")

    async def options(self, request: Request) -> Response:
        return PlainTextResponse("options")

    async def propfind(self, request: Request) -> Response:  # WebDAV
        return PlainTextResponse("propfind")

    def render(self, text: str) -> str:  # a helper, not a handler
        return text


def test_every_handler_the_endpoint_answers_is_listed() -> None:
    """The routes listed are exactly the methods whose handler answers a request, in
    the Starlette installed: ``QUERY`` and ``OPTIONS`` always, ``PROPFIND`` where
    Starlette dispatches any method (before 1.x); never a method that gets a 405."""
    app = Starlette(routes=[Route("/secret", Secret)])
    with TestClient(app) as client:
        answered = {
            method
            for method in ASKED
            if (reply := client.request(method, "/secret")).status_code == 200
            and reply.text == method.lower()
        }
    listed = {method for r in starlette_routes(app) for method in r.methods}
    assert {"GET", "QUERY", "OPTIONS"} <= answered
    assert listed == answered


def test_an_unguarded_query_handler_fails_the_check() -> None:
    app = Starlette(routes=[Route("/secret", Secret)])
    with pytest.raises(AssertionError) as caught:
        assert_guarded(app, POLICY, sensitive={"/secret": "api_key.read"}, strict=False)
    said = str(caught.value)
    assert "QUERY /secret (Secret): is for the sensitive action 'api_key.read'" in said
    assert "OPTIONS /secret (Secret): is for the sensitive action 'api_key.read'" in said
    assert "GET /secret" not in said


def test_the_routes_methods_narrow_the_handlers() -> None:
    app = Starlette(routes=[Route("/secret", Secret, methods=["GET", "QUERY"])])
    assert sorted(r.label() for r in starlette_routes(app)) == [
        "GET /secret (Secret)",
        "QUERY /secret (Secret)",
    ]


async def plain(request: Request) -> Response:
    return PlainTextResponse(request.method)


@pytest.mark.parametrize("method", ["PURGE", "PROPPATCH", "MKCOL", "LOCK", "REPORT"])
def test_strict_mode_names_every_method_but_the_safe_ones(method: str) -> None:
    app = Starlette(routes=[Route("/cache", plain, methods=["GET", method])])
    with TestClient(app) as client:
        assert client.request(method, "/cache").text == method  # it answers
    label = ",".join(sorted({"GET", method}))
    with pytest.raises(AssertionError, match=f"{label} /cache \\(plain\\): {UNGUARDED}"):
        assert_guarded(app, POLICY)
    assert_guarded(app, POLICY, public={f"{method} /cache"})


def test_safe_methods_alone_need_nothing() -> None:
    app = Starlette(routes=[Route("/read", plain, methods=["GET", "QUERY", "TRACE", "OPTIONS"])])
    [route] = assert_guarded(app, POLICY)
    assert not route.can_change_things


async def legacy(scope: Scope, receive: Receive, send: Send) -> None:
    """A plain ASGI app: any method, no router to say which."""
    await PlainTextResponse(f"changed by {scope['method']}")(scope, receive, send)


def test_a_method_key_never_speaks_for_a_route_of_unknown_methods() -> None:
    app = Starlette(routes=[Mount("/legacy", app=legacy)])
    with TestClient(app) as client:
        assert client.delete("/legacy").text == "changed by DELETE"
    with pytest.raises(AssertionError) as caught:
        assert_guarded(app, POLICY, public={"GET /legacy"})
    said = str(caught.value)
    assert f"ANY /legacy: {UNGUARDED}" in said
    assert (
        "GET /legacy: is declared public but no route matches it (ANY /legacy answers every"
        " method, as far as the check can tell: GET alone cannot speak for it; declare it"
        " as '/legacy')"
    ) in said
    with pytest.raises(AssertionError, match="is declared sensitive but no route matches it"):
        assert_guarded(app, POLICY, sensitive={"DELETE /legacy": "api_key.regenerate"})
    assert_guarded(app, POLICY, public={"/legacy"})  # every method: said so


def _websocket_routes(stepup: Any) -> list[Any]:
    class Guarded(WebSocketEndpoint):
        @stepup.requires_reauth("api_key.read")
        async def on_connect(self, websocket: WebSocket) -> None:
            await websocket.accept()
            await websocket.send_text("the key")

    class Unguarded(WebSocketEndpoint):
        async def on_connect(self, websocket: WebSocket) -> None:
            await websocket.accept()
            await websocket.send_text("the key")

    return [WebSocketRoute("/ws/guarded", Guarded), WebSocketRoute("/ws/open", Unguarded)]


def test_a_guarded_on_connect_guards_the_websocket_endpoint(clock: SettableClock) -> None:
    test_app = make_app(clock=clock, store=MemoryStore(), extra_routes=_websocket_routes)
    policy = test_app.stepup.policy
    found = {r.path: r.actions for r in starlette_routes(test_app.app) if "/ws/" in r.path}
    assert found == {"/ws/guarded": ("api_key.read",), "/ws/open": ()}
    assert_guarded(test_app.app, policy, sensitive={"/ws/guarded": "api_key.read"}, strict=False)
    with pytest.raises(AssertionError, match=r"/ws/open.*has no stepup guard"):
        assert_guarded(test_app.app, policy, sensitive={"/ws/open": "api_key.read"}, strict=False)
    # What the check says is what runs: the guarded endpoint refuses a stranger.
    stranger = test_app.browser()
    try:
        with (
            pytest.raises(WebSocketDisconnect) as closed,
            stranger.client.websocket_connect("/ws/guarded") as websocket,
        ):
            websocket.receive_text()
        assert closed.value.code == 1008
        with stranger.client.websocket_connect("/ws/open") as websocket:
            assert websocket.receive_text() == "the key"
    finally:
        stranger.close()


def _wrapping_a_fastapi_app() -> Callable[..., Any]:
    from fastapi import FastAPI

    inner = FastAPI()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await inner(scope, receive, send)

    return app


def test_an_app_the_check_cannot_see_into_is_refused_saying_what_to_pass() -> None:
    app = _wrapping_a_fastapi_app()
    with pytest.raises(TypeError) as caught:
        routes_of(app)
    said = str(caught.value)
    assert "cannot list the routes of builtins.function" in said
    assert "pass the Starlette or FastAPI app itself" in said
    assert "the Flask app" in said
    assert "a Django URLconf" in said
    with pytest.raises(TypeError, match="pass the Starlette or FastAPI app itself"):
        assert_guarded(app, POLICY)
