"""Adding an authenticator app is POST/redirect/GET: the POST begins the device and
answers 303 to ``GET /2fa/devices/add/``, which shows this session's pending device. A
reload, Back or Forward shows the same key again (the app the person scanned keeps
working) and never begins another; without a pending device the page sends the person
back to the settings page. HEAD answers like GET and begins nothing."""

from __future__ import annotations

import re
from typing import Any

from integrations.django.django_support import Browser, Site
from stepup import TOTP

_KEY = re.compile(r'id="stepup-manual-key">([^<]+)</code>')
_DEVICE = re.compile(r'data-device-id="([^"]+)"')
_EXPIRED = "The set-up was not finished in time, or was replaced."
ADD = "/stepup/2fa/devices/add/"
SETTINGS = "/stepup/2fa/"


def _key(page: Any) -> str:
    found = _KEY.search(page.content.decode())
    assert found, page.content.decode()
    return found.group(1).replace(" ", "")


def _devices(bob: Browser) -> int:
    return len(_DEVICE.findall(bob.get(SETTINGS).content.decode()))


def _enrolled(site: Site) -> Browser:
    bob = site.browser("bob")
    bob.enrol()
    site.clock.advance(30)
    return bob


def test_reloading_the_adding_page_shows_the_same_key(site: Site) -> None:
    bob = _enrolled(site)
    begun = bob.form(ADD, {"name": "Tablet"})
    assert begun.status_code == 303
    assert begun["Location"] == ADD
    first = bob.get(ADD)
    assert first.status_code == 200
    assert "Add an authenticator app" in first.content.decode()
    key = _key(first)
    site.clock.advance(60)
    assert _key(bob.get(ADD)) == key  # a reload: the same key, nothing begun
    head = bob.client.head(ADD)
    assert head.status_code == 200
    assert head.content == b""
    assert _key(bob.get(ADD)) == key  # HEAD began nothing either
    done = bob.form("/stepup/2fa/devices/confirm/", {"code": TOTP(key).at(site.clock())})
    assert done.status_code == 303
    assert done["Location"] == SETTINGS
    assert _devices(bob) == 2
    # A reload after confirming begins no other device: back to the settings page.
    again = bob.get(ADD)
    assert again.status_code == 303
    assert again["Location"] == SETTINGS
    assert _devices(bob) == 2


def test_without_a_pending_device_the_page_sends_back_to_settings(site: Site) -> None:
    other = site.browser("bob")  # another session of bob's
    bob = _enrolled(site)
    for answer in (bob.client.head(ADD), bob.get(ADD)):
        assert answer.status_code == 303
        assert answer["Location"] == SETTINGS
    assert _EXPIRED in bob.get(SETTINGS).content.decode()
    assert _devices(bob) == 1
    # Another session's pending device is not this one's.
    assert other.form(ADD, {"name": "Tablet"})["Location"] == ADD
    assert _KEY.search(other.get(ADD).content.decode())
    assert bob.get(ADD)["Location"] == SETTINGS


def test_an_expired_pending_device_sends_back_to_settings(site: Site) -> None:
    bob = _enrolled(site)
    assert bob.form(ADD, {"name": "Tablet"}).status_code == 303
    assert bob.get(ADD).status_code == 200
    site.clock.advance(24 * 3600)
    expired = bob.get(ADD)
    assert expired.status_code == 303
    assert expired["Location"] == SETTINGS


def test_the_post_keeps_its_csrf_check_and_other_methods_are_refused(site: Site) -> None:
    bob = _enrolled(site)
    forged = bob.post(ADD, {"name": "Evil", "csrfmiddlewaretoken": "x" * 64})
    assert forged.status_code == 403
    assert bob.client.put(ADD).status_code == 405
    assert _devices(bob) == 1
