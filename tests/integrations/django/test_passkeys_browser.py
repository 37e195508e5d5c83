"""Django: add a passkey and re-authenticate with it in headless Chromium, against the
test project served over WSGI (Django's CSRF checks on; see passkey_browser.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from integrations.django.django_support import PASSWORDS, TENANT, running_site
from integrations.passkey_browser import (
    FLAG_ON,
    chromium,
    free_socket,
    register_and_reauthenticate,
    sign_in_with_passkey,
    wsgi_server,
)
from stepup.adapters.storage.memory import MemoryStore
from stepup.tenants import TenantSettings
from stepup.testing import SettableClock

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def test_django(browser: Any, clock: SettableClock) -> None:
    from django.core.handlers.wsgi import WSGIHandler

    sock = free_socket()
    origin = f"http://localhost:{sock.getsockname()[1]}"
    store = MemoryStore()
    passkeys = {"PASSKEYS_RP_ID": "localhost", "PASSKEYS_ORIGINS": [origin]}

    def sign_in(page: Any) -> None:
        form = {"username": "alice", "password": PASSWORDS["alice"], "next": "/home/"}
        assert page.request.post(f"{origin}/login/", form=form, max_redirects=0).status == 303

    def flag_on() -> None:
        settings = TenantSettings(store)
        settings.patch(TENANT, FLAG_ON, actor_id="admin", actor_is_tenant_admin=True)

    with running_site(store, clock, **passkeys):
        TenantSettings(store).ensure(TENANT)
        with wsgi_server(WSGIHandler(), sock):
            register_and_reauthenticate(
                browser,
                origin,
                sign_in=sign_in,
                flag_on=flag_on,
                passkeys_page="/stepup/passkeys/",
                password=PASSWORDS["alice"],
                guarded="/api-key/",
                shows="key-123",
            )


def test_django_sign_in_with_a_passkey(browser: Any, clock: SettableClock) -> None:
    from django.core.handlers.wsgi import WSGIHandler

    from integrations.django.testapp.hooks import app_policy

    sock = free_socket()
    origin = f"http://localhost:{sock.getsockname()[1]}"
    store = MemoryStore()
    passkeys = {"PASSKEYS_RP_ID": "localhost", "PASSKEYS_ORIGINS": [origin]}

    def log_in(page: Any, next: str) -> Any:
        form = {"username": "alice", "password": PASSWORDS["alice"], "next": next}
        return page.request.post(f"{origin}/login/", form=form, max_redirects=0)

    def flag_on() -> None:
        settings = TenantSettings(store)
        settings.patch(TENANT, FLAG_ON, actor_id="admin", actor_is_tenant_admin=True)

    policy = app_policy().with_sign_in_counts()
    with running_site(store, clock, POLICY=policy, **passkeys):
        TenantSettings(store).ensure(TENANT)
        with wsgi_server(WSGIHandler(), sock):
            sign_in_with_passkey(
                browser,
                origin,
                log_in=log_in,
                flag_on=flag_on,
                passkeys_page="/stepup/passkeys/",
                password=PASSWORDS["alice"],
                guarded="/api-key/",
                shows="key-123",
            )
