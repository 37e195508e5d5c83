"""A refused authenticator app name (blanks, 65 characters, a control character) is
shown at the one field it was typed in: that device's rename field, or the new app's
name field, keeps what the person typed (escaped) and points at the error
(aria-invalid, aria-describedby="stepup-error"); no other field is marked (WCAG 3.3.1,
docs/pages.md)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from integrations.name_error_support import BAD_NAMES, KEY, REFUSED, assert_only_marked, inputs
from integrations.starlette.starlette_support import Browser, TestApp, csrf_token, enrol
from stepup.totp import TOTP

_RENAME = re.compile(r'action="(/stepup/2fa/devices/[^"]+/rename)"')


def _post(browser: Browser, url: str, data: dict[str, str]) -> Any:
    token = csrf_token(browser.get("/stepup/2fa").text)
    return browser.post(url, data={"csrf_token": token, **data})


@pytest.fixture
def alice_with_two(test_app: TestApp, alice: Browser) -> Browser:
    enrol(alice)
    assert _post(alice, "/stepup/2fa/devices/add", {"name": "Tablet"}).status_code == 303
    page = alice.get("/stepup/2fa/devices/add").text
    key = KEY.search(page)
    assert key
    test_app.clock.advance(30)
    code = TOTP(key.group(1).replace(" ", "")).at(test_app.clock())
    done = alice.post(
        "/stepup/2fa/devices/confirm", data={"csrf_token": csrf_token(page), "code": code}
    )
    assert done.status_code == 303
    return alice


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_refused_rename_marks_that_row_and_keeps_the_name(
    alice_with_two: Browser, name: str
) -> None:
    alice = alice_with_two
    _, second = _RENAME.findall(alice.get("/stepup/2fa").text)
    refused = _post(alice, second, {"name": name})
    assert refused.status_code == 400
    assert "<b>" not in refused.text  # the typed name is escaped
    assert_only_marked(refused.text, "stepup-device-rename-2", name)
    fields = inputs(refused.text)
    assert fields["stepup-device-rename-1"]["value"] == "Authenticator app"
    assert fields["stepup-device-name"].get("value") is None
    after = inputs(alice.get("/stepup/2fa").text)
    assert after["stepup-device-rename-2"]["value"] == "Tablet"


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_refused_new_app_name_marks_the_name_field(alice_with_two: Browser, name: str) -> None:
    refused = _post(alice_with_two, "/stepup/2fa/devices/add", {"name": name})
    assert refused.status_code == 400
    assert_only_marked(refused.text, "stepup-device-name", name)
    fields = inputs(refused.text)
    assert [fields[f"stepup-device-rename-{i}"]["value"] for i in (1, 2)] == [
        "Authenticator app",
        "Tablet",
    ]


def test_an_unknown_device_with_a_refused_name_marks_no_field(alice_with_two: Browser) -> None:
    """The name is refused before the device is looked for: the error, at no field."""
    refused = _post(alice_with_two, "/stepup/2fa/devices/totp:nope/rename", {"name": "   "})
    assert refused.status_code == 400
    assert REFUSED in refused.text
    assert not any("aria-invalid" in attrs for attrs in inputs(refused.text).values())
