"""Flask and Starlette: add a passkey and re-authenticate with it in headless Chromium,
against a real server of each framework's test app (see passkey_browser.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from integrations.passkey_browser import (
    asgi_server,
    chromium,
    flag_on,
    free_socket,
    register_and_reauthenticate,
    sign_in_with_passkey,
    wsgi_server,
)
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
    store = MemoryStore()
    config = {"STEPUP_PASSKEYS_RP_ID": "localhost", "STEPUP_PASSKEYS_ORIGINS": [origin]}
    app = make_app("subject_loader", clock=SettableClock(), store=store, config=config)
    alice = make_users()["alice"]

    def sign_in(page: Any) -> None:
        form = {"username": "alice", "password": alice.password, "next": "/home"}
        assert page.request.post(f"{origin}/login", form=form, max_redirects=0).status == 303

    with wsgi_server(app.app, sock):
        register_and_reauthenticate(
            browser,
            origin,
            sign_in=sign_in,
            flag_on=lambda: flag_on(store, TENANT),
            passkeys_page="/stepup/passkeys",
            password=alice.password,
            guarded="/api-key",
            shows="key-123",
        )


def test_starlette(browser: Any) -> None:
    from integrations.starlette.starlette_support import PASSWORDS, TENANT, make_app

    sock = free_socket()
    origin = f"http://localhost:{sock.getsockname()[1]}"
    store = MemoryStore()
    app = make_app(
        clock=SettableClock(),
        store=store,
        passkeys_rp_id="localhost",
        passkeys_origins=(origin,),
    )

    def sign_in(page: Any) -> None:
        form = {"user": "alice", "password": PASSWORDS["alice"], "next": "/"}
        assert page.request.post(f"{origin}/login", form=form, max_redirects=0).status == 303

    with asgi_server(app.app, sock):
        register_and_reauthenticate(
            browser,
            origin,
            sign_in=sign_in,
            flag_on=lambda: flag_on(store, TENANT),
            passkeys_page="/stepup/passkeys",
            password=PASSWORDS["alice"],
            guarded="/api-key",
            shows="the key",
        )


def test_flask_sign_in_with_a_passkey(browser: Any) -> None:
    from integrations.flask.flask_support import TENANT, app_policy, make_app, make_users

    sock = free_socket()
    origin = f"http://localhost:{sock.getsockname()[1]}"
    store = MemoryStore()
    config = {"STEPUP_PASSKEYS_RP_ID": "localhost", "STEPUP_PASSKEYS_ORIGINS": [origin]}
    policy = app_policy().with_sign_in_counts()
    app = make_app("flask_login", clock=SettableClock(), store=store, config=config, policy=policy)
    password = make_users()["alice"].password

    def log_in(page: Any, next: str) -> Any:
        form = {"username": "alice", "password": password, "next": next}
        return page.request.post(f"{origin}/login", form=form, max_redirects=0)

    with wsgi_server(app.app, sock):
        sign_in_with_passkey(
            browser,
            origin,
            log_in=log_in,
            flag_on=lambda: flag_on(store, TENANT),
            passkeys_page="/stepup/passkeys",
            password=password,
            guarded="/api-key",
            shows="key-123",
        )


def test_starlette_sign_in_with_a_passkey(browser: Any) -> None:
    from integrations.starlette.starlette_support import PASSWORDS, TENANT, make_app
    from stepup.integrations.views import default_policy

    sock = free_socket()
    origin = f"http://localhost:{sock.getsockname()[1]}"
    store = MemoryStore()
    app = make_app(
        clock=SettableClock(),
        store=store,
        policy=default_policy().with_sign_in_counts(),
        passkeys_rp_id="localhost",
        passkeys_origins=(origin,),
    )

    def log_in(page: Any, next: str) -> Any:
        form = {"user": "alice", "password": PASSWORDS["alice"], "next": next}
        return page.request.post(f"{origin}/login", form=form, max_redirects=0)

    with asgi_server(app.app, sock):
        sign_in_with_passkey(
            browser,
            origin,
            log_in=log_in,
            flag_on=lambda: flag_on(store, TENANT),
            passkeys_page="/stepup/passkeys",
            password=PASSWORDS["alice"],
            guarded="/api-key",
            shows="the key",
        )
