"""Passkey review 15 in Starlette: the journeys of :mod:`integrations.passkey_review15`,
with server errors answered as in production (a 500, not an exception in the test)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from starlette.testclient import TestClient

from integrations import passkey_review15 as journeys
from integrations.starlette.starlette_support import (
    Browser,
    confirm_factors,
    csrf_token,
    make_app,
)
from stepup.adapters.storage.memory import MemoryStore
from stepup.integrations.views import default_policy
from stepup.testing import SettableClock


class StarletteClient:
    user_id = "alice"

    def __init__(self, browser: Browser, store: MemoryStore) -> None:
        self.browser = browser
        self.store = store

    def token(self) -> str:
        return csrf_token(self.page("/stepup/passkeys"))

    def post(
        self, url: str, body: str, token: str, *, content_type: str, accept: str
    ) -> journeys.Answer:
        headers = {"Content-Type": content_type, "X-CSRF-Token": token, "Accept": accept}
        answer = self.browser.post(url, content=body, headers=headers)
        return journeys.Answer(
            answer.status_code, answer.headers.get("content-type", ""), answer.text
        )

    def page(self, url: str) -> str:
        answer = self.browser.get(url)
        assert answer.status_code == 200
        return str(answer.text)

    def grant(self) -> None:
        confirm_factors(self.browser)


@pytest.fixture
def client() -> Iterator[StarletteClient]:
    store = MemoryStore()
    app = make_app(
        clock=SettableClock(),
        store=store,
        passkeys_rp_id="localhost",
        passkeys_origins=(journeys.ORIGIN,),
        policy=journeys.with_vault(default_policy()),
    )
    browser = app.browser()
    browser.close()
    browser.client = TestClient(app.app, follow_redirects=False, raise_server_exceptions=False)
    browser.client.__enter__()
    try:
        assert browser.login("alice").status_code == 303
        yield StarletteClient(browser, store)
    finally:
        browser.close()


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
def test_journey(client: StarletteClient, journey: Callable[[StarletteClient], None]) -> None:
    journey(client)
