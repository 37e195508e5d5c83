"""What stepup's pages say when the browser refuses a passkey ceremony, in headless
Chromium with a virtual authenticator (see passkey_browser.py): stepup's own text in
the page's language, never the browser's English message.

- the same authenticator added twice: the browser refuses it (``excludeCredentials``,
  an ``InvalidStateError``), the page says that authenticator already holds a passkey;
- the site opened at an address its passkeys are not for (127.0.0.1 while the RP id is
  localhost: a ``SecurityError``), the page says to open the site at its usual address.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from integrations.passkey_browser import (
    AUTHENTICATOR,
    add_passkey,
    asgi_server,
    chromium,
    free_socket,
    wsgi_server,
)
from stepup.adapters.storage.memory import MemoryStore
from stepup.testing import SettableClock

pytestmark = pytest.mark.browser

PASSKEYS = "/stepup/passkeys"
REGISTER = "form[data-stepup-passkey=register]"
ALREADY = {
    "en-US": "This authenticator already holds a passkey for your account.",
    "de-DE": "Dieser Authenticator enthält bereits einen Passkey für Ihr Konto.",
}
WRONG_ADDRESS = {
    "en-US": "Passkeys do not work at this address. Open the site at its usual address"
    " and try again.",
    "de-DE": "Passkeys funktionieren unter dieser Adresse nicht. Öffnen Sie die Seite unter"
    " ihrer üblichen Adresse und versuchen Sie es erneut.",
}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def _context(browser: Any, origin: str, locale: str) -> tuple[Any, Any, Any, dict[str, Any]]:
    context = browser.new_context(base_url=origin, locale=locale)
    context.set_default_timeout(15_000)
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    authenticator = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": AUTHENTICATOR})
    return context, page, cdp, authenticator


def _shown(page: Any) -> str:
    from playwright.sync_api import expect

    box = page.locator(f"{REGISTER} [data-stepup-passkey-error]")
    expect(box).to_be_visible()
    return str(box.inner_text())


def same_authenticator_twice(
    browser: Any, origin: str, locale: str, sign_in: Callable[[Any], None], password: str
) -> None:
    """Add a passkey, confirm it is you with it (adding one asks again), then try to
    add another on the same authenticator: the browser refuses, stepup says why."""
    from playwright.sync_api import expect

    context, page, cdp, authenticator = _context(browser, origin, locale)
    try:
        sign_in(page)
        add_passkey(page, PASSKEYS, password)
        page.goto(PASSKEYS)
        page.fill("#stepup-passkey-name", "Again")
        with page.expect_navigation():
            page.click(f"{REGISTER} button[type=submit]")
        expect(page).to_have_url(re.compile(r"/stepup/reauth/?\?.*action=passkey\.add"))
        with page.expect_navigation(url=re.compile(re.escape(PASSKEYS) + "$")):
            page.click("form[data-stepup-passkey=authenticate] button[type=submit]")
        page.fill("#stepup-passkey-name", "Again")
        page.click(f"{REGISTER} button[type=submit]")
        assert _shown(page) == ALREADY[locale]
        expect(page).to_have_url(re.compile(re.escape(PASSKEYS) + "$"))
        expect(page.locator(".stepup-passkey-name")).to_have_text("Laptop")
        assert len(cdp.send("WebAuthn.getCredentials", authenticator)["credentials"]) == 1
    finally:
        context.close()


def wrong_address(
    browser: Any, origin: str, locale: str, sign_in: Callable[[Any], None], password: str
) -> None:
    """The site opened at 127.0.0.1, its passkeys for localhost: the browser refuses
    to make one there, stepup says to open the site at its usual address."""
    from playwright.sync_api import expect

    context, page, _cdp, _authenticator = _context(browser, origin, locale)
    try:
        sign_in(page)
        page.goto(PASSKEYS)
        page.fill("#stepup-passkey-name", "Laptop")
        with page.expect_navigation():
            page.click(f"{REGISTER} button[type=submit]")
        page.fill("#stepup-password", password)
        with page.expect_navigation(url=re.compile(re.escape(PASSKEYS) + "$")):
            page.click("form:has(#stepup-password) button[type=submit]")
        page.fill("#stepup-passkey-name", "Laptop")
        page.click(f"{REGISTER} button[type=submit]")
        assert _shown(page) == WRONG_ADDRESS[locale]
        expect(page.locator(".stepup-passkey-name")).to_have_count(0)
    finally:
        context.close()


def _flask(origin_host: str) -> tuple[Any, Any, str, Callable[[Any], None], str]:
    from integrations.flask.flask_support import make_app, make_users

    sock = free_socket()
    port = sock.getsockname()[1]
    config = {
        "STEPUP_PASSKEYS_RP_ID": "localhost",
        "STEPUP_PASSKEYS_ORIGINS": [f"http://localhost:{port}"],
    }
    app = make_app("subject_loader", clock=SettableClock(), store=MemoryStore(), config=config)
    origin = f"http://{origin_host}:{port}"
    password = make_users()["alice"].password

    def sign_in(page: Any) -> None:
        form = {"username": "alice", "password": password, "next": "/home"}
        assert page.request.post(f"{origin}/login", form=form, max_redirects=0).status == 303

    return wsgi_server(app.app, sock), sock, origin, sign_in, password


def _starlette(origin_host: str) -> tuple[Any, Any, str, Callable[[Any], None], str]:
    from integrations.starlette.starlette_support import PASSWORDS, make_app

    sock = free_socket()
    port = sock.getsockname()[1]
    app = make_app(
        clock=SettableClock(),
        store=MemoryStore(),
        passkeys_rp_id="localhost",
        passkeys_origins=(f"http://localhost:{port}",),
    )
    origin = f"http://{origin_host}:{port}"

    def sign_in(page: Any) -> None:
        form = {"user": "alice", "password": PASSWORDS["alice"], "next": "/"}
        assert page.request.post(f"{origin}/login", form=form, max_redirects=0).status == 303

    return asgi_server(app.app, sock), sock, origin, sign_in, PASSWORDS["alice"]


@pytest.mark.parametrize("locale", ["en-US", "de-DE"])
def test_flask_the_same_authenticator_twice(browser: Any, locale: str) -> None:
    server, _sock, origin, sign_in, password = _flask("localhost")
    with server:
        same_authenticator_twice(browser, origin, locale, sign_in, password)


def test_starlette_the_same_authenticator_twice(browser: Any) -> None:
    server, _sock, origin, sign_in, password = _starlette("localhost")
    with server:
        same_authenticator_twice(browser, origin, "de-DE", sign_in, password)


@pytest.mark.parametrize("locale", ["en-US", "de-DE"])
def test_flask_an_address_the_passkeys_are_not_for(browser: Any, locale: str) -> None:
    server, _sock, origin, sign_in, password = _flask("127.0.0.1")
    with server:
        wrong_address(browser, origin, locale, sign_in, password)
