"""TOTP devices on the two-factor page (issue 15): add a second authenticator app (QR
code and key, confirmed with its code) behind a fresh re-authentication for
``2fa.device.add``, rename one, remove one behind a fresh re-authentication for the
action removing two-factor takes; removing the last one turns two-factor off."""

from __future__ import annotations

import re

from integrations.django.django_support import Browser, Site, set_flag, user_id
from stepup.events import TwoFactorDeviceAdded, TwoFactorDeviceRemoved, TwoFactorRemoved

_KEY = re.compile(r'id="stepup-manual-key">([^<]+)</code>')
_DEVICE = re.compile(r'data-device-id="([^"]+)"')
_NAME = re.compile(r'class="stepup-device-name">([^<]*)</strong>')
VERIFY = "/stepup/2fa/verify/"


def _page(bob: Browser) -> str:
    return str(bob.get("/stepup/2fa/").content.decode())


def _add(bob: Browser, site: Site, name: str) -> str:
    page = bob.form("/stepup/2fa/devices/add/", {"name": name})
    if "reauth" in page.get("Location", ""):  # the flag is on: re-authenticate first
        assert "action=2fa.device.add" in page["Location"]
        assert bob.reauth(page["Location"], "battery staple").status_code in (200, 303)
        page = bob.form("/stepup/2fa/devices/add/", {"name": name})
    assert page.status_code == 303  # begun: the page is a GET, which a reload repeats
    assert page["Location"] == "/stepup/2fa/devices/add/"
    page = bob.get(page["Location"])
    assert page.status_code == 200, page.content
    body = page.content.decode()
    assert "Add an authenticator app" in body
    assert "<svg" in body
    found = _KEY.search(body)
    assert found
    key = found.group(1).replace(" ", "")
    site.clock.advance(30)
    done = bob.form("/stepup/2fa/devices/confirm/", {"code": site.totp_code(key)})
    assert done.status_code == 303
    assert done["Location"] == "/stepup/2fa/"
    return key


def _sign_in(bob: Browser, site: Site, key: str) -> int:
    bob.logout()
    assert bob.login("bob")["Location"] == VERIFY
    site.clock.advance(30)
    return int(bob.form(VERIFY, {"code": site.totp_code(key)}, page=VERIFY).status_code)


def test_add_two_rename_and_remove_one(site: Site) -> None:
    assert set_flag(site.browser("alice")).status_code == 200
    bob = site.browser("bob")
    first, _ = bob.enrol()
    assert _NAME.findall(_page(bob)) == ["Authenticator app"]
    # Adding another app needs a fresh re-authentication (the flag is on): an app an
    # intruder adds to a stolen session would be their second factor.
    for path in ("/stepup/2fa/devices/add/", "/stepup/2fa/devices/confirm/"):
        refused = bob.form(path, {"name": "Intruder", "code": "123456"})
        assert refused.status_code == 303
        assert "action=2fa.device.add" in refused["Location"]
        assert "next=%2Fstepup%2F2fa" in refused["Location"]
    assert len(_DEVICE.findall(_page(bob))) == 1
    assert not [e for e in site.events if isinstance(e, TwoFactorDeviceAdded)]
    tablet = _add(bob, site, "Tablet")
    # Adding one changed the factors, which ended every grant: the next add asks again.
    again = bob.form("/stepup/2fa/devices/add/", {"name": "Laptop"})
    assert "action=2fa.device.add" in again["Location"]
    laptop = _add(bob, site, "Laptop")
    page = _page(bob)
    assert "The authenticator app was added." in page
    assert _NAME.findall(page) == ["Authenticator app", "Tablet", "Laptop"]
    assert tablet not in page
    assert laptop not in page
    assert len([e for e in site.events if isinstance(e, TwoFactorDeviceAdded)]) == 2
    ids = _DEVICE.findall(page)

    assert _sign_in(bob, site, tablet) == 303
    assert _page(bob).count("Never used") == 2  # the tablet was used

    assert bob.form(f"/stepup/2fa/devices/{ids[0]}/rename/", {"name": "Phone"}).status_code == 303
    bad = bob.form(f"/stepup/2fa/devices/{ids[0]}/rename/", {"name": "a\nb"})
    assert bad.status_code == 400
    assert "1 to 64 characters" in bad.content.decode()
    assert _NAME.findall(_page(bob)) == ["Phone", "Tablet", "Laptop"]

    refused = bob.form(f"/stepup/2fa/devices/{ids[1]}/remove/", {})
    assert refused.status_code == 303
    assert "action=2fa.disable" in refused["Location"]
    assert len(_DEVICE.findall(_page(bob))) == 3
    assert bob.reauth(refused["Location"], "battery staple").status_code == 200  # resume page
    assert bob.form(f"/stepup/2fa/devices/{ids[1]}/remove/", {}).status_code == 303
    page = _page(bob)
    assert "The authenticator app was removed." in page
    assert _NAME.findall(page) == ["Phone", "Laptop"]
    events = [e for e in site.events if isinstance(e, TwoFactorDeviceRemoved)]
    assert [(e.device_id, e.removed_by) for e in events] == [(ids[1], user_id("bob"))]
    assert _sign_in(bob, site, tablet) == 400  # the removed app's codes are refused
    assert bob.form(VERIFY, {"code": site.totp_code(first, 30)}, page=VERIFY).status_code == 303

    for device_id in (ids[0], ids[2]):
        answer = bob.form(f"/stepup/2fa/devices/{device_id}/remove/", {})
        if "reauth" in answer.get("Location", ""):
            assert bob.reauth(answer["Location"], "battery staple").status_code == 200
            answer = bob.form(f"/stepup/2fa/devices/{device_id}/remove/", {})
        assert answer.status_code == 303
    assert "is off" in _page(bob)
    removed = [e.user_id for e in site.events if isinstance(e, TwoFactorRemoved)]
    assert removed == [user_id("bob")]


def test_wrong_code_and_unknown_device(site: Site) -> None:
    bob = site.browser("bob")
    bob.enrol()
    page = bob.form("/stepup/2fa/devices/add/", {"name": "Tablet"}, follow=True)
    found = _KEY.search(page.content.decode())
    assert found
    if site.totp_code(found.group(1).replace(" ", "")) != "000000":
        wrong = bob.form("/stepup/2fa/devices/confirm/", {"code": "000000"})
        assert wrong.status_code == 400
        assert found.group(1) in wrong.content.decode()  # the same key again
    assert bob.form("/stepup/2fa/devices/add/", {"name": " "}).status_code == 400
    missing = bob.form("/stepup/2fa/devices/totp:nope/rename/", {"name": "Other"})
    assert missing.status_code == 404
    assert len(_DEVICE.findall(_page(bob))) == 1
