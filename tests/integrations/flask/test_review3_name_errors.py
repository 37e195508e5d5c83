"""A refused authenticator app name (blanks, 65 characters, a control character) is
shown at the one field it was typed in: that device's rename field, or the new app's
name field, keeps what the person typed (escaped) and points at the error
(aria-invalid, aria-describedby="stepup-error"); no other field is marked (WCAG 3.3.1,
docs/pages.md)."""

from __future__ import annotations

import re

import pytest

from integrations.flask.flask_support import Browser, TestApp
from integrations.name_error_support import BAD_NAMES, KEY, REFUSED, assert_only_marked, inputs
from stepup.errors import DeviceLimitError, InvalidDeviceNameError
from stepup.integrations.views import TwoFactorPage, device_name_refusal

_RENAME = re.compile(r'action="(/stepup/2fa/devices/[^"]+/rename)"')


def _two_devices(test_app: TestApp) -> Browser:
    bob = test_app.client()
    bob.login("bob")
    bob.enrol()
    page = bob.form("/stepup/2fa/devices/add", {"name": "Tablet"}, follow_redirects=True)
    key = KEY.search(page.get_data(as_text=True))
    assert key
    test_app.clock.advance(30)
    code = test_app.totp_code(key.group(1).replace(" ", ""))
    assert bob.form("/stepup/2fa/devices/confirm", {"code": code}).status_code == 303
    return bob


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_refused_rename_marks_that_row_and_keeps_the_name(test_app: TestApp, name: str) -> None:
    bob = _two_devices(test_app)
    settings = bob.get("/stepup/2fa").get_data(as_text=True)
    first, second = _RENAME.findall(settings)
    refused = bob.form(second, {"name": name})
    assert refused.status_code == 400
    body = refused.get_data(as_text=True)
    assert "<b>" not in body  # the typed name is escaped
    assert_only_marked(body, "stepup-device-rename-2", name)
    fields = inputs(body)
    assert fields["stepup-device-rename-1"]["value"] == "Authenticator app"
    assert fields["stepup-device-name"].get("value") is None
    # Nothing changed: the page shows the old names again.
    after = inputs(bob.get("/stepup/2fa").get_data(as_text=True))
    assert after["stepup-device-rename-2"]["value"] == "Tablet"
    assert first != second


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_refused_new_app_name_marks_the_name_field(test_app: TestApp, name: str) -> None:
    bob = _two_devices(test_app)
    refused = bob.form("/stepup/2fa/devices/add", {"name": name})
    assert refused.status_code == 400
    body = refused.get_data(as_text=True)
    assert_only_marked(body, "stepup-device-name", name)
    fields = inputs(body)
    assert [fields[f"stepup-device-rename-{i}"]["value"] for i in (1, 2)] == [
        "Authenticator app",
        "Tablet",
    ]


def test_an_unknown_device_with_a_refused_name_marks_no_field(test_app: TestApp) -> None:
    """The name is refused before the device is looked for: the error, at no field."""
    bob = _two_devices(test_app)
    refused = bob.form("/stepup/2fa/devices/totp:nope/rename", {"name": "   "})
    assert refused.status_code == 400
    body = refused.get_data(as_text=True)
    assert REFUSED in body
    assert not any("aria-invalid" in attrs for attrs in inputs(body).values())


def test_the_refusal_is_only_for_a_refused_name_and_sends_as_utf8() -> None:
    """Another error marks no field; a lone surrogate (no form parser makes one, but an
    app's own view may) is shown as "?", never a page that cannot be encoded."""
    named = device_name_refusal(InvalidDeviceNameError("bad"), "a\ud800b", "totp:1")
    assert named is not None
    assert (named.device_id, named.typed, named.msgid) == ("totp:1", "a?b", REFUSED)
    page = TwoFactorPage(enrolled=True, error=named)
    assert page.typed_name("totp:1") == "a?b"
    assert page.typed_name("totp:2") is None
    assert page.typed_name(None) is None
    assert device_name_refusal(DeviceLimitError(2), "Tablet") is None
