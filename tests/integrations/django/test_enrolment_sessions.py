"""A pending enrolment's secret is shown again only in the session that began it: another
session of the same user (a stolen cookie, an intruder who knows the password) begins a
new one instead of receiving it, and the user's confirmation of the replaced secret fails
visibly. The page's manual-entry settings are the device's own."""

from __future__ import annotations

import re
from typing import Any

from integrations.django.django_support import Site, user_id
from stepup import TOTP

_KEY = re.compile(r'id="stepup-manual-key">([^<]+)</code>')
_DEVICE = re.compile(r'data-device-id="([^"]+)"')
_EXPIRED = "The set-up was not finished in time, or was replaced."
ENROL = "/stepup/2fa/enrol/"
CONFIRM = "/stepup/2fa/confirm/"


def _key(page: Any) -> str:
    found = _KEY.search(page.content.decode())
    assert found, page.content.decode()
    return found.group(1).replace(" ", "")


def test_another_session_never_receives_the_pending_secret(site: Site) -> None:
    mine, other = site.browser("bob"), site.browser("bob")
    key_a = _key(mine.form(ENROL, {}))
    site.clock.advance(60)
    assert _key(mine.form(ENROL, {})) == key_a  # a reload: the same secret
    key_b = _key(other.form(ENROL, {}))
    assert key_b != key_a
    site.clock.advance(30)
    refused = mine.form(CONFIRM, {"code": TOTP(key_a).at(site.clock())})
    assert refused.status_code == 400
    body = refused.content.decode()
    assert _EXPIRED in body
    assert key_b not in body.replace(" ", "")
    assert site.store.get_credential(user_id("bob")).confirmed is False
    key_c = _key(mine.form(ENROL, {}))  # a reload begins anew
    assert key_c not in (key_a, key_b)


def test_a_wrong_code_shows_this_sessions_secret_again(site: Site) -> None:
    mine = site.browser("bob")
    key_a = _key(mine.form(ENROL, {}))
    wrong = mine.form(CONFIRM, {"code": "000000"})
    assert wrong.status_code == 400
    assert _key(wrong) == key_a
    assert mine.form(CONFIRM, {"code": TOTP(key_a).at(site.clock())}).status_code == 200
    assert "_stepup_enrolling" not in mine.client.session


def test_another_session_never_receives_the_device_being_added(site: Site) -> None:
    mine, other = site.browser("bob"), site.browser("bob")
    mine.enrol()
    site.clock.advance(30)
    key_a = _key(mine.form("/stepup/2fa/devices/add/", {"name": "Tablet"}, follow=True))
    key_b = _key(other.form("/stepup/2fa/devices/add/", {"name": "Tablet"}, follow=True))
    assert key_b != key_a
    site.clock.advance(30)
    code = TOTP(key_a).at(site.clock())
    refused = mine.form("/stepup/2fa/devices/confirm/", {"code": code})
    assert refused.status_code == 400
    body = refused.content.decode()
    assert _EXPIRED in body
    assert key_b not in body.replace(" ", "")
    assert len(_DEVICE.findall(mine.get("/stepup/2fa/").content.decode())) == 1
    again = other.form("/stepup/2fa/devices/confirm/", {"code": "000000"})
    assert again.status_code == 400
    assert _key(again) == key_b


def test_an_added_device_states_its_own_period(site: Site) -> None:
    from stepup.integrations.django.services import get_stepup

    bob = site.browser("bob")
    bob.enrol()
    two_factor = get_stepup().two_factor
    two_factor.period, two_factor.digits = 60, 8  # the app's settings changed since
    page = bob.form("/stepup/2fa/devices/add/", {"name": "Tablet"}, follow=True).content.decode()
    # The device steps with the first one: the page says what its Key URI says.
    assert "(8 digits, every 30 seconds):" in page
