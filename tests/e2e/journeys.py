"""Steps of the browser journeys, as a person would take them."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect as playwright_expect

from stepup import TOTP
from stepup.demo import DEMO_USERS

PASSWORDS = {user.email: user.password for user in DEMO_USERS}


def expect(target: Any) -> Any:
    """Playwright's ``expect``, or its Firefox (Marionette) twin for a Firefox page:
    the same steps run in Chromium and in Firefox."""
    from e2e.firefox import FirefoxExpect, FirefoxLocator, FirefoxPage

    if isinstance(target, FirefoxPage | FirefoxLocator):
        return FirefoxExpect(target)
    return playwright_expect(target)


ADMIN = "admin@acme.test"
MEMBER = "member@acme.test"


def sign_in(page: Any, email: str, password: str | None = None) -> None:
    """Open the sign-in page and sign in (the caller checks where it lands)."""
    page.goto("/login")
    fill_sign_in(page, email, password)


def fill_sign_in(page: Any, email: str, password: str | None = None) -> None:
    page.fill("#email", email)
    page.fill("#password", password if password is not None else PASSWORDS[email])
    page.click("#sign-in")


def sign_out(page: Any) -> None:
    page.click("#sign-out")
    if page.url.endswith("/logout"):  # stepup's pages link to the confirmation page
        page.click("main button[type=submit]")
    expect(page).to_have_url(re.compile(r"/login$"))


def enrol(page: Any, clock: Any, tour: Any) -> tuple[TOTP, str, list[str]]:
    """Turn on 2FA from the security page, reading the key from the page; returns the
    TOTP, the code that confirmed it, and the recovery codes."""
    page.goto("/security")
    page.click("#enrol-2fa")  # stepup's two-factor page, whose button posts the form
    page.click("form[action$='/2fa/enrol'] button[type=submit]")
    tour.shot(page, "enrol")
    secret = page.inner_text("#stepup-manual-key").replace(" ", "")
    totp = TOTP(secret)
    code = totp.at(clock())
    submit_code(page, code)
    expect(page.locator("#stepup-recovery-codes li")).to_have_count(10)
    return totp, code, page.locator("#stepup-recovery-codes li").all_inner_texts()


def submit_code(page: Any, code: str) -> None:
    page.fill("#stepup-code", code)
    page.click("form:has(#stepup-code) button[type=submit]")


def reauthenticate(page: Any, password: str) -> None:
    """Answer stepup's re-authentication prompt."""
    expect(page.locator("h1")).to_have_text("Confirm it is you")
    page.fill("#stepup-password", password)
    page.click("form:has(#stepup-password) button[type=submit]")


def toggle_flag(page: Any, on: bool, password: str = PASSWORDS[ADMIN]) -> None:
    """As an admin: the tenant page's button sends the JSON:API PATCH. Changing tenant
    settings always wants a fresh re-authentication: the first click may lead to the
    prompt, which comes back to the tenant page for a second click."""
    page.goto("/tenant")
    expect(page.locator("#flag-state")).to_have_attribute("data-on", "no" if on else "yes")
    with page.expect_navigation():  # the page reloads, or goes to the prompt
        page.click("#toggle-flag")
    # Wait for whichever arrives (a browser may report a blank page in between).
    arrived = f"#flag-state[data-on='{'yes' if on else 'no'}'], #stepup-password"
    expect(page.locator(arrived)).to_have_count(1)
    if "/stepup/reauth" in page.url:
        reauthenticate(page, password)
        expect(page).to_have_url(re.compile(r"/tenant$"))
        with page.expect_navigation():
            page.click("#toggle-flag")
    expect(page.locator("#flag-state")).to_have_attribute("data-on", "yes" if on else "no")


def grant_state(page: Any) -> str:
    state: str = page.get_attribute("#grant-status", "data-state")
    return state


def new_session(page: Any, email: str) -> None:
    """Sign out and in again: a new session has no re-authentication yet (turning the
    flag on asked for one, and its grant covers the other sensitive actions)."""
    sign_out(page)
    sign_in(page, email)
