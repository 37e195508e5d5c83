"""The coverage check reads a Flask ``MethodView`` one handler at a time: a guarded
``get`` never makes an unguarded ``post`` look guarded, while ``decorators``, a guarded
``dispatch_request`` or a guard around ``as_view()`` cover every handler."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.views import MethodView, View

from integrations.flask.flask_support import TestApp, make_app, set_flag
from stepup.adapters.storage.memory import MemoryStore
from stepup.integrations.flask import Stepup
from stepup.testing import SettableClock
from stepup.testing.coverage import RouteInfo, assert_guarded, flask_routes

#: Every view below, by its path: what each one is.
VIEWS = ("/only-get", "/each", "/decorated", "/dispatch", "/wrapped", "/plain")


def _add_views(app: Flask, stepup: Stepup) -> None:
    class OnlyGet(MethodView):
        @stepup.reauth_required("api_key.read")
        def get(self) -> str:
            return "key"

        def post(self) -> str:  # forgot the guard
            return "regenerated"

    class EachGuarded(MethodView):
        @stepup.reauth_required("api_key.read")
        def get(self) -> str:
            return "key"

        @stepup.reauth_required("api_key.regenerate")
        def post(self) -> str:
            return "regenerated"

    class Decorated(MethodView):
        decorators = [stepup.reauth_required("api_key.regenerate")]

        def get(self) -> str:
            return "key"

        def delete(self) -> str:
            return "deleted"

    class OnDispatch(MethodView):
        def get(self) -> str:
            return "key"

        def put(self) -> str:
            return "put"

        @stepup.reauth_required("api_key.regenerate")
        def dispatch_request(self, **kwargs: Any) -> Any:
            return super().dispatch_request(**kwargs)

    class Plain(View):  # every method goes to dispatch_request
        methods = ["GET", "POST"]

        @stepup.reauth_required("api_key.regenerate")
        def dispatch_request(self) -> str:
            return "plain"

    app.add_url_rule("/only-get", view_func=OnlyGet.as_view("only_get"))
    app.add_url_rule("/each", view_func=EachGuarded.as_view("each"))
    app.add_url_rule("/decorated", view_func=Decorated.as_view("decorated"))
    app.add_url_rule("/dispatch", view_func=OnDispatch.as_view("dispatch"))
    wrapped = stepup.reauth_required("api_key.regenerate")(OnlyGet.as_view("wrapped"))
    app.add_url_rule("/wrapped", view_func=wrapped)
    app.add_url_rule("/plain", view_func=Plain.as_view("plain"))


@pytest.fixture
def test_app(clock: SettableClock) -> TestApp:
    return make_app("subject_loader", clock=clock, store=MemoryStore(), setup=_add_views)


@pytest.fixture
def app(test_app: TestApp) -> Flask:
    return test_app.app


def _routes(app: Flask, path: str) -> list[RouteInfo]:
    return [r for r in flask_routes(app) if r.path == path]


def _policy(app: Flask) -> Any:
    with app.app_context():
        return app.extensions["stepup"].policy


def test_each_handler_is_its_own_route(app: Flask) -> None:
    found = {path: {r.label(): r.actions for r in _routes(app, path)} for path in VIEWS}
    assert found["/only-get"] == {
        "GET /only-get (only_get)": ("api_key.read",),
        "POST /only-get (only_get)": (),
    }
    assert found["/decorated"] == {
        "DELETE /decorated (decorated)": ("api_key.regenerate",),
        "GET /decorated (decorated)": ("api_key.regenerate",),
    }
    assert found["/dispatch"] == {
        "GET /dispatch (dispatch)": ("api_key.regenerate",),
        "PUT /dispatch (dispatch)": ("api_key.regenerate",),
    }
    assert found["/wrapped"] == {
        "GET /wrapped (wrapped)": ("api_key.regenerate", "api_key.read"),
        "POST /wrapped (wrapped)": ("api_key.regenerate",),
    }
    assert found["/plain"] == {"GET,POST /plain (plain)": ("api_key.regenerate",)}


def test_strict_mode_fails_for_the_unguarded_handler(app: Flask) -> None:
    with pytest.raises(AssertionError) as caught:
        assert_guarded(
            _routes(app, "/only-get"), _policy(app), sensitive={"GET /only-get": "api_key.read"}
        )
    assert (
        "1 problem(s)\n  - POST /only-get (only_get): can change something but has no stepup guard"
        in str(caught.value)
    )


def test_strict_mode_passes_when_each_handler_is_guarded(app: Flask) -> None:
    policy = _policy(app)
    each = {"GET /each": "api_key.read", "POST /each": "api_key.regenerate"}
    assert len(assert_guarded(_routes(app, "/each"), policy, sensitive=each)) == 2
    for path in ("/decorated", "/dispatch", "/plain"):
        assert_guarded(_routes(app, path), policy, sensitive={path: "api_key.regenerate"})
    assert_guarded(
        _routes(app, "/wrapped"), policy, sensitive={"POST /wrapped": "api_key.regenerate"}
    )


def test_what_the_check_says_is_what_runs(test_app: TestApp) -> None:
    """The unguarded ``post`` the check names runs without re-authentication; a class-wide
    guard refuses every method until the re-authentication."""
    alice = test_app.client()
    assert alice.login("alice").status_code == 303
    assert set_flag(alice).status_code == 200
    assert alice.get("/only-get").headers["Location"].startswith("/stepup/reauth")
    assert alice.post("/only-get").get_data(as_text=True) == "regenerated"
    refused = alice.client.delete("/decorated")
    assert refused.status_code == 303
    assert (
        alice.reauth(refused.headers["Location"], test_app.users["alice"].password).status_code
        == 303
    )
    assert alice.client.delete("/decorated").get_data(as_text=True) == "deleted"
