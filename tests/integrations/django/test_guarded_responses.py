"""What a guard lets through is this person's, now: every response a guarded view
answers carries ``Cache-Control: private, no-store``, so Django's caches (``cache_page``,
the site-wide cache middleware) never store it and never serve it after the grant is
revoked, or to someone else (ASVS 5.0 14.3.2). And ``ReauthRequiredMixin`` after
``View`` in the bases, which would never run, is refused when the class is defined."""

from __future__ import annotations

import types
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.test import override_settings
from django.urls import clear_url_caches, path
from django.utils.module_loading import import_module
from django.views import View
from django.views.decorators.cache import cache_page
from django.views.generic import TemplateView

from integrations.django.django_support import Browser, Site, fresh_grant, user_id
from stepup.integrations.django import ReauthRequiredMixin, reauth_required
from stepup.integrations.django.services import get_stepup

UNCACHEABLE = "private, no-store"
ACTION = "api_key.read"


def _secret(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"the key of {request.user.get_username()}")


@cache_page(60)
@login_required
@reauth_required(ACTION)
def cached_above(request: HttpRequest) -> HttpResponse:
    return _secret(request)


@reauth_required(ACTION)
def public_by_the_app(request: HttpRequest) -> HttpResponse:
    response = _secret(request)
    response["Cache-Control"] = "public, max-age=600, no-transform"
    return response


@reauth_required(ACTION)
async def decorated_async(request: HttpRequest) -> HttpResponse:
    return HttpResponse("the key")


class Mixin(ReauthRequiredMixin, View):
    reauth_action = ACTION

    def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("the key")


class MixinAsync(ReauthRequiredMixin, View):
    reauth_action = ACTION

    async def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("the key")


def requires(request: HttpRequest) -> HttpResponse:
    request.stepup.require(ACTION)
    return HttpResponse("the key")


async def arequires(request: HttpRequest) -> HttpResponse:
    await request.stepup.arequire(ACTION)
    return HttpResponse("the key")


def guards(request: HttpRequest) -> HttpResponse:
    refusal = request.stepup.guard(ACTION)
    return refusal or HttpResponse("the key")


async def aguards(request: HttpRequest) -> HttpResponse:
    refusal = await request.stepup.aguard(ACTION)
    return refusal or HttpResponse("the key")


def unguarded(request: HttpRequest) -> HttpResponse:
    return HttpResponse("public")


VIEWS: dict[str, Any] = {
    "cached-above": cached_above,
    "public-by-the-app": public_by_the_app,
    "decorated-async": decorated_async,
    "mixin": Mixin.as_view(),
    "mixin-async": MixinAsync.as_view(),
    "requires": requires,
    "arequires": arequires,
    "guards": guards,
    "aguards": aguards,
    "unguarded": unguarded,
}
GUARDED = [name for name in VIEWS if name not in ("unguarded", "public-by-the-app")]


@pytest.fixture
def project(site: Site) -> Iterator[Site]:
    from django.conf import settings
    from django.core.cache import cache

    urlconf = types.ModuleType("guarded_responses")
    urlconf.urlpatterns = [  # type: ignore[attr-defined]
        *import_module(settings.ROOT_URLCONF).urlpatterns,
        *(path(f"g/{name}/", view) for name, view in VIEWS.items()),
    ]
    get_stepup().store.patch_tenant("acme", {}, {"sensitive_actions_reauth": True})
    cache.clear()
    with override_settings(ROOT_URLCONF=urlconf):
        clear_url_caches()
        try:
            yield site
        finally:
            clear_url_caches()
            cache.clear()


def _granted(site: Site, name: str) -> Browser:
    browser = site.browser(name)
    fresh_grant(browser)
    return browser


@pytest.mark.parametrize("name", GUARDED)
def test_what_a_guard_lets_through_no_cache_keeps(project: Site, name: str) -> None:
    alice = _granted(project, "alice")
    answer = alice.get(f"/g/{name}/")
    assert answer.status_code == 200
    assert answer["Cache-Control"] == UNCACHEABLE


def test_the_apps_other_directives_stay_and_public_goes(project: Site) -> None:
    answer = _granted(project, "alice").get("/g/public-by-the-app/")
    assert answer["Cache-Control"] == "private, no-store, no-transform"


def test_an_unguarded_view_is_left_as_it_is(project: Site) -> None:
    assert "Cache-Control" not in project.browser("alice").get("/g/unguarded/")


def test_cache_page_above_the_guard_never_serves_a_revoked_or_anothers_page(
    project: Site,
) -> None:
    """t1: the page used to be stored by ``cache_page`` (keyed on the URL alone) and
    served after the grant was revoked, to bob, and to nobody signed in."""
    alice = _granted(project, "alice")
    assert alice.get("/g/cached-above/").content == b"the key of alice"
    bob = project.browser("bob")
    assert bob.get("/g/cached-above/").status_code == 303
    assert project.browser().get("/g/cached-above/").status_code == 302  # login_required
    get_stepup().reauth.password_changed(user_id("alice"))
    assert alice.get("/g/cached-above/").status_code == 303


@pytest.mark.parametrize("name", ["mixin", "decorated-async", "requires", "aguards"])
def test_the_site_wide_cache_never_serves_a_revoked_grant(project: Site, name: str) -> None:
    """t5: UpdateCacheMiddleware/FetchFromCacheMiddleware (keyed by ``Vary: Cookie``)
    used to serve alice's guarded page again after her grant was revoked."""
    from django.conf import settings

    middleware = [
        "django.middleware.cache.UpdateCacheMiddleware",
        *settings.MIDDLEWARE,
        "django.middleware.cache.FetchFromCacheMiddleware",
    ]
    with override_settings(MIDDLEWARE=middleware):
        alice = _granted(project, "alice")
        for _ in range(2):
            assert alice.get(f"/g/{name}/").status_code == 200
        get_stepup().reauth.password_changed(user_id("alice"))
        again = alice.get(f"/g/{name}/")
        assert again.status_code == 303
        assert again["Location"].startswith("/stepup/reauth/")
        # What no guard touched is still the cache's to keep.
        alice.get("/g/unguarded/")
        assert "max-age" in alice.get("/g/unguarded/")["Cache-Control"]


# the mixin's place in the bases ------------------------------------------------------


@pytest.mark.parametrize("view", [View, TemplateView])
def test_the_mixin_after_view_is_refused_when_the_class_is_defined(view: type) -> None:
    with pytest.raises(ImproperlyConfigured, match=r"put the mixin first") as refused:

        class Unguarded(view, ReauthRequiredMixin):  # type: ignore[misc, valid-type]
            reauth_action = ACTION

    assert "class Unguarded(ReauthRequiredMixin, ...)" in str(refused.value)


def test_a_subclass_of_a_misordered_base_is_refused_too() -> None:
    with pytest.raises(ImproperlyConfigured, match=r"ReauthRequiredMixin comes after View"):

        class Base(View, ReauthRequiredMixin):  # type: ignore[misc]
            pass


def test_the_mixin_first_and_mixins_between_are_accepted() -> None:
    from django.contrib.auth.mixins import LoginRequiredMixin

    class First(ReauthRequiredMixin, TemplateView):
        reauth_action = ACTION

    class LoginFirst(LoginRequiredMixin, ReauthRequiredMixin, View):
        reauth_action = ACTION

    class OwnMixin(ReauthRequiredMixin):
        pass

    class Later(OwnMixin, View):
        reauth_action = ACTION

    assert [issubclass(view, ReauthRequiredMixin) for view in (First, LoginFirst, Later)] == [
        True,
        True,
        True,
    ]
