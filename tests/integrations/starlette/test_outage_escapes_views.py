"""Starlette: a store outage that escapes a view, stepup's (the two-factor page, the
enrolment) or the app's own (its login view calling ``begin_sign_in``, documented "a
store failure raises"), is the 503 that says to try again in a moment, with
``Retry-After``: the page for a browser, JSON for a script; never a 500 nor a
traceback. An app's own exception handler for the error still wins."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from integrations.outage_support import FailingWrites, StoreDown
from integrations.record_outage_support import TRY_AGAIN
from integrations.starlette.starlette_support import csrf_token, enrol, make_app
from stepup.errors import StoreUnavailableError
from stepup.integrations.starlette import Stepup
from stepup.integrations.starlette.stepup import StepupCore
from stepup.testing import SettableClock

JSON = {"Accept": "application/json"}
_DEVICE = re.compile(r'data-device-id="([^"]+)"')


def _try_again_page(answer: Any) -> None:
    assert answer.status_code == 503
    assert answer.headers["content-type"].startswith("text/html")
    assert answer.headers["retry-after"] == "5"
    assert TRY_AGAIN in answer.text
    assert "Traceback" not in answer.text


def _try_again_json(answer: Any) -> None:
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "5"
    assert answer.json() == {"error": "unavailable", "title": TRY_AGAIN}


def _own_login(stepup: Stepup) -> list[Any]:
    """A login view that lets ``begin_sign_in``'s store failure escape (as documented)."""

    async def login(request: Request) -> Response:
        user = str((await request.form()).get("user"))
        waiting = await stepup.begin_sign_in(request, user, next="/")
        if waiting is not None:
            return waiting
        request.session["user"] = user
        return RedirectResponse("/", 303)

    return [Route("/own-login", login, methods=["POST"])]


def test_the_two_factor_pages(caplog: pytest.LogCaptureFixture) -> None:
    store = StoreDown()
    browser = make_app(clock=SettableClock(), store=store).browser()
    assert browser.login("alice").status_code == 303
    token = csrf_token(browser.get("/stepup/2fa").text)
    store.down = True
    with caplog.at_level(logging.DEBUG):
        _try_again_page(browser.get("/stepup/2fa"))
        _try_again_json(browser.get("/stepup/2fa", headers=JSON))
        _try_again_page(browser.post("/stepup/2fa/enrol", data={"csrf_token": token}))
        confirm = browser.post("/stepup/2fa/confirm", data={"csrf_token": token, "code": "123456"})
        _try_again_page(confirm)
        begin = browser.post("/stepup/2fa/enrol", data={"csrf_token": token}, headers=JSON)
        _try_again_json(begin)
    store.down = False
    stepup_records = [r for r in caplog.records if r.name.startswith("stepup")]
    assert stepup_records
    assert {(r.name, r.levelname) for r in stepup_records} == {("stepup.store", "WARNING")}
    assert browser.get("/stepup/2fa").status_code == 200


def test_the_apps_login_view() -> None:
    store = StoreDown()
    browser = make_app(clock=SettableClock(), store=store, extra_routes=_own_login).browser()
    store.down = True
    _try_again_page(browser.post("/own-login", data={"user": "bob"}))
    _try_again_json(browser.post("/own-login", data={"user": "bob"}, headers=JSON))
    store.down = False
    assert browser.get("/").text == "hello stranger"


class _NoPages(Stepup):
    """As ``StepupCore``, which has no pages: no "try again" page either."""

    async def outage_page(self, request: Request) -> Response | None:
        return await StepupCore.outage_page(self, request)


def test_without_pages_a_browser_gets_the_json_too() -> None:
    store = StoreDown()
    test_app = make_app(
        clock=SettableClock(), store=store, stepup_class=_NoPages, extra_routes=_own_login
    )
    browser = test_app.browser()
    store.down = True
    _try_again_json(browser.post("/own-login", data={"user": "bob"}))


def test_an_apps_own_handler_wins() -> None:
    async def own(request: Request, exc: Exception) -> Response:
        return PlainTextResponse(f"our own answer to {type(exc).__name__}", 599)

    store = StoreDown()
    test_app = make_app(clock=SettableClock(), store=store, extra_routes=_own_login)
    test_app.app.add_exception_handler(StoreUnavailableError, own)
    browser = test_app.browser()
    store.down = True
    answer = browser.post("/own-login", data={"user": "bob"})
    assert (answer.status_code, answer.text) == (599, "our own answer to StoreUnavailableError")


def test_a_device_change_the_store_refuses() -> None:
    """The device views' own 503 (the store refused the write): the same answer."""
    store = FailingWrites()
    browser = make_app(clock=SettableClock(), store=store).browser()
    assert browser.login("bob").status_code == 303
    enrol(browser)
    settings = browser.get("/stepup/2fa").text
    (device,) = _DEVICE.findall(settings)
    form = {"name": "Phone", "csrf_token": csrf_token(settings)}
    rename = f"/stepup/2fa/devices/{device}/rename"
    store.broken = True
    page = browser.post(rename, data=form)
    _try_again_page(page)
    assert 'href="/stepup/2fa"' in page.text  # where to try again
    _try_again_json(browser.post(rename, data=form, headers=JSON))
