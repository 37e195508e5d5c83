"""The isolation contract's sign-out check with Django's test client, on the docs example
project: a copy of the session taken before signing out is replayed after it. Django's
``logout`` ends the session (the example passes); a sign-out that only deletes the
browser's cookie leaves the session, and its grant, alive for the copy."""

from __future__ import annotations

import types
from collections.abc import Iterator
from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path

from integrations.django.django_support import Browser, Site
from integrations.django.test_docs import acme  # noqa: F401 (the example project, as a fixture)
from stepup.integrations.django.services import get_stepup
from stepup.testing.isolation import check_grant_isolation

PASSWORDS = {"alice": "correct horse", "bob": "battery staple"}


def _sign_in(browser: Browser, name: str) -> Any:
    data = {"username": name, "password": PASSWORDS[name], "next": "/"}
    return browser.form("/login/", data, page="/login/")


def _cookie_only_sign_out(request: HttpRequest) -> HttpResponse:
    """The bug: the browser forgets its cookie; the session (and its grant) live on."""
    response = HttpResponseRedirect("/login/", status=303)
    response.delete_cookie("sessionid")
    return response


@pytest.fixture
def example(acme: Site) -> Iterator[Site]:  # noqa: F811
    from django.conf import settings
    from django.test import override_settings
    from django.urls import clear_url_caches
    from django.utils.module_loading import import_module

    urlconf = types.ModuleType("acme_with_a_cookie_only_sign_out")
    project = import_module(settings.ROOT_URLCONF)
    urlconf.urlpatterns = [*project.urlpatterns, path("sign-out/", _cookie_only_sign_out)]  # type: ignore[attr-defined]
    get_stepup().store.patch_tenant("acme", {}, {"sensitive_actions_reauth": True})
    with override_settings(ROOT_URLCONF=urlconf):
        clear_url_caches()
        try:
            yield acme
        finally:
            clear_url_caches()


def _contract(site: Site, sign_out: str) -> None:
    def sign_in(name: str) -> Browser:
        browser = site.browser()
        _sign_in(browser, name)
        browser.name = name  # type: ignore[attr-defined]
        return browser

    def reauthenticate(browser: Browser) -> None:
        refused = browser.get("/api-key/")
        browser.reauth(refused["Location"], PASSWORDS[browser.name])  # type: ignore[attr-defined]

    check_grant_isolation(
        sign_in=sign_in,
        reauthenticate=reauthenticate,
        allowed=lambda b: b.get("/api-key/").status_code == 200,
        users=("alice", "bob"),
        sign_in_again=_sign_in,
        sign_out=lambda b: b.form(sign_out, {}, page="/login/"),
    )


def test_djangos_logout_passes(example: Site) -> None:
    _contract(example, "/logout/")


def test_a_sign_out_that_only_drops_the_cookie_is_caught(example: Site) -> None:
    with pytest.raises(AssertionError, match="a copy of the session taken before the sign-out"):
        _contract(example, "/sign-out/")
