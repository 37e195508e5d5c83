"""Django's one line for bearer-token step-up: the ``bearer_required`` decorator."""

from __future__ import annotations

import json

import pytest
from django.http import HttpRequest, JsonResponse
from django.test import RequestFactory

from api.tokens_support import LOW_ACR_CHALLENGE, T0, expect_header_answers, guard, sign
from integrations.django.django_support import Site
from stepup.errors import UnknownActionError
from stepup.integrations.django.bearer import bearer_required
from stepup.testing import SettableClock


def test_the_decorator_answers_like_the_others() -> None:
    protect = guard(SettableClock(T0))

    @bearer_required(protect, "workspace.delete")
    def delete(request: HttpRequest, name: str) -> JsonResponse:
        return JsonResponse({"deleted": name, "by": request.stepup_token.subject})  # type: ignore[attr-defined]

    factory = RequestFactory()

    def send(token: str | None) -> tuple[int, dict[str, str], dict[str, object]]:
        extra = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
        response = delete(factory.delete("/workspaces/prod", **extra), name="prod")
        headers = {k.lower(): v for k, v in response.items()}
        return response.status_code, headers, json.loads(response.content)

    status, _, body = send(sign())
    assert (status, body["by"]) == (200, "alice")
    status, headers, _ = send(sign(acr="urn:pwd", amr=["pwd"]))
    assert (status, headers["www-authenticate"]) == (401, LOW_ACR_CHALLENGE)
    status, headers, _ = send(sign(exp=T0 - 60))
    assert status == 401
    assert headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    assert send(None)[1]["www-authenticate"] == 'Bearer realm="api"'
    with pytest.raises(UnknownActionError):
        bearer_required(protect, "no.such.action")


def test_headers_scope_and_query_tokens_answer_like_the_others() -> None:
    @bearer_required(guard(SettableClock(T0)), "workspace.delete", scope="api:write")
    def delete(request: HttpRequest) -> JsonResponse:
        return JsonResponse({"by": request.stepup_token.subject})  # type: ignore[attr-defined]

    factory = RequestFactory()

    def send(headers: list[tuple[str, str]], query: str) -> tuple[int, dict[str, str]]:
        # Django reads one HTTP_AUTHORIZATION: several headers arrive folded with ", "
        values = [value for name, value in headers if name == "Authorization"]
        extra = {"HTTP_AUTHORIZATION": ", ".join(values)} if values else {}
        response = delete(factory.post("/api" + query, **extra))
        return response.status_code, {k.lower(): v for k, v in response.items()}

    expect_header_answers(send)


@pytest.mark.parametrize("is_async", [False, True])
def test_what_a_token_let_through_no_cache_keeps(is_async: bool) -> None:
    from asgiref.sync import async_to_sync

    protect = guard(SettableClock(T0), asynchronous=is_async)

    def answer(request: HttpRequest) -> JsonResponse:
        response = JsonResponse({"by": request.stepup_token.subject})  # type: ignore[attr-defined]
        response["Cache-Control"] = "public, max-age=600"
        return response

    async def answer_async(request: HttpRequest) -> JsonResponse:
        return answer(request)

    view = bearer_required(protect, "workspace.delete")(answer_async if is_async else answer)
    request = RequestFactory().delete("/workspaces/prod", HTTP_AUTHORIZATION=f"Bearer {sign()}")
    response = async_to_sync(view)(request) if is_async else view(request)
    assert (response.status_code, response["Cache-Control"]) == (200, "private, no-store")
    refused = RequestFactory().delete("/workspaces/prod", HTTP_AUTHORIZATION="Bearer x.y.z")
    refusal = async_to_sync(view)(refused) if is_async else view(refused)
    assert (refusal.status_code, refusal["Cache-Control"]) == (401, "no-store")


def test_an_answer_django_builds_from_an_exception_after_the_token_is_marked_too(
    site: Site,
) -> None:
    """A 404 the view raises once the token was accepted is this token's answer too: the
    middleware marks it (the decorator sees no response to mark)."""
    import types

    from django.conf import settings
    from django.http import Http404
    from django.test import Client, override_settings
    from django.urls import clear_url_caches, path
    from django.utils.module_loading import import_module

    @bearer_required(guard(SettableClock(T0)), "workspace.delete")
    def missing(request: HttpRequest) -> JsonResponse:
        raise Http404("no such workspace")

    urlconf = types.ModuleType("bearer_404_urls")
    urlconf.urlpatterns = [  # type: ignore[attr-defined]
        *import_module(settings.ROOT_URLCONF).urlpatterns,
        path("workspaces/missing/", missing),
    ]
    with override_settings(ROOT_URLCONF=urlconf):
        clear_url_caches()
        try:
            client = Client()
            answer = client.delete("/workspaces/missing/", HTTP_AUTHORIZATION=f"Bearer {sign()}")
            assert (answer.status_code, answer["Cache-Control"]) == (404, "private, no-store")
            refused = client.delete("/workspaces/missing/", HTTP_AUTHORIZATION="Bearer x.y.z")
            assert (refused.status_code, refused["Cache-Control"]) == (401, "no-store")
        finally:
            clear_url_caches()
