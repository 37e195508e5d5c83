"""The recovery codes page and the sign-in's second step in headless Chromium, as the
Flask integration serves them (the templates, stylesheet and script are every
framework's; tests/integrations/django/test_codes_left_and_cancel.py checks the three
serve the same page):

- each 29-character code on one line, at a desktop width (it broke at a hyphen over two
  lines in two columns), at 390 px and at 320 px; two columns only where two codes fit;
- Download works without JavaScript (the codes as a text file, no request to the
  server), Copy and Print need the script and are hidden without it; Copy puts the
  file's text on the clipboard and says so; printed, the page shows the codes without
  its buttons;
- the second step's way off is a button reached by the keyboard, and the code field's
  pattern refuses letters but none of what the core accepts."""

from __future__ import annotations

import html
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from integrations.flask.flask_support import make_app
from stepup.adapters.storage.memory import MemoryStore
from stepup.testing import SettableClock
from support import need

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: localhost is a secure context: the Clipboard API is there.
ORIGIN = "http://localhost"
#: Any other http: origin is not: Copy takes the older way.
PLAIN = "http://stepup.test"
_CODES = re.compile(r"<li><code>([^<]+)</code></li>")


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    need(Path(CHROMIUM).exists(), "Chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def site() -> tuple[dict[str, str], Any]:
    """bob's recovery codes page and alice's second step, and the client serving the
    stylesheet and scripts."""
    app = make_app("subject_loader", clock=SettableClock(), store=MemoryStore())
    bob = app.client()
    bob.login("bob")
    enrolling = bob.form("/stepup/2fa/enrol", {}).get_data(as_text=True)
    key = re.search(r'id="stepup-manual-key">([^<]+)<', enrolling)
    assert key is not None
    code = app.totp_code(key.group(1).replace(" ", ""))
    codes = bob.form("/stepup/2fa/confirm", {"code": code}).get_data(as_text=True)
    alice = app.client()
    alice.login("alice")
    alice.enrol()
    waiting = app.client()
    assert waiting.login("alice").status_code == 303
    verify = waiting.client.get("/stepup/2fa/verify").get_data(as_text=True)
    return {"codes": codes, "verify": verify}, bob.client


def _serve(page: Any, origin: str, pages: dict[str, str], client: Any) -> None:
    def serve(route: Any) -> None:
        path = route.request.url.removeprefix(origin)
        if path.startswith("/page/"):
            body = pages[path.removeprefix("/page/")]
            route.fulfill(status=200, content_type="text/html; charset=utf-8", body=body)
            return
        served = client.get(path)  # the stylesheet and scripts, from the integration's routes
        route.fulfill(
            status=served.status_code, content_type=served.content_type, body=served.get_data()
        )

    page.route(f"{origin}/**", serve)


def _file_text(page_html: str) -> str:
    """The text the page gives its script to save and copy (its ``data-file``)."""
    found = re.search(r'data-file="([^"]*)"', page_html)
    assert found is not None
    return html.unescape(found.group(1))


@pytest.mark.parametrize("width", [1280, 390, 320])
def test_each_code_stays_on_one_line(chromium: Any, site: Any, width: int) -> None:
    pages, client = site
    page = chromium.new_page(viewport={"width": width, "height": 900})
    try:
        _serve(page, ORIGIN, pages, client)
        page.goto(f"{ORIGIN}/page/codes")
        seen = page.evaluate(
            """() => {
                const card = document.querySelector(".stepup-card").getBoundingClientRect();
                const list = document.getElementById("stepup-recovery-codes");
                const codes = [...list.querySelectorAll("code")];
                return {
                    lines: codes.map(c => c.getClientRects().length),
                    lefts: [...new Set(codes.map(c => Math.round(c.getBoundingClientRect().left)))],
                    past: codes.filter(c => c.getBoundingClientRect().right > card.right + 0.5).length,
                    listScrolls: list.scrollWidth > list.clientWidth,
                    pageWidth: document.documentElement.scrollWidth,
                };
            }"""
        )
        assert seen["lines"] == [1] * 10, seen  # no code broken over two lines
        assert seen["past"] == 0, seen
        assert not seen["listScrolls"], seen  # each code fits: nothing to scroll to
        assert seen["pageWidth"] <= width, seen
        assert len(seen["lefts"]) == 1, seen  # the card holds one code a line: one column
    finally:
        page.close()


def test_two_columns_where_two_codes_fit(chromium: Any, site: Any) -> None:
    """An app's layout with room for two (a wider card): two columns, each code whole."""
    pages, client = site
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    try:
        _serve(page, ORIGIN, pages, client)
        page.goto(f"{ORIGIN}/page/codes")
        page.add_style_tag(content=".stepup-card { max-width: 60rem; }")
        lines = page.eval_on_selector_all(
            "#stepup-recovery-codes code", "cs => cs.map(c => c.getClientRects().length)"
        )
        lefts = page.eval_on_selector_all(
            "#stepup-recovery-codes code",
            "cs => [...new Set(cs.map(c => Math.round(c.getBoundingClientRect().left)))]",
        )
        assert lines == [1] * 10
        assert len(lefts) == 2
    finally:
        page.close()


def test_without_javascript_no_button_shows_and_no_url_holds_the_codes(
    chromium: Any, site: Any
) -> None:
    pages, client = site
    assert "data:" not in pages["codes"]
    context = chromium.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        _serve(page, ORIGIN, pages, client)
        page.goto(f"{ORIGIN}/page/codes")
        for name in ("Download", "Copy", "Print"):
            assert not page.get_by_role("button", name=name).is_visible(), name
        assert page.locator("#stepup-recovery-codes li").count() == 10
    finally:
        context.close()


def test_download_saves_the_file_from_a_blob_url(chromium: Any, site: Any) -> None:
    """A data: URL would stay in the browser's download history with every code in it:
    the file is saved from a blob: URL, revoked once the download began."""
    pages, client = site
    codes = _CODES.findall(pages["codes"])
    assert len(codes) == 10
    context = chromium.new_context(accept_downloads=True)
    page = context.new_page()
    asked: list[str] = []
    try:
        _serve(page, ORIGIN, pages, client)
        page.goto(f"{ORIGIN}/page/codes")
        page.on("request", lambda r: asked.append(r.url))
        with page.expect_download() as waiting:
            page.get_by_role("button", name="Download").click()
        download = waiting.value
        assert download.suggested_filename == "recovery-codes.txt"
        assert download.url.startswith("blob:")
        text = Path(download.path()).read_text(encoding="utf-8")
        assert text == _file_text(pages["codes"])
        assert text.splitlines()[0] == "Recovery codes for Acme"
        assert text.splitlines()[-10:] == codes
        assert not [url for url in asked if url.startswith(ORIGIN)]  # nothing sent
    finally:
        context.close()


def test_copy_puts_the_codes_on_the_clipboard(chromium: Any, site: Any) -> None:
    pages, client = site
    context = chromium.new_context()
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=ORIGIN)
    page = context.new_page()
    try:
        _serve(page, ORIGIN, pages, client)
        page.goto(f"{ORIGIN}/page/codes")
        copy = page.get_by_role("button", name="Copy")
        copy.wait_for(state="visible")
        copy.focus()
        page.keyboard.press("Enter")
        status = page.locator("[data-stepup-codes-status]")
        assert status.get_attribute("role") == "status"
        page.wait_for_function(
            "() => document.querySelector('[data-stepup-codes-status]').textContent !== ''"
        )
        assert status.text_content() == "The codes were copied."
        assert page.evaluate("navigator.clipboard.readText()") == _file_text(pages["codes"])
        assert page.evaluate("document.activeElement.textContent") == "Copy"  # focus stays
    finally:
        context.close()


def test_copy_without_the_clipboard_api(chromium: Any, site: Any) -> None:
    """An http: address other than localhost has no Clipboard API: the older copy
    command, from the click, and the status line says how it went."""
    pages, client = site
    page = chromium.new_page()
    try:
        _serve(page, PLAIN, pages, client)
        page.goto(f"{PLAIN}/page/codes")
        assert page.evaluate("window.isSecureContext") is False
        page.get_by_role("button", name="Copy").click()
        page.wait_for_function(
            "() => document.querySelector('[data-stepup-codes-status]').textContent !== ''"
        )
        said = page.locator("[data-stepup-codes-status]").text_content()
        assert said in {
            "The codes were copied.",
            "The codes could not be copied here. Select them and copy them yourself.",
        }
        if said != "The codes were copied.":  # then they are selected, to copy by hand
            selected = page.evaluate("String(window.getSelection())")
            assert _CODES.findall(pages["codes"])[0] in selected
    finally:
        page.close()


def test_print_prints_the_codes_without_the_buttons(chromium: Any, site: Any) -> None:
    pages, client = site
    page = chromium.new_page()
    try:
        _serve(page, ORIGIN, pages, client)
        page.goto(f"{ORIGIN}/page/codes")
        page.evaluate("window.print = () => { window.stepupPrinted = true; }")
        page.get_by_role("button", name="Print").click()
        assert page.evaluate("window.stepupPrinted") is True
        page.emulate_media(media="print")
        assert page.locator("#stepup-recovery-codes").is_visible()
        for name in ("Copy", "Print"):
            assert not page.get_by_role("button", name=name).is_visible()
        for name in ("Download", "Done"):
            assert not page.get_by_role("link", name=name).is_visible()
    finally:
        page.close()


def test_the_second_step_way_off_and_code_pattern(chromium: Any, site: Any) -> None:
    pages, client = site
    page = chromium.new_page(viewport={"width": 390, "height": 900})
    try:
        _serve(page, ORIGIN, pages, client)
        page.goto(f"{ORIGIN}/page/verify")
        leave = page.get_by_role("button", name="Sign in as someone else")
        assert leave.is_visible()
        for _ in range(12):  # the keyboard reaches it
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.textContent") == "Sign in as someone else":
                break
        else:
            pytest.fail("Tab never reached 'Sign in as someone else'")
        field = page.locator("#stepup-code")
        for typed, mismatch in [
            ("abcdef", True),
            ("12345x", True),
            ("123456", False),
            ("123 456", False),
            ("123-456", False),
            (" 123456 ", False),
        ]:
            field.fill(typed)
            assert field.evaluate("e => e.validity.patternMismatch") is mismatch, typed
        recovery = page.locator("#stepup-recovery")
        assert recovery.evaluate("e => e.required") is True
        assert recovery.evaluate("e => e.maxLength") == 64
    finally:
        page.close()
