"""Flask: "Your sign-in has expired" links to the app's sign-in page (Flask-Login's
``login_view``, else the app's root) and "This page was called for an unknown action"
back to the root, each under a title of its own, in English and German."""

from __future__ import annotations

import pytest

from integrations.flask.flask_support import TestApp, make_app
from integrations.message_link_support import SIGN_IN_EXPIRED, UNKNOWN_ACTION, assert_message
from stepup.adapters.storage.memory import MemoryStore

LOCALES = {"en": {}, "de": {"Accept-Language": "de"}}


@pytest.mark.parametrize("locale", LOCALES)
def test_an_expired_sign_in_links_to_flask_logins_login_view(locale: str) -> None:
    test_app = make_app("flask_login", store=MemoryStore())
    test_app.app.login_manager.login_view = "login"  # type: ignore[attr-defined]
    page = test_app.client().get("/stepup/2fa/verify", headers=LOCALES[locale])
    assert page.status_code == 400
    assert_message(page.get_data(as_text=True), SIGN_IN_EXPIRED, "/login", locale)


@pytest.mark.parametrize("locale", LOCALES)
def test_without_a_login_view_sign_in_again_goes_to_the_apps_root(
    test_app: TestApp, locale: str
) -> None:
    """Flask-Login without ``login_view``, or no Flask-Login: the root, under the
    prefix the app is served at."""
    client = test_app.client()
    page = client.get("/stepup/2fa/verify", headers=LOCALES[locale])
    assert_message(page.get_data(as_text=True), SIGN_IN_EXPIRED, "/", locale)
    mounted = client.get(
        "/stepup/2fa/verify", headers=LOCALES[locale], base_url="http://localhost/sub/"
    )
    assert_message(mounted.get_data(as_text=True), SIGN_IN_EXPIRED, "/sub/", locale)


def test_a_login_view_given_as_a_url_is_taken_as_it_is() -> None:
    test_app = make_app("flask_login", store=MemoryStore())
    test_app.app.login_manager.login_view = "/accounts/sign-in"  # type: ignore[attr-defined]
    page = test_app.client().get("/stepup/2fa/verify")
    assert_message(page.get_data(as_text=True), SIGN_IN_EXPIRED, "/accounts/sign-in", "en")


@pytest.mark.parametrize("locale", LOCALES)
def test_an_unknown_action_links_back_to_the_start(test_app: TestApp, locale: str) -> None:
    client = test_app.client()
    assert client.login("bob").status_code == 303
    page = client.get("/stepup/reauth?action=api_key.raed", headers=LOCALES[locale])
    assert page.status_code == 400
    assert_message(page.get_data(as_text=True), UNKNOWN_ACTION, "/", locale)
