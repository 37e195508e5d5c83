"""A response a guard let through was served for a grant that a cache cannot see expire or
be revoked (ASVS 5.0 14.3.2): it is sent with ``Cache-Control: private, no-store``, the
app's own directives that forbid more kept, those that allow storing dropped. Starlette's
``requires_reauth`` sets it on the endpoint's response; ``Stepup.require`` and FastAPI's
``require_reauth`` mark the request and ``StepupMiddleware`` writes it, also on a
``Response`` the endpoint returns itself; ``require_token`` sets it on FastAPI's
``Response`` (no middleware needed for an endpoint that returns data) and marks the
request for stepup's middleware or ``UncacheableMiddleware``. Before, a guarded page or
answer went out with whatever the app said, ``public, max-age=600`` included. Unguarded
routes and refusals are untouched.

(No ``from __future__ import annotations`` here: FastAPI must see the real objects.)
"""

from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI
from starlette.endpoints import HTTPEndpoint
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from api.tokens_support import T0, guard, sign
from integrations.starlette.starlette_support import Browser, TestApp, make_app
from stepup.adapters.storage.memory import MemoryStore
from stepup.integrations.fastapi import Stepup, UncacheableMiddleware, require_token
from stepup.reauth import Allowed
from stepup.testing import SettableClock
from stepup.tokens import AccessToken

PRIVATE = "private, no-store"
CACHEABLE = {"Cache-Control": "public, max-age=600"}
STRICTER = {"Cache-Control": "no-cache, must-revalidate"}


def _allowed(test_app: TestApp) -> Browser:
    """alice signed in with a fresh grant, the tenant's flag on."""
    alice = test_app.browser()
    assert alice.login("alice").status_code == 303
    assert alice.patch_tenant(True).status_code == 200
    assert alice.post("/_test/grant", data={"method": "pwd"}).status_code == 204
    return alice


def _cache_control(answer: Any) -> list[str]:
    return answer.headers.get_list("cache-control")


# Starlette ---------------------------------------------------------------------------


def _starlette() -> TestApp:
    def routes(stepup: Any) -> list[Any]:
        @stepup.requires_reauth("api_key.read")
        async def cacheable(request: Request) -> Response:
            return PlainTextResponse("the key", headers=CACHEABLE)

        @stepup.requires_reauth("api_key.read")
        async def stricter(request: Request) -> Response:
            return PlainTextResponse("the key", headers=STRICTER)

        class Key(HTTPEndpoint):
            @stepup.requires_reauth("api_key.read")
            async def get(self, request: Request) -> Response:
                return PlainTextResponse("the key", headers=CACHEABLE)

        async def required(request: Request) -> Response:
            await stepup.require(request, "api_key.read")
            return PlainTextResponse("the key", headers=CACHEABLE)

        async def open_page(request: Request) -> Response:
            return PlainTextResponse("open", headers=CACHEABLE)

        async def checked(request: Request) -> Response:
            # Branches on check() instead of refusing: the key only when allowed.
            decision = await stepup.check(request, "api_key.read")
            return PlainTextResponse("the key" if decision.ok else "ask first")

        @stepup.requires_reauth("api_key.read")
        async def raising(request: Request) -> Response:
            # The app's exception handler answers for the endpoint, after the guard passed.
            raise HTTPException(404, "no such key", headers=CACHEABLE)

        return [
            Route("/s/raising", raising),
            Route("/s/checked", checked),
            Route("/s/cacheable", cacheable),
            Route("/s/stricter", stricter),
            Route("/s/endpoint", Key),
            Route("/s/required", required),
            Route("/s/open", open_page),
        ]

    return make_app(clock=SettableClock(), store=MemoryStore(), extra_routes=routes)


def test_starlette_guarded_responses_are_uncacheable() -> None:
    alice = _allowed(_starlette())
    try:
        for path in ("/api-key", "/s/cacheable", "/s/endpoint", "/s/required"):
            answer = alice.get(path)
            assert (answer.status_code, _cache_control(answer)) == (200, [PRIVATE]), path
        regenerated = alice.post("/api-key/regenerate")  # a sync endpoint, in a thread
        assert (regenerated.status_code, _cache_control(regenerated)) == (200, [PRIVATE])
        stricter = alice.get("/s/stricter")
        assert _cache_control(stricter) == [f"{PRIVATE}, no-cache, must-revalidate"]
        assert _cache_control(alice.get("/s/open")) == ["public, max-age=600"]
        assert _cache_control(alice.get("/")) == []
        handled = alice.get("/s/raising")
        assert (handled.status_code, _cache_control(handled)) == (404, [PRIVATE])
        checked = alice.get("/s/checked")
        assert (checked.text, _cache_control(checked)) == ("the key", [PRIVATE])
    finally:
        alice.close()


def test_starlette_refusals_keep_their_answers() -> None:
    test_app = _starlette()
    alice = test_app.browser()
    try:
        assert alice.login("alice").status_code == 303
        assert alice.patch_tenant(True).status_code == 200
        for path in ("/s/cacheable", "/s/required"):
            refused = alice.get(path, headers={"Accept": "application/json"})
            assert refused.status_code == 401
            assert "private" not in refused.headers.get("cache-control", "")
    finally:
        alice.close()


# FastAPI require_reauth --------------------------------------------------------------


def workspace_context(kind: str) -> dict[str, str]:
    return {"workspace_type": kind}


def _fastapi() -> TestApp:
    test_app = make_app(
        clock=SettableClock(), store=MemoryStore(), stepup_class=Stepup, app_class=FastAPI
    )
    app, stepup = test_app.app, test_app.stepup
    assert isinstance(app, FastAPI)
    assert isinstance(stepup, Stepup)
    key_read = stepup.require_reauth("api_key.read")
    workspace_delete = stepup.require_reauth("workspace.delete", context=workspace_context)

    @app.get("/fa/data")
    async def data(allowed: Annotated[Allowed, Depends(key_read)]) -> dict[str, Any]:
        return {"key": "the key"}

    @app.get("/fa/response")
    async def response(allowed: Annotated[Allowed, Depends(key_read)]) -> Response:
        return JSONResponse({"key": "the key"}, headers=CACHEABLE)

    @app.get("/fa/stricter")
    async def stricter(allowed: Annotated[Allowed, Depends(key_read)]) -> Response:
        return JSONResponse({"key": "the key"}, headers=STRICTER)

    @app.get("/fa/in-route", dependencies=[Depends(key_read)])
    def in_route() -> dict[str, Any]:  # sync, in a thread
        return {"key": "the key"}

    @app.get("/fa/workspaces/{kind}")
    async def workspace(
        kind: str, allowed: Annotated[Allowed, Depends(workspace_delete)]
    ) -> Response:
        return JSONResponse({"kind": kind}, headers=CACHEABLE)

    @app.get("/fa/open")
    async def open_route() -> Response:
        return JSONResponse({}, headers=CACHEABLE)

    @app.get("/fa/open-data")
    async def open_data() -> dict[str, Any]:
        return {}

    return test_app


def test_fastapi_guarded_responses_are_uncacheable() -> None:
    alice = _allowed(_fastapi())
    try:
        for path in (
            "/fa/data",
            "/fa/response",
            "/fa/in-route",
            "/fa/workspaces/full",  # with a context
            "/fa/workspaces/sandbox",  # not sensitive there: let through all the same
        ):
            answer = alice.get(path)
            assert (answer.status_code, _cache_control(answer)) == (200, [PRIVATE]), path
        stricter = alice.get("/fa/stricter")
        assert _cache_control(stricter) == [f"{PRIVATE}, no-cache, must-revalidate"]
        assert _cache_control(alice.get("/fa/open")) == ["public, max-age=600"]
        assert _cache_control(alice.get("/fa/open-data")) == []
    finally:
        alice.close()


def test_fastapi_refusals_keep_their_answers() -> None:
    test_app = _fastapi()
    alice = test_app.browser()
    try:
        assert alice.login("alice").status_code == 303
        assert alice.patch_tenant(True).status_code == 200
        for path in ("/fa/response", "/fa/workspaces/full"):
            refused = alice.get(path, headers={"Accept": "application/json"})
            assert refused.status_code == 401
            assert "private" not in refused.headers.get("cache-control", "")
    finally:
        alice.close()


# FastAPI require_token ---------------------------------------------------------------


def _token_routes(app: FastAPI) -> None:
    the_guard = guard(SettableClock(T0), asynchronous=True)
    delete = require_token(the_guard, "workspace.delete")
    delete_in = require_token(the_guard, "workspace.delete", context=workspace_context)

    @app.delete("/t/data")
    async def data(token: Annotated[AccessToken, Depends(delete)]) -> dict[str, Any]:
        return {"by": token.subject}

    @app.delete("/t/response")
    async def response(token: Annotated[AccessToken, Depends(delete)]) -> Response:
        return JSONResponse({"by": token.subject}, headers=CACHEABLE)

    @app.delete("/t/stricter")
    async def stricter(token: Annotated[AccessToken, Depends(delete)]) -> Response:
        return JSONResponse({"by": token.subject}, headers=STRICTER)

    @app.delete("/t/workspaces/{kind}")
    async def workspace(
        kind: str, token: Annotated[AccessToken, Depends(delete_in)]
    ) -> dict[str, Any]:
        return {"kind": kind}

    @app.delete("/t/workspaces/{kind}/response")
    async def workspace_response(
        kind: str, token: Annotated[AccessToken, Depends(delete_in)]
    ) -> Response:
        return JSONResponse({"kind": kind}, headers=CACHEABLE)

    @app.delete("/t/open")
    async def open_route() -> Response:
        return JSONResponse({}, headers=CACHEABLE)


def _token_app(kind: str) -> FastAPI:
    """A FastAPI app guarded by tokens: alone, with ``UncacheableMiddleware``, or with
    stepup installed (its middleware)."""
    if kind == "stepup":
        test_app = make_app(
            clock=SettableClock(), store=MemoryStore(), stepup_class=Stepup, app_class=FastAPI
        )
        assert isinstance(test_app.app, FastAPI)
        app = test_app.app
    elif kind == "uncacheable":
        app = FastAPI(middleware=[Middleware(UncacheableMiddleware)])
    else:
        app = FastAPI()
    _token_routes(app)
    return app


BEARER = {"Authorization": f"Bearer {sign()}"}


@pytest.mark.parametrize("kind", ["alone", "uncacheable", "stepup"])
def test_token_guarded_data_is_uncacheable(kind: str) -> None:
    with TestClient(_token_app(kind)) as client:
        for path in ("/t/data", "/t/workspaces/full", "/t/workspaces/sandbox"):
            answer = client.delete(path, headers=BEARER)
            assert (answer.status_code, _cache_control(answer)) == (200, [PRIVATE]), path
        assert _cache_control(client.delete("/t/open", headers=BEARER)) == ["public, max-age=600"]


@pytest.mark.parametrize("kind", ["uncacheable", "stepup"])
def test_a_response_the_endpoint_returns_is_uncacheable_through_the_middleware(
    kind: str,
) -> None:
    """FastAPI sends a ``Response`` the endpoint returns without the headers a dependency
    set: the middleware writes it there."""
    with TestClient(_token_app(kind)) as client:
        for path in ("/t/response", "/t/workspaces/full/response"):
            answer = client.delete(path, headers=BEARER)
            assert (answer.status_code, _cache_control(answer)) == (200, [PRIVATE]), path
        stricter = client.delete("/t/stricter", headers=BEARER)
        assert _cache_control(stricter) == [f"{PRIVATE}, no-cache, must-revalidate"]


@pytest.mark.parametrize("kind", ["alone", "stepup"])
def test_token_refusals_keep_their_answers(kind: str) -> None:
    with TestClient(_token_app(kind)) as client:
        for path in ("/t/data", "/t/response", "/t/workspaces/full"):
            refused = client.delete(path, headers={"Authorization": "Bearer x.y.z"})
            assert (refused.status_code, _cache_control(refused)) == (401, ["no-store"])


# Starlette requires_token ----------------------------------------------------------------


def test_starlette_token_guarded_responses_are_uncacheable() -> None:
    from starlette.applications import Starlette

    from stepup.integrations.starlette.bearer import requires_token

    the_guard = guard(SettableClock(T0), asynchronous=True)

    @requires_token(the_guard, "workspace.delete")
    async def delete(request: Request) -> Response:
        return JSONResponse({"by": request.state.stepup_token.subject}, headers=CACHEABLE)

    @requires_token(the_guard, "workspace.delete")
    async def stricter(request: Request) -> Response:
        return JSONResponse({}, headers=STRICTER)

    @requires_token(the_guard, "workspace.delete")
    async def raising(request: Request) -> Response:
        raise HTTPException(404, "no such workspace", headers=CACHEABLE)

    app = Starlette(
        routes=[
            Route("/t/data", delete, methods=["DELETE"]),
            Route("/t/stricter", stricter, methods=["DELETE"]),
            Route("/t/raising", raising, methods=["DELETE"]),
        ],
        middleware=[Middleware(UncacheableMiddleware)],
    )
    with TestClient(app) as client:
        answer = client.delete("/t/data", headers=BEARER)
        assert (answer.status_code, _cache_control(answer)) == (200, [PRIVATE])
        stricter_answer = client.delete("/t/stricter", headers=BEARER)
        assert _cache_control(stricter_answer) == [f"{PRIVATE}, no-cache, must-revalidate"]
        handled = client.delete("/t/raising", headers=BEARER)
        assert (handled.status_code, _cache_control(handled)) == (404, [PRIVATE])
        refused = client.delete("/t/data", headers={"Authorization": "Bearer x.y.z"})
        assert (refused.status_code, _cache_control(refused)) == (401, ["no-store"])
