"""The coverage check reads an ``HTTPEndpoint`` one handler at a time: a guarded
``get`` never makes an unguarded ``post`` or ``delete`` look guarded (at runtime they
run without re-authentication), and strict mode names each unguarded handler."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.endpoints import HTTPEndpoint
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from integrations.starlette.starlette_support import PASSWORDS, make_app
from stepup.adapters.storage.memory import MemoryStore
from stepup.integrations.marks import guarded_by
from stepup.testing import SettableClock
from stepup.testing.coverage import RouteInfo, assert_guarded, starlette_routes


def _routes(stepup: Any, *, guard_all: bool) -> list[Any]:
    class ApiKey(HTTPEndpoint):
        @stepup.requires_reauth("api_key.read")
        async def get(self, request: Request) -> Response:
            return PlainTextResponse("key")

        async def post(self, request: Request) -> Response:
            return PlainTextResponse("regenerated")

        async def delete(self, request: Request) -> Response:
            return PlainTextResponse("deleted")

    if guard_all:
        ApiKey.post = stepup.requires_reauth("api_key.regenerate")(ApiKey.post)  # type: ignore[method-assign]
        ApiKey.delete = stepup.requires_reauth("api_key.regenerate")(ApiKey.delete)  # type: ignore[method-assign]
    return [Route("/keys", ApiKey)]


def _key_routes(app: Any) -> list[RouteInfo]:
    return [r for r in starlette_routes(app) if r.path == "/keys"]


def test_each_handler_is_its_own_route_with_its_own_guards(clock: SettableClock) -> None:
    test_app = make_app(
        clock=clock, store=MemoryStore(), extra_routes=lambda s: _routes(s, guard_all=False)
    )
    routes = {r.label(): r.actions for r in _key_routes(test_app.app)}
    assert routes == {
        "GET /keys (ApiKey)": ("api_key.read",),
        "POST /keys (ApiKey)": (),
        "DELETE /keys (ApiKey)": (),
    }


def test_strict_mode_names_each_unguarded_handler(clock: SettableClock) -> None:
    test_app = make_app(
        clock=clock, store=MemoryStore(), extra_routes=lambda s: _routes(s, guard_all=False)
    )
    policy = test_app.stepup.policy
    with pytest.raises(AssertionError) as caught:
        assert_guarded(_key_routes(test_app.app), policy, sensitive={"GET /keys": "api_key.read"})
    message = str(caught.value)
    assert "2 problem(s)" in message
    assert "POST /keys (ApiKey): can change something but has no stepup guard" in message
    assert "DELETE /keys (ApiKey): can change something but has no stepup guard" in message
    # A "/path" key speaks for every handler: the unguarded ones are named for the action.
    with pytest.raises(AssertionError, match=r"POST /keys \(ApiKey\): is for the sensitive"):
        assert_guarded(_key_routes(test_app.app), policy, sensitive={"/keys": "api_key.read"})
    # Declared public, the check passes: somebody said so.
    assert_guarded(
        _key_routes(test_app.app),
        policy,
        sensitive={"GET /keys": "api_key.read"},
        public={"POST /keys", "DELETE /keys"},
    )


def test_what_the_check_says_is_what_runs(clock: SettableClock) -> None:
    """The unguarded handler the check names really runs without re-authentication; the
    guarded one is refused."""
    test_app = make_app(
        clock=clock, store=MemoryStore(), extra_routes=lambda s: _routes(s, guard_all=False)
    )
    alice = test_app.browser()
    try:
        alice.login("alice")
        assert alice.patch_tenant(True).status_code == 200
        assert alice.get("/keys").status_code == 303
        assert alice.post("/keys").text == "regenerated"
    finally:
        alice.close()


def test_every_handler_guarded_passes(clock: SettableClock) -> None:
    test_app = make_app(
        clock=clock, store=MemoryStore(), extra_routes=lambda s: _routes(s, guard_all=True)
    )
    sensitive = {
        "GET /keys": "api_key.read",
        "POST /keys": "api_key.regenerate",
        "DELETE /keys": "api_key.regenerate",
    }
    checked = assert_guarded(_key_routes(test_app.app), test_app.stepup.policy, sensitive=sensitive)
    assert len(checked) == 3
    alice = test_app.browser()
    try:
        alice.login("alice")
        assert alice.patch_tenant(True).status_code == 200
        refused = alice.post("/keys")
        assert refused.status_code == 303
        assert alice.reauth(refused.headers["location"], PASSWORDS["alice"]).status_code == 303
        assert alice.post("/keys").text == "regenerated"
    finally:
        alice.close()


def test_a_mark_on_the_class_covers_every_handler_and_route_methods_narrow_it(
    clock: SettableClock,
) -> None:
    @guarded_by("api_key.regenerate")  # the endpoint says it guards itself
    class Keys(HTTPEndpoint):
        async def get(self, request: Request) -> Response:
            return PlainTextResponse("key")

        async def post(self, request: Request) -> Response:
            return PlainTextResponse("regenerated")

    class Narrow(HTTPEndpoint):
        async def get(self, request: Request) -> Response:
            return PlainTextResponse("key")

        async def post(self, request: Request) -> Response:  # not routed: a 405
            return PlainTextResponse("regenerated")

    test_app = make_app(
        clock=clock,
        store=MemoryStore(),
        extra_routes=lambda s: [Route("/keys", Keys), Route("/narrow", Narrow, methods=["GET"])],
    )
    found = {r.label(): r.actions for r in starlette_routes(test_app.app)}
    assert found["GET /keys (Keys)"] == ("api_key.regenerate",)
    assert found["POST /keys (Keys)"] == ("api_key.regenerate",)
    assert [label for label in found if "/narrow" in label] == ["GET /narrow (Narrow)"]
