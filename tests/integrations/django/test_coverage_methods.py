"""What the coverage check says of Django views: a method of ``http_method_names``
beyond the usual ones (``purge``) is a route strict mode wants guarded or public; a
``"GET /path/"`` key never speaks for a function view, which answers every method; a
``dispatch`` that ``method_decorator`` wrapped around ``ReauthRequiredMixin.dispatch``
(``csrf_exempt``) keeps ``reauth_action`` counted, while a ``dispatch`` of the view's own
stays unproven, wrapped or not; and a URLconf is recognised as one (a list of patterns
too), anything else refused saying what to pass."""

from __future__ import annotations

import types
from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from integrations.django.django_support import Site
from stepup.integrations.django import ReauthRequiredMixin, reauth_required
from stepup.integrations.django.services import get_stepup
from stepup.testing.coverage import assert_guarded, django_routes, routes_of

UNGUARDED = "can change something but has no stepup guard"


def _urlconf(*patterns: Any) -> types.ModuleType:
    urlconf = types.ModuleType("coverage_methods")
    urlconf.urlpatterns = list(patterns)  # type: ignore[attr-defined]
    return urlconf


def delete_key(request: HttpRequest) -> HttpResponse:  # answers POST too: deletes
    return HttpResponse("deleted" if request.method == "POST" else "form")


@method_decorator(reauth_required("api_key.read"), name="get")
class Purge(View):
    http_method_names = ["get", "purge"]

    def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("key")

    def purge(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("purged")


def test_strict_mode_names_a_purge_handler(site: Site) -> None:
    policy = get_stepup().policy
    urlconf = _urlconf(path("purge/", Purge.as_view()))
    with pytest.raises(AssertionError) as caught:
        assert_guarded(urlconf, policy, sensitive={"GET /purge/": "api_key.read"})
    assert str(caught.value) == (
        f"stepup guard coverage: 1 problem(s)\n  - PURGE /purge/: {UNGUARDED}: guard it, or"
        " list it in `public` if it needs none"
    )
    assert_guarded(
        urlconf, policy, sensitive={"GET /purge/": "api_key.read"}, public={"PURGE /purge/"}
    )


def test_a_method_key_never_speaks_for_a_function_view(site: Site) -> None:
    policy = get_stepup().policy
    urlconf = _urlconf(path("func/", delete_key))
    with pytest.raises(AssertionError) as caught:
        assert_guarded(urlconf, policy, public={"GET /func/"})
    said = str(caught.value)
    assert f"ANY /func/: {UNGUARDED}" in said
    assert "GET /func/: is declared public but no route matches it (ANY /func/ answers" in said
    assert "declare it as '/func/'" in said
    with pytest.raises(AssertionError, match="GET /func/: is declared sensitive but no route"):
        assert_guarded(urlconf, policy, sensitive={"GET /func/": "api_key.read"})
    assert_guarded(urlconf, policy, public={"/func/"})  # every method: said so


def test_an_own_options_handler_is_a_route_while_djangos_is_not(site: Site) -> None:
    @method_decorator(reauth_required("api_key.read"), name="get")
    class Key(View):
        def get(self, request: HttpRequest) -> HttpResponse:
            return HttpResponse("key")

    class Answers(Key):
        def options(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            return HttpResponse("key, too")

    routes = django_routes(_urlconf(path("key/", Key.as_view()), path("both/", Answers.as_view())))
    assert sorted(r.label() for r in routes) == ["GET /both/", "GET /key/", "OPTIONS /both/"]


def _views() -> dict[str, type]:
    @method_decorator(csrf_exempt, name="dispatch")
    class Exempt(ReauthRequiredMixin, View):
        reauth_action = "api_key.read"

        def get(self, request: HttpRequest) -> HttpResponse:
            return HttpResponse("key")

    @method_decorator(csrf_exempt, name="dispatch")
    class OwnWrapped(ReauthRequiredMixin, View):
        reauth_action = "api_key.read"

        def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            return self.get(request)  # never calls super(): the mixin never runs

        def get(self, request: HttpRequest) -> HttpResponse:
            return HttpResponse("key")

    class MixinFirst(ReauthRequiredMixin, View):
        reauth_action = "api_key.read"

        def get(self, request: HttpRequest) -> HttpResponse:
            return HttpResponse("key")

    return {"exempt": Exempt, "own-wrapped": OwnWrapped, "mixin-first": MixinFirst}


def test_a_dispatch_wrapped_around_the_mixins_keeps_reauth_action(site: Site) -> None:
    views = _views()
    urlconf = _urlconf(path("exempt/", views["exempt"].as_view()))
    [route] = assert_guarded(urlconf, get_stepup().policy, sensitive={"/exempt/": "api_key.read"})
    assert route.actions == ("api_key.read",)
    assert route.problems == ()


def test_a_dispatch_of_the_views_own_is_unproven_even_wrapped(site: Site) -> None:
    views = _views()
    urlconf = _urlconf(path("own/", views["own-wrapped"].as_view()))
    with pytest.raises(AssertionError) as caught:
        assert_guarded(urlconf, get_stepup().policy, sensitive={"/own/": "api_key.read"})
    assert "OwnWrapped.dispatch comes before ReauthRequiredMixin.dispatch" in str(caught.value)


def test_what_the_check_passes_refuses_without_reauthentication(site: Site) -> None:
    """The csrf-exempt view the check passes refuses without a re-authentication, as the
    mixin-first one does; the one whose own dispatch skips the mixin answers."""
    from django.conf import settings
    from django.test import override_settings
    from django.urls import clear_url_caches
    from django.utils.module_loading import import_module

    from integrations.django.django_support import set_flag

    views = _views()
    project = import_module(settings.ROOT_URLCONF)
    urlconf = _urlconf(
        *project.urlpatterns,
        path("exempt/", views["exempt"].as_view()),
        path("own/", views["own-wrapped"].as_view()),
        path("guarded/", views["mixin-first"].as_view()),
    )
    with override_settings(ROOT_URLCONF=urlconf):
        clear_url_caches()
        try:
            alice = site.browser("alice")
            assert set_flag(alice).status_code == 200
            assert alice.get("/guarded/")["Location"].startswith("/stepup/reauth/")
            assert alice.get("/exempt/")["Location"].startswith("/stepup/reauth/")
            answered = alice.get("/own/")
            assert (answered.status_code, answered.content) == (200, b"key")
        finally:
            clear_url_caches()


def test_a_list_of_patterns_is_a_urlconf_and_anything_else_is_refused(site: Site) -> None:
    patterns = [path("purge/", Purge.as_view())]
    assert [r.label() for r in routes_of(patterns)] == ["GET /purge/", "PURGE /purge/"]
    with pytest.raises(TypeError, match=r"cannot list the routes of builtins\.object"):
        routes_of(object())
