"""Adding an authenticator app is POST/redirect/GET: the POST begins the device and
answers 303 to ``GET /2fa/devices/add``, which shows this session's pending device. A
reload, Back or Forward shows the same key again (the app the person scanned keeps
working) and never begins another; without a pending device the page sends the person
back to the settings page."""

from __future__ import annotations

import re
from typing import Any

from integrations.flask.flask_support import Browser, TestApp
from stepup import TOTP

_KEY = re.compile(r'id="stepup-manual-key">([^<]+)</code>')
_DEVICE = re.compile(r'data-device-id="([^"]+)"')
_EXPIRED = "The set-up was not finished in time, or was replaced."
ADD = "/stepup/2fa/devices/add"
SETTINGS = "/stepup/2fa"


def _key(page: Any) -> str:
    found = _KEY.search(page.get_data(as_text=True))
    assert found, page.get_data(as_text=True)
    return found.group(1).replace(" ", "")


def _devices(bob: Browser) -> int:
    return len(_DEVICE.findall(bob.get(SETTINGS).get_data(as_text=True)))


def _enrolled(test_app: TestApp) -> Browser:
    bob = test_app.client()
    bob.login("bob")
    bob.enrol()
    test_app.clock.advance(30)
    return bob


def test_reloading_the_adding_page_shows_the_same_key(test_app: TestApp) -> None:
    bob = _enrolled(test_app)
    begun = bob.form(ADD, {"name": "Tablet"})
    assert begun.status_code == 303
    assert begun.headers["Location"] == ADD
    first = bob.get(ADD)
    assert first.status_code == 200
    assert "Add an authenticator app" in first.get_data(as_text=True)
    key = _key(first)
    test_app.clock.advance(60)
    assert _key(bob.get(ADD)) == key  # a reload: the same key, nothing begun
    head = bob.client.head(ADD)
    assert head.status_code == 200
    assert head.get_data() == b""
    assert _key(bob.get(ADD)) == key  # HEAD began nothing either
    done = bob.form("/stepup/2fa/devices/confirm", {"code": TOTP(key).at(test_app.clock())})
    assert done.status_code == 303
    assert done.headers["Location"] == SETTINGS
    assert _devices(bob) == 2
    # A reload after confirming begins no other device: back to the settings page.
    again = bob.get(ADD)
    assert again.status_code == 303
    assert again.headers["Location"] == SETTINGS
    assert _devices(bob) == 2


def test_without_a_pending_device_the_page_sends_back_to_settings(test_app: TestApp) -> None:
    other = test_app.client()
    other.login("bob")  # another session of bob's, signed in before two-factor was on
    bob = _enrolled(test_app)
    for method in (bob.client.head, bob.get):
        answer = method(ADD)
        assert answer.status_code == 303
        assert answer.headers["Location"] == SETTINGS
    page = bob.get(SETTINGS).get_data(as_text=True)
    assert _EXPIRED in page
    assert _devices(bob) == 1
    # Another session's pending device is not this one's.
    assert other.form(ADD, {"name": "Tablet"}).status_code == 303
    assert _KEY.search(other.get(ADD).get_data(as_text=True))
    assert bob.get(ADD).headers["Location"] == SETTINGS


def test_an_expired_pending_device_sends_back_to_settings(test_app: TestApp) -> None:
    bob = _enrolled(test_app)
    assert bob.form(ADD, {"name": "Tablet"}).status_code == 303
    assert bob.get(ADD).status_code == 200
    test_app.clock.advance(24 * 3600)
    expired = bob.get(ADD)
    assert expired.status_code == 303
    assert expired.headers["Location"] == SETTINGS
