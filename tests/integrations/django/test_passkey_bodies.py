"""What Django's passkey endpoints read: the journeys of
:mod:`integrations.passkey_body_support`, with Django's CSRF checks on (the test client
enforces them). Django answered these as the others now do, except a JSON body sent
under another type to a finish, which it read as an empty form."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from integrations import passkey_body_support as journeys
from integrations.django.django_support import Site, confirm_factors, running_site, user_id
from integrations.passkey_review15 import ORIGIN, Answer
from stepup.adapters.storage.memory import MemoryStore
from stepup.testing import SettableClock

PASSKEYS = {"PASSKEYS_RP_ID": "localhost", "PASSKEYS_ORIGINS": [ORIGIN]}
VERIFY = "/stepup/2fa/verify/"


class DjangoClient:
    header = "X-CSRFToken"
    field = "csrfmiddlewaretoken"

    def __init__(self, browser: Any, store: MemoryStore) -> None:
        self.browser = browser
        self.store = store
        self.user_id = user_id("alice")

    def token(self) -> str:
        return str(self.browser.fields("/stepup/passkeys/")["csrfmiddlewaretoken"])

    def post(self, url: str, body: str, *, content_type: str, headers: Mapping[str, str]) -> Answer:
        answer = self.browser.client.post(
            url, data=body.encode(), content_type=content_type, headers=dict(headers)
        )
        return Answer(answer.status_code, answer.get("Content-Type", ""), answer.content.decode())

    def page(self, url: str) -> str:
        return str(self.browser.get(url).content.decode())

    def grant(self) -> None:
        confirm_factors(self.browser)

    def second_step(self) -> str:
        self.browser.logout()
        answer = self.browser.login("alice")
        assert (answer.status_code, answer["Location"]) == (303, VERIFY)
        return str(self.browser.fields(VERIFY)["csrfmiddlewaretoken"])


def policy() -> Any:
    """``STEPUP["POLICY"]``: the test project's catalog, the sign-in counting."""
    from integrations.django.testapp.hooks import app_policy

    return app_policy().with_sign_in_counts()


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
        journeys.a_reauth_begin_reads_json_whatever_its_type,
        journeys.a_register_begin_refuses_a_form,
        journeys.a_sign_in_begin_refuses_a_form,
        journeys.a_form_without_a_token_is_refused_first,
        journeys.a_reauth_finish_reads_json_whatever_its_type,
        journeys.a_finished_sign_in_is_told_expired,
        journeys.a_name_sent_twice_is_no_name,
    ],
)
def test_journey(site: Site, alice: Any, journey: Callable[[DjangoClient], None]) -> None:
    alice.client.raise_request_exception = False
    journey(DjangoClient(alice, site.store))
