"""What a person sees at desktop and phone widths: the enrolment QR code decodes (zbar
on a screenshot of the rendered element) and no page is wider than its card."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from e2e.demo_server import DemoServer
from e2e.journeys import ADMIN, MEMBER, sign_in, toggle_flag
from e2e.qr import zbar

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def at_width(browser: Any, demo: DemoServer) -> Any:
    contexts: list[Any] = []

    def open_page(viewport: dict[str, int]) -> Any:
        context = browser.new_context(base_url=demo.url, viewport=viewport)
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280px", "390px"])
def test_the_enrolment_qr_code_decodes_at_desktop_and_phone_widths(
    at_width: Any, viewport: dict[str, int]
) -> None:
    page = at_width(viewport)
    sign_in(page, MEMBER)
    page.goto("/security")
    page.click("#enrol-2fa")  # stepup's two-factor page, whose button posts the form
    page.click("form[action$='/2fa/enrol'] button[type=submit]")
    secret = page.inner_text("#stepup-manual-key").replace(" ", "")
    code = page.locator("#stepup-qr svg")
    box = code.bounding_box()
    assert box is not None
    assert box["x"] >= 0
    assert box["x"] + box["width"] <= viewport["width"]  # all of it on screen
    found = zbar(code.screenshot(type="png"))
    assert len(found) == 1, "zbar found no QR code in the rendered element"
    assert found[0].startswith("otpauth://totp/")
    assert f"secret={secret}&" in found[0]


def _overflowing(page: Any) -> list[str]:
    """Elements in the page's card wider than the card (or the page wider than the screen)."""
    result: list[str] = page.evaluate(
        """() => {
            const out = [];
            const root = document.scrollingElement;
            if (root.scrollWidth > root.clientWidth) out.push(`page ${root.scrollWidth}px`);
            const main = document.querySelector("main");
            if (main.scrollWidth > main.clientWidth) out.push(`main ${main.scrollWidth}px > ${main.clientWidth}px`);
            for (const el of main.querySelectorAll("table, pre, form, .card")) {
                if (el.getBoundingClientRect().right > main.getBoundingClientRect().right + 0.5)
                    out.push(`${el.tagName.toLowerCase()}#${el.id} ends past the card`);
            }
            return out;
        }"""
    )
    return result


@pytest.mark.parametrize(
    "path",
    [
        "/api-keys",
        "/ssh-keys",
        "/workspaces",
        "/contract",
        "/users",
        "/tenant",
        "/audit",
        "/account",
        "/security",
    ],
)
def test_pages_fit_a_390px_phone(at_width: Any, path: str) -> None:
    page = at_width(PHONE)
    sign_in(page, ADMIN)
    expect(page).to_have_url(re.compile(r"/account$"))
    if path == "/audit":
        toggle_flag(page, on=True)  # some events with details to show
    page.goto(path)
    assert _overflowing(page) == [], page.evaluate(
        '() => [...document.querySelectorAll("main *")].filter(e => e.getBoundingClientRect().right > document.querySelector("main").getBoundingClientRect().right).map(e => e.tagName + "." + e.className + " " + e.textContent.slice(0, 40))'
    )
    main = page.locator("main")
    assert main.evaluate("el => el.scrollWidth <= el.clientWidth")
