"""Django: a field of stepup's own forms sent twice is refused as malformed, with the
field's error, 400, whichever value comes first, as in Flask and Starlette (see
``integrations/repeated_field_support.py``); Django's ``request.POST.get`` read the last
value."""

from __future__ import annotations

from typing import Any

import pytest

from integrations.django.django_support import PASSWORDS, Browser, Site
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
from stepup.events import ReauthSucceeded

VERIFY = "/stepup/2fa/verify/"
REAUTH = "/stepup/reauth/?action=api_key.read&next=/home/"


def _verify(bob: Browser, data: dict[str, Any]) -> Any:
    return bob.form(VERIFY, data, page=VERIFY)


@pytest.fixture
def pending_bob(site: Site) -> tuple[Browser, str, list[str]]:
    bob = site.browser("bob")
    secret, codes = bob.enrol()
    bob.logout()
    assert bob.login("bob")["Location"] == VERIFY
    site.clock.advance(30)
    return bob, secret, codes


@pytest.mark.parametrize("order", ORDERS)
def test_a_code_sent_twice_is_malformed(
    site: Site, pending_bob: tuple[Browser, str, list[str]], order: str
) -> None:
    bob, secret, _ = pending_bob
    right = site.totp_code(secret)
    answer = _verify(bob, {"code": both(order, right, wrong_code(right))})
    assert_refused(answer.status_code, answer.content.decode(), CODE_ERROR)
    assert bob.get("/home/").content.decode() == "home of nobody"
    assert _verify(bob, {"code": right}).status_code == 303


@pytest.mark.parametrize("order", ORDERS)
def test_a_recovery_code_sent_twice_is_malformed(
    pending_bob: tuple[Browser, str, list[str]], order: str
) -> None:
    bob, _, codes = pending_bob
    answer = _verify(bob, {"recovery_code": both(order, codes[0], WRONG_RECOVERY)})
    assert_refused(answer.status_code, answer.content.decode(), RECOVERY_ERROR)
    assert bob.get("/home/").content.decode() == "home of nobody"
    assert _verify(bob, {"recovery_code": codes[0]}).status_code == 303  # not used up


@pytest.mark.parametrize("order", ORDERS)
def test_a_password_sent_twice_is_malformed(site: Site, order: str) -> None:
    bob = site.browser("bob")
    password = both(order, PASSWORDS["bob"], "wrong password")
    answer = bob.reauth(REAUTH, password)
    assert_refused(answer.status_code, answer.content.decode(), PASSWORD_ERROR)
    assert not any(isinstance(event, ReauthSucceeded) for event in site.events)


@pytest.mark.parametrize("order", ORDERS)
def test_a_device_name_sent_twice_is_refused(site: Site, order: str) -> None:
    bob = site.browser("bob")
    bob.enrol()
    answer = bob.form("/stepup/2fa/devices/add/", {"name": both(order, "Tablet", "Phone")})
    assert_refused(answer.status_code, answer.content.decode(), NAME_ERROR)
