"""What ``reauth_required`` lets through is this person's, now: the response carries
``Cache-Control: private, no-store`` (the view's other directives kept, ``public`` and
``max-age`` dropped), so no browser or shared cache keeps it to serve after the grant is
revoked, or to someone else (ASVS 5.0 14.3.2). A refusal, and a view no guard wraps,
are left as they were."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from flask import Flask, Response, make_response

from integrations.flask.flask_support import Browser, TestApp, fresh_grant, make_app, set_flag
from stepup.integrations.flask import Stepup

UNCACHEABLE = "private, no-store"


def _views(app: Flask, stepup: Stepup) -> None:
    @app.get("/g/text")
    @stepup.reauth_required("api_key.read")
    def text() -> str:
        return "the key"

    @app.get("/g/tuple")
    @stepup.reauth_required("api_key.read")
    def with_headers() -> Any:
        return {"key": "k"}, 200, {"Cache-Control": "public, max-age=600, no-transform"}

    @app.get("/g/response")
    @stepup.reauth_required("api_key.read")
    def response() -> Response:
        answer = make_response("the key")
        answer.headers["Cache-Control"] = "max-age=60, must-revalidate"
        return answer

    @app.get("/g/async")
    @stepup.reauth_required("api_key.read")
    async def later() -> str:
        await asyncio.sleep(0)
        return "the key"

    @app.get("/g/checked")
    def checked() -> str:
        # A view that branches on check() instead of refusing: shown only when allowed.
        decision = stepup.check("api_key.read")
        return "the key" if decision is not None and decision.ok else "ask first"

    @app.get("/g/unguarded")
    def unguarded() -> Response:
        answer = make_response("public")
        answer.headers["Cache-Control"] = "public, max-age=600"
        return answer


@pytest.fixture
def test_app() -> TestApp:
    return make_app(setup=_views)


@pytest.fixture
def alice(test_app: TestApp) -> Browser:
    browser = test_app.client()
    browser.login("alice")
    assert set_flag(browser, True).status_code == 200
    return browser


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/g/text", UNCACHEABLE),
        ("/g/tuple", "private, no-store, no-transform"),
        ("/g/response", "private, no-store, must-revalidate"),
        ("/g/async", UNCACHEABLE),
        ("/api-key", UNCACHEABLE),
    ],
)
def test_what_the_guard_lets_through_no_cache_keeps(
    alice: Browser, url: str, expected: str
) -> None:
    fresh_grant(alice)
    answer = alice.get(url)
    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == expected
    assert answer.headers.getlist("Cache-Control") == [expected]


def test_with_the_flag_off_too(test_app: TestApp) -> None:
    browser = test_app.client()
    browser.login("bob")
    answer = browser.get("/g/text")
    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == UNCACHEABLE


def test_a_refusal_and_an_unguarded_view_are_left_as_they_were(alice: Browser) -> None:
    refused = alice.get("/g/tuple")
    assert refused.status_code == 303
    assert refused.headers["Cache-Control"] == "no-store"
    assert alice.get("/g/unguarded").headers["Cache-Control"] == "public, max-age=600"


def test_a_view_whose_check_allowed_the_action_is_marked_and_one_refused_is_not(
    alice: Browser,
) -> None:
    refused = alice.get("/g/checked")
    assert refused.get_data(as_text=True) == "ask first"
    assert "Cache-Control" not in refused.headers
    fresh_grant(alice)
    allowed = alice.get("/g/checked")
    assert allowed.get_data(as_text=True) == "the key"
    assert allowed.headers["Cache-Control"] == UNCACHEABLE
