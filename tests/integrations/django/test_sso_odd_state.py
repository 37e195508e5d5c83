"""Django: a callback whose ``state`` cannot name an OIDC trip (longer than the store's
key limit, another kind of challenge's id) is the generic 400 refusal, never a 500, and
leaves the challenge whose id it carries alone (Starlette and Flask:
``tests/integrations/test_sso_odd_state.py``)."""

from __future__ import annotations

import math
import time
from urllib.parse import urlencode

from idp.oidc.harness import Provider, make_config
from integrations.django.django_support import running_site
from integrations.sso_refusal_support import NOT_CONFIRMED
from stepup.adapters.storage.base import MAX_KEY_LENGTH
from stepup.adapters.storage.memory import MemoryStore
from stepup.integrations.django.services import get_stepup
from stepup.records import Challenge
from stepup.testing import SettableClock

#: Never contacted: a state that cannot be a trip is refused before anything else.
FAKE = Provider("http://127.0.0.1:9", None)  # type: ignore[arg-type]


def test_a_state_that_cannot_be_a_trip_is_a_400_and_takes_nothing() -> None:
    store = MemoryStore()
    kept = Challenge("resume:tab-a", "alice", "any", 0.0, 9e9, {"kind": "resume"})
    store.put_challenge(kept)
    clock = SettableClock(math.floor(time.time()))
    with running_site(store, clock, OIDC_PROVIDERS={"test-op": make_config(FAKE)}) as site:
        get_stepup().tenant_settings.ensure("acme")
        browser = site.browser()
        assert (
            browser.login_sso("alice", "oidc", FAKE.issuer, "alice", "test-op").status_code == 303
        )
        for state in ("A" * (MAX_KEY_LENGTH + 1), "A" * 4096, kept.challenge_id):
            query = urlencode({"state": state, "code": "x"})
            answer = browser.get(f"/stepup/reauth/oidc/callback/?{query}")
            assert answer.status_code == 400, (len(state), answer.content[:200])
            assert NOT_CONFIRMED in answer.content.decode()
    assert store.take_challenge(kept.challenge_id, 1.0) == kept
