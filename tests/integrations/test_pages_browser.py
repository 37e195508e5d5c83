"""The shared pages in headless Chromium, at a desktop and a phone width: nothing wider
than the screen, the card inside it, the error and Cancel in view, every field styled,
nothing past the card (a 64-character name without a space neither), and the enrolment
QR code readable by a real decoder (zbar) after a wrong code too. The pages and their
stylesheet come from the Flask integration's own routes (the templates and stylesheet
are the same for every framework, as tests/integrations/django/test_pages_everywhere.py
checks)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from json import dumps
from pathlib import Path
from typing import Any

import pytest

from e2e.qr import zbar
from integrations.flask.flask_support import app_policy, confirm_factors, make_app, set_flag
from stepup.adapters.storage.memory import MemoryStore
from stepup.integrations.transaction import Transaction
from stepup.policy import Rule, Sensitivity
from stepup.testing import SettableClock
from stepup.testing.webauthn import SoftAuthenticator
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
ORIGIN = "http://stepup.test"


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    need(Path(CHROMIUM).exists(), "Chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


def _pages() -> tuple[dict[str, str], Any]:
    """A wrong password on the re-auth page, in English and German, a wrong code on
    the enrolment page, the page adding a second authenticator app, the two-factor
    settings page with two apps and the passkeys page with two passkeys (English and
    German), and the confirmation of one transaction, as the Flask integration serves
    them."""
    config = {"STEPUP_PASSKEYS_RP_ID": "localhost", "STEPUP_PASSKEYS_ORIGINS": [PASSKEY_ORIGIN]}
    app = make_app(
        "subject_loader",
        clock=SettableClock(),
        store=MemoryStore(),
        config=config,
        policy=app_policy().extend({DESTROY: DESTROY_RULE}),
        setup=_destroy_route,
    )
    bob = app.client()
    bob.login("bob")
    url = "/stepup/reauth?action=api_key.read&next=/somewhere"
    form = bob.client.get(url).get_data(as_text=True)
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form))
    wrong = {**fields, "password": "wrong"}
    pages = {
        "reauth": bob.client.post("/stepup/reauth/password", data=wrong),
        "reauth_de": bob.client.post(
            "/stepup/reauth/password", data=wrong, headers={"Accept-Language": "de"}
        ),
        "enrol": bob.form("/stepup/2fa/enrol", {}),
        "enrol_wrong": bob.form("/stepup/2fa/confirm", {"code": "000000"}),
    }
    alice = app.client()
    alice.login("alice")
    alice.enrol()
    pages["adding"] = alice.form(
        "/stepup/2fa/devices/add", {"name": "A tablet with a long name"}, follow_redirects=True
    )
    key = re.search(r'id="stepup-manual-key">([^<]+)<', pages["adding"].get_data(as_text=True))
    assert key is not None
    app.clock.advance(30)
    code = app.totp_code(key.group(1).replace(" ", ""))
    assert alice.form("/stepup/2fa/devices/confirm", {"code": code}).status_code == 303
    pages["settings"] = alice.client.get("/stepup/2fa")
    pages["settings_de"] = alice.client.get("/stepup/2fa", headers={"Accept-Language": "de"})
    # Two passkeys, one with a name of 64 characters and no space to break at.
    for name in ("Work laptop", LONG):
        _add_passkey(alice, name)
    pages["passkeys"] = alice.client.get("/stepup/passkeys")
    pages["passkeys_de"] = alice.client.get("/stepup/passkeys", headers={"Accept-Language": "de"})
    # Confirming one transaction whose target has a long name.
    assert set_flag(alice).status_code == 200
    refused = alice.post(f"/workspaces/{LONG}/destroy", data={"csrf_token": alice.csrf()})
    assert refused.status_code == 303
    pages["confirming"] = alice.client.get(refused.headers["Location"])
    return {name: r.get_data(as_text=True) for name, r in pages.items()}, bob.client


PASSKEY_ORIGIN = "http://localhost"
LONG = "x" * 64  # the longest name, without a space to break the line at
DESTROY = "workspace.destroy"
DESTROY_RULE = Rule(Sensitivity.CRITICAL, bind_transaction=True, description="Deleting a workspace")


def _destroy_route(app: Any, stepup: Any) -> None:
    def target(req: Any) -> Transaction:
        return Transaction({"workspace": req.view_args["name"]}, "Delete workspace %(workspace)s")

    @app.post("/workspaces/<name>/destroy")
    @stepup.reauth_required(DESTROY, transaction=target, return_to="/home")
    def destroy(name: str) -> str:
        return f"destroyed {name}"


def _add_passkey(browser: Any, name: str) -> None:
    confirm_factors(browser)  # adding a passkey asks for a re-authentication: test plumbing
    headers = {"X-CSRF-Token": browser.csrf("/stepup/passkeys")}
    json = {"content_type": "application/json", "headers": headers}
    key = SoftAuthenticator(origin=PASSKEY_ORIGIN, counter=1)
    options = browser.post("/stepup/passkeys/register/begin", data="{}", **json).get_json()
    body = {"credential": key.create(options), "name": name}
    finish = browser.post("/stepup/passkeys/register/finish", data=dumps(body), **json)
    assert finish.status_code == 200, finish.get_data(as_text=True)


@pytest.mark.parametrize("width", [1280, 390])
def test_the_pages_fit_and_the_qr_code_scans(chromium: Any, width: int) -> None:
    pages, client = _pages()
    page = chromium.new_page(viewport={"width": width, "height": 800})

    def serve(route: Any) -> None:
        path = route.request.url.removeprefix(ORIGIN)
        if path.startswith("/page/"):
            body = pages[path.removeprefix("/page/")]
            route.fulfill(status=200, content_type="text/html; charset=utf-8", body=body)
            return
        served = client.get(path)  # the stylesheet, from the integration's own route
        route.fulfill(
            status=served.status_code, content_type=served.content_type, body=served.get_data()
        )

    try:
        page.route(f"{ORIGIN}/**", serve)
        for name in pages:
            page.goto(f"{ORIGIN}/page/{name}")
            assert page.evaluate("getComputedStyle(document.body).backgroundColor") != (
                "rgba(0, 0, 0, 0)"
            ), "the stylesheet did not load"
            wide = page.evaluate("document.documentElement.scrollWidth")
            assert wide <= width, (name, wide)
            card = page.locator(".stepup-card").bounding_box()
            assert card is not None
            assert card["x"] >= 0
            assert card["x"] + card["width"] <= width
            if name.startswith("reauth") or name == "enrol_wrong":
                assert page.locator("#stepup-error").is_visible(), name
            if name.startswith("settings"):
                assert page.locator(".stepup-device").count() == 2
            if name.startswith("passkeys"):
                assert page.locator(".stepup-passkey").count() == 2
            if name == "confirming":
                assert page.locator(".stepup-confirming").is_visible()
            # Every field is the stylesheet's (a field without type="text" was not), and
            # no element ends past the card.
            for field in page.locator(".stepup-card input:not([type=hidden])").all():
                radius = field.evaluate("e => getComputedStyle(e).borderTopLeftRadius")
                assert radius == "8px", (name, field.get_attribute("id"))
            past = page.evaluate(
                """() => {
                    const card = document.querySelector(".stepup-card").getBoundingClientRect();
                    return [...document.querySelectorAll(".stepup-card *")]
                        .filter(e => e.getBoundingClientRect().right > card.right + 0.5)
                        .map(e => e.tagName + "." + e.className);
                }"""
            )
            assert past == [], (name, past)
            if name.startswith("reauth"):
                assert page.locator("a.stepup-cancel").is_visible()
            if name.startswith(("enrol", "adding")):
                found = zbar(page.locator("#stepup-qr").screenshot())
                assert len(found) == 1
                assert found[0].startswith("otpauth://totp/")
    finally:
        page.close()


@pytest.mark.parametrize(
    ("page_name", "row"),
    [("passkeys", ".stepup-passkey-name"), ("settings", ".stepup-device-name")],
)
def test_each_row_names_its_controls(chromium: Any, page_name: str, row: str) -> None:
    """Two passkeys, two authenticator apps: each row's "New name", "Rename" and
    "Remove" say which one they act on (WCAG 2.4.6), the visible word first (2.5.3), so
    a screen reader's list of buttons and a voice command tell them apart."""
    pages, _ = _pages()
    page = chromium.new_page()
    try:
        page.set_content(pages[page_name])
        names = page.locator(row).all_inner_texts()
        assert len(names) == 2
        for role, word in (("button", "Remove"), ("button", "Rename"), ("textbox", "New name")):
            assert page.get_by_role(role, name=word, exact=True).count() == 0, word
            for name in names:
                control = page.get_by_role(role, name=f"{word} {name}", exact=True)
                assert control.count() == 1, (word, name)
                assert control.is_visible()
    finally:
        page.close()


def test_chromium_finds_the_account_beside_the_password(chromium: Any) -> None:
    """The re-auth form has the account name beside the password (hidden, read-only):
    Chromium's "Password forms should have (optionally hidden) username fields" stays
    quiet, and the field takes no room."""
    pages, _ = _pages()
    page = chromium.new_page()
    said: list[str] = []
    page.on("console", lambda message: said.append(message.text))
    try:
        page.route(
            f"{ORIGIN}/**",
            lambda route: route.fulfill(
                status=200, content_type="text/html; charset=utf-8", body=pages["reauth"]
            ),
        )
        page.goto(f"{ORIGIN}/reauth")
        field = page.locator("#stepup-username")
        assert field.input_value() == "bob"
        assert field.get_attribute("autocomplete") == "username"
        assert not field.is_visible()
        page.locator("#stepup-password").focus()  # Chromium looks at the form again
        assert [text for text in said if "username" in text] == []
    finally:
        page.close()
