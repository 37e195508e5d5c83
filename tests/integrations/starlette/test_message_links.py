"""Starlette: "Your sign-in has expired" links where a signed-out browser is sent
(``login_url``; without one, the app's root) and "This page was called for an unknown
action" back to the root, each under a title of its own, in English and German."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from integrations.message_link_support import SIGN_IN_EXPIRED, UNKNOWN_ACTION, assert_message
from integrations.starlette.starlette_support import Browser, TestApp, make_app
from stepup.adapters.storage.memory import MemoryStore
from stepup.testing import SettableClock

LOCALES = {"en": {}, "de": {"Accept-Language": "de"}}


@pytest.mark.parametrize("locale", LOCALES)
def test_an_expired_sign_in_links_to_login_url(locale: str) -> None:
    test_app = make_app(clock=SettableClock(), store=MemoryStore(), login_url="/accounts/login")
    with TestClient(test_app.app, follow_redirects=False) as client:
        page = client.get("/stepup/2fa/verify", headers=LOCALES[locale])
    assert page.status_code == 400
    assert_message(page.text, SIGN_IN_EXPIRED, "/accounts/login", locale)


@pytest.mark.parametrize("locale", LOCALES)
def test_without_login_url_sign_in_again_goes_to_the_apps_root(
    test_app: TestApp, locale: str
) -> None:
    """The root, under the app's ``root_path``."""
    with TestClient(test_app.app, follow_redirects=False) as client:
        page = client.get("/stepup/2fa/verify", headers=LOCALES[locale])
    assert_message(page.text, SIGN_IN_EXPIRED, "/", locale)
    with TestClient(test_app.app, root_path="/sub", follow_redirects=False) as client:
        mounted = client.get("/sub/stepup/2fa/verify", headers=LOCALES[locale])
    assert_message(mounted.text, SIGN_IN_EXPIRED, "/sub/", locale)


@pytest.mark.parametrize("locale", LOCALES)
def test_an_unknown_action_links_back_to_the_start(bob: Browser, locale: str) -> None:
    page = bob.get("/stepup/reauth?action=api_key.raed", headers=LOCALES[locale])
    assert page.status_code == 400
    assert_message(page.text, UNKNOWN_ACTION, "/", locale)
