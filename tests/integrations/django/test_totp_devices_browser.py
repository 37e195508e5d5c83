"""Django: add two TOTP devices and remove one in headless Chromium, against the test
project served over WSGI (Django's CSRF checks on; see totp_browser.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from integrations.django.django_support import PASSWORDS, TENANT, running_site
from integrations.passkey_browser import FLAG_ON, chromium, free_socket, wsgi_server
from integrations.totp_browser import add_two_and_remove_one
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

    def sign_in(page: Any) -> None:
        form = {"username": "bob", "password": PASSWORDS["bob"], "next": "/home/"}
        assert page.request.post(f"{origin}/login/", form=form, max_redirects=0).status == 303

    def flag_on() -> None:
        settings = TenantSettings(store)
        settings.patch(TENANT, FLAG_ON, actor_id="admin", actor_is_tenant_admin=True)

    with running_site(store, clock):
        TenantSettings(store).ensure(TENANT)
        with wsgi_server(WSGIHandler(), sock):
            add_two_and_remove_one(
                browser,
                origin,
                sign_in=sign_in,
                flag_on=flag_on,
                settings="/stepup/2fa/",
                password=PASSWORDS["bob"],
                clock=clock,
            )
