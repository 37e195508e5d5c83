"""Passkey review 15 in Django: the journeys of :mod:`integrations.passkey_review15`, with
Django's CSRF middleware on (the test client enforces it) and server errors answered as
in production (a 500, not an exception in the test)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from integrations import passkey_review15 as journeys
from integrations.django.django_support import Site, confirm_factors, running_site, user_id
from stepup.adapters.storage.memory import MemoryStore
from stepup.testing import SettableClock

PASSKEYS = {"PASSKEYS_RP_ID": "localhost", "PASSKEYS_ORIGINS": [journeys.ORIGIN]}


def _slashed(url: str) -> str:
    """The project's URLs end in a slash (the pages); the JSON endpoints take both."""
    return url if url.endswith("/") else url + "/"


class DjangoClient:
    def __init__(self, browser: Any, store: MemoryStore) -> None:
        self.browser = browser
        self.store = store
        self.user_id = user_id("alice")

    def token(self) -> str:
        return str(self.browser.fields("/stepup/passkeys/")["csrfmiddlewaretoken"])

    def post(
        self, url: str, body: str, token: str, *, content_type: str, accept: str
    ) -> journeys.Answer:
        headers = {"X-CSRFToken": token, "Accept": accept}
        answer = self.browser.client.post(
            url, data=body, content_type=content_type, headers=headers
        )
        return journeys.Answer(
            answer.status_code, answer.get("Content-Type", ""), answer.content.decode()
        )

    def page(self, url: str) -> str:
        answer = self.browser.get(_slashed(url))
        assert answer.status_code == 200
        return str(answer.content.decode())

    def grant(self) -> None:
        confirm_factors(self.browser)


def policy() -> Any:
    """``STEPUP["POLICY"]``: the test project's catalog with the vault rules."""
    from integrations.django.testapp.hooks import app_policy

    return journeys.with_vault(app_policy())


@pytest.fixture
def site(clock: SettableClock) -> Iterator[Site]:
    settings = {**PASSKEYS, "POLICY": f"{__name__}.policy"}
    with running_site(MemoryStore(), clock, **settings) as running:
        from stepup.integrations.django.services import get_stepup

        get_stepup().tenant_settings.ensure("acme")
        yield running


@pytest.mark.parametrize(
    "journey",
    [
        journeys.a_crafted_attestation_is_refused,
        journeys.the_renewed_csrf_token_is_handed_over,
        journeys.a_scripts_csrf_failure_is_json,
        journeys.a_device_bound_rule_takes_only_device_bound_passkeys,
        journeys.no_device_bound_passkey_is_said_so,
        journeys.the_limit_is_refused_before_any_ceremony,
        journeys.a_store_failure_while_recording_is_a_503,
        journeys.below_the_limit_the_form_is_offered,
    ],
)
def test_journey(site: Site, alice: Any, journey: Callable[[DjangoClient], None]) -> None:
    alice.client.raise_request_exception = False
    journey(DjangoClient(alice, site.store))


def test_the_views_are_exempt_from_the_middleware_and_check_csrf_themselves() -> None:
    """The JSON 403 comes from the views' own check (Django's, see views._csrf_checked):
    the project's middleware skips them, so it cannot answer first with its page."""
    from stepup.integrations.django import passkey_views, views

    for view in (passkey_views.register_begin, passkey_views.reauth_finish, views.reauth_password):
        assert getattr(view, "csrf_exempt", False) is True
