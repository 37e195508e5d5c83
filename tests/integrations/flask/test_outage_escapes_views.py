"""Flask: a store outage that escapes a view, stepup's (the two-factor page, the
enrolment) or the app's own (its login view asking ``two_factor_required``, documented
"a store failure raises"), is the 503 that says to try again in a moment, with
``Retry-After``: the page for a browser, JSON for a script; never a 500 nor a
traceback. The error handler is app-wide; an app's own handler for the error wins."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from flask import Flask

from integrations.flask.flask_support import make_app
from integrations.outage_support import FailingWrites, StoreDown
from integrations.record_outage_support import TRY_AGAIN
from stepup.errors import StepupError, StoreUnavailableError
from stepup.integrations.flask import Stepup

JSON = {"Accept": "application/json"}
_DEVICE = re.compile(r'data-device-id="([^"]+)"')


def _try_again_page(answer: Any) -> None:
    assert answer.status_code == 503
    assert answer.mimetype == "text/html"
    assert answer.headers["Retry-After"] == "5"
    body = answer.get_data(as_text=True)
    assert TRY_AGAIN in body
    assert "Traceback" not in body


def _try_again_json(answer: Any) -> None:
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "5"
    assert answer.get_json() == {"error": "unavailable", "title": TRY_AGAIN}


def test_the_two_factor_pages(caplog: pytest.LogCaptureFixture) -> None:
    store = StoreDown()
    alice = make_app(store=store).client()
    assert alice.login("alice").status_code == 303
    token = alice.csrf()
    store.down = True
    with caplog.at_level(logging.DEBUG):
        _try_again_page(alice.get("/stepup/2fa"))
        _try_again_json(alice.get("/stepup/2fa", headers=JSON))
        _try_again_page(alice.post("/stepup/2fa/enrol", data={"csrf_token": token}))
        enrol = alice.post("/stepup/2fa/enrol", data={"csrf_token": token}, headers=JSON)
        _try_again_json(enrol)
    store.down = False
    # One WARNING per failed store call, from the store's runner; nothing else.
    assert caplog.records
    assert {(r.name, r.levelname) for r in caplog.records} == {("stepup.store", "WARNING")}
    assert alice.get("/stepup/2fa").status_code == 200


@pytest.mark.parametrize("mode", ["subject_loader", "flask_login"])
def test_the_apps_login_view(mode: str) -> None:
    store = StoreDown()
    bob = make_app(mode, store=store).client()
    store.down = True
    _try_again_page(bob.login("bob"))
    login = {"username": "bob", "password": "battery staple"}
    _try_again_json(bob.post("/login", data=login, headers=JSON))
    store.down = False
    assert bob.get("/home").get_data(as_text=True) == "home of nobody"


def _own(error: StepupError) -> Any:
    return f"our own answer to {type(error).__name__}", 599


def test_an_apps_own_handler_registered_before_init_app_wins() -> None:
    def setup(app: Flask, stepup: Stepup) -> None:
        app.register_error_handler(StoreUnavailableError, _own)

    store = StoreDown()
    alice = make_app(store=store, setup=setup).client()
    assert alice.login("alice").status_code == 303
    store.down = True
    answer = alice.get("/stepup/2fa")
    assert (answer.status_code, answer.get_data(as_text=True)) == (
        599,
        "our own answer to StoreUnavailableError",
    )


def test_an_apps_own_handler_registered_after_init_app_wins() -> None:
    store = StoreDown()
    test_app = make_app(store=store)
    test_app.app.register_error_handler(StoreUnavailableError, _own)
    alice = test_app.client()
    assert alice.login("alice").status_code == 303
    store.down = True
    assert alice.get("/stepup/2fa").status_code == 599


def test_an_apps_handler_for_every_stepup_error_keeps_answering_it() -> None:
    def setup(app: Flask, stepup: Stepup) -> None:
        app.register_error_handler(StepupError, _own)

    store = StoreDown()
    bob = make_app(store=store, setup=setup).client()
    store.down = True
    answer = bob.login("bob")
    assert (answer.status_code, answer.get_data(as_text=True)) == (
        599,
        "our own answer to StoreUnavailableError",
    )


def test_a_device_change_the_store_refuses() -> None:
    """The device views' own 503 (the store refused the write): the same answer."""
    store = FailingWrites()
    bob = make_app(store=store).client()
    assert bob.login("bob").status_code == 303
    bob.enrol()
    (device,) = _DEVICE.findall(bob.get("/stepup/2fa").get_data(as_text=True))
    form = {"name": "Phone", "csrf_token": bob.csrf()}
    rename = f"/stepup/2fa/devices/{device}/rename"
    store.broken = True
    page = bob.post(rename, data=form)
    _try_again_page(page)
    assert 'href="/stepup/2fa"' in page.get_data(as_text=True)  # where to try again
    _try_again_json(bob.post(rename, data=form, headers=JSON))
