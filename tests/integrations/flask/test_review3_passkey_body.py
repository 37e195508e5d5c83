"""The passkey endpoints read their JSON bodies strictly (RFC 8259): a member named
twice or a ``NaN`` is the 400 ``malformed``, never resolved by the parser's last-wins
rule before the ceremony sees the response (a repeated ``type``, a repeated ``name``)."""

from __future__ import annotations

import json

from integrations.flask.flask_support import make_app
from integrations.flask.test_passkeys import CONFIG, ORIGIN, _json
from stepup.adapters.storage.memory import MemoryStore
from stepup.testing import SettableClock
from stepup.testing.webauthn import SoftAuthenticator


def test_a_body_repeating_a_member_or_holding_nan_registers_nothing() -> None:
    test_app = make_app("subject_loader", clock=SettableClock(), store=MemoryStore(), config=CONFIG)
    browser = test_app.client()
    assert browser.login("alice").status_code == 303
    key = SoftAuthenticator(origin=ORIGIN, counter=1)
    answer = key.create(_json(browser, "/stepup/passkeys/register/begin", {}).get_json())
    text = json.dumps({"credential": answer, "name": "Laptop"})
    repeated = text.replace('"type": "public-key"', '"type": "x", "type": "public-key"', 1)
    assert repeated != text
    for body in (repeated, text[:-1] + ', "extra": NaN}', text[:-1] + ', "name": "Other"}'):
        refused = _json(browser, "/stepup/passkeys/register/finish", body)
        assert refused.status_code == 400, refused.get_data(as_text=True)
    assert "Laptop" not in browser.get("/stepup/passkeys").get_data(as_text=True)
    accepted = _json(browser, "/stepup/passkeys/register/finish", text)
    assert accepted.status_code == 200, accepted.get_data(as_text=True)
