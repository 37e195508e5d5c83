"""One line per framework: Flask and Starlette decorators and the FastAPI dependency give
the same answers (Django's decorator: tests/integrations/django/test_bearer.py)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from flask import Flask, g
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api.tokens_support import LOW_ACR_CHALLENGE, T0, guard, sign
from stepup.errors import UnknownActionError
from stepup.integrations.fastapi import require_token
from stepup.integrations.flask.bearer import bearer_required
from stepup.integrations.marks import actions_of
from stepup.integrations.starlette.bearer import requires_token
from stepup.testing import SettableClock
from stepup.tokens import AccessToken


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(T0)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def check_answers(send: Any) -> None:
    """``send(token or None)`` → (status, headers, json) for DELETE of the guarded route."""
    status, headers, body = send(sign())
    assert (status, body["by"]) == (200, "alice")
    assert headers["cache-control"] == "private, no-store"  # served for this token, now
    status, headers, _ = send(sign(acr="urn:pwd", amr=["pwd"]))
    assert (status, headers["www-authenticate"]) == (401, LOW_ACR_CHALLENGE)
    status, headers, _ = send(sign(auth_time=T0 - 301))
    assert status == 401
    assert headers["www-authenticate"].endswith('max_age="300"')
    status, headers, _ = send(sign(aud="https://other"))
    assert status == 401
    assert headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    status, headers, _ = send(None)
    assert (status, headers["www-authenticate"]) == (401, 'Bearer realm="api"')


def test_flask(clock: SettableClock) -> None:
    app = Flask(__name__)
    protect = guard(clock)

    @app.delete("/workspaces/<name>")
    @bearer_required(protect, "workspace.delete")
    def delete(name: str) -> dict[str, str]:
        token: AccessToken = g.stepup_token
        return {"deleted": name, "by": token.subject}

    assert actions_of(delete) == ("workspace.delete",)
    client = app.test_client()

    def send(token: str | None) -> tuple[int, Any, Any]:
        response = client.delete("/workspaces/prod", headers=bearer(token) if token else {})
        return response.status_code, {k.lower(): v for k, v in response.headers}, response.json

    check_answers(send)
    with pytest.raises(UnknownActionError):
        bearer_required(protect, "workspace.delet")


def test_starlette(clock: SettableClock) -> None:
    protect = guard(clock, asynchronous=True)

    @requires_token(protect, "workspace.delete")
    async def delete(request: Request) -> Response:
        token: AccessToken = request.state.stepup_token
        return JSONResponse({"deleted": request.path_params["name"], "by": token.subject})

    app = Starlette(routes=[Route("/workspaces/{name}", delete, methods=["DELETE"])])
    with TestClient(app) as client:

        def send(token: str | None) -> tuple[int, Any, Any]:
            response = client.delete("/workspaces/prod", headers=bearer(token) if token else {})
            return response.status_code, response.headers, response.json()

        check_answers(send)


def test_fastapi(clock: SettableClock) -> None:
    app = FastAPI()
    delete_token = Depends(require_token(guard(clock, asynchronous=True), "workspace.delete"))

    @app.delete("/workspaces/{name}")
    async def delete(name: str, token: AccessToken = delete_token) -> dict[str, str]:
        return {"deleted": name, "by": token.subject}

    with TestClient(app) as client:

        def send(token: str | None) -> tuple[int, Any, Any]:
            response = client.delete("/workspaces/prod", headers=bearer(token) if token else {})
            return response.status_code, response.headers, response.json()

        check_answers(send)
        low = client.delete("/workspaces/prod", headers=bearer(sign(acr="urn:pwd", amr=["pwd"])))
        assert low.json()["detail"]["acr_values"] == ["urn:mfa"]
