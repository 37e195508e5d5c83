"""Strict mode wants every method but the safe ones (GET, HEAD, OPTIONS, TRACE, QUERY)
guarded or public: a Flask route answering ``PURGE`` or a WebDAV method changes things
as much as a ``POST``. A ``MethodView``'s own ``options`` handler is a route of its own."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.views import MethodView

from stepup.integrations.marks import guarded_by
from stepup.integrations.views import default_policy
from stepup.testing.coverage import assert_guarded

POLICY = default_policy()
UNGUARDED = "can change something but has no stepup guard"


@pytest.mark.parametrize("method", ["PURGE", "PROPPATCH", "MKCOL"])
def test_strict_mode_names_every_method_but_the_safe_ones(method: str) -> None:
    app = Flask(__name__)

    @app.route("/cache", methods=[method])
    def cache() -> str:
        return "purged"

    assert app.test_client().open("/cache", method=method).text == "purged"
    with pytest.raises(AssertionError, match=f"{method} /cache \\(cache\\): {UNGUARDED}"):
        assert_guarded(app, POLICY)
    assert_guarded(app, POLICY, public={f"{method} /cache"})


def test_safe_methods_alone_need_nothing() -> None:
    app = Flask(__name__)

    @app.route("/read", methods=["GET", "QUERY", "TRACE"])
    def read() -> str:
        return "read"

    [route] = [r for r in assert_guarded(app, POLICY) if r.path == "/read"]
    assert not route.can_change_things


def test_a_method_views_own_options_handler_is_a_route_of_its_own() -> None:
    class Key(MethodView):
        @guarded_by("api_key.read")
        def get(self) -> str:
            return "key"

        def options(self) -> str:  # answers OPTIONS itself, unguarded
            return "key, too"

    app = Flask(__name__)
    app.add_url_rule("/key", view_func=Key.as_view("key"))
    assert app.test_client().options("/key").text == "key, too"
    with pytest.raises(AssertionError, match=r"OPTIONS /key \(key\): is for the sensitive"):
        assert_guarded(app, POLICY, sensitive={"/key": "api_key.read"})
