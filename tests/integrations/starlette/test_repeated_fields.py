"""Starlette: a field of stepup's own forms sent twice is refused as malformed, with the
field's error, 400, whichever value comes first, as in Flask and Django (see
``integrations/repeated_field_support.py``); Starlette's form read the last value."""

from __future__ import annotations

from typing import Any

import pytest

from integrations.repeated_field_support import (
    CODE_ERROR,
    NAME_ERROR,
    ORDERS,
    PASSWORD_ERROR,
    RECOVERY_ERROR,
    WRONG_RECOVERY,
    assert_refused,
    both,
    wrong_code,
)
from integrations.starlette.starlette_support import PASSWORDS, Browser, TestApp, csrf_token, enrol
from stepup.events import ReauthSucceeded
from stepup.totp import TOTP

VERIFY = "/stepup/2fa/verify"
REAUTH = "/stepup/reauth?action=api_key.read&next=/"


def _post(browser: Browser, url: str, data: dict[str, Any], page: str = "") -> Any:
    token = csrf_token(browser.get(page or url).text)
    return browser.post(url, data={"csrf_token": token, **data})


@pytest.fixture
def pending_bob(test_app: TestApp, bob: Browser) -> tuple[Browser, TOTP, list[str]]:
    totp, codes = enrol(bob)
    bob.logout()
    assert bob.login("bob").status_code == 303
    test_app.clock.advance(30)
    return bob, totp, codes


@pytest.mark.parametrize("order", ORDERS)
def test_a_code_sent_twice_is_malformed(
    test_app: TestApp, pending_bob: tuple[Browser, TOTP, list[str]], order: str
) -> None:
    bob, totp, _ = pending_bob
    right = totp.at(test_app.clock())
    answer = _post(bob, VERIFY, {"code": both(order, right, wrong_code(right))})
    assert_refused(answer.status_code, answer.text, CODE_ERROR)
    assert bob.get("/").text == "hello stranger"
    assert _post(bob, VERIFY, {"code": right}).status_code == 303


@pytest.mark.parametrize("order", ORDERS)
def test_a_recovery_code_sent_twice_is_malformed(
    pending_bob: tuple[Browser, TOTP, list[str]], order: str
) -> None:
    bob, _, codes = pending_bob
    answer = _post(bob, VERIFY, {"recovery_code": both(order, codes[0], WRONG_RECOVERY)})
    assert_refused(answer.status_code, answer.text, RECOVERY_ERROR)
    assert bob.get("/").text == "hello stranger"
    assert _post(bob, VERIFY, {"recovery_code": codes[0]}).status_code == 303  # not used up


@pytest.mark.parametrize("order", ORDERS)
def test_a_password_sent_twice_is_malformed(test_app: TestApp, bob: Browser, order: str) -> None:
    answer = _post(bob, REAUTH, {"password": both(order, PASSWORDS["bob"], "wrong password")})
    assert_refused(answer.status_code, answer.text, PASSWORD_ERROR)
    assert not any(isinstance(event, ReauthSucceeded) for event in test_app.events)


@pytest.mark.parametrize("order", ORDERS)
def test_a_device_name_sent_twice_is_refused(bob: Browser, order: str) -> None:
    enrol(bob)
    names = both(order, "Tablet", "Phone")
    answer = _post(bob, "/stepup/2fa/devices/add", {"name": names}, page="/stepup/2fa")
    assert_refused(answer.status_code, answer.text, NAME_ERROR)
