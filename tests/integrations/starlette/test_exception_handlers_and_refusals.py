"""The app's exception handlers run inside ``StepupMiddleware``: the guides warn that one
for ``StepupError`` or ``ValueError`` answers stepup's refusals in its place, and that an
``HTTPException`` handler dropping ``headers`` (as FastAPI's docs show one) sends
``require_token``'s 401 without its challenge. The safe forms the guides show keep the
refusals: handing stepup's errors back, and ending with FastAPI's own handler.

(No ``from __future__ import annotations`` here: FastAPI must see the real objects.)
"""

from typing import Annotated, Any

from fastapi import Depends, FastAPI
from fastapi.exception_handlers import http_exception_handler
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from api.tokens_support import T0, guard, sign
from integrations.starlette.starlette_support import Browser, TestApp, make_app
from stepup.adapters.storage.memory import MemoryStore
from stepup.errors import StepupError
from stepup.integrations.fastapi import Stepup, require_token
from stepup.reauth import Allowed
from stepup.testing import SettableClock
from stepup.tokens import AccessToken

JSON = {"Accept": "application/json"}


async def bad_value(request: Request, exc: Exception) -> Response:
    """The guides' safe form: the app's own ValueErrors answered, stepup's handed back."""
    if isinstance(exc, StepupError):
        raise exc
    return JSONResponse({"detail": str(exc)}, status_code=400)


def _refused_and_own(alice: Browser, guarded: str, own: str) -> None:
    assert alice.login("alice").status_code == 303
    assert alice.patch_tenant(True).status_code == 200
    refused = alice.get(guarded, headers=JSON)
    assert (refused.status_code, refused.json()["error"]) == (401, "reauth_required")
    assert alice.get(guarded).status_code == 303
    assert alice.get(own).status_code == 400


def test_fastapi_a_value_error_handler_that_hands_stepups_back() -> None:
    test_app: TestApp = make_app(
        clock=SettableClock(), store=MemoryStore(), stepup_class=Stepup, app_class=FastAPI
    )
    app, stepup = test_app.app, test_app.stepup
    assert isinstance(app, FastAPI)
    assert isinstance(stepup, Stepup)
    app.add_exception_handler(ValueError, bad_value)
    key_read = stepup.require_reauth("api_key.read")

    @app.get("/fa/key")
    async def read_key(allowed: Annotated[Allowed, Depends(key_read)]) -> dict[str, Any]:
        return {}

    @app.get("/fa/own")
    async def own() -> dict[str, Any]:
        raise ValueError("the app's own")

    alice = test_app.browser()
    try:
        _refused_and_own(alice, "/fa/key", "/fa/own")
    finally:
        alice.close()


def test_starlette_a_value_error_handler_that_hands_stepups_back() -> None:
    def routes(stepup: Any) -> list[Any]:
        async def copy_key(request: Request) -> Response:
            await stepup.require(request, "api_key.read")
            return PlainTextResponse("the key")

        async def own(request: Request) -> Response:
            raise ValueError("the app's own")

        return [Route("/s/key", copy_key), Route("/s/own", own)]

    test_app = make_app(clock=SettableClock(), store=MemoryStore(), extra_routes=routes)
    test_app.app.add_exception_handler(ValueError, bad_value)
    alice = test_app.browser()
    try:
        _refused_and_own(alice, "/s/key", "/s/own")
    finally:
        alice.close()


def _token_app(handler: Any) -> FastAPI:
    app = FastAPI()
    app.add_exception_handler(StarletteHTTPException, handler)
    delete = require_token(guard(SettableClock(T0), asynchronous=True), "workspace.delete")

    @app.delete("/t")
    async def remove(token: Annotated[AccessToken, Depends(delete)]) -> dict[str, Any]:
        return {}

    return app


async def drops_headers(request: Request, exc: Exception) -> Response:
    """The form of FastAPI's docs the guide warns about."""
    assert isinstance(exc, StarletteHTTPException)
    return PlainTextResponse(str(exc.detail), status_code=exc.status_code)


async def keeps_headers(request: Request, exc: Exception) -> Response:
    """The guide's safe form."""
    assert isinstance(exc, StarletteHTTPException)
    return await http_exception_handler(request, exc)


def test_an_http_exception_handler_must_send_the_headers() -> None:
    too_old = {"Authorization": f"Bearer {sign(auth_time=T0 - 3600)}"}
    dropped = TestClient(_token_app(drops_headers)).delete("/t", headers=too_old)
    assert dropped.status_code == 401
    assert "www-authenticate" not in dropped.headers  # what the guide warns of
    kept = TestClient(_token_app(keeps_headers)).delete("/t", headers=too_old)
    assert kept.status_code == 401
    challenge = kept.headers["www-authenticate"]
    assert challenge.startswith('Bearer error="insufficient_user_authentication"')
    assert 'max_age="300"' in challenge
    assert kept.headers["cache-control"] == "no-store"
