"""Django's guards answer a request nobody signed in to (no bearer token, a signed-out
browser) before they call the app's ``context``: a hook that looks the target up would
tell a stranger which targets exist (404 against 401), and costs a look-up per request."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.test import RequestFactory

from api.tokens_support import T0, guard, sign
from stepup.integrations.django._request import attach
from stepup.integrations.django.bearer import bearer_required
from stepup.integrations.django.decorators import reauth_required
from stepup.testing import SettableClock

WORKSPACES = {"prod": "full"}


def _lookup(calls: list[str], name: str) -> dict[str, str]:
    calls.append(name)
    if name not in WORKSPACES:
        raise Http404(name)
    return {"workspace_type": WORKSPACES[name]}


def test_a_bearer_request_without_a_token_never_reaches_the_context() -> None:
    calls: list[str] = []

    @bearer_required(
        guard(SettableClock(T0)),
        "workspace.delete",
        context=lambda request, name: _lookup(calls, name),
    )
    def delete(request: HttpRequest, name: str) -> JsonResponse:
        return JsonResponse({"by": request.stepup_token.subject})  # type: ignore[attr-defined]

    factory = RequestFactory()

    def send(name: str, authorization: str | None = None) -> Any:
        extra = {"HTTP_AUTHORIZATION": authorization} if authorization is not None else {}
        return delete(factory.delete(f"/w/{name}", **extra), name=name)

    for name in ("prod", "nope"):
        answer = send(name)
        assert (answer.status_code, answer["WWW-Authenticate"]) == (401, 'Bearer realm="api"')
        assert send(name, "Bearer a b").status_code == 400
        assert send(name, "Bearer x.y.z").status_code == 401
        digest = 'Digest username="Mufasa", realm="api", nonce="abc", response="66"'
        assert (send(name, digest).status_code, answer["WWW-Authenticate"]) == (
            401,
            'Bearer realm="api"',
        )
        # several headers, the first empty, as a WSGI server folds them
        assert send(name, f", Bearer {sign()}").status_code == 400
    assert calls == []
    with pytest.raises(Http404):
        send("nope", f"Bearer {sign()}")
    assert json.loads(send("prod", f"Bearer {sign()}").content) == {"by": "alice"}
    assert calls == ["nope", "prod"]


def test_a_signed_out_browser_goes_to_sign_in_before_the_context() -> None:
    calls: list[str] = []

    @reauth_required(
        "workspace.delete",
        context=lambda request: _lookup(calls, request.path.split("/")[2]),
    )
    def delete(request: HttpRequest) -> HttpResponse:
        return HttpResponse("deleted")

    factory = RequestFactory()

    def send(path: str, **extra: str) -> Any:
        request = factory.post(path, **extra)
        request.user = AnonymousUser()
        attach(request)  # what StepupMiddleware does
        return delete(request)

    for path in ("/w/prod/delete/", "/w/nope/delete/"):
        answer = send(path)
        assert answer.status_code == 302
        assert answer["Location"].startswith("/login/")
        assert send(path, HTTP_ACCEPT="application/json").status_code == 401
    assert calls == []
    # the test project's signed-in API client: the context is read, and refuses
    with pytest.raises(Http404):
        send("/w/nope/delete/", HTTP_AUTHORIZATION="Bearer token-alice")
    assert calls == ["nope"]
