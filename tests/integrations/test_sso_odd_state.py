"""A callback whose ``state`` cannot name an OIDC trip (longer than the store's key limit,
another kind of challenge's id) is the generic 400 refusal in Starlette and Flask, never
a 500, and leaves the challenge whose id it carries alone. Django: ``django/``."""

from __future__ import annotations

import math
import time
from urllib.parse import urlencode

import pytest

from idp.oidc.harness import Provider, make_config
from integrations.sso_refusal_support import NOT_CONFIRMED
from stepup.adapters.storage.base import MAX_KEY_LENGTH
from stepup.records import Challenge

#: Never contacted: a state that cannot be a trip is refused before anything else.
FAKE = Provider("http://127.0.0.1:9", None)  # type: ignore[arg-type]
STATES = ("A" * (MAX_KEY_LENGTH + 1), "A" * 4096, "resume:tab-a")


def _kept(store: object, user_id: str, session_id: str) -> Challenge:
    challenge = Challenge("resume:tab-a", user_id, session_id, 0.0, 9e9, {"kind": "resume"})
    store.put_challenge(challenge)  # type: ignore[attr-defined]
    return challenge


def test_starlette() -> None:
    from integrations.starlette.starlette_support import make_app
    from stepup.adapters.idp.oidc import AsyncOIDCReauth
    from stepup.adapters.storage.memory import MemoryStore
    from stepup.testing import SettableClock

    clock = SettableClock(math.floor(time.time()))
    store = MemoryStore()
    oidc = AsyncOIDCReauth(make_config(FAKE), store, clock=clock)
    app = make_app(clock=clock, store=store, oidc=oidc, teardown=oidc.aclose)
    browser = app.browser()
    try:
        assert (
            browser.login_sso("alice", "oidc", FAKE.issuer, "alice", "test-op").status_code == 303
        )
        kept = _kept(store, "alice", "any")
        for state in STATES:
            answer = browser.get(
                "/stepup/oidc/callback?" + urlencode({"state": state, "code": "x"})
            )
            assert answer.status_code == 400, (len(state), answer.text[:200])
            assert NOT_CONFIRMED in answer.text
        assert store.take_challenge(kept.challenge_id, 1.0) == kept
    finally:
        browser.close()


@pytest.mark.parametrize("state", STATES, ids=["2049", "4096", "resume"])
def test_flask(state: str) -> None:
    from integrations.flask.oidc_support import oidc_app_on
    from stepup.adapters.storage.memory import MemoryStore

    store = MemoryStore()
    kept = _kept(store, "alice", "any")
    with oidc_app_on(FAKE, store) as app:
        client = app.client()
        with client.client.session_transaction() as session:
            session["user_id"] = "alice"
            session["sso"] = ("oidc", FAKE.issuer, "alice", "test-op")
        answer = client.get(
            "/stepup/reauth/oidc/callback?" + urlencode({"state": state, "code": "x"})
        )
        assert answer.status_code == 400, answer.get_data(as_text=True)[:200]
        assert NOT_CONFIRMED in answer.get_data(as_text=True)
    assert store.take_challenge(kept.challenge_id, 1.0) == kept
