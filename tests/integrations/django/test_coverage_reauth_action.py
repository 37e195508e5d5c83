"""A Django view's ``reauth_action`` guards only when ``ReauthRequiredMixin.dispatch``
runs: the coverage check fails a class that sets it without the mixin, or under a
``dispatch`` of its own it cannot prove calls ``super()``, and each of those routes
answers without re-authentication, as the check says. (The mixin after ``View`` is
refused when the class is defined: test_guarded_responses.py.)"""

from __future__ import annotations

import types
from typing import Any

import pytest
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views import View

from integrations.django.django_support import Site
from stepup.integrations.django import ReauthRequiredMixin
from stepup.integrations.django.services import get_stepup
from stepup.integrations.marks import guarded_by
from stepup.testing.coverage import RouteInfo, assert_guarded, django_routes

NEVER_RUNS = (
    "sets reauth_action but ReauthRequiredMixin.dispatch never runs (put the mixin first in"
    " the bases)"
)


def _urlconf(*patterns: Any) -> types.ModuleType:
    urlconf = types.ModuleType("coverage_reauth_action")
    urlconf.urlpatterns = list(patterns)  # type: ignore[attr-defined]
    return urlconf


def _views() -> dict[str, type]:
    class NoMixin(View):
        reauth_action = "api_key.read"

        def get(self, request: HttpRequest) -> HttpResponse:
            return HttpResponse("key")

    class OwnDispatch(ReauthRequiredMixin, View):
        reauth_action = "api_key.read"

        def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            return self.get(request)  # never calls super(): the mixin never runs

        def get(self, request: HttpRequest) -> HttpResponse:
            return HttpResponse("key")

    class VouchedDispatch(ReauthRequiredMixin, View):
        reauth_action = "api_key.read"

        @guarded_by("api_key.read")  # the app says it calls super()
        def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            return super().dispatch(request, *args, **kwargs)

        def get(self, request: HttpRequest) -> HttpResponse:
            return HttpResponse("key")

    class SignedInFirst(LoginRequiredMixin, ReauthRequiredMixin, View):
        reauth_action = "api_key.read"

        def get(self, request: HttpRequest) -> HttpResponse:
            return HttpResponse("key")

    class MixinFirst(ReauthRequiredMixin, View):
        reauth_action = "api_key.read"

        def get(self, request: HttpRequest) -> HttpResponse:
            return HttpResponse("key")

    return {
        "no-mixin": NoMixin,
        "own-dispatch": OwnDispatch,
        "vouched": VouchedDispatch,
        "signed-in-first": SignedInFirst,
        "mixin-first": MixinFirst,
    }


def _routes(name: str) -> list[RouteInfo]:
    return django_routes(_urlconf(path(f"{name}/", _views()[name].as_view())))


def _problems(name: str) -> str:
    with pytest.raises(AssertionError) as caught:
        assert_guarded(_routes(name), get_stepup().policy, sensitive={f"/{name}/": "api_key.read"})
    return str(caught.value)


@pytest.mark.parametrize("name", ["no-mixin"])
def test_a_reauth_action_whose_mixin_never_runs_fails(site: Site, name: str) -> None:
    assert _problems(name) == (
        f"stepup guard coverage: 1 problem(s)\n  - GET /{name}/: {NEVER_RUNS}"
    )
    assert [r.actions for r in _routes(name)] == [()]


def test_a_dispatch_of_the_views_own_before_the_mixin_is_unproven(site: Site) -> None:
    said = _problems("own-dispatch")
    assert "1 problem(s)" in said
    assert "OwnDispatch.dispatch comes before ReauthRequiredMixin.dispatch" in said
    assert "cannot prove it calls super().dispatch(): unproven" in said


def test_a_reauth_action_the_mixin_enforces_passes(site: Site) -> None:
    policy = get_stepup().policy
    for name in ("mixin-first", "signed-in-first", "vouched"):
        [route] = assert_guarded(_routes(name), policy, sensitive={f"/{name}/": "api_key.read"})
        assert route.actions == ("api_key.read",)
        assert route.problems == ()


def test_the_problem_is_named_even_when_nothing_declares_the_route(site: Site) -> None:
    with pytest.raises(AssertionError, match="never runs"):
        assert_guarded(_routes("no-mixin"), get_stepup().policy, strict=False)


@pytest.mark.parametrize("name", ["no-mixin", "own-dispatch"])
def test_what_the_check_fails_answers_without_reauthentication(site: Site, name: str) -> None:
    """The flag on and no re-authentication: the mixin-first view refuses, while each
    view the check fails answers the page."""
    from django.conf import settings
    from django.test import override_settings
    from django.urls import clear_url_caches
    from django.utils.module_loading import import_module

    from integrations.django.django_support import set_flag

    views = _views()
    project = import_module(settings.ROOT_URLCONF)
    urlconf = _urlconf(
        *project.urlpatterns,
        path("broken/", views[name].as_view()),
        path("guarded/", views["mixin-first"].as_view()),
    )
    with override_settings(ROOT_URLCONF=urlconf):
        clear_url_caches()
        try:
            alice = site.browser("alice")
            assert set_flag(alice).status_code == 200
            assert alice.get("/guarded/")["Location"].startswith("/stepup/reauth/")
            answered = alice.get("/broken/")
            assert (answered.status_code, answered.content) == (200, b"key")
        finally:
            clear_url_caches()
