"""Flask: a passkey endpoint's JSON body shorter than its ``Content-Length`` (the client
went away) is the 400 ``malformed`` in JSON, as the tenant endpoint answers its
``invalid_json``, not Werkzeug's HTML 400."""

from __future__ import annotations

import json

import pytest

from integrations.flask.flask_support import Browser, TestApp, confirm_factors, make_app
from integrations.flask.test_passkeys import CONFIG, _csrf
from stepup.adapters.storage.memory import MemoryStore
from stepup.testing import SettableClock


@pytest.fixture
def alice() -> Browser:
    test_app: TestApp = make_app(
        "subject_loader", clock=SettableClock(), store=MemoryStore(), config=CONFIG
    )
    browser = test_app.client()
    assert browser.login("alice").status_code == 303
    return browser


@pytest.mark.parametrize(
    "path",
    ["/stepup/reauth/passkey/begin", "/stepup/passkeys/register/finish"],
)
def test_a_body_cut_short_is_the_400_malformed(alice: Browser, path: str) -> None:
    confirm_factors(alice)  # register/finish is guarded: the body is read after the grant
    body = b'{"action": "api_key.read"}'
    answer = alice.client.post(
        path,
        data=body,
        content_type="application/json",
        headers={"X-CSRF-Token": _csrf(alice), "Accept": "application/json"},
        environ_overrides={"CONTENT_LENGTH": str(len(body) + 5)},
    )
    assert answer.status_code == 400, answer.get_data(as_text=True)
    assert answer.mimetype == "application/json"
    assert json.loads(answer.get_data())["error"] == "malformed"
