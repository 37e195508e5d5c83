"""Back from the prompt in Chromium: the Tenant page (its button's JSON:API PATCH asked to
confirm) and the Passkeys page ("Add a passkey" asked to confirm) say that the
confirmation worked, and the Passkeys page has the name typed before; the second press
does it. And the demo opened at 127.0.0.1 moves to its one address, localhost."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from e2e.conftest import VIEWPORT
from e2e.demo_server import DemoServer
from e2e.journeys import ADMIN, MEMBER, PASSWORDS, reauthenticate, sign_in
from e2e.test_browser_passkeys import VirtualKeys

pytestmark = pytest.mark.browser


@pytest.fixture
def at_localhost(browser: Any, demo: DemoServer) -> Iterator[tuple[Any, VirtualKeys]]:
    """The demo at its passkey origin (localhost), with a virtual authenticator."""
    context = browser.new_context(
        base_url=demo.url.replace("127.0.0.1", "localhost"), viewport=VIEWPORT
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        yield page, VirtualKeys(context, page)
    finally:
        context.close()


def test_the_tenant_page_says_press_again(page: Any) -> None:
    sign_in(page, ADMIN)
    page.goto("/tenant")
    with page.expect_navigation():
        page.click("#toggle-flag")
    reauthenticate(page, PASSWORDS[ADMIN])
    expect(page).to_have_url(re.compile(r"/tenant$"))
    expect(page.locator("main .flash")).to_have_text(
        "You have confirmed it is you: press “Turn on” again to change the setting,"
        " without being asked again for 6 h."
    )
    expect(page.locator("#flag-state")).to_have_attribute("data-on", "no")
    with page.expect_navigation():
        page.click("#toggle-flag")
    expect(page.locator("#flag-state")).to_have_attribute("data-on", "yes")
    expect(page.locator("main .flash")).to_have_count(0)


def test_the_passkeys_page_keeps_the_name_and_says_add_it_now(
    at_localhost: tuple[Any, VirtualKeys],
) -> None:
    page, keys = at_localhost
    keys.add()
    sign_in(page, MEMBER)
    page.goto("/stepup/passkeys")
    expect(page.locator("#confirmed")).to_have_count(0)
    page.fill("#stepup-passkey-name", "Work laptop")
    with page.expect_navigation():
        page.click("form[data-stepup-passkey=register] button[type=submit]")
    expect(page).to_have_url(re.compile(r"/stepup/reauth/?\?.*action=passkey\.add"))
    with page.expect_navigation():
        reauthenticate(page, PASSWORDS[MEMBER])
    expect(page).to_have_url(re.compile(r"/stepup/passkeys$"))
    expect(page.locator("#confirmed")).to_have_text(
        "You have confirmed it is you: add your passkey now, without being asked again for 6 h."
    )
    expect(page.locator("#stepup-passkey-name")).to_have_value("Work laptop")
    with page.expect_navigation():
        page.click("form[data-stepup-passkey=register] button[type=submit]")
    expect(page.locator(".stepup-passkey-name", has_text="Work laptop")).to_have_count(1)
    expect(page.locator("#confirmed")).to_have_count(0)  # adding it ended the confirmation
    expect(page.locator("#stepup-passkey-name")).to_have_value("")  # not put back again


def test_opened_at_127_0_0_1_the_demo_moves_to_localhost(browser: Any, tmp_path: Any) -> None:
    """``stepup demo`` on 127.0.0.1 is at localhost: the browser that types 127.0.0.1 ends
    up there, signs in there, and stays there."""
    server = DemoServer(tmp_path / "demo.sqlite3")
    port = server.url.rsplit(":", 1)[1]
    try:
        server.start(base_url=f"http://localhost:{port}")
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{port}/account")
        expect(page).to_have_url(f"http://localhost:{port}/login?next=%2Faccount")
        page.fill("#email", ADMIN)
        page.fill("#password", PASSWORDS[ADMIN])
        page.click("#sign-in")
        expect(page).to_have_url(f"http://localhost:{port}/account")
        context.close()
    finally:
        server.stop()
