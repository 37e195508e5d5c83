"""Starlette: a browser refused a request other than GET or HEAD comes back, after
re-authenticating, to a page it can GET (``return_to``, else the same-site Referer,
else ``/``), as in Flask, Django and FastAPI; never to the refused URL."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from integrations.starlette.starlette_support import TestApp, make_app, next_of
from stepup.adapters.storage.memory import MemoryStore
from stepup.testing import SettableClock


def _app(clock: SettableClock) -> TestApp:
    test_app = make_app(clock=clock, store=MemoryStore())
    stepup = test_app.stepup

    @stepup.requires_reauth("user.update", return_to="/workspaces")
    async def delete(request: Request) -> Response:
        return PlainTextResponse("deleted")

    @stepup.requires_reauth(
        "api_key.regenerate", return_to=lambda r: f"/keys/{r.path_params['key']}"
    )
    async def regenerate(request: Request) -> Response:
        return PlainTextResponse("regenerated")

    test_app.app.router.routes[:0] = [
        Route("/ws/{name}", delete, methods=["DELETE"]),
        Route("/keys/{key}/regenerate", regenerate, methods=["PUT"]),
    ]
    return test_app


def test_a_refused_delete_and_put_come_back_to_their_return_to() -> None:
    test_app = _app(SettableClock())
    alice = test_app.browser()
    assert alice.login("alice").status_code == 303
    assert alice.patch_tenant(True).status_code == 200
    refused = alice.client.delete("/ws/prod", headers={"Referer": "http://testserver/x"})
    assert refused.status_code == 303
    assert next_of(refused.headers["location"]) == "/workspaces"
    refused = alice.client.put("/keys/k1/regenerate")
    assert next_of(refused.headers["location"]) == "/keys/k1"
    alice.close()


def test_a_get_still_comes_back_to_itself() -> None:
    test_app = _app(SettableClock())
    alice = test_app.browser()
    assert alice.login("alice").status_code == 303
    assert alice.patch_tenant(True).status_code == 200
    refused = alice.client.get("/api-key")
    assert next_of(refused.headers["location"]) == "/api-key"
    alice.close()
