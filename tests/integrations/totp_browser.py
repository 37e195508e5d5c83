"""Several TOTP devices in headless Chromium, against a real server of each
framework's test app: turn two-factor on, add two more authenticator apps (each
confirmed with a code computed from the key the page shows), then remove one behind
the re-authentication the action asks for. Uses passkey_browser.py's servers."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from stepup.testing import SettableClock
from stepup.totp import TOTP


def _key(page: Any) -> TOTP:
    return TOTP(page.locator("#stepup-manual-key").inner_text().replace(" ", ""))


def _confirm(page: Any, clock: SettableClock, totp: TOTP) -> None:
    clock.advance(30)  # each confirming code is spent: a new step for the next one
    page.fill("#stepup-code", totp.at(clock()))
    with page.expect_navigation():
        page.click("main form button[type=submit]")


def add_two_and_remove_one(
    browser: Any,
    origin: str,
    *,
    sign_in: Callable[[Any], None],
    flag_on: Callable[[], None],
    settings: str,
    password: str,
    clock: SettableClock,
) -> None:
    """The journey; ``settings`` is the two-factor page's path."""
    from playwright.sync_api import expect

    context = browser.new_context(base_url=origin)
    context.set_default_timeout(15_000)
    try:
        page = context.new_page()
        sign_in(page)
        page.goto(settings)
        first = _turn_on(page, settings)
        _confirm(page, clock, first)
        expect(page.locator("code").first).to_be_visible()  # the recovery codes, once
        secrets = [first.secret]
        for name in ("Tablet", "Laptop"):
            page.goto(settings)
            page.fill("#stepup-device-name", name)
            with page.expect_navigation():
                page.click("form.stepup-add-device button[type=submit]")
            expect(page.locator("h1")).to_have_text("Add an authenticator app")
            totp = _key(page)
            secrets.append(totp.secret)
            _confirm(page, clock, totp)
            expect(page).to_have_url(re.compile(re.escape(settings) + "$"))
        names = page.locator(".stepup-device-name")
        expect(names).to_have_text(["Authenticator app", "Tablet", "Laptop"])
        assert not any(secret in page.content() for secret in secrets)

        flag_on()
        tablet = page.locator(".stepup-device", has_text="Tablet")
        with page.expect_navigation():
            tablet.locator("button.stepup-danger").click()
        expect(page).to_have_url(re.compile(r"/stepup/reauth/?\?"))
        page.fill("#stepup-password", password)
        page.click("main form button[type=submit]")  # then the form is sent again
        expect(page).to_have_url(re.compile(re.escape(settings) + "$"))
        expect(page.locator(".stepup-flash")).to_have_text("The authenticator app was removed.")
        expect(names).to_have_text(["Authenticator app", "Laptop"])
    finally:
        context.close()


def _turn_on(page: Any, settings: str) -> TOTP:
    """Turn two-factor on from the settings page (the same button in every framework)."""
    with page.expect_navigation():
        page.click("main form button[type=submit]")
    return _key(page)
