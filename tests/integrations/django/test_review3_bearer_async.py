"""Django's ``bearer_required`` on an ``async def`` view, through the ASGI handler
(``AsyncClient``): the view is awaited once the token allows it (it was called and its
coroutine handed to Django as the response, a 500 for every allowed request). The
token source and the app's ``context`` are sync code (a context typically reads the
ORM): they run in ``sync_to_async``'s worker as the session decorator's check does,
never on the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import iscoroutinefunction
from django.contrib.auth import get_user_model
from django.http import Http404, HttpRequest, JsonResponse
from django.test import AsyncClient, override_settings
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from api.tokens_support import LOW_ACR_CHALLENGE, T0, guard, parse_challenge, sign
from integrations.django.django_support import Site
from stepup.integrations.bearer import BearerGuard
from stepup.integrations.django.bearer import bearer_required
from stepup.integrations.marks import actions_of
from stepup.testing import SettableClock
from stepup.tokens import AccessToken

#: Which calls the guard made on the event loop's thread (none may).
ON_LOOP: list[str] = []
REACHED: list[str] = []


def _on_loop(what: str) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    ON_LOOP.append(what)


class _Recording:
    """The tests' validator, noting whether it was called on the event loop."""

    def __init__(self, protect: BearerGuard) -> None:
        self.validator = protect.tokens

    def validate(self, token: str) -> AccessToken:
        _on_loop("validate")
        return self.validator.validate(token)  # type: ignore[attr-defined, no-any-return]


def _owner(request: HttpRequest, name: str) -> dict[str, str]:
    """A context that reads the ORM, as an app's does: on the loop it would raise
    ``SynchronousOnlyOperation``."""
    _on_loop("context")
    if not get_user_model().objects.filter(username=name).exists():
        raise Http404(name)
    return {}


_PROTECT = guard(SettableClock(T0))
_GUARD = BearerGuard(_PROTECT.reauth, _Recording(_PROTECT))


@csrf_exempt
@bearer_required(_GUARD, "workspace.delete", context=_owner)
async def delete(request: HttpRequest, name: str) -> JsonResponse:
    await asyncio.sleep(0)  # a real coroutine, suspended once
    REACHED.append(name)
    return JsonResponse({"deleted": name, "by": request.stepup_token.subject})  # type: ignore[attr-defined]


@csrf_exempt
@bearer_required(_GUARD, "workspace.read")
def read(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"by": request.stepup_token.subject})  # type: ignore[attr-defined]


urlpatterns = [path("w/<str:name>", delete), path("read", read)]


@pytest.fixture
def client(site: Site) -> Iterator[AsyncClient]:
    ON_LOOP.clear()
    REACHED.clear()
    with override_settings(ROOT_URLCONF=__name__):
        yield AsyncClient()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_decorated_views_keep_their_kind() -> None:
    assert iscoroutinefunction(delete)
    assert not iscoroutinefunction(read)
    assert actions_of(delete) == ("workspace.delete",)


async def test_an_allowed_request_runs_the_async_view(client: AsyncClient) -> None:
    answer: Any = await client.delete("/w/alice", headers=_bearer(sign()))
    assert (answer.status_code, answer.json()) == (200, {"deleted": "alice", "by": "alice"})
    assert REACHED == ["alice"]
    assert ON_LOOP == []


async def test_a_refused_request_never_reaches_the_async_view(client: AsyncClient) -> None:
    weak: Any = await client.delete("/w/alice", headers=_bearer(sign(acr="urn:pwd", amr=["pwd"])))
    assert (weak.status_code, weak["WWW-Authenticate"]) == (401, LOW_ACR_CHALLENGE)
    stale: Any = await client.delete("/w/alice", headers=_bearer(sign(auth_time=T0 - 301)))
    assert stale.status_code == 401
    assert parse_challenge(stale["WWW-Authenticate"])[1]["max_age"] == "300"
    invalid: Any = await client.delete("/w/alice", headers=_bearer(sign(aud="https://other")))
    assert invalid.status_code == 401
    assert invalid["WWW-Authenticate"].startswith('Bearer error="invalid_token"')
    nobody: Any = await client.delete("/w/alice")
    assert nobody.status_code == 401
    assert parse_challenge(nobody["WWW-Authenticate"])[0] == "Bearer"
    missing: Any = await client.delete("/w/nobody", headers=_bearer(sign()))
    assert missing.status_code == 404  # the context's answer, once the token was valid
    assert REACHED == []
    assert ON_LOOP == []


async def test_a_sync_view_still_answers_under_asgi(client: AsyncClient) -> None:
    answer: Any = await client.get("/read", headers=_bearer(sign()))
    assert (answer.status_code, answer.json()) == (200, {"by": "alice"})
