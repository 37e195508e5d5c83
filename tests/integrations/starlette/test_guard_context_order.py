"""Starlette's and FastAPI's guards answer a request nobody signed in to (a signed-out
browser, a client without a valid bearer token) before they call the app's ``context``
and ``transaction`` hooks: a hook that looks the target up would tell a stranger which
targets exist (404 against 401), and costs a look-up per request. Signed in, the hooks
run once and may refuse, and the app's user loader runs once per request.

(No ``from __future__ import annotations`` here: FastAPI must see the real annotations.)
"""

from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, WebSocket
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from api.tokens_support import T0, guard, sign
from integrations.starlette.starlette_support import Browser, TestApp, make_app
from stepup.adapters.storage.memory import MemoryStore
from stepup.integrations.fastapi import Stepup as FastAPIStepup
from stepup.integrations.fastapi import require_token
from stepup.integrations.starlette import Stepup
from stepup.integrations.transaction import Transaction
from stepup.integrations.views import default_policy
from stepup.policy import Policy, Rule, Sensitivity
from stepup.reauth import Allowed
from stepup.testing import SettableClock

WORKSPACES = {"prod": "full"}
PAY = "payment.send"
LOGIN_URL = "/accounts/login"
PATHS = ("/w/prod", "/w/nope", "/w/prod/destroy", "/w/nope/destroy")


def _policy() -> Policy:
    rule = Rule(Sensitivity.CRITICAL, lifetime=300.0, bind_transaction=True, description="Pay")
    return default_policy().extend({PAY: rule})


class Hooks:
    """The app's context and transaction hooks: each looks the workspace up, notes it,
    and answers 404 when there is none."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def lookup(self, name: str) -> dict[str, str]:
        self.calls.append(name)
        if name not in WORKSPACES:
            raise HTTPException(404)
        return {"workspace_type": WORKSPACES[name]}

    async def target(self, name: str) -> Transaction:
        self.calls.append(f"transaction {name}")
        if name not in WORKSPACES:
            raise HTTPException(404)
        return Transaction({"workspace": name}, "Pay from %(workspace)s")


def _starlette_routes(hooks: Hooks) -> Any:
    def routes(stepup: Stepup) -> list[Any]:
        @stepup.requires_reauth(
            "workspace.delete", context=lambda request: hooks.lookup(request.path_params["name"])
        )
        async def delete(request: HTTPConnection) -> Response:
            return PlainTextResponse("deleted")

        @stepup.requires_reauth(
            PAY, transaction=lambda request: hooks.target(request.path_params["name"])
        )
        async def destroy(request: HTTPConnection) -> Response:
            return PlainTextResponse("paid")

        @stepup.requires_reauth(
            "workspace.delete", context=lambda ws: hooks.lookup(ws.path_params["name"])
        )
        async def socket(websocket: WebSocket) -> None:
            await websocket.accept()
            await websocket.send_text("open")
            await websocket.close()

        return [
            Route("/w/{name}", delete, methods=["DELETE"]),
            Route("/w/{name}/destroy", destroy, methods=["POST"]),
            WebSocketRoute("/ws/{name}", socket),
        ]

    return routes


def _fastapi_routes(test_app: TestApp, hooks: Hooks) -> None:
    app, stepup = test_app.app, test_app.stepup
    assert isinstance(app, FastAPI)
    assert isinstance(stepup, FastAPIStepup)

    def lookup(name: str) -> dict[str, str]:
        return hooks.lookup(name)

    async def target(name: str) -> Transaction:
        return await hooks.target(name)

    delete_guard = stepup.require_reauth("workspace.delete", context=lookup)
    pay_guard = stepup.require_reauth(PAY, transaction=target, context=lookup)

    @app.delete("/w/{name}")
    async def delete(name: str, allowed: Annotated[Allowed, Depends(delete_guard)]) -> str:
        return "deleted"

    @app.post("/w/{name}/destroy")
    async def destroy(name: str, allowed: Annotated[Allowed, Depends(pay_guard)]) -> str:
        return "paid"

    @app.websocket("/ws/{name}")
    async def socket(
        websocket: WebSocket, name: str, allowed: Annotated[Allowed, Depends(delete_guard)]
    ) -> None:
        await websocket.accept()
        await websocket.send_text("open")
        await websocket.close()


def _app(kind: str, hooks: Hooks) -> TestApp:
    common: dict[str, Any] = {
        "clock": SettableClock(),
        "store": MemoryStore(),
        "policy": _policy(),
        "login_url": LOGIN_URL,
    }
    if kind == "starlette":
        return make_app(extra_routes=_starlette_routes(hooks), **common)
    test_app = make_app(stepup_class=FastAPIStepup, app_class=FastAPI, **common)
    _fastapi_routes(test_app, hooks)
    return test_app


def _loads(test_app: TestApp) -> list[object]:
    """Count the app's user loader's calls."""
    loads: list[object] = []
    loader = test_app.stepup.subject_loader

    def counting(request: Any) -> Any:
        loads.append(request)
        return loader(request)

    test_app.stepup.subject_loader = counting
    return loads


def _ask(browser: Browser, path: str, **kwargs: Any) -> Any:
    method = "POST" if path.endswith("/destroy") else "DELETE"
    return browser.client.request(method, path, **kwargs)


def _refused_socket(browser: Browser, path: str) -> tuple[int, str]:
    with (
        pytest.raises(WebSocketDisconnect) as closed,
        browser.client.websocket_connect(path) as websocket,
    ):
        websocket.receive_text()  # never: closed before it was accepted
    return closed.value.code, closed.value.reason


@pytest.fixture(params=["starlette", "fastapi"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_a_signed_out_browser_goes_to_sign_in_before_the_hooks(kind: str) -> None:
    hooks = Hooks()
    test_app = _app(kind, hooks)
    loads = _loads(test_app)
    browser = test_app.browser()
    try:
        for path in PATHS:
            page = _ask(browser, path, headers={"accept": "text/html"})
            assert page.status_code == 303
            assert page.headers["location"].startswith(f"{LOGIN_URL}?next=")
            script = _ask(browser, path, headers={"accept": "application/json"})
            assert script.status_code == 401
            assert script.json()["error"] == "authentication_required"
        assert _refused_socket(browser, "/ws/nope") == (1008, "authentication_required")
        assert hooks.calls == []
        assert len(loads) == 2 * len(PATHS) + 1
    finally:
        browser.close()


def test_signed_in_the_hooks_run_once_and_may_refuse(kind: str) -> None:
    hooks = Hooks()
    test_app = _app(kind, hooks)
    browser = test_app.browser()
    try:
        assert browser.login("alice").status_code == 303
        loads = _loads(test_app)
        assert _ask(browser, "/w/nope").status_code == 404
        assert _ask(browser, "/w/prod").text.strip('"') == "deleted"
        assert _ask(browser, "/w/nope/destroy").status_code == 404
        assert _ask(browser, "/w/prod/destroy").text.strip('"') == "paid"
        with browser.client.websocket_connect("/ws/prod") as websocket:
            assert websocket.receive_text() == "open"
        assert len(loads) == 5  # the user loaded once per request
    finally:
        browser.close()
    # FastAPI's pay guard reads the context too, after the transaction (which refused).
    destroyed = ["transaction prod"] if kind == "starlette" else ["transaction prod", "prod"]
    assert hooks.calls == ["nope", "prod", "transaction nope", *destroyed, "prod"]


def test_a_refused_reauth_still_asks_for_it(kind: str) -> None:
    """Signed in, the answers are those of before: the flag on, a re-authentication."""
    test_app = _app(kind, Hooks())
    browser = test_app.browser()
    try:
        assert browser.login("alice").status_code == 303
        assert browser.patch_tenant(True).status_code == 200
        answer = _ask(browser, "/w/prod", headers={"accept": "application/json"})
        assert (answer.status_code, answer.json()["error"]) == (401, "reauth_required")
        page = _ask(browser, "/w/prod/destroy", headers={"accept": "text/html"})
        assert page.status_code == 303
        assert page.headers["location"].startswith("/stepup/reauth")
        assert _refused_socket(browser, "/ws/prod") == (1008, "reauth_required")
    finally:
        browser.close()


def test_without_the_middleware_the_fastapi_guard_says_so() -> None:
    app = FastAPI()
    stepup = _app("fastapi", Hooks()).stepup
    assert isinstance(stepup, FastAPIStepup)
    hooks = Hooks()
    delete_guard = stepup.require_reauth("workspace.delete", context=hooks.lookup)

    @app.delete("/w/{name}")
    async def delete(name: str, allowed: Annotated[Allowed, Depends(delete_guard)]) -> str:
        return "deleted"

    with pytest.raises(Exception, match="needs StepupMiddleware"):
        TestClient(app).delete("/w/nope")
    assert hooks.calls == []


# FastAPI's bearer dependency ---------------------------------------------------------


def _bearer_app(calls: list[str]) -> FastAPI:
    app = FastAPI()

    def lookup(name: str) -> dict[str, str]:
        calls.append(name)
        if name not in WORKSPACES:
            raise HTTPException(404)
        return {"workspace_type": WORKSPACES[name]}

    dependency = require_token(
        guard(SettableClock(T0), asynchronous=True), "workspace.delete", context=lookup
    )

    @app.delete("/w/{name}")
    async def delete(name: str, token: Annotated[Any, Depends(dependency)]) -> dict[str, str]:
        return {"by": token.subject}

    return app


def test_a_bearer_request_without_a_valid_token_never_reaches_the_context() -> None:
    calls: list[str] = []
    client = TestClient(_bearer_app(calls))
    for name in ("prod", "nope"):
        answer = client.delete(f"/w/{name}")
        assert (answer.status_code, answer.headers["www-authenticate"]) == (
            401,
            'Bearer realm="api"',
        )
        malformed = client.delete(f"/w/{name}", headers={"Authorization": "Bearer a b"})
        assert malformed.status_code == 400
        invalid = client.delete(f"/w/{name}", headers={"Authorization": "Bearer x.y.z"})
        assert invalid.status_code == 401
        assert 'error="invalid_token"' in invalid.headers["www-authenticate"]
    assert calls == []
    token = {"Authorization": f"Bearer {sign()}"}
    assert client.delete("/w/nope", headers=token).status_code == 404
    assert client.delete("/w/prod", headers=token).json() == {"by": "alice"}
    assert calls == ["nope", "prod"]


def test_a_valid_token_that_falls_short_is_challenged_after_the_context() -> None:
    calls: list[str] = []
    client = TestClient(_bearer_app(calls))
    stale = {"Authorization": f"Bearer {sign(auth_time=T0 - 3600, acr='urn:pwd')}"}
    answer = client.delete("/w/prod", headers=stale)
    assert answer.status_code == 401
    assert 'error="insufficient_user_authentication"' in answer.headers["www-authenticate"]
    assert calls == ["prod"]
