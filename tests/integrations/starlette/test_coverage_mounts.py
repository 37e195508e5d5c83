"""The coverage check sees behind a ``Mount`` or ``Host``: through middleware around the
router inside, and, where no router can be seen (a plain ASGI app), it lists the mount
as one route answering any method, so strict mode names it unless declared public."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Host, Mount, Route, Router
from starlette.staticfiles import StaticFiles
from starlette.testclient import TestClient
from starlette.types import Receive, Scope, Send

from integrations.starlette.starlette_support import make_app
from stepup.adapters.storage.memory import MemoryStore
from stepup.integrations.marks import guarded_by
from stepup.integrations.views import default_policy
from stepup.testing import SettableClock
from stepup.testing.coverage import assert_guarded, routes_of, starlette_routes

POLICY = default_policy()
UNGUARDED = "can change something but has no stepup guard"


async def delete_everything(request: Request) -> Response:
    return PlainTextResponse("deleted")


@guarded_by("api_key.regenerate")
async def regenerate(request: Request) -> Response:
    return PlainTextResponse("regenerated")


async def legacy(scope: Scope, receive: Receive, send: Send) -> None:
    """A plain ASGI app: it answers any method, and no router says which."""
    await PlainTextResponse(f"changed by {scope['method']}")(scope, receive, send)


def _admin() -> Router:
    return Router(
        [
            Route("/delete", delete_everything, methods=["POST"]),
            Route("/regenerate", regenerate, methods=["POST"]),
        ]
    )


def _wrapped(app: Any, layers: int) -> Any:
    for _ in range(layers):
        app = CORSMiddleware(GZipMiddleware(app), allow_origins=["*"])
    return app


def _found(app: Any) -> dict[str, tuple[str, ...]]:
    return {r.label(): r.actions for r in starlette_routes(app)}


@given(layers=st.integers(min_value=0, max_value=6), outer=st.integers(min_value=0, max_value=3))
def test_middleware_around_a_mounted_router_is_looked_through(layers: int, outer: int) -> None:
    app = Starlette(routes=[Mount("/admin", app=_wrapped(_admin(), layers))])
    expected = {
        "POST /admin/delete (delete_everything)": (),
        "POST /admin/regenerate (regenerate)": ("api_key.regenerate",),
    }
    assert _found(app) == expected
    # The app the server runs may be wrapped too; routes_of knows it for Starlette's.
    served = _wrapped(app, outer)
    assert _found(served) == expected
    assert {r.label(): r.actions for r in routes_of(served)} == expected


def test_strict_mode_names_an_unguarded_handler_behind_middleware() -> None:
    app = Starlette(
        routes=[
            Mount("/admin", app=CORSMiddleware(_admin(), allow_origins=["*"])),
            Mount(
                "/api",
                routes=[Route("/delete", delete_everything, methods=["POST"])],
                middleware=[Middleware(GZipMiddleware)],
            ),
        ]
    )
    with pytest.raises(AssertionError) as caught:
        assert_guarded(app, POLICY, sensitive={"POST /admin/regenerate": "api_key.regenerate"})
    message = str(caught.value)
    assert "2 problem(s)" in message
    assert f"POST /admin/delete (delete_everything): {UNGUARDED}" in message
    assert f"POST /api/delete (delete_everything): {UNGUARDED}" in message


def test_a_mount_whose_routes_cannot_be_seen_is_one_route_of_any_method() -> None:
    app = Starlette(
        routes=[
            Mount("/legacy", app=legacy),
            Mount("/wrapped-legacy", app=GZipMiddleware(legacy), name="old"),
            Host("api.example.org", app=legacy),
        ]
    )
    found = starlette_routes(app)
    assert [(r.label(), r.actions, r.can_change_things) for r in found] == [
        ("ANY /legacy", (), True),
        ("ANY /wrapped-legacy (old)", (), True),
        ("ANY / (api.example.org)", (), True),
    ]
    with pytest.raises(AssertionError) as caught:
        assert_guarded(app, POLICY)
    message = str(caught.value)
    assert "3 problem(s)" in message
    assert f"ANY /legacy: {UNGUARDED}" in message
    # Somebody said so: it passes.
    assert_guarded(app, POLICY, public={"/legacy", "old", "api.example.org"})


def test_what_the_check_names_really_runs_unguarded() -> None:
    app = Starlette(
        routes=[
            Mount("/admin", app=CORSMiddleware(_admin(), allow_origins=["*"])),
            Mount("/legacy", app=legacy),
        ]
    )
    client = TestClient(app)
    assert client.post("/admin/delete").text == "deleted"
    assert client.delete("/legacy/anything").text == "changed by DELETE"


def test_a_host_with_a_router_behind_middleware_is_followed() -> None:
    app = Starlette(routes=[Host("admin.example.org", app=GZipMiddleware(_admin()))])
    assert _found(app) == {
        "POST /delete (delete_everything)": (),
        "POST /regenerate (regenerate)": ("api_key.regenerate",),
    }


def test_mounted_static_files_answer_only_get(tmp_path: Path) -> None:
    class Uploads(StaticFiles):
        async def get_response(self, path: str, scope: Scope) -> Response:
            return PlainTextResponse("stored")  # answers POST too: not read-only

    app = Starlette(
        routes=[
            Mount("/static", StaticFiles(directory=tmp_path), name="static"),
            Mount("/uploads", Uploads(directory=tmp_path), name="uploads"),
        ]
    )
    assert [r.label() for r in starlette_routes(app)] == [
        "GET /static (static)",
        "ANY /uploads (uploads)",
    ]
    with pytest.raises(AssertionError, match=r"1 problem\(s\)\n  - ANY /uploads \(uploads\)"):
        assert_guarded(app, POLICY)
    assert TestClient(app).post("/uploads/x").text == "stored"


def test_stepups_own_mount_stays_its_own_behind_middleware(clock: SettableClock) -> None:
    test_app = make_app(clock=clock, store=MemoryStore())
    wrapped = CORSMiddleware(test_app.app, allow_origins=["*"])
    found = starlette_routes(wrapped)
    own = [r for r in found if r.path.startswith("/stepup/")]
    assert own
    assert all(r.stepup_own for r in own)
    assert {r.label() for r in found} == {r.label() for r in starlette_routes(test_app.app)}
