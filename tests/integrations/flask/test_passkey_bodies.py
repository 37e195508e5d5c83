"""What Flask's passkey endpoints read: the journeys of
:mod:`integrations.passkey_body_support` (a form at a begin endpoint was read as ``{}``
from the stream Werkzeug's form parser had emptied, and a challenge issued)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest

from integrations import passkey_body_support as journeys
from integrations.flask.flask_support import Browser, app_policy, confirm_factors, make_app
from integrations.passkey_review15 import ORIGIN, Answer
from stepup.adapters.storage.memory import MemoryStore
from stepup.testing import SettableClock

CONFIG = {"STEPUP_PASSKEYS_RP_ID": "localhost", "STEPUP_PASSKEYS_ORIGINS": [ORIGIN]}
VERIFY = "/stepup/2fa/verify"


class FlaskClient:
    header = "X-CSRF-Token"
    field = "csrf_token"
    user_id = "alice"

    def __init__(self, browser: Browser, store: MemoryStore) -> None:
        self.browser = browser
        self.store = store

    def token(self) -> str:
        return self.browser.csrf("/stepup/passkeys")

    def post(self, url: str, body: str, *, content_type: str, headers: Mapping[str, str]) -> Answer:
        answer = self.browser.post(
            url, data=body, content_type=content_type or None, headers=dict(headers)
        )
        return Answer(answer.status_code, answer.content_type or "", answer.get_data(as_text=True))

    def page(self, url: str) -> str:
        return str(self.browser.get(url).get_data(as_text=True))

    def grant(self) -> None:
        confirm_factors(self.browser)

    def second_step(self) -> str:
        self.browser.post("/logout")
        answer = self.browser.login("alice")
        assert (answer.status_code, answer.headers["Location"]) == (303, VERIFY)
        return self.browser.csrf(VERIFY)


@pytest.fixture
def client(mode: str) -> FlaskClient:
    store = MemoryStore()
    policy = app_policy().with_sign_in_counts()
    app = make_app(mode, clock=SettableClock(), store=store, config=CONFIG, policy=policy)
    browser = app.client()
    assert browser.login("alice").status_code == 303
    return FlaskClient(browser, store)


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
def test_journey(client: FlaskClient, journey: Callable[[FlaskClient], None]) -> None:
    journey(client)
