"""Flask's ``reauth_required`` and ``csrf_protect`` on ``async def`` views: the view
is awaited once the check lets the request through (the sync wrapper handed Flask
the un-awaited coroutine, a 500 on every allowed request), and a refused request
never reaches it."""

from __future__ import annotations

import asyncio
from typing import Any

from flask import Flask

from integrations.flask.flask_support import make_app, set_flag
from stepup.integrations.flask import Stepup
from stepup.integrations.marks import actions_of


def _with_async_views(reached: list[str]) -> Any:
    def setup(app: Flask, stepup: Stepup) -> None:
        @app.get("/async-key")
        @stepup.reauth_required("api_key.read")
        async def async_key() -> dict[str, str]:
            await asyncio.sleep(0)  # a real coroutine, suspended once
            reached.append("key")
            return {"key": "k-123"}

        @app.post("/async-note")
        @stepup.csrf_protect
        async def async_note() -> dict[str, str]:
            await asyncio.sleep(0)
            reached.append("note")
            return {"saved": "yes"}

        assert asyncio.iscoroutinefunction(async_key)
        assert actions_of(async_key) == ("api_key.read",)

    return make_app(setup=setup)


def test_an_async_view_runs_once_reauth_is_fresh_and_not_before() -> None:
    reached: list[str] = []
    test_app = _with_async_views(reached)
    browser = test_app.client()
    browser.login("alice")
    set_flag(browser, True)
    asked = browser.get("/async-key", headers={"Accept": "application/json"})
    assert asked.status_code == 401
    assert asked.json["error"] == "reauth_required"
    assert reached == []
    refused_page = browser.get("/async-key")
    assert refused_page.status_code == 303
    done = browser.reauth(refused_page.headers["Location"], test_app.users["alice"].password)
    assert done.status_code == 303
    answer = browser.get("/async-key")
    assert (answer.status_code, answer.json) == (200, {"key": "k-123"})
    assert reached == ["key"]


def test_an_async_view_runs_with_the_flag_off() -> None:
    reached: list[str] = []
    browser = _with_async_views(reached).client()
    browser.login("alice")
    answer = browser.get("/async-key")
    assert (answer.status_code, answer.json) == (200, {"key": "k-123"})
    assert reached == ["key"]


def test_csrf_protect_awaits_an_async_view_and_refuses_without_a_token() -> None:
    reached: list[str] = []
    browser = _with_async_views(reached).client()
    browser.login("alice")
    refused = browser.post("/async-note", headers={"Accept": "application/json"})
    assert refused.status_code == 403
    assert reached == []
    answer = browser.form("/async-note", {})
    assert (answer.status_code, answer.json) == (200, {"saved": "yes"})
    assert reached == ["note"]
