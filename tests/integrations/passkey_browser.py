"""Register a passkey and re-authenticate with it in headless Chromium, against a real
server of each framework's test app: Chromium's own WebAuthn with a virtual CTAP2
authenticator added through the DevTools protocol, stepup-passkeys.js, the pages."""

from __future__ import annotations

import re
import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from stepup.tenants import TenantSettings
from support import need

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
AUTHENTICATOR = {
    "protocol": "ctap2",
    "transport": "internal",
    "hasResidentKey": True,
    "hasUserVerification": True,
    "isUserVerified": True,
}
FLAG_ON = '{"data": {"type": "tenant", "attributes": {"feature_flags": {"sensitive_actions_reauth": true}}}}'


def flag_on(store: Any, tenant: str) -> None:
    """Turn the tenant's re-authentication flag on, as its admin would."""
    TenantSettings(store).patch(tenant, FLAG_ON, actor_id="admin", actor_is_tenant_admin=True)


@contextmanager
def chromium() -> Iterator[Any]:
    need(Path(CHROMIUM).exists(), "Chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def wsgi_server(app: Any, sock: socket.socket) -> Iterator[None]:
    """``app`` served by werkzeug on ``sock`` (threaded), until the block ends."""
    from werkzeug.serving import make_server

    port = sock.getsockname()[1]
    sock.close()  # werkzeug binds it again (SO_REUSEADDR)
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        thread.join(timeout=30)


@contextmanager
def asgi_server(app: Any, sock: socket.socket) -> Iterator[None]:
    """``app`` served by uvicorn on ``sock``, until the block ends."""
    import uvicorn

    ready = threading.Event()

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            ready.set()

    server = Server(uvicorn.Config(app, lifespan="on", log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    assert ready.wait(timeout=30), "the server did not start"
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def add_passkey(page: Any, passkeys_page: str, password: str) -> None:
    """Add a passkey named "Laptop" on the passkeys page. Adding one asks for a
    re-authentication whatever the tenant's flag: the page sends the person to confirm
    it is them (``password``, as they have no passkey yet) and back, where they add it."""
    from playwright.sync_api import expect

    page.goto(passkeys_page)
    page.fill("#stepup-passkey-name", "Laptop")
    with page.expect_navigation():
        page.click("form[data-stepup-passkey=register] button[type=submit]")
    expect(page).to_have_url(re.compile(r"/stepup/reauth/?\?.*action=passkey\.add"))
    page.fill("#stepup-password", password)
    with page.expect_navigation(url=re.compile(re.escape(passkeys_page) + "$")):
        page.click("form:has(#stepup-password) button[type=submit]")
    page.fill("#stepup-passkey-name", "Laptop")
    with page.expect_navigation():
        page.click("form[data-stepup-passkey=register] button[type=submit]")
    expect(page.locator(".stepup-passkey-name")).to_have_text("Laptop")


def register_and_reauthenticate(
    browser: Any,
    origin: str,
    *,
    sign_in: Callable[[Any], None],
    flag_on: Callable[[], None],
    passkeys_page: str,
    guarded: str,
    shows: str,
    password: str,
) -> None:
    """The journey: sign in, add a passkey on the passkeys page, turn the tenant's flag
    on, open a guarded page and confirm with the passkey (no password is asked): the
    guarded page then ``shows`` its content."""
    from playwright.sync_api import expect

    context = browser.new_context(base_url=origin)
    context.set_default_timeout(15_000)
    try:
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        cdp.send("WebAuthn.enable")
        authenticator = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": AUTHENTICATOR})
        sign_in(page)
        add_passkey(page, passkeys_page, password)
        ids = cdp.send("WebAuthn.getCredentials", authenticator)["credentials"]
        assert len(ids) == 1
        flag_on()
        page.goto(guarded)
        expect(page).to_have_url(re.compile(r"/stepup/reauth/?\?"))
        expect(page.locator("#stepup-password")).to_have_count(0)
        with page.expect_navigation():
            page.click("text=Use a passkey")
        expect(page).to_have_url(re.compile(re.escape(guarded) + "$"))
        assert shows in page.content()
        signed = cdp.send("WebAuthn.getCredentials", authenticator)["credentials"]
        assert signed[0]["signCount"] >= 1  # the authenticator really signed
    finally:
        context.close()


def sign_in_with_passkey(
    browser: Any,
    origin: str,
    *,
    log_in: Callable[[Any, str], Any],
    flag_on: Callable[[], None],
    passkeys_page: str,
    guarded: str,
    shows: str,
    password: str,
) -> None:
    """The sign-in journey: sign in (no second factor yet), add a passkey, sign out;
    turn the tenant's flag on; sign in again with the password, then the passkey as the
    second factor on the code step's page; the guarded page (the login's ``next``) then
    ``shows`` its content without asking again, because the sign-in counts (the app's
    policy has ``sign_in_counts``). ``log_in(page, next)`` posts the login form and
    returns the answer (not followed)."""
    from playwright.sync_api import expect

    context = browser.new_context(base_url=origin)
    context.set_default_timeout(15_000)
    try:
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        cdp.send("WebAuthn.enable")
        authenticator = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": AUTHENTICATOR})
        assert log_in(page, "/").status == 303
        add_passkey(page, passkeys_page, password)
        context.clear_cookies()  # signed out: a new browser session
        flag_on()
        answer = log_in(page, guarded)
        assert answer.status == 303
        location = answer.headers["location"]
        assert re.search(r"/stepup/2fa/verify/?$", location), location
        page.goto(location)
        expect(page.locator("#stepup-code")).to_have_count(0)  # passkey only: no code form
        with page.expect_navigation(url=re.compile(re.escape(guarded) + "$")):
            page.click("text=Use a passkey")
        assert shows in page.content()
        assert "/stepup/reauth" not in page.url
        signed = cdp.send("WebAuthn.getCredentials", authenticator)["credentials"]
        assert signed[0]["signCount"] >= 1  # the authenticator really signed
    finally:
        context.close()
