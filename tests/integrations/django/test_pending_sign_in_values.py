"""A sign-in waiting in the session in a shape stepup does not write (another version's,
or damaged: no user, no ``next``, a user that is not text) is an expired sign-in at the
second step: the 400 ``sign_in_expired`` page, never a 500, and it is forgotten."""

from __future__ import annotations

from typing import Any

import pytest

from integrations.django.django_support import running_site
from stepup.adapters.storage.memory import MemoryStore
from stepup.integrations.django._session import PENDING, pending_sign_in
from stepup.testing import SettableClock

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    "saved",
    [
        {"nonce": "n", "next": "/", "at": NOW},  # no user
        {"user_id": None, "nonce": "n", "next": "/", "at": NOW},
        {"user_id": "", "nonce": "n", "next": "/", "at": NOW},
        {"user_id": ["alice"], "nonce": "n", "next": "/", "at": NOW},
        {"user_id": True, "nonce": "n", "next": "/", "at": NOW},
    ],
)
def test_a_pending_sign_in_of_another_shape_is_gone(saved: dict[str, Any]) -> None:
    session: dict[str, Any] = {PENDING: saved}
    assert pending_sign_in(session, NOW, 300.0) is None
    assert PENDING not in session


def test_a_missing_next_goes_home_and_a_numeric_user_is_read() -> None:
    session: dict[str, Any] = {PENDING: {"user_id": 7, "nonce": "n", "at": NOW}}
    waiting = pending_sign_in(session, NOW, 300.0)
    assert waiting is not None
    assert (waiting.user_id, waiting.next) == ("7", "/")


def test_the_second_step_answers_an_odd_value_as_expired(clock: SettableClock) -> None:
    with running_site(MemoryStore(), clock) as site:
        browser = site.browser()
        session = browser.client.session
        session[PENDING] = {"nonce": "n", "at": clock()}  # no user, no next
        session.save()
        answer = browser.client.get("/stepup/2fa/verify/")
        assert answer.status_code == 400
        assert PENDING not in browser.client.session
