"""Starlette's ``requires_token`` answers a request without a valid token before it calls
the app's ``context``: a hook that looks the target up would tell a stranger which
targets exist (404 against 401), and costs a look-up per request. Several
``Authorization`` headers are refused (400) in Starlette and FastAPI too when the first
is empty, as Flask and Django refuse them."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from api.tokens_support import T0, guard, sign
from stepup.integrations.fastapi import require_token
from stepup.integrations.starlette.bearer import requires_token
from stepup.testing import SettableClock

WORKSPACES = {"prod": "full"}


def _app(calls: list[str], *, asynchronous: bool = False) -> Starlette:
    def lookup(request: Request) -> dict[str, str]:
        name = request.path_params["name"]
        calls.append(name)
        if name not in WORKSPACES:
            raise HTTPException(404)
        return {"workspace_type": WORKSPACES[name]}

    async def alookup(request: Request) -> dict[str, str]:
        return lookup(request)  # an async look-up, as the session guard takes one

    context = alookup if asynchronous else lookup

    @requires_token(
        guard(SettableClock(T0), asynchronous=True), "workspace.delete", context=context
    )
    async def delete(request: Request) -> Response:
        return JSONResponse({"by": request.state.stepup_token.subject})

    return Starlette(routes=[Route("/w/{name}", delete, methods=["DELETE"])])


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_a_request_without_a_token_never_reaches_the_context(asynchronous: bool) -> None:
    calls: list[str] = []
    client = TestClient(_app(calls, asynchronous=asynchronous))
    for name in ("prod", "nope"):
        answer = client.delete(f"/w/{name}")
        assert (answer.status_code, answer.headers["www-authenticate"]) == (
            401,
            'Bearer realm="api"',
        )
        assert (
            client.delete(f"/w/{name}", headers={"Authorization": "Bearer a b"}).status_code == 400
        )
        invalid = client.delete(f"/w/{name}", headers={"Authorization": "Bearer x.y.z"})
        assert invalid.status_code == 401
    assert calls == []
    token = {"Authorization": f"Bearer {sign()}"}
    assert client.delete("/w/nope", headers=token).status_code == 404
    assert client.delete("/w/prod", headers=token).json() == {"by": "alice"}
    assert calls == ["nope", "prod"]


def _several(client: TestClient, path: str) -> Any:
    headers = [("Authorization", ""), ("Authorization", f"Bearer {sign()}")]
    return client.request("DELETE", path, headers=headers)


def test_several_headers_the_first_empty_are_refused_in_starlette() -> None:
    answer = _several(TestClient(_app([])), "/w/prod")
    assert answer.status_code == 400
    assert answer.headers["www-authenticate"].startswith('Bearer error="invalid_request"')


def test_several_headers_the_first_empty_are_refused_in_fastapi() -> None:
    app = FastAPI()
    dependency = Depends(
        require_token(guard(SettableClock(T0), asynchronous=True), "workspace.delete")
    )

    @app.delete("/w/{name}")
    async def delete(name: str, token: Any = dependency) -> dict[str, str]:
        return {"by": token.subject}

    answer = _several(TestClient(app), "/w/prod")
    assert answer.status_code == 400
    assert answer.headers["www-authenticate"].startswith('Bearer error="invalid_request"')
