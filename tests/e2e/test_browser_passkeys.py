"""Passkeys in the demo, in headless Chromium with its own WebAuthn implementation: a
virtual CTAP2 authenticator (resident keys, user verification) added through the
DevTools protocol answers ``navigator.credentials.create/get`` as a platform
authenticator would.

The journey: add two passkeys, turn the flag on (confirmed with a passkey, as the
admin has one now), remove one passkey (a sensitive action), and confirm a seed action
with the one that remains. Passkeys need a domain, so the browser opens the demo at
``http://localhost:<port>`` (its passkey origin), never 127.0.0.1.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from e2e.conftest import VIEWPORT
from e2e.demo_server import DemoServer
from e2e.journeys import ADMIN, MEMBER, PASSWORDS, reauthenticate, sign_in, sign_out

pytestmark = pytest.mark.browser

AUTHENTICATOR = {
    "protocol": "ctap2",
    "transport": "internal",
    "hasResidentKey": True,
    "hasUserVerification": True,
    "isUserVerified": True,
}


class VirtualKeys:
    """The browser's virtual authenticators, through the DevTools protocol."""

    def __init__(self, context: Any, page: Any) -> None:
        self.cdp = context.new_cdp_session(page)
        self.cdp.send("WebAuthn.enable")

    def add(self) -> str:
        answer = self.cdp.send("WebAuthn.addVirtualAuthenticator", {"options": AUTHENTICATOR})
        return str(answer["authenticatorId"])

    def remove(self, authenticator: str) -> None:
        self.cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": authenticator})

    def credentials(self, authenticator: str) -> list[dict[str, Any]]:
        answer = self.cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
        return list(answer["credentials"])

    def restore(self, credentials: list[dict[str, Any]]) -> str:
        """A new authenticator holding ``credentials`` (the same keys, as another device
        of the same person would after a sync)."""
        authenticator = self.add()
        for credential in credentials:
            self.cdp.send(
                "WebAuthn.addCredential",
                {"authenticatorId": authenticator, "credential": credential},
            )
        return authenticator


@pytest.fixture
def passkey_page(browser: Any, demo: DemoServer) -> Iterator[tuple[Any, VirtualKeys]]:
    origin = demo.url.replace("127.0.0.1", "localhost")
    context = browser.new_context(base_url=origin, viewport=VIEWPORT)
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        yield page, VirtualKeys(context, page)
    finally:
        context.close()


def confirm_adding(page: Any, *, with_password: str | None = None) -> None:
    """Adding a passkey asks for a re-authentication whatever the tenant's flag: the
    passkeys page sends the person to confirm it is them (their password while they have
    no passkey, a passkey they have otherwise) and back."""
    page.goto("/stepup/passkeys")
    page.fill("#stepup-passkey-name", "Not yet")
    with page.expect_navigation():
        page.click("form[data-stepup-passkey=register] button[type=submit]")
    expect(page).to_have_url(re.compile(r"/stepup/reauth/?\?.*action=passkey\.add"))
    if with_password is None:
        use_passkey(page)
    else:
        with page.expect_navigation():
            reauthenticate(page, with_password)
    expect(page).to_have_url(re.compile(r"/stepup/passkeys$"))
    expect(page.locator(".stepup-passkey-name", has_text="Not yet")).to_have_count(0)


def add_passkey(page: Any, name: str) -> None:
    """Add a passkey, the re-authentication just done (adding one revokes it)."""
    page.goto("/stepup/passkeys")
    page.fill("#stepup-passkey-name", name)
    with page.expect_navigation():
        page.click("form[data-stepup-passkey=register] button[type=submit]")
    expect(page).to_have_url(re.compile(r"/stepup/passkeys$"))
    expect(page.locator(".stepup-passkey-name", has_text=name)).to_have_count(1)


def use_passkey(page: Any) -> None:
    """Answer the re-authentication prompt with a passkey (no password field on it): its
    button, disabled until stepup-passkeys.js wires the form, is enabled and focused."""
    expect(page.locator("h1")).to_have_text("Confirm it is you")
    expect(page.locator("#stepup-password")).to_have_count(0)
    expect(page.get_by_role("button", name="Use a passkey")).to_be_focused()
    with page.expect_navigation():
        page.click("text=Use a passkey")


def test_two_passkeys_remove_one_confirm_with_the_other(
    passkey_page: tuple[Any, VirtualKeys],
) -> None:
    page, keys = passkey_page
    sign_in(page, ADMIN)
    expect(page).to_have_url(re.compile(r"/account$"))

    # Two passkeys, each on its own authenticator (one authenticator refuses to make a
    # second passkey for the same account: the first is in excludeCredentials).
    laptop = keys.add()
    confirm_adding(page, with_password=PASSWORDS[ADMIN])
    add_passkey(page, "Laptop")
    laptop_keys = keys.credentials(laptop)
    assert len(laptop_keys) == 1
    assert laptop_keys[0]["isResidentCredential"] is True
    # The second is confirmed with the first, then made on a new device.
    confirm_adding(page)
    laptop_keys = keys.credentials(laptop)  # its signature counter moved on
    keys.remove(laptop)
    phone = keys.add()
    add_passkey(page, "Phone")
    expect(page.locator(".stepup-passkey")).to_have_count(2)
    page.goto("/security")
    expect(page.locator("#passkey-state")).to_have_attribute("data-count", "2")

    # Turning the flag on is itself sensitive: the admin now confirms with a passkey.
    page.goto("/tenant")
    with page.expect_navigation():
        page.click("#toggle-flag")
    use_passkey(page)
    expect(page).to_have_url(re.compile(r"/tenant$"))
    with page.expect_navigation():
        page.click("#toggle-flag")
    expect(page.locator("#flag-state")).to_have_attribute("data-on", "yes")

    # Remove the phone's passkey (the grant from the phone covers passkey.remove).
    page.goto("/stepup/passkeys")
    row = page.locator(".stepup-passkey", has_text="Phone")
    with page.expect_navigation():
        row.locator("button.stepup-danger").click()
    expect(page).to_have_url(re.compile(r"/stepup/passkeys$"))
    expect(page.locator(".stepup-passkey")).to_have_count(1)
    expect(page.locator(".stepup-passkey-name")).to_have_text("Laptop")
    keys.remove(phone)

    # Removing a passkey revoked the grants: a seed action asks again, and the laptop's
    # passkey (the only one left) confirms it.
    keys.restore(laptop_keys)
    page.goto("/account/edit")
    expect(page).to_have_url(re.compile(r"/stepup/reauth\?"))
    use_passkey(page)
    expect(page).to_have_url(re.compile(r"/account/edit$"))
    expect(page.locator("h1")).not_to_have_text("Confirm it is you")


def test_a_cancelled_passkey_prompt_says_so(passkey_page: tuple[Any, VirtualKeys]) -> None:
    page, keys = passkey_page
    sign_in(page, ADMIN)
    authenticator = keys.add()
    confirm_adding(page, with_password=PASSWORDS[ADMIN])
    keys.cdp.send(
        "WebAuthn.setUserVerified", {"authenticatorId": authenticator, "isUserVerified": False}
    )
    page.goto("/stepup/passkeys")
    page.fill("#stepup-passkey-name", "Laptop")
    page.click("form[data-stepup-passkey=register] button[type=submit]")
    error = page.locator("[data-stepup-passkey-error]")
    expect(error).to_be_visible()
    expect(page.locator(".stepup-passkey")).to_have_count(0)


def test_sign_in_with_the_password_then_a_passkey(passkey_page: tuple[Any, VirtualKeys]) -> None:
    """A member with a passkey and no TOTP: the password, then the passkey."""
    page, keys = passkey_page
    sign_in(page, MEMBER)
    expect(page).to_have_url(re.compile(r"/account$"))
    keys.add()
    confirm_adding(page, with_password=PASSWORDS[MEMBER])
    add_passkey(page, "Laptop")
    page.goto("/account")
    sign_out(page)
    sign_in(page, MEMBER)
    expect(page).to_have_url(re.compile(r"/stepup/2fa/verify$"))
    expect(page.locator("#stepup-code")).to_have_count(0)
    with page.expect_navigation(url=re.compile(r"/account$")):
        page.click("text=Use a passkey")


@pytest.mark.parametrize("javascript", [False, True])
def test_passkey_buttons_wait_for_the_script(
    browser: Any, demo: DemoServer, javascript: bool
) -> None:
    """Without JavaScript "Add a passkey" is disabled and a note says why (it could only
    send an empty answer, after a re-authentication for nothing); the script enables it."""
    origin = demo.url.replace("127.0.0.1", "localhost")
    context = browser.new_context(
        base_url=origin, viewport=VIEWPORT, java_script_enabled=javascript
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        sign_in(page, MEMBER)
        expect(page).to_have_url(re.compile(r"/account$"))
        page.goto("/stepup/passkeys")
        form = page.locator("form[data-stepup-passkey=register]")
        button = form.locator("button[type=submit]")
        if javascript:
            expect(button).to_be_enabled()
        else:
            expect(button).to_be_disabled()
        # (Chromium renders <noscript> only when scripting is off for its parser, which
        # script-disabled emulation does not switch: the note is checked as markup.)
        note = form.locator("noscript")
        expect(note).to_have_count(1)
        assert "Passkeys need JavaScript in this browser." in note.inner_html()
    finally:
        context.close()
