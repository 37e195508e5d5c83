"""Passkey review 15 in Flask: the journeys of :mod:`integrations.passkey_review15`, with
the app's errors as in production (an error page, not an exception), and a Flask-WTF
app's CSRF refusal of a script as the same JSON 403."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask_wtf.csrf import CSRFProtect

from integrations import passkey_review15 as journeys
from integrations.flask.flask_support import Browser, app_policy, confirm_factors, make_app
from stepup.adapters.storage.memory import MemoryStore
from stepup.testing import SettableClock

CONFIG = {"STEPUP_PASSKEYS_RP_ID": "localhost", "STEPUP_PASSKEYS_ORIGINS": [journeys.ORIGIN]}


class FlaskClient:
    user_id = "alice"

    def __init__(self, browser: Browser, store: MemoryStore) -> None:
        self.browser = browser
        self.store = store

    def token(self) -> str:
        return self.browser.csrf("/stepup/passkeys")

    def post(
        self, url: str, body: str, token: str, *, content_type: str, accept: str
    ) -> journeys.Answer:
        headers = {"X-CSRF-Token": token, "Accept": accept}
        answer = self.browser.post(url, data=body, content_type=content_type, headers=headers)
        return journeys.Answer(
            answer.status_code, answer.content_type or "", answer.get_data(as_text=True)
        )

    def page(self, url: str) -> str:
        answer = self.browser.get(url)
        assert answer.status_code == 200
        return str(answer.get_data(as_text=True))

    def grant(self) -> None:
        confirm_factors(self.browser)


def _client(protect: CSRFProtect | None = None) -> FlaskClient:
    """Alice signed in to the test app (with ``protect``: the app's Flask-WTF too)."""

    def setup(app: Any, stepup: Any) -> None:
        if protect is not None:
            protect.init_app(app)

    store = MemoryStore()
    app = make_app(
        clock=SettableClock(),
        store=store,
        config=CONFIG,
        policy=journeys.with_vault(app_policy()),
        setup=setup,
    )
    app.app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production: an error page
    if protect is not None:
        protect.exempt(app.app.view_functions["login"])  # the test app's sign-in form
    browser = app.client()
    assert browser.login("alice").status_code == 303
    return FlaskClient(browser, store)


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
def test_journey(journey: Callable[[FlaskClient], None]) -> None:
    journey(_client())


def test_with_flask_wtf_a_scripts_csrf_failure_is_json_too() -> None:
    """Flask-WTF refuses before stepup's own check: on stepup's routes a script gets the
    same JSON 403, and the renewed token still works; a browser keeps Flask-WTF's 400."""
    client = _client(CSRFProtect())
    refused = client.post(
        "/stepup/reauth/passkey/begin", "{}", "forged",
        content_type="application/json", accept="application/json",
    )  # fmt: skip
    assert (refused.status, refused.json()["error"]) == (403, "csrf")
    page = client.post(
        "/stepup/passkeys/register/finish", "name=x", "forged",
        content_type=journeys.FORM, accept="text/html",
    )  # fmt: skip
    assert page.status == 400
    assert "<p>The CSRF session token is missing.</p>" in page.text  # Flask-WTF's own
    journeys.the_renewed_csrf_token_is_handed_over(client)
