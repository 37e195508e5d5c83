"""TOTP devices on the two-factor page (issue 15): add a second authenticator app (QR
code and key, confirmed with its code) behind a fresh re-authentication for
``2fa.device.add``, rename one, remove one behind a fresh re-authentication for
``2fa.disable``; removing the last one turns two-factor off."""

from __future__ import annotations

import re
from typing import Any

import anyio

from integrations.starlette.starlette_support import (
    PASSWORDS,
    Browser,
    TestApp,
    csrf_token,
    enrol,
)
from stepup.events import TwoFactorDeviceAdded, TwoFactorDeviceRemoved, TwoFactorRemoved
from stepup.testing import SettableClock
from stepup.totp import TOTP

_KEY = re.compile(r'id="stepup-manual-key">([^<]+)</code>')
_DEVICE = re.compile(r'data-device-id="([^"]+)"')
_NAME = re.compile(r'class="stepup-device-name">([^<]*)</strong>')
SETTINGS = "/stepup/2fa"
VERIFY = "/stepup/2fa/verify"


def _post(browser: Browser, url: str, data: dict[str, str] | None = None, **kwargs: Any) -> Any:
    token = csrf_token(browser.get(SETTINGS).text)
    return browser.post(url, data={"csrf_token": token, **(data or {})}, **kwargs)


def _add(browser: Browser, clock: SettableClock, name: str) -> TOTP:
    page = _post(browser, "/stepup/2fa/devices/add", {"name": name})
    if "reauth" in page.headers.get("location", ""):  # the flag is on: re-authenticate first
        assert "action=2fa.device.add" in page.headers["location"]
        browser.reauth(page.headers["location"], PASSWORDS["alice"])
        page = _post(browser, "/stepup/2fa/devices/add", {"name": name})
    assert page.status_code == 303  # begun: the page is a GET, which a reload repeats
    assert page.headers["location"] == "/stepup/2fa/devices/add"
    page = browser.get(page.headers["location"])
    assert page.status_code == 200, page.text
    body = page.text
    assert "Add an authenticator app" in body
    found = _KEY.search(body)
    assert found is not None
    totp = TOTP(found.group(1).replace(" ", ""))
    clock.advance(30)
    done = browser.post(
        "/stepup/2fa/devices/confirm",
        data={"csrf_token": csrf_token(body), "code": totp.at(clock())},
    )
    assert done.status_code == 303
    assert done.headers["location"] == SETTINGS
    return totp


def test_add_two_rename_and_remove_one(
    test_app: TestApp, alice: Browser, clock: SettableClock
) -> None:
    first, _ = enrol(alice)
    assert alice.patch_tenant(True).status_code == 200
    assert _NAME.findall(alice.get(SETTINGS).text) == ["Authenticator app"]
    # Adding another app needs a fresh re-authentication (the flag is on): an app an
    # intruder adds to a stolen session would be their second factor.
    for path in ("/stepup/2fa/devices/add", "/stepup/2fa/devices/confirm"):
        refused = _post(alice, path, {"name": "Intruder", "code": "123456"})
        assert refused.status_code == 303
        assert "action=2fa.device.add" in refused.headers["location"]
        assert "next=%2Fstepup%2F2fa" in refused.headers["location"]
    assert len(_DEVICE.findall(alice.get(SETTINGS).text)) == 1
    assert not [e for e in test_app.events if isinstance(e, TwoFactorDeviceAdded)]
    tablet = _add(alice, clock, "Tablet")
    # Adding one changed the factors, which ended every grant: the next add asks again.
    again = _post(alice, "/stepup/2fa/devices/add", {"name": "Laptop"})
    assert "action=2fa.device.add" in again.headers["location"]
    laptop = _add(alice, clock, "Laptop")
    page = alice.get(SETTINGS).text
    assert _NAME.findall(page) == ["Authenticator app", "Tablet", "Laptop"]
    assert tablet.secret not in page
    assert laptop.secret not in page
    assert len([e for e in test_app.events if isinstance(e, TwoFactorDeviceAdded)]) == 2
    ids = _DEVICE.findall(page)

    alice.logout()
    assert alice.login("alice").headers["location"] == VERIFY
    clock.advance(30)
    assert alice.form(VERIFY, {"code": tablet.at(clock())}).status_code == 303
    assert alice.get(SETTINGS).text.count("Never used") == 2

    renamed = _post(alice, f"/stepup/2fa/devices/{ids[0]}/rename", {"name": "Phone"})
    assert renamed.status_code == 303
    assert "The authenticator app was renamed." in alice.get(SETTINGS).text
    bad = _post(alice, f"/stepup/2fa/devices/{ids[0]}/rename", {"name": "\u202eevil"})
    assert bad.status_code == 400
    assert _NAME.findall(alice.get(SETTINGS).text) == ["Phone", "Tablet", "Laptop"]

    asked = _post(alice, f"/stepup/2fa/devices/{ids[1]}/remove")
    assert asked.status_code == 303
    location = asked.headers["location"]
    assert "action=2fa.disable" in location
    assert len(_DEVICE.findall(alice.get(SETTINGS).text)) == 3
    back = alice.reauth(location, PASSWORDS["alice"])  # the resume page sends it again
    assert f"/stepup/2fa/devices/{ids[1]}/remove" in back.text
    removed = _post(alice, f"/stepup/2fa/devices/{ids[1]}/remove")
    assert removed.status_code == 303
    page = alice.get(SETTINGS).text
    assert "The authenticator app was removed." in page
    assert _NAME.findall(page) == ["Phone", "Laptop"]
    events = [e for e in test_app.events if isinstance(e, TwoFactorDeviceRemoved)]
    assert [(e.device_id, e.removed_by) for e in events] == [(ids[1], "alice")]

    alice.logout()
    alice.login("alice")
    clock.advance(30)
    assert alice.form(VERIFY, {"code": tablet.at(clock())}).status_code == 400
    clock.advance(30)
    assert alice.form(VERIFY, {"code": first.at(clock())}).status_code == 303
    for device_id in (ids[0], ids[2]):
        answer = _post(alice, f"/stepup/2fa/devices/{device_id}/remove")
        if "reauth" in answer.headers.get("location", ""):
            alice.reauth(answer.headers["location"], PASSWORDS["alice"])
            answer = _post(alice, f"/stepup/2fa/devices/{device_id}/remove")
        assert answer.status_code == 303
    assert "is off" in alice.get(SETTINGS).text
    assert not anyio.run(test_app.stepup.two_factor.is_enrolled, "alice")
    assert [e.user_id for e in test_app.events if isinstance(e, TwoFactorRemoved)] == ["alice"]


def test_wrong_code_and_unknown_device(alice: Browser, clock: SettableClock) -> None:
    enrol(alice)
    page = _post(alice, "/stepup/2fa/devices/add", {"name": "Tablet"}, follow_redirects=True)
    body = page.text
    found = _KEY.search(body)
    assert found is not None
    if TOTP(found.group(1).replace(" ", "")).at(clock()) != "000000":
        wrong = alice.post(
            "/stepup/2fa/devices/confirm", data={"csrf_token": csrf_token(body), "code": "000000"}
        )
        assert wrong.status_code == 400
        assert found.group(1) in wrong.text
    assert _post(alice, "/stepup/2fa/devices/add", {"name": ""}).status_code == 400
    missing = _post(alice, "/stepup/2fa/devices/totp:nope/rename", {"name": "Other"})
    assert missing.status_code == 404
    forged = alice.post("/stepup/2fa/devices/add", data={"csrf_token": "x", "name": "Evil"})
    assert forged.status_code == 403
    assert len(_DEVICE.findall(alice.get(SETTINGS).text)) == 1
