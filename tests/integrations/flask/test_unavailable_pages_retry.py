"""Flask: the re-auth form re-shown after a password that could not be checked (the
store down) is a 503 that says when to try again, as every other 503 does."""

from __future__ import annotations

import html
import re

from integrations.flask.flask_support import make_app
from integrations.outage_support import StoreDown

PAGE = "/stepup/reauth?action=api_key.read&next=/api-key"


def test_the_reauth_form_after_an_outage_says_when_to_try_again() -> None:
    store = StoreDown()
    alice = make_app(store=store).client()
    assert alice.login("alice").status_code == 303
    body = alice.client.get(PAGE).get_data(as_text=True)
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', body))
    store.down = True
    answer = alice.client.post(
        "/stepup/reauth/password",
        data={**{k: html.unescape(v) for k, v in fields.items()}, "password": "correct horse"},
    )
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "5"
    assert answer.headers["Cache-Control"] == "no-store"
