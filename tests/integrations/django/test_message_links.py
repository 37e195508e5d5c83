"""Django: "Your sign-in has expired" links to ``settings.LOGIN_URL`` (resolved as
``redirect_to_login`` resolves it: a path or a URL name; without one, the script
prefix) and "This page was called for an unknown action" back to the project's root,
each under a title of its own, in English and German."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.test import override_settings
from django.urls import get_script_prefix, path, set_script_prefix

from integrations.django.django_support import Site
from integrations.django.testapp import views
from integrations.django.testapp.urls import urlpatterns as testapp_urls
from integrations.message_link_support import SIGN_IN_EXPIRED, UNKNOWN_ACTION, assert_message

#: A project whose sign-in page has a name (``LOGIN_URL = "sign-in"``).
urlpatterns = [path("accounts/sign-in/", views.sign_in, name="sign-in"), *testapp_urls]

LOCALES = {"en": {}, "de": {"HTTP_ACCEPT_LANGUAGE": "de"}}


@pytest.mark.parametrize("locale", LOCALES)
def test_an_expired_sign_in_links_to_login_url(site: Site, locale: str) -> None:
    page = site.browser().get("/stepup/2fa/verify/", **LOCALES[locale])
    assert page.status_code == 400
    assert_message(page.content.decode(), SIGN_IN_EXPIRED, "/login/", locale)


@pytest.mark.parametrize("locale", LOCALES)
def test_a_login_url_that_names_a_view_is_resolved(site: Site, locale: str) -> None:
    with override_settings(ROOT_URLCONF=__name__, LOGIN_URL="sign-in"):
        page = site.browser().get("/stepup/2fa/verify/", **LOCALES[locale])
    assert_message(page.content.decode(), SIGN_IN_EXPIRED, "/accounts/sign-in/", locale)


@pytest.fixture
def prefixed() -> Iterator[None]:
    """The script prefix Django's handler sets for each request (its test client does
    not)."""
    before = get_script_prefix()
    set_script_prefix("/sub/")
    try:
        yield
    finally:
        set_script_prefix(before)


def test_without_login_url_sign_in_again_goes_to_the_script_prefix(
    site: Site, prefixed: None
) -> None:
    with override_settings(LOGIN_URL=None):
        page = site.browser().get("/stepup/2fa/verify/")
    assert_message(page.content.decode(), SIGN_IN_EXPIRED, "/sub/", "en")


def test_a_login_url_naming_no_view_goes_to_the_root(site: Site) -> None:
    with override_settings(LOGIN_URL="no-such-view"):
        page = site.browser().get("/stepup/2fa/verify/")
    assert_message(page.content.decode(), SIGN_IN_EXPIRED, "/", "en")


@pytest.mark.parametrize("locale", LOCALES)
def test_an_unknown_action_links_back_to_the_start(site: Site, locale: str) -> None:
    page = site.browser("bob").get("/stepup/reauth/?action=api_key.raed", **LOCALES[locale])
    assert page.status_code == 400
    assert_message(page.content.decode(), UNKNOWN_ACTION, "/", locale)
