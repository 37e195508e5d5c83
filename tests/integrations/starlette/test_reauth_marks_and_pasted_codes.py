"""Starlette: the re-authentication page marks and focuses only the field a refusal was
about; a wrong password says what to do; a code pasted with blanks around it (a space,
a tab, a line break) is taken at sign-in, at re-authentication and when confirming an
authenticator app."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from integrations.starlette.starlette_support import Browser, TestApp, csrf_token, make_app
from integrations.test_reauth_error_field import WRONG_CODE, WRONG_PASSWORD, assert_marked
from stepup.adapters.storage.memory import MemoryStore
from stepup.integrations.views import default_policy
from stepup.policy import SENSITIVE
from stepup.testing import SettableClock
from stepup.totp import TOTP

_KEY = re.compile(r'id="stepup-manual-key">([^<]+)</code>')
_RECOVERY = re.compile(r"<li>(?:<code>)?((?:[a-z2-7]{4}-){5}[a-z2-7]{4})(?:</code>)?</li>")
REAUTH = "/stepup/reauth?action=billing.export&next=/"  # password and code
VERIFY = "/stepup/2fa/verify"
SETTINGS = "/stepup/2fa"


@pytest.fixture
def test_app(clock: SettableClock) -> TestApp:
    billing = replace(SENSITIVE, second_factor=True, description="Exporting billing")
    policy = default_policy().extend({"billing.export": billing})
    return make_app(clock=clock, store=MemoryStore(), policy=policy)


@pytest.fixture
def bob(test_app: TestApp) -> Iterator[Browser]:
    browser = test_app.browser()
    assert browser.login("bob").status_code == 303
    yield browser
    browser.close()


def _key(page: Any) -> str:
    found = _KEY.search(page.text)
    assert found is not None, page.text
    return found.group(1).replace(" ", "")


def _enrol(bob: Browser, clock: SettableClock, pasted: str = "{}") -> tuple[TOTP, list[str]]:
    """Two-factor on for bob: confirmed with ``pasted`` around the code."""
    begin = {"csrf_token": csrf_token(bob.get("/stepup/2fa").text)}
    page = bob.post("/stepup/2fa/enrol", data=begin)
    totp = TOTP(_key(page))
    code = pasted.format(totp.at(clock()))
    done = bob.post("/stepup/2fa/confirm", data={"csrf_token": csrf_token(page.text), "code": code})
    assert done.status_code == 200, done.text
    return totp, _RECOVERY.findall(done.text)


def _reauth(bob: Browser, password: str, code: str) -> Any:
    return bob.form(REAUTH, {"password": password, "code": code})


def test_a_wrong_code_marks_only_the_code(bob: Browser, clock: SettableClock) -> None:
    _enrol(bob, clock)
    refused = _reauth(bob, "bob's long passphrase", "000000")
    assert refused.status_code == 400
    assert WRONG_CODE in refused.text
    assert_marked(refused.text, "code", "password")


def test_a_wrong_password_marks_only_the_password(bob: Browser, clock: SettableClock) -> None:
    _enrol(bob, clock)
    refused = _reauth(bob, "not my password", "000000")
    assert refused.status_code == 400
    assert WRONG_PASSWORD in refused.text
    assert_marked(refused.text, "password", "code")


def test_pasted_codes_are_taken_everywhere(bob: Browser, clock: SettableClock) -> None:
    totp, codes = _enrol(bob, clock, " {}")  # a leading space at enrolment
    bob.logout()
    assert bob.login("bob").headers["location"] == VERIFY
    clock.advance(30)
    signed_in = bob.form(VERIFY, {"code": totp.at(clock()) + "\t"})
    assert signed_in.status_code == 303, signed_in.text
    assert bob.get("/").text == "hello bob"

    clock.advance(30)
    confirmed = _reauth(bob, "bob's long passphrase", totp.at(clock()) + "\n")
    assert confirmed.status_code == 303, confirmed.text
    assert confirmed.headers["location"] == "/"

    token = csrf_token(bob.get(SETTINGS).text)
    adding = bob.post(
        "/stepup/2fa/devices/add",
        data={"csrf_token": token, "name": "Tablet"},
        follow_redirects=True,
    )
    assert adding.status_code == 200, adding.text
    clock.advance(30)  # a time step is used once per user, whichever app
    code = f"\t{TOTP(_key(adding)).at(clock())}\r\n"
    added = bob.post(
        "/stepup/2fa/devices/confirm", data={"csrf_token": csrf_token(adding.text), "code": code}
    )
    assert added.status_code == 303, added.text

    bob.logout()
    bob.login("bob")
    recovered = bob.form(VERIFY, {"recovery_code": f" {codes[0]}\n"})
    assert recovered.status_code == 303, recovered.text
