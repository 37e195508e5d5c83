"""Review 3: the re-auth page for a rule that accepts TOTP alone (Django).

A user who has TOTP is offered ``("otp",)`` (issue 15: "TOTP alone can satisfy a rule
that allows it"): the page shows the code field alone, posted to the password form's
view, which checks the code through the same verification and throttle and records
``otp``. The page showed no form at all, and the view answered a posted code with 400.
(The policy's refusal of a passkey together with another method is tested once, in
``integrations/starlette/test_review3_alternatives.py``: it is the core's.)"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest

from integrations.django.django_support import Browser, Site, running_site
from stepup.adapters.storage.memory import MemoryStore
from stepup.events import ReauthFailed, ReauthSucceeded
from stepup.policy import Policy, Rule, Sensitivity
from stepup.testing import SettableClock

VAULT = "vault.open"
#: TOTP alone, else the sign-in method: a user with TOTP is offered the code.
RULE = Rule(Sensitivity.SENSITIVE, always=True, accept=(("otp",), ("primary",)), description="x")
PAGE = "/stepup/reauth/?" + urlencode({"action": VAULT, "next": "/home/"})
POST_TO = "/stepup/reauth/password/"
STATUS = f"/stepup/reauth/status?action={VAULT}"


def policy() -> Policy:
    """``STEPUP["POLICY"]``: the test project's catalog with the vault rule."""
    from integrations.django.testapp.hooks import app_policy

    return app_policy().extend({VAULT: RULE})


@pytest.fixture
def site(clock: SettableClock) -> Iterator[Site]:
    with running_site(MemoryStore(), clock, POLICY=f"{__name__}.policy") as running:
        from stepup.integrations.django.services import get_stepup

        get_stepup().tenant_settings.ensure("acme")
        yield running


@pytest.fixture
def with_totp(site: Site) -> tuple[Browser, str]:
    browser = site.browser("alice")
    secret, _ = browser.enrol()
    site.events.clear()
    return browser, secret


def _fresh(browser: Browser) -> bool:
    return browser.get(STATUS).json()["required"] is False


def _code_input(body: str) -> str:
    return body.split('id="stepup-code"', 1)[1].split(">", 1)[0]


def test_the_page_shows_the_code_field_alone(with_totp: tuple[Browser, str]) -> None:
    browser, _ = with_totp
    body = browser.get(PAGE).content.decode()
    form = re.search(r'<form method="post" action="([^"]+)">(.*?)</form>', body, re.S)
    assert form is not None, "no form on the page"
    assert form.group(1) == POST_TO
    assert '<label for="stepup-code">' in form.group(2)
    assert 'autocomplete="one-time-code"' in _code_input(body)
    assert "autofocus" in _code_input(body)
    assert 'name="password"' not in body
    assert "Use a passkey" not in body


def test_the_code_alone_confirms(site: Site, with_totp: tuple[Browser, str]) -> None:
    browser, secret = with_totp
    assert not _fresh(browser)
    site.clock.advance(30)  # the enrolment's code is spent
    done = browser.post(POST_TO, {**browser.fields(PAGE), "code": site.totp_code(secret)})
    assert done.status_code == 303, done.content
    assert done["Location"] == "/home/"
    assert _fresh(browser)
    succeeded = [e for e in site.events if isinstance(e, ReauthSucceeded)]
    assert [e.method for e in succeeded] == ["otp"]


@pytest.mark.parametrize(
    ("code", "reason", "says"),
    [
        ("000000", "invalid", "That code is not right"),
        ("enrolment", "replayed", "That code was already used"),
    ],
)
def test_a_refused_code_is_answered_as_the_combined_form_does(
    site: Site, with_totp: tuple[Browser, str], code: str, reason: str, says: str
) -> None:
    browser, secret = with_totp
    if code == "enrolment":  # the code the enrolment was confirmed with, this same step
        code = site.totp_code(secret)
    refused = browser.post(POST_TO, {**browser.fields(PAGE), "code": code})
    body = refused.content.decode()
    assert refused.status_code == 400
    assert says in body
    assert 'aria-invalid="true"' in _code_input(body)
    failed = [(e.method, e.reason) for e in site.events if isinstance(e, ReauthFailed)]
    assert failed == [("otp", reason)]
    assert not _fresh(browser)  # nothing recorded


def test_guessing_is_throttled(site: Site, with_totp: tuple[Browser, str]) -> None:
    browser, secret = with_totp
    fields = browser.fields(PAGE)
    answer: Any = None
    for _ in range(5):
        answer = browser.post(POST_TO, {**fields, "code": "000000"})
    assert answer.status_code == 429
    assert "Too many attempts" in answer.content.decode()
    site.clock.advance(1)  # still paused: even the right code waits
    right = {**fields, "code": site.totp_code(secret, 30)}
    assert browser.post(POST_TO, right).status_code == 429


def test_a_user_without_totp_confirms_with_the_password(site: Site) -> None:
    browser = site.browser("bob")
    body = browser.get(PAGE).content.decode()
    assert 'name="password"' in body
    assert 'name="code"' not in body
    assert browser.reauth(PAGE, "battery staple").status_code == 303
    assert _fresh(browser)


def test_a_user_with_totp_is_not_let_in_by_the_password(with_totp: tuple[Browser, str]) -> None:
    """A password grant would not satisfy the rule for a user who has TOTP (the core
    offers the code): a password posted to the page is a refused code, nothing recorded."""
    browser, _ = with_totp
    data = {**browser.fields(PAGE), "password": "correct horse"}
    assert browser.post(POST_TO, data).status_code == 400
    assert not _fresh(browser)
