"""Flask: ``@stepup.csrf_protect`` on an app's own view answers as stepup's own forms do
(a translated page for a browser, the JSON 403 ``csrf`` for a script), and a request that
carries no token at all is logged for the developer: a form missing its
``{{ stepup_csrf_field() }}`` is not an expired page."""

from __future__ import annotations

import logging

import pytest
from flask import Flask

from integrations.flask.flask_support import TestApp, make_app
from stepup.adapters.storage.memory import MemoryStore
from stepup.integrations.flask import Stepup
from stepup.testing import SettableClock

LOGGER = "stepup.integrations.flask"


def _own_form(app: Flask, stepup: Stepup) -> None:
    @app.post("/profile")
    @stepup.csrf_protect
    def save_profile() -> str:
        return "saved"


@pytest.fixture
def test_app() -> TestApp:
    return make_app(store=MemoryStore(), clock=SettableClock(), setup=_own_form)


def test_a_form_without_a_token_gets_the_translated_page_and_a_warning(
    test_app: TestApp, caplog: pytest.LogCaptureFixture
) -> None:
    browser = test_app.client()
    assert browser.login("alice").status_code == 303
    with caplog.at_level(logging.WARNING, LOGGER):
        answer = browser.client.post(
            "/profile", data={"name": "x"}, headers={"Accept-Language": "de"}
        )
    assert answer.status_code == 403
    assert answer.mimetype == "text/html"
    assert "Dieses Formular ist abgelaufen" in answer.get_data(as_text=True)
    warnings = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert warnings == [
        "POST save_profile carried no CSRF token: give its form"
        " {{ stepup_csrf_field() }}, or send the X-CSRF-Token header"
    ]


def test_a_forged_token_is_refused_without_a_warning(
    test_app: TestApp, caplog: pytest.LogCaptureFixture
) -> None:
    browser = test_app.client()
    assert browser.login("alice").status_code == 303
    with caplog.at_level(logging.WARNING, LOGGER):
        answer = browser.client.post("/profile", data={"csrf_token": "forged", "name": "x"})
    assert answer.status_code == 403
    assert "This form has expired" in answer.get_data(as_text=True)
    assert [r for r in caplog.records if r.name == LOGGER] == []


def test_a_script_gets_the_json_403(test_app: TestApp) -> None:
    browser = test_app.client()
    assert browser.login("alice").status_code == 303
    answer = browser.client.post(
        "/profile", json={"name": "x"}, headers={"Accept": "application/json"}
    )
    assert answer.status_code == 403
    assert answer.get_json()["error"] == "csrf"


def test_the_right_token_goes_through(test_app: TestApp) -> None:
    browser = test_app.client()
    assert browser.login("alice").status_code == 303
    answer = browser.client.post("/profile", data={"csrf_token": browser.csrf(), "name": "x"})
    assert (answer.status_code, answer.get_data(as_text=True)) == (200, "saved")
