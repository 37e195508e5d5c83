"""The coverage check reads a class-based view one handler at a time: a ``get`` guarded
with ``method_decorator`` never makes an unguarded ``post`` look guarded, while a guard
on ``dispatch`` (or on ``as_view()``, or ``reauth_action``) covers every handler."""

from __future__ import annotations

import types
from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.utils.decorators import method_decorator
from django.views import View
from django.views.generic import TemplateView

from integrations.django.django_support import Site
from stepup.integrations.django import ReauthRequiredMixin, reauth_required
from stepup.integrations.django.services import get_stepup
from stepup.testing.coverage import RouteInfo, assert_guarded, django_routes


def _urlconf(*patterns: Any) -> types.ModuleType:
    urlconf = types.ModuleType("coverage_class_views")
    urlconf.urlpatterns = list(patterns)  # type: ignore[attr-defined]
    return urlconf


def _views() -> dict[str, Any]:
    @method_decorator(reauth_required("api_key.read"), name="get")
    class OnlyGet(View):
        def get(self, request: HttpRequest) -> HttpResponse:
            return HttpResponse("key")

        def post(self, request: HttpRequest) -> HttpResponse:  # forgot the guard
            return HttpResponse("regenerated")

    @method_decorator(reauth_required("api_key.read"), name="get")
    @method_decorator(reauth_required("api_key.regenerate"), name="post")
    class EachGuarded(View):
        def get(self, request: HttpRequest) -> HttpResponse:
            return HttpResponse("key")

        def post(self, request: HttpRequest) -> HttpResponse:
            return HttpResponse("regenerated")

    @method_decorator(reauth_required("api_key.regenerate"), name="dispatch")
    class OnDispatch(View):
        def get(self, request: HttpRequest) -> HttpResponse:
            return HttpResponse("key")

        def delete(self, request: HttpRequest) -> HttpResponse:
            return HttpResponse("deleted")

    class Page(TemplateView):
        template_name = "page.html"

        @method_decorator(reauth_required("api_key.read"))
        def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            return HttpResponse("page")

        def post(self, request: HttpRequest) -> HttpResponse:  # forgot the guard
            return HttpResponse("posted")

    class Mixin(ReauthRequiredMixin, View):
        reauth_action = "api_key.regenerate"

        def get(self, request: HttpRequest) -> HttpResponse:
            return HttpResponse("key")

        def put(self, request: HttpRequest) -> HttpResponse:
            return HttpResponse("put")

    return {
        "only-get": OnlyGet.as_view(),
        "each": EachGuarded.as_view(),
        "dispatch": OnDispatch.as_view(),
        "page": Page.as_view(),
        "mixin": Mixin.as_view(),
        "wrapped": reauth_required("api_key.regenerate")(OnlyGet.as_view()),
    }


def _routes(name: str) -> list[RouteInfo]:
    return django_routes(_urlconf(path(f"{name}/", _views()[name])))


def test_each_handler_is_its_own_route(site: Site) -> None:
    found = {
        name: {r.label(): r.actions for r in _routes(name)}
        for name in ("only-get", "dispatch", "page", "mixin", "wrapped")
    }
    assert found["only-get"] == {"GET /only-get/": ("api_key.read",), "POST /only-get/": ()}
    # Class-wide guards cover every handler.
    assert found["dispatch"] == {
        "GET /dispatch/": ("api_key.regenerate",),
        "DELETE /dispatch/": ("api_key.regenerate",),
    }
    assert found["mixin"] == {
        "GET /mixin/": ("api_key.regenerate",),
        "PUT /mixin/": ("api_key.regenerate",),
    }
    assert found["wrapped"] == {
        "GET /wrapped/": ("api_key.regenerate", "api_key.read"),
        "POST /wrapped/": ("api_key.regenerate",),
    }
    assert found["page"] == {"GET /page/": ("api_key.read",), "POST /page/": ()}


@pytest.mark.parametrize("name", ["only-get", "page"])
def test_strict_mode_fails_for_the_unguarded_handler(site: Site, name: str) -> None:
    policy = get_stepup().policy
    with pytest.raises(AssertionError) as caught:
        assert_guarded(_routes(name), policy, sensitive={f"GET /{name}/": "api_key.read"})
    assert f"1 problem(s)\n  - POST /{name}/: can change something but has no stepup guard" in str(
        caught.value
    )


def test_strict_mode_passes_when_each_handler_is_guarded(site: Site) -> None:
    policy = get_stepup().policy
    each = {"GET /each/": "api_key.read", "POST /each/": "api_key.regenerate"}
    assert len(assert_guarded(_routes("each"), policy, sensitive=each)) == 2
    assert_guarded(_routes("dispatch"), policy, sensitive={"/dispatch/": "api_key.regenerate"})
    assert_guarded(_routes("mixin"), policy, sensitive={"/mixin/": "api_key.regenerate"})
    assert_guarded(_routes("wrapped"), policy, sensitive={"POST /wrapped/": "api_key.regenerate"})


def test_what_the_check_says_is_what_runs(site: Site) -> None:
    """The unguarded ``post`` the check names runs without re-authentication; a guard on
    ``dispatch`` refuses every method."""
    from django.conf import settings
    from django.test import override_settings
    from django.urls import clear_url_caches
    from django.utils.module_loading import import_module
    from django.views.decorators.csrf import csrf_exempt

    from integrations.django.django_support import set_flag

    views = _views()
    project = import_module(settings.ROOT_URLCONF)
    urlconf = _urlconf(
        *project.urlpatterns,
        path("only-get/", csrf_exempt(views["only-get"])),
        path("dispatch/", csrf_exempt(views["dispatch"])),
    )
    with override_settings(ROOT_URLCONF=urlconf):
        clear_url_caches()
        try:
            alice = site.browser("alice")
            assert set_flag(alice).status_code == 200
            assert alice.get("/only-get/")["Location"].startswith("/stepup/reauth/")
            assert alice.post("/only-get/").content == b"regenerated"
            assert alice.get("/dispatch/")["Location"].startswith("/stepup/reauth/")
            assert alice.client.delete("/dispatch/")["Location"].startswith("/stepup/reauth/")
        finally:
            clear_url_caches()
