"""Review 3: the re-auth page for a rule that accepts TOTP alone (Flask).

A user who has TOTP is offered ``("otp",)`` (issue 15: "TOTP alone can satisfy a rule
that allows it"): the page shows the code field alone, posted to the password form's
view, which checks the code through the same verification and throttle and records
``otp``. The page showed no form at all, and the view answered a posted code with 400.
(The policy's refusal of a passkey together with another method is tested once, in
``integrations/starlette/test_review3_alternatives.py``: it is the core's.)"""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from flask import Flask

from integrations.flask.flask_support import Browser, TestApp, app_policy, make_app
from stepup.adapters.storage.memory import MemoryStore
from stepup.events import ReauthFailed, ReauthSucceeded
from stepup.integrations.flask import Stepup
from stepup.policy import Rule, Sensitivity
from stepup.testing import SettableClock

VAULT = "vault.open"
#: TOTP alone, else the sign-in method: a user with TOTP is offered the code.
RULE = Rule(Sensitivity.SENSITIVE, always=True, accept=(("otp",), ("primary",)), description="x")
POST_TO = "/stepup/reauth/password"


def _vault(app: Flask, stepup: Stepup) -> None:
    @app.get("/vault")
    @stepup.reauth_required(VAULT)
    def vault() -> str:
        return "vault open"


@pytest.fixture
def test_app(mode: str, clock: SettableClock) -> TestApp:
    policy = app_policy().extend({VAULT: RULE})
    return make_app(mode, clock=clock, store=MemoryStore(), policy=policy, setup=_vault)


@pytest.fixture
def with_totp(test_app: TestApp) -> tuple[Browser, str]:
    browser = test_app.client()
    assert browser.login("alice").status_code == 303
    secret, _ = browser.enrol()
    test_app.events.clear()
    return browser, secret


def _page(browser: Browser) -> tuple[dict[str, str], str]:
    """The re-auth page the guard sends to: its hidden fields, and the page."""
    asked = browser.get("/vault")
    assert asked.status_code == 303
    page = browser.get(asked.headers["Location"])
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', body))
    return {k: html.unescape(v) for k, v in fields.items()}, body


def _code_input(body: str) -> str:
    return body.split('id="stepup-code"', 1)[1].split(">", 1)[0]


def test_the_page_shows_the_code_field_alone(with_totp: tuple[Browser, str]) -> None:
    browser, _ = with_totp
    _, body = _page(browser)
    form = re.search(r'<form method="post" action="([^"]+)">(.*?)</form>', body, re.S)
    assert form is not None, "no form on the page"
    assert form.group(1) == POST_TO
    assert '<label for="stepup-code">' in form.group(2)
    assert 'autocomplete="one-time-code"' in _code_input(body)
    assert "autofocus" in _code_input(body)
    assert 'name="password"' not in body
    assert "Use a passkey" not in body


def test_the_code_alone_confirms(test_app: TestApp, with_totp: tuple[Browser, str]) -> None:
    browser, secret = with_totp
    fields, _ = _page(browser)
    test_app.clock.advance(30)  # the enrolment's code is spent
    done = browser.post(POST_TO, data={**fields, "code": test_app.totp_code(secret)})
    assert done.status_code == 303, done.get_data(as_text=True)
    assert done.headers["Location"] == "/vault"
    assert browser.get("/vault").get_data(as_text=True) == "vault open"
    succeeded = [e for e in test_app.events if isinstance(e, ReauthSucceeded)]
    assert [e.method for e in succeeded] == ["otp"]


@pytest.mark.parametrize(
    ("code", "reason", "says"),
    [
        ("000000", "invalid", "That code is not right"),
        ("enrolment", "replayed", "That code was already used"),
    ],
)
def test_a_refused_code_is_answered_as_the_combined_form_does(
    test_app: TestApp, with_totp: tuple[Browser, str], code: str, reason: str, says: str
) -> None:
    browser, secret = with_totp
    fields, _ = _page(browser)
    if code == "enrolment":  # the code the enrolment was confirmed with, this same step
        code = test_app.totp_code(secret)
    refused = browser.post(POST_TO, data={**fields, "code": code})
    body = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert says in body
    assert 'aria-invalid="true"' in _code_input(body)
    failed = [(e.method, e.reason) for e in test_app.events if isinstance(e, ReauthFailed)]
    assert failed == [("otp", reason)]
    assert browser.get("/vault").status_code == 303  # nothing recorded


def test_guessing_is_throttled(test_app: TestApp, with_totp: tuple[Browser, str]) -> None:
    browser, secret = with_totp
    fields, _ = _page(browser)
    answer: Any = None
    for _ in range(5):
        answer = browser.post(POST_TO, data={**fields, "code": "000000"})
    assert answer.status_code == 429
    assert "Too many attempts" in answer.get_data(as_text=True)
    test_app.clock.advance(1)  # still paused: even the right code waits
    right = {**fields, "code": test_app.totp_code(secret, 30)}
    assert browser.post(POST_TO, data=right).status_code == 429


def test_a_user_without_totp_confirms_with_the_password(test_app: TestApp) -> None:
    browser = test_app.client()
    assert browser.login("bob").status_code == 303
    asked = browser.get("/vault")
    page = browser.get(asked.headers["Location"]).get_data(as_text=True)
    assert 'name="password"' in page
    assert 'name="code"' not in page
    assert browser.reauth(asked.headers["Location"], "battery staple").status_code == 303
    assert browser.get("/vault").get_data(as_text=True) == "vault open"


def test_a_user_with_totp_is_not_let_in_by_the_password(
    test_app: TestApp, with_totp: tuple[Browser, str]
) -> None:
    """A password grant would not satisfy the rule for a user who has TOTP (the core
    offers the code): a password posted to the page is a refused code, nothing recorded."""
    browser, _ = with_totp
    fields, _ = _page(browser)
    assert browser.post(POST_TO, data={**fields, "password": "correct horse"}).status_code == 400
    assert browser.get("/vault").status_code == 303
