"""Flask and Starlette: add two TOTP devices and remove one in headless Chromium,
against a real server of each framework's test app (see totp_browser.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from integrations.passkey_browser import asgi_server, chromium, flag_on, free_socket, wsgi_server
from integrations.totp_browser import add_two_and_remove_one
from stepup.adapters.storage.memory import MemoryStore
from stepup.testing import SettableClock

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def test_flask(browser: Any) -> None:
    from integrations.flask.flask_support import TENANT, make_app, make_users

    sock = free_socket()
    origin = f"http://localhost:{sock.getsockname()[1]}"
    store, clock = MemoryStore(), SettableClock()
    app = make_app("subject_loader", clock=clock, store=store)
    bob = make_users()["bob"]

    def sign_in(page: Any) -> None:
        form = {"username": "bob", "password": bob.password, "next": "/home"}
        assert page.request.post(f"{origin}/login", form=form, max_redirects=0).status == 303

    with wsgi_server(app.app, sock):
        add_two_and_remove_one(
            browser,
            origin,
            sign_in=sign_in,
            flag_on=lambda: flag_on(store, TENANT),
            settings="/stepup/2fa",
            password=bob.password,
            clock=clock,
        )


def test_starlette(browser: Any) -> None:
    from integrations.starlette.starlette_support import PASSWORDS, TENANT, make_app

    sock = free_socket()
    origin = f"http://localhost:{sock.getsockname()[1]}"
    store, clock = MemoryStore(), SettableClock()
    app = make_app(clock=clock, store=store)

    def sign_in(page: Any) -> None:
        form = {"user": "alice", "password": PASSWORDS["alice"], "next": "/"}
        assert page.request.post(f"{origin}/login", form=form, max_redirects=0).status == 303

    with asgi_server(app.app, sock):
        add_two_and_remove_one(
            browser,
            origin,
            sign_in=sign_in,
            flag_on=lambda: flag_on(store, TENANT),
            settings="/stepup/2fa",
            password=PASSWORDS["alice"],
            clock=clock,
        )
