"""Django under a sub-path (``FORCE_SCRIPT_NAME = "/sub"``, or a server's
``SCRIPT_NAME``): where a missing or unsafe return location falls back to is the
project's root, the script prefix, not ``/`` (outside the deployment): the re-auth
page's default ``next`` and its Cancel link, and ``begin_sign_in`` without ``next``."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import override_settings
from django.urls import get_script_prefix, path, set_script_prefix
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from integrations.django.django_support import Browser, Site, running_site, user_id
from integrations.django.testapp.urls import urlpatterns as testapp_urls
from stepup.adapters.storage.memory import MemoryStore
from stepup.testing import SettableClock

_CANCEL = re.compile(r'<a class="stepup-cancel" href="([^"]*)"')
_NEXT = re.compile(r'<input type="hidden" name="next" value="([^"]*)"')


@csrf_exempt
@require_POST
def _sign_in_without_next(request: HttpRequest) -> HttpResponse:
    """A login view that gives ``begin_sign_in`` no ``next`` (bob has 2FA on)."""
    waiting = request.stepup.begin_sign_in(request.POST["user_id"])
    assert waiting is not None
    return waiting


urlpatterns = [path("login/default-next/", _sign_in_without_next), *testapp_urls]


@pytest.fixture
def sub_site(clock: SettableClock) -> Iterator[Site]:
    """``request.path`` under ``/sub`` (FORCE_SCRIPT_NAME), and the script prefix that
    Django's handler sets for each request (its test client does not)."""
    before = get_script_prefix()
    set_script_prefix("/sub/")
    try:
        with (
            override_settings(FORCE_SCRIPT_NAME="/sub", ROOT_URLCONF=__name__),
            running_site(MemoryStore(), clock) as site,
        ):
            yield site
    finally:
        set_script_prefix(before)


def _unprefixed(location: str) -> str:
    """What the test client is asked for: the path below the script prefix."""
    assert location.startswith("/sub/"), location
    return location.removeprefix("/sub")


def test_the_reauth_page_without_next(sub_site: Site) -> None:
    alice = sub_site.browser("alice")
    page = alice.get("/stepup/reauth/?action=api_key.read")
    assert page.status_code == 200
    body = page.content.decode()
    assert set(_CANCEL.findall(body)) == {"/sub/"}
    assert set(_NEXT.findall(body)) == {"/sub/"}
    done = alice.reauth("/stepup/reauth/?action=api_key.read", "correct horse")
    assert (done.status_code, done["Location"]) == (303, "/sub/")


def test_an_unsafe_next_and_a_foreign_referer(sub_site: Site) -> None:
    alice = sub_site.browser("alice")
    page = alice.get(
        "/stepup/reauth/?action=api_key.read&next=//evil.example/",
        HTTP_REFERER="https://evil.example/page",
    )
    body = page.content.decode()
    assert set(_CANCEL.findall(body)) == {"/sub/"}
    assert set(_NEXT.findall(body)) == {"/sub/"}


def test_a_next_under_the_prefix_is_kept(sub_site: Site) -> None:
    alice = sub_site.browser("alice")
    page = alice.get("/stepup/reauth/?action=api_key.read&next=/sub/api-key/")
    assert set(_NEXT.findall(page.content.decode())) == {"/sub/api-key/"}


def test_begin_sign_in_without_next(sub_site: Site) -> None:
    bob = sub_site.browser("bob")
    secret, _ = bob.enrol()
    bob.logout()
    fresh = Browser(sub_site)
    waiting = fresh.post("/login/default-next/", {"user_id": user_id("bob")})
    assert waiting.status_code == 303
    verify = _unprefixed(waiting["Location"])
    sub_site.clock.advance(30)
    done = fresh.form(verify, {"code": sub_site.totp_code(secret)}, page=verify)
    assert (done.status_code, done["Location"]) == (303, "/sub/")
