"""What Starlette's (and FastAPI's: the same views) passkey endpoints read: the journeys
of :mod:`integrations.passkey_body_support` (the CSRF token was taken from the header
only for a type naming "json", a begin read a form, and a finished sign-in's second step
refused the session's valid token with 403 ``csrf``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import pytest

from integrations import passkey_body_support as journeys
from integrations.passkey_review15 import ORIGIN, Answer
from integrations.starlette.starlette_support import (
    Browser,
    confirm_factors,
    csrf_token,
    make_app,
)
from stepup.adapters.storage.memory import MemoryStore
from stepup.integrations.views import default_policy
from stepup.testing import SettableClock

VERIFY = "/stepup/2fa/verify"


class StarletteClient:
    header = "X-CSRF-Token"
    field = "csrf_token"
    user_id = "alice"

    def __init__(self, browser: Browser, store: MemoryStore) -> None:
        self.browser = browser
        self.store = store

    def token(self) -> str:
        return csrf_token(self.page("/stepup/passkeys"))

    def post(self, url: str, body: str, *, content_type: str, headers: Mapping[str, str]) -> Answer:
        sent = {**headers, "Content-Type": content_type} if content_type else dict(headers)
        answer = self.browser.post(url, content=body.encode(), headers=sent)
        return Answer(answer.status_code, answer.headers.get("content-type", ""), answer.text)

    def page(self, url: str) -> str:
        answer = self.browser.get(url)
        assert answer.status_code == 200, answer.text
        return str(answer.text)

    def grant(self) -> None:
        confirm_factors(self.browser)

    def second_step(self) -> str:
        self.browser.logout()
        answer = self.browser.login("alice")
        assert answer.status_code == 303
        assert answer.headers["location"].endswith(VERIFY)
        return csrf_token(self.page(VERIFY))


@pytest.fixture
def client() -> Iterator[StarletteClient]:
    store = MemoryStore()
    app = make_app(
        clock=SettableClock(),
        store=store,
        passkeys_rp_id="localhost",
        passkeys_origins=(ORIGIN,),
        policy=default_policy().with_sign_in_counts(),
    )
    browser = app.browser()
    try:
        assert browser.login("alice").status_code == 303
        yield StarletteClient(browser, store)
    finally:
        browser.close()


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
def test_journey(client: StarletteClient, journey: Callable[[StarletteClient], None]) -> None:
    journey(client)
