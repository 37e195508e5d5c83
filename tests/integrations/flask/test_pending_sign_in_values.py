"""A sign-in waiting in the session in a shape stepup does not write (another version's:
no user, a user that is not text, no ``next`` or ``remember``) is an expired sign-in at
the second step, and forgotten: never a KeyError 500."""

from __future__ import annotations

from typing import Any

import pytest

from integrations.flask.flask_support import make_app
from stepup.integrations.flask._state import _PENDING


@pytest.mark.parametrize(
    "saved",
    [
        {"nonce": "n"},  # no user, no next, no remember
        {"user_id": None, "nonce": "n", "next": "/", "remember": False},
        {"user_id": "", "nonce": "n", "next": "/", "remember": False},
        {"user_id": ["alice"], "nonce": "n", "next": "/", "remember": False},
    ],
)
def test_an_odd_pending_sign_in_is_expired(saved: dict[str, Any]) -> None:
    test_app = make_app()
    browser = test_app.client()
    with browser.client.session_transaction() as session:
        session[_PENDING] = {**saved, "at": test_app.clock()}
    answer = browser.client.get("/stepup/2fa/verify")
    assert answer.status_code == 400
    with browser.client.session_transaction() as session:
        assert _PENDING not in session


def test_a_pending_sign_in_without_next_or_remember_still_opens_the_page() -> None:
    test_app = make_app()
    browser = test_app.client()
    with browser.client.session_transaction() as session:
        session[_PENDING] = {"user_id": "alice", "nonce": "n", "at": test_app.clock()}
    assert browser.client.get("/stepup/2fa/verify").status_code == 200
