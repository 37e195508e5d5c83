"""FastAPI's ``include_router`` keeps the included router as a route of its own (no
endpoint, no ``routes``, no ``app``): the coverage kit walks into it with the include's
prefix, and counts a stepup dependency given to the include as a guard of each route."""

from __future__ import annotations

import pytest
from fastapi import APIRouter, Depends, FastAPI

from integrations.starlette.starlette_support import CHEAP
from integrations.starlette.test_docs import load_example
from integrations.starlette.test_issue13_flows import STARLETTE_PUBLIC
from stepup.adapters.storage.memory import MemoryStore
from stepup.testing import SettableClock
from stepup.testing.coverage import assert_guarded, routes_of


def _example() -> FastAPI:
    app: FastAPI = load_example("fastapi_app").create_app(
        store=MemoryStore(), clock=SettableClock(), hasher=CHEAP
    )
    return app


def test_an_unguarded_route_of_an_included_router_is_named() -> None:
    app = _example()
    stepup = app.state.stepup
    keys = APIRouter(prefix="/keys")

    @keys.post("/delete")
    async def delete_key() -> dict[str, str]:  # forgot the guard
        return {}

    app.include_router(keys, prefix="/admin")
    assert "POST /admin/keys/delete (delete_key)" in [r.label() for r in routes_of(app)]
    with pytest.raises(AssertionError, match=r"POST /admin/keys/delete \(delete_key\): can"):
        assert_guarded(app, stepup.policy, public=STARLETTE_PUBLIC)


def test_a_guard_given_to_the_include_guards_every_route_of_it() -> None:
    app = _example()
    stepup = app.state.stepup
    inner, outer = APIRouter(), APIRouter()

    @inner.post("/rotate")
    async def rotate_key() -> dict[str, str]:
        return {}

    outer.include_router(inner, prefix="/keys")
    app.include_router(
        outer, prefix="/admin", dependencies=[Depends(stepup.require_reauth("api_key.regenerate"))]
    )
    (route,) = [r for r in routes_of(app) if r.path == "/admin/keys/rotate"]
    assert route.actions == ("api_key.regenerate",)
    assert_guarded(
        app,
        stepup.policy,
        sensitive={"POST /admin/keys/rotate": "api_key.regenerate"},
        public=STARLETTE_PUBLIC,
    )
