"""An OIDC callback that repeats one of the protocol's parameters (RFC 6749 4.1.2: each
"MUST NOT be included more than once") is refused the same way in every framework,
before the store is asked: the pending trip it names stays (Flask read the first of a
repeated name, Django and Starlette the last). Django: ``django/``."""

from __future__ import annotations

import math
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from idp.oidc.harness import Provider, make_config
from integrations.sso_refusal_support import NOT_CONFIRMED
from stepup.integrations.views import oidc_callback_params
from stepup.records import Challenge

#: Never contacted: a repeated parameter is refused before anything else.
FAKE = Provider("http://127.0.0.1:9", None)  # type: ignore[arg-type]
STATE = "oidc:" + "s" * 43
QUERIES = (
    f"state={STATE}&state={STATE}&code=x",
    f"state={STATE}&code=x&code=y",
    f"state={STATE}&code=x&iss=a&iss=b",
    f"state={STATE}&error=access_denied&error=login_required",
)


def pending_trip(store: object, user_id: str) -> Challenge:
    trip = Challenge(STATE, user_id, "any", 0.0, 9e9, {"kind": "oidc"})
    store.put_challenge(trip)  # type: ignore[attr-defined]
    return trip


@given(
    st.lists(
        st.tuples(st.sampled_from(["state", "code", "iss", "error", "x", "y"]), st.text()),
        max_size=8,
    )
)
def test_state_is_left_out_exactly_when_a_protocol_parameter_repeats(
    pairs: list[tuple[str, str]],
) -> None:
    names = [name for name, _ in pairs if name not in ("x", "y")]
    params = oidc_callback_params(pairs)
    if len(names) != len(set(names)):
        assert "state" not in params
    else:
        assert params == dict(pairs)


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
        trip = pending_trip(store, "alice")
        for query in QUERIES:
            answer = browser.get("/stepup/oidc/callback?" + query)
            assert answer.status_code == 400, (query, answer.text[:200])
            assert NOT_CONFIRMED in answer.text
        assert store.take_challenge(trip.challenge_id, 1.0) == trip
    finally:
        browser.close()


@pytest.mark.parametrize("query", QUERIES)
def test_flask(query: str) -> None:
    from integrations.flask.oidc_support import oidc_app_on
    from stepup.adapters.storage.memory import MemoryStore

    store = MemoryStore()
    trip = pending_trip(store, "alice")
    with oidc_app_on(FAKE, store) as app:
        client = app.client()
        with client.client.session_transaction() as session:
            session["user_id"] = "alice"
            session["sso"] = ("oidc", FAKE.issuer, "alice", "test-op")
        answer = client.get("/stepup/reauth/oidc/callback?" + query)
        assert answer.status_code == 400, answer.get_data(as_text=True)[:200]
        assert NOT_CONFIRMED in answer.get_data(as_text=True)
    assert store.take_challenge(trip.challenge_id, 1.0) == trip
