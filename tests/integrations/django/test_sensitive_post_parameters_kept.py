"""A form whose view marks fields with Django's ``@sensitive_post_parameters`` is
secret, as one with a password field is: the guard does not keep it for after the
re-authentication (it used to be kept in the store, those fields in clear: t6)."""

from __future__ import annotations

import types
from collections.abc import Iterator
from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import override_settings
from django.urls import clear_url_caches, path
from django.utils.module_loading import import_module
from django.views import View
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from integrations.django.django_support import Browser, Site, set_flag
from stepup.integrations.django import ReauthRequiredMixin, reauth_required

ACTION = "api_key.regenerate"


@sensitive_post_parameters("national_id", "salary")
@require_POST
@reauth_required(ACTION)
def named(request: HttpRequest) -> HttpResponse:
    return HttpResponse("saved")


@sensitive_post_parameters()
@require_POST
@reauth_required(ACTION)
def every_field(request: HttpRequest) -> HttpResponse:
    return HttpResponse("saved")


@require_POST
@reauth_required(ACTION)
def unmarked(request: HttpRequest) -> HttpResponse:
    return HttpResponse("saved")


def requires(request: HttpRequest) -> HttpResponse:
    request.stepup.require(ACTION)
    return HttpResponse("saved")


class Mixin(ReauthRequiredMixin, View):
    reauth_action = ACTION

    def post(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("saved")


VIEWS: dict[str, Any] = {
    "named": named,
    "every-field": every_field,
    "unmarked": unmarked,
    "requires": sensitive_post_parameters("national_id")(requires),
    "mixin": sensitive_post_parameters("national_id")(Mixin.as_view()),
}


@pytest.fixture
def alice(site: Site) -> Iterator[Browser]:
    from django.conf import settings

    urlconf = types.ModuleType("sensitive_post_parameters_kept")
    urlconf.urlpatterns = [  # type: ignore[attr-defined]
        *import_module(settings.ROOT_URLCONF).urlpatterns,
        *(path(f"s/{name}/", view) for name, view in VIEWS.items()),
    ]
    with override_settings(ROOT_URLCONF=urlconf):
        clear_url_caches()
        try:
            browser = site.browser("alice")
            assert set_flag(browser).status_code == 200
            yield browser
        finally:
            clear_url_caches()


def _kept(browser: Browser, url: str, data: dict[str, str]) -> bool:
    refused = browser.form(url, data)
    assert refused.status_code == 303
    assert refused["Location"].startswith("/stepup/reauth/")
    return "resume=" in refused["Location"]


@pytest.mark.parametrize("name", ["named", "requires", "mixin"])
def test_a_form_with_a_marked_field_is_not_kept(alice: Browser, name: str) -> None:
    assert not _kept(alice, f"/s/{name}/", {"note": "hi", "national_id": "123-45-6789"})


def test_any_of_the_marked_fields_is_enough(alice: Browser) -> None:
    assert not _kept(alice, "/s/named/", {"salary": "99999"})


def test_a_form_without_the_marked_fields_is_kept(alice: Browser) -> None:
    assert _kept(alice, "/s/named/", {"note": "hi"})
    assert _kept(alice, "/s/unmarked/", {"national_id": "123-45-6789"})


def test_every_field_marked_keeps_no_form(alice: Browser) -> None:
    assert not _kept(alice, "/s/every-field/", {"note": "hi"})
