"""``ReauthRequiredMixin`` guards what reaches the class's own handlers, and only that:
Django's automatic OPTIONS answer and its 405 for a method the class does not handle
run no code of the app, so they are answered as Flask's and Starlette's routing
answers them (200 with ``Allow``, 405), never with a re-authentication. HEAD on a class
with ``get`` alone is its ``get`` and stays guarded; an ``options`` or
``http_method_not_allowed`` the class defines is its own code and is guarded."""

from __future__ import annotations

import types
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.test import override_settings
from django.urls import clear_url_caches, path
from django.utils.module_loading import import_module
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from integrations.django.django_support import Browser, Site, fresh_grant, set_flag
from stepup.integrations.django import ReauthRequiredMixin


class GetOnly(ReauthRequiredMixin, View):
    reauth_action = "billing.export"

    def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("billing.csv")


class AsyncGetOnly(ReauthRequiredMixin, View):
    reauth_action = "billing.export"

    async def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("billing.csv")


class OwnOptions(ReauthRequiredMixin, View):
    """An ``options`` of the app's own: guarded like any handler."""

    reauth_action = "billing.export"

    def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("billing.csv")

    def options(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return HttpResponse("the export's options")


class OwnNotAllowed(ReauthRequiredMixin, View):
    """A 405 of the app's own: its code, so guarded."""

    reauth_action = "billing.export"

    def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("billing.csv")

    def http_method_not_allowed(
        self, request: HttpRequest, *args: Any, **kwargs: Any
    ) -> HttpResponseBase:
        return HttpResponse("the app's own 405", status=405)


class ReadOnly(ReauthRequiredMixin, View):
    """A ``post`` the class's ``http_method_names`` leaves out: Django never calls it."""

    reauth_action = "billing.export"
    http_method_names = ["get", "head", "options"]

    def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("billing.csv")

    def post(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("posted")


class AjaxResponseMixin:
    """django-braces' dispatch: an AJAX request goes to ``<method>_ajax``."""

    http_method_names: list[str]

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        method = (request.method or "").lower()
        ajax = request.headers.get("x-requested-with") == "XMLHttpRequest"
        if ajax and method in self.http_method_names:
            handler = getattr(self, f"{method}_ajax", None)
            if handler is not None:
                return handler(request, *args, **kwargs)
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]


class MethodOverride:
    """A method-override mixin: ``X-HTTP-Method-Override`` names the method."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        if override := request.headers.get("X-HTTP-Method-Override"):
            request.method = override.upper()
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]


class AjaxExport(ReauthRequiredMixin, AjaxResponseMixin, View):
    reauth_action = "billing.export"

    def post_ajax(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("exported")


class OverriddenDelete(ReauthRequiredMixin, MethodOverride, View):
    reauth_action = "billing.export"

    def delete(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("deleted")


class LoginFirst(ReauthRequiredMixin, LoginRequiredMixin, View):
    """Django's access mixin between: it picks no handler, so OPTIONS and 405 stay
    Django's answers."""

    reauth_action = "billing.export"

    def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("billing.csv")


VIEWS = {
    "login-first": LoginFirst,
    "ajax-export": AjaxExport,
    "overridden-delete": OverriddenDelete,
    "get-only": GetOnly,
    "async-get-only": AsyncGetOnly,
    "own-options": OwnOptions,
    "own-not-allowed": OwnNotAllowed,
    "read-only": ReadOnly,
}


@pytest.fixture
def alice(site: Site) -> Iterator[Browser]:
    """alice, signed in, with the flag on, on a project that also serves ``VIEWS``
    (CSRF-exempt: a POST is refused for its method, not for a missing token)."""
    from django.conf import settings

    project = import_module(settings.ROOT_URLCONF)
    urlconf = types.ModuleType("review3_mixin_methods")
    urlconf.urlpatterns = [  # type: ignore[attr-defined]
        *project.urlpatterns,
        *(path(f"{name}/", csrf_exempt(view.as_view())) for name, view in VIEWS.items()),
    ]
    with override_settings(ROOT_URLCONF=urlconf):
        clear_url_caches()
        try:
            browser = site.browser("alice")
            assert set_flag(browser).status_code == 200
            yield browser
        finally:
            clear_url_caches()


def _asks_to_reauthenticate(response: Any) -> bool:
    if response.status_code == 303:
        return str(response["Location"]).startswith("/stepup/reauth/")
    if response.status_code != 401:
        return False
    return not response.content or response.json()["error"] == "reauth_required"  # HEAD: none


@pytest.mark.parametrize("name", ["get-only", "async-get-only"])
def test_options_is_djangos_answer_not_a_reauthentication(alice: Browser, name: str) -> None:
    for accept in ("text/html", "application/json"):
        answer = alice.client.options(f"/{name}/", HTTP_ACCEPT=accept)
        assert answer.status_code == 200, answer.content
        assert answer["Allow"] == "GET, HEAD, OPTIONS"
        assert answer.content == b""


@pytest.mark.parametrize("name", ["get-only", "async-get-only"])
@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "POST", "PROPFIND"])
def test_a_method_the_class_lacks_is_405(alice: Browser, name: str, method: str) -> None:
    for accept in ("text/html", "application/json"):
        answer = alice.client.generic(method, f"/{name}/", HTTP_ACCEPT=accept)
        assert answer.status_code == 405, (method, accept, answer.status_code)
        assert answer["Allow"] == "GET, HEAD, OPTIONS"


def test_a_browser_form_post_is_not_kept_to_be_replayed_into_a_405(alice: Browser) -> None:
    """The reviewer's case: the POST used to go to the re-auth page, kept for after it."""
    answer = alice.post("/get-only/", {"amount": "10"})
    assert answer.status_code == 405
    assert "Location" not in answer


@pytest.mark.parametrize("name", ["get-only", "async-get-only"])
def test_get_and_head_are_still_guarded(alice: Browser, name: str) -> None:
    assert _asks_to_reauthenticate(alice.get(f"/{name}/"))
    assert _asks_to_reauthenticate(alice.client.head(f"/{name}/"))
    assert _asks_to_reauthenticate(alice.get(f"/{name}/", HTTP_ACCEPT="application/json"))
    assert _asks_to_reauthenticate(alice.client.head(f"/{name}/", HTTP_ACCEPT="application/json"))
    fresh_grant(alice, ["pwd", "otp"])
    assert alice.get(f"/{name}/").content == b"billing.csv"
    head = alice.client.head(f"/{name}/")
    assert head.status_code == 200
    assert head.content == b""


def test_an_options_of_the_class_is_guarded(alice: Browser) -> None:
    assert _asks_to_reauthenticate(alice.client.options("/own-options/"))
    assert _asks_to_reauthenticate(
        alice.client.options("/own-options/", HTTP_ACCEPT="application/json")
    )
    fresh_grant(alice, ["pwd", "otp"])
    assert alice.client.options("/own-options/").content == b"the export's options"


def test_a_405_of_the_class_is_guarded(alice: Browser) -> None:
    assert _asks_to_reauthenticate(alice.client.put("/own-not-allowed/"))
    fresh_grant(alice, ["pwd", "otp"])
    assert alice.client.put("/own-not-allowed/").content == b"the app's own 405"


def test_a_handler_outside_http_method_names_is_never_called(alice: Browser) -> None:
    """Django answers 405 without calling ``post``: nothing to re-authenticate for."""
    answer = alice.post("/read-only/")
    assert answer.status_code == 405
    assert answer["Allow"] == "GET, HEAD, OPTIONS"
    assert _asks_to_reauthenticate(alice.get("/read-only/"))


def test_a_dispatch_between_the_mixin_and_view_is_always_guarded(alice: Browser) -> None:
    """A reviewer's bypass: the mixin guessed from the method that Django would answer
    a POST with its 405, skipped the guard, and a mixin's own ``dispatch`` after it sent
    the request to the class's ``post_ajax`` (or, overriding the method, ``delete``):
    its code ran with no re-authentication. With another ``dispatch`` in between, every
    request is guarded."""
    ajax = alice.client.post(
        "/ajax-export/", HTTP_X_REQUESTED_WITH="XMLHttpRequest", HTTP_ACCEPT="application/json"
    )
    assert _asks_to_reauthenticate(ajax), (ajax.status_code, ajax.content)
    override = alice.client.post(
        "/overridden-delete/", HTTP_X_HTTP_METHOD_OVERRIDE="DELETE", HTTP_ACCEPT="text/html"
    )
    assert _asks_to_reauthenticate(override), (override.status_code, override.content)
    fresh_grant(alice, ("pwd", "otp"))  # billing.export asks for a second factor
    allowed = alice.client.post("/ajax-export/", HTTP_X_REQUESTED_WITH="XMLHttpRequest")
    assert (allowed.status_code, allowed.content) == (200, b"exported")


def test_djangos_access_mixins_in_between_keep_djangos_answers(alice: Browser) -> None:
    """LoginRequiredMixin's dispatch checks and calls super: Django still picks the
    handler, so OPTIONS is its 200 and a method the class lacks its 405 (not a kept POST
    replayed into a 405 after a re-authentication), and GET stays guarded."""
    options = alice.client.options("/login-first/")
    assert (options.status_code, options["Allow"]) == (200, "GET, HEAD, OPTIONS")
    assert alice.client.generic("DELETE", "/login-first/").status_code == 405
    assert alice.post("/login-first/", {"amount": "10"}).status_code == 405
    assert _asks_to_reauthenticate(alice.client.get("/login-first/", HTTP_ACCEPT="text/html"))
