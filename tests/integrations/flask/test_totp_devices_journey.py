"""TOTP devices on the two-factor page (issue 15): add a second authenticator app (QR
code and key, confirmed with its code) behind a fresh re-authentication for
``2fa.device.add``, rename one, remove one behind a fresh re-authentication for the
action removing two-factor takes; removing the last one turns two-factor off."""

from __future__ import annotations

import re

from integrations.flask.flask_support import Browser, TestApp, set_flag
from stepup.events import TwoFactorDeviceAdded, TwoFactorDeviceRemoved, TwoFactorRemoved

_KEY = re.compile(r'id="stepup-manual-key">([^<]+)</code>')
_DEVICE = re.compile(r'data-device-id="([^"]+)"')
_NAME = re.compile(r'class="stepup-device-name">([^<]*)</strong>')
_VERIFY = "/stepup/2fa/verify"


def _signed_in_with_2fa(test_app: TestApp) -> tuple[Browser, str]:
    bob = test_app.client()
    bob.login("bob")
    secret, _ = bob.enrol()
    return bob, secret


def _add(bob: Browser, test_app: TestApp, name: str) -> str:
    page = bob.form("/stepup/2fa/devices/add", {"name": name})
    if "reauth" in page.headers.get("Location", ""):  # the flag is on: re-authenticate first
        assert "action=2fa.device.add" in page.headers["Location"]
        assert bob.reauth(page.headers["Location"], "battery staple").status_code in (200, 303)
        page = bob.form("/stepup/2fa/devices/add", {"name": name})
    assert page.status_code == 303  # begun: the page is a GET, which a reload repeats
    assert page.headers["Location"] == "/stepup/2fa/devices/add"
    page = bob.get(page.headers["Location"])
    assert page.status_code == 200, page.get_data(as_text=True)
    body = page.get_data(as_text=True)
    assert "Add an authenticator app" in body
    assert "<svg" in body
    found = _KEY.search(body)
    assert found
    key = found.group(1).replace(" ", "")
    test_app.clock.advance(30)
    done = bob.form("/stepup/2fa/devices/confirm", {"code": test_app.totp_code(key)})
    assert done.status_code == 303
    assert done.headers["Location"] == "/stepup/2fa"
    return key


def test_add_two_rename_and_remove_one(test_app: TestApp) -> None:
    set_flag(_admin(test_app))
    bob, first = _signed_in_with_2fa(test_app)
    page = bob.get("/stepup/2fa").get_data(as_text=True)
    assert _NAME.findall(page) == ["Authenticator app"]
    assert "Never used" in page
    # Adding another app needs a fresh re-authentication (the flag is on): an app an
    # intruder adds to a stolen session would be their second factor.
    for path in ("/stepup/2fa/devices/add", "/stepup/2fa/devices/confirm"):
        refused = bob.form(path, {"name": "Intruder", "code": "123456"})
        assert refused.status_code == 303
        assert "action=2fa.device.add" in refused.headers["Location"]
        assert "next=%2Fstepup%2F2fa" in refused.headers["Location"]
        json_client = bob.form(path, {"name": "Intruder"}, headers={"Accept": "application/json"})
        assert json_client.status_code == 401
        assert json_client.get_json()["action"] == "2fa.device.add"
    assert len(_DEVICE.findall(bob.get("/stepup/2fa").get_data(as_text=True))) == 1
    assert not [e for e in test_app.events if isinstance(e, TwoFactorDeviceAdded)]
    granted = bob.reauth(refused.headers["Location"], "battery staple")
    assert granted.status_code == 303
    assert granted.headers["Location"] == "/stepup/2fa"
    tablet = _add(bob, test_app, "Tablet")
    # Adding one changed the factors, which ended every grant: the next add asks again.
    again = bob.form("/stepup/2fa/devices/add", {"name": "Laptop"})
    assert again.status_code == 303
    assert "action=2fa.device.add" in again.headers["Location"]
    laptop = _add(bob, test_app, "Laptop")
    page = bob.get("/stepup/2fa").get_data(as_text=True)
    assert "The authenticator app was added." in page
    assert _NAME.findall(page) == ["Authenticator app", "Tablet", "Laptop"]
    assert tablet not in page
    assert laptop not in page
    assert len([e for e in test_app.events if isinstance(e, TwoFactorDeviceAdded)]) == 2
    ids = _DEVICE.findall(page)

    # Each device's code signs in.
    bob.post("/logout")
    bob.login("bob")
    test_app.clock.advance(30)
    signed_in = bob.form(_VERIFY, {"code": test_app.totp_code(tablet)}, page=_VERIFY)
    assert signed_in.status_code == 303
    page = bob.get("/stepup/2fa").get_data(as_text=True)
    assert page.count("Never used") == 2  # the tablet was used

    renamed = bob.form(f"/stepup/2fa/devices/{ids[0]}/rename", {"name": "Phone"})
    assert renamed.status_code == 303
    bad = bob.form(f"/stepup/2fa/devices/{ids[0]}/rename", {"name": "x" * 65})
    assert bad.status_code == 400
    assert "1 to 64 characters" in bad.get_data(as_text=True)
    page = bob.get("/stepup/2fa").get_data(as_text=True)
    assert _NAME.findall(page) == ["Phone", "Tablet", "Laptop"]

    # Removing one needs a fresh re-authentication (the flag is on).
    refused = bob.form(f"/stepup/2fa/devices/{ids[1]}/remove", {})
    assert refused.status_code == 303
    assert "action=2fa.disable" in refused.headers["Location"]
    assert len(_DEVICE.findall(bob.get("/stepup/2fa").get_data(as_text=True))) == 3
    assert bob.reauth(refused.headers["Location"], "battery staple").status_code == 200
    removed = bob.form(f"/stepup/2fa/devices/{ids[1]}/remove", {})
    assert removed.status_code == 303
    page = bob.get("/stepup/2fa").get_data(as_text=True)
    assert "The authenticator app was removed." in page
    assert _NAME.findall(page) == ["Phone", "Laptop"]
    events = [e for e in test_app.events if isinstance(e, TwoFactorDeviceRemoved)]
    assert [(e.device_id, e.removed_by) for e in events] == [(ids[1], "bob")]
    # The removed tablet no longer signs in; the others do.
    bob.post("/logout")
    bob.login("bob")
    test_app.clock.advance(30)
    assert bob.form(_VERIFY, {"code": test_app.totp_code(tablet)}, page=_VERIFY).status_code == 400
    test_app.clock.advance(30)
    assert bob.form(_VERIFY, {"code": test_app.totp_code(first)}, page=_VERIFY).status_code == 303

    # Removing the last two: the last one turns two-factor off.
    for device_id in (ids[0], ids[2]):
        location = bob.form(f"/stepup/2fa/devices/{device_id}/remove", {})
        if location.status_code == 303 and "reauth" in location.headers["Location"]:
            assert bob.reauth(location.headers["Location"], "battery staple").status_code == 200
            location = bob.form(f"/stepup/2fa/devices/{device_id}/remove", {})
        assert location.status_code == 303
    page = bob.get("/stepup/2fa").get_data(as_text=True)
    assert "is off" in page
    assert [e.user_id for e in test_app.events if isinstance(e, TwoFactorRemoved)] == ["bob"]


def test_wrong_code_unknown_device_and_limits(test_app: TestApp) -> None:
    bob, _ = _signed_in_with_2fa(test_app)
    page = bob.form("/stepup/2fa/devices/add", {"name": "Tablet"}, follow_redirects=True)
    key = _KEY.search(page.get_data(as_text=True))
    assert key
    wrong = bob.form("/stepup/2fa/devices/confirm", {"code": "000000"})
    if test_app.totp_code(key.group(1).replace(" ", "")) != "000000":
        assert wrong.status_code == 400
        body = wrong.get_data(as_text=True)
        assert "not right" in body
        assert key.group(1) in body  # the same key again: the phone may have it
    assert bob.form("/stepup/2fa/devices/add", {"name": "\x1b[31m"}).status_code == 400
    missing = bob.form("/stepup/2fa/devices/totp:nope/rename", {"name": "Other"})
    assert missing.status_code == 404
    assert len(_DEVICE.findall(bob.get("/stepup/2fa").get_data(as_text=True))) == 1


def _admin(test_app: TestApp) -> Browser:
    admin = test_app.client()
    admin.login("alice")
    return admin
