"""Adding an authenticator app is POST/redirect/GET: the POST begins the device and
answers 303 to ``GET /2fa/devices/add``, which shows this session's pending device. A
reload, Back or Forward shows the same key again (the app the person scanned keeps
working) and never begins another; without a pending device the page sends the person
back to the settings page. HEAD answers like GET (a form body with it begins nothing)."""

from __future__ import annotations

import re
from typing import Any

from integrations.starlette.starlette_support import Browser, TestApp, csrf_token, enrol
from stepup.testing import SettableClock
from stepup.totp import TOTP

_KEY = re.compile(r'id="stepup-manual-key">([^<]+)</code>')
_DEVICE = re.compile(r'data-device-id="([^"]+)"')
_EXPIRED = "The set-up was not finished in time, or was replaced."
ADD = "/stepup/2fa/devices/add"
SETTINGS = "/stepup/2fa"


def _key(text: str) -> str:
    found = _KEY.search(text)
    assert found is not None, text
    return found.group(1).replace(" ", "")


def _signed_in(test_app: TestApp, browsers: list[Browser]) -> Browser:
    browser = test_app.browser()
    browsers.append(browser)
    assert browser.login("bob").status_code == 303
    return browser


def _post(browser: Browser, url: str, data: dict[str, str]) -> Any:
    token = csrf_token(browser.get(SETTINGS).text)
    return browser.post(url, data={"csrf_token": token, **data})


def _head(browser: Browser) -> Any:
    """HEAD with a form body holding a token: what the adding form's POST would send."""
    token = csrf_token(browser.get(SETTINGS).text)
    body = f"csrf_token={token}&name=Intruder".encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    return browser.client.request("HEAD", ADD, content=body, headers=headers)


def _devices(browser: Browser) -> int:
    return len(_DEVICE.findall(browser.get(SETTINGS).text))


def test_reloading_the_adding_page_shows_the_same_key(
    test_app: TestApp, browsers: list[Browser], clock: SettableClock
) -> None:
    bob = _signed_in(test_app, browsers)
    enrol(bob)
    clock.advance(30)
    begun = _post(bob, ADD, {"name": "Tablet"})
    assert begun.status_code == 303
    assert begun.headers["location"] == ADD
    first = bob.get(ADD)
    assert first.status_code == 200
    assert "Add an authenticator app" in first.text
    key = _key(first.text)
    clock.advance(60)
    assert _key(bob.get(ADD).text) == key  # a reload: the same key, nothing begun
    head = _head(bob)
    assert head.status_code == 200
    assert head.content == b""
    assert _key(bob.get(ADD).text) == key  # HEAD began nothing either
    token = csrf_token(first.text)
    done = bob.post(
        "/stepup/2fa/devices/confirm", data={"csrf_token": token, "code": TOTP(key).at(clock())}
    )
    assert done.status_code == 303
    assert done.headers["location"] == SETTINGS
    assert _devices(bob) == 2
    # A reload after confirming begins no other device: back to the settings page.
    again = bob.get(ADD)
    assert again.status_code == 303
    assert again.headers["location"] == SETTINGS
    assert _devices(bob) == 2


def test_without_a_pending_device_the_page_sends_back_to_settings(
    test_app: TestApp, browsers: list[Browser], clock: SettableClock
) -> None:
    other = _signed_in(test_app, browsers)  # another session of bob's
    bob = _signed_in(test_app, browsers)
    enrol(bob)
    clock.advance(30)
    for answer in (_head(bob), bob.get(ADD)):
        assert answer.status_code == 303
        assert answer.headers["location"] == SETTINGS
    assert _EXPIRED in bob.get(SETTINGS).text
    assert _devices(bob) == 1
    # Another session's pending device is not this one's.
    assert _post(other, ADD, {"name": "Tablet"}).headers["location"] == ADD
    assert _KEY.search(other.get(ADD).text)
    assert bob.get(ADD).headers["location"] == SETTINGS


def test_an_expired_pending_device_sends_back_to_settings(
    test_app: TestApp, browsers: list[Browser], clock: SettableClock
) -> None:
    bob = _signed_in(test_app, browsers)
    enrol(bob)
    assert _post(bob, ADD, {"name": "Tablet"}).status_code == 303
    assert bob.get(ADD).status_code == 200
    clock.advance(24 * 3600)
    expired = bob.get(ADD)
    assert expired.status_code == 303
    assert expired.headers["location"] == SETTINGS
