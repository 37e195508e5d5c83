"""The ORM store called from a running event loop (an ``async def`` view calling the sync
``begin_sign_in``) is a mistake in the code, not an outage: Django's
``SynchronousOnlyOperation`` becomes ``ConfigurationError`` naming the fix, and reaches
the view as itself. It used to be ``StoreUnavailableError``: a 503 "try again" on every
request, and "store unavailable" in the log (t8)."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Iterator

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import AsyncClient, override_settings
from django.urls import include, path

from integrations.django.django_support import Site, running_site, user_id
from stepup.errors import ConfigurationError
from stepup.integrations.django.services import get_stepup
from stepup.integrations.django.store import DjangoStore
from stepup.testing import SettableClock

ALICE: list[str] = []


async def sign_in_from_async_code(request: HttpRequest) -> HttpResponse:
    second = request.stepup.begin_sign_in(ALICE[0], next="/")
    return second or HttpResponse("signed in")


urlpatterns = [
    path("async-sign-in/", sign_in_from_async_code),
    path("", include("integrations.django.testapp.urls")),
]


@pytest.fixture
def orm_site(clock: SettableClock) -> Iterator[Site]:
    with (
        override_settings(ROOT_URLCONF=sys.modules[__name__]),
        running_site("orm", clock) as site,
    ):
        assert isinstance(get_stepup().store, DjangoStore)
        ALICE[:] = [user_id("alice")]
        yield site


def test_a_store_call_from_a_running_loop_names_the_fix(orm_site: Site) -> None:
    store = get_stepup().store

    async def from_async_code() -> object:
        return store.get_grant("u", "s")

    with pytest.raises(ConfigurationError) as refused:
        asyncio.run(from_async_code())
    said = str(refused.value)
    assert "DjangoStore.get_grant was called from async code" in said
    assert "sync_to_async" in said
    assert "async API" in said
    assert store.get_grant("u", "s") is None  # from sync code: as ever


async def test_an_async_view_calling_the_sync_api_gets_the_error_not_a_503(
    orm_site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    client = AsyncClient()
    with (
        caplog.at_level(logging.WARNING, logger="stepup"),
        pytest.raises(ConfigurationError, match="sync_to_async"),
    ):
        await client.get("/async-sign-in/")
    assert "store unavailable" not in caplog.text
