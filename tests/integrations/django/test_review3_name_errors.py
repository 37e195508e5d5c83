"""A refused authenticator app name (blanks, 65 characters, a control character) is
shown at the one field it was typed in: that device's rename field, or the new app's
name field, keeps what the person typed (escaped) and points at the error
(aria-invalid, aria-describedby="stepup-error"); no other field is marked (WCAG 3.3.1,
docs/pages.md)."""

from __future__ import annotations

import re

import pytest

from integrations.django.django_support import Browser, Site
from integrations.name_error_support import BAD_NAMES, KEY, REFUSED, assert_only_marked, inputs

_RENAME = re.compile(r'action="(/stepup/2fa/devices/[^"]+/rename/)"')


@pytest.fixture
def bob(site: Site) -> Browser:
    """bob with two authenticator apps: the first, and "Tablet"."""
    bob = site.browser("bob")
    bob.enrol()
    page = bob.form("/stepup/2fa/devices/add/", {"name": "Tablet"}, follow=True)
    key = KEY.search(page.content.decode())
    assert key
    site.clock.advance(30)
    code = site.totp_code(key.group(1).replace(" ", ""))
    assert bob.form("/stepup/2fa/devices/confirm/", {"code": code}).status_code == 303
    return bob


def _page(bob: Browser) -> str:
    return str(bob.get("/stepup/2fa/").content.decode())


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_refused_rename_marks_that_row_and_keeps_the_name(bob: Browser, name: str) -> None:
    _, second = _RENAME.findall(_page(bob))
    refused = bob.form(second, {"name": name})
    assert refused.status_code == 400
    body = refused.content.decode()
    assert "<b>" not in body  # the typed name is escaped
    assert_only_marked(body, "stepup-device-rename-2", name)
    fields = inputs(body)
    assert fields["stepup-device-rename-1"]["value"] == "Authenticator app"
    assert fields["stepup-device-name"].get("value") is None
    assert inputs(_page(bob))["stepup-device-rename-2"]["value"] == "Tablet"


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_refused_new_app_name_marks_the_name_field(bob: Browser, name: str) -> None:
    refused = bob.form("/stepup/2fa/devices/add/", {"name": name})
    assert refused.status_code == 400
    body = refused.content.decode()
    assert_only_marked(body, "stepup-device-name", name)
    fields = inputs(body)
    assert [fields[f"stepup-device-rename-{i}"]["value"] for i in (1, 2)] == [
        "Authenticator app",
        "Tablet",
    ]


def test_an_unknown_device_with_a_refused_name_marks_no_field(bob: Browser) -> None:
    """The name is refused before the device is looked for: the error, at no field."""
    refused = bob.form("/stepup/2fa/devices/totp:nope/rename/", {"name": "   "})
    assert refused.status_code == 400
    body = refused.content.decode()
    assert REFUSED in body
    assert not any("aria-invalid" in attrs for attrs in inputs(body).values())
