"""Django: an OIDC callback that repeats one of the protocol's parameters is refused
before the store is asked; the pending trip stays (Starlette and Flask:
``tests/integrations/test_sso_repeated_params.py``)."""

from __future__ import annotations

import math
import time

from idp.oidc.harness import make_config
from integrations.django.django_support import running_site
from integrations.sso_refusal_support import NOT_CONFIRMED
from integrations.test_sso_repeated_params import FAKE, QUERIES, pending_trip
from stepup.adapters.storage.memory import MemoryStore
from stepup.integrations.django.services import get_stepup
from stepup.testing import SettableClock


def test_a_repeated_parameter_is_a_400_and_takes_nothing() -> None:
    store = MemoryStore()
    trip = pending_trip(store, "alice")
    clock = SettableClock(math.floor(time.time()))
    with running_site(store, clock, OIDC_PROVIDERS={"test-op": make_config(FAKE)}) as site:
        get_stepup().tenant_settings.ensure("acme")
        browser = site.browser()
        assert (
            browser.login_sso("alice", "oidc", FAKE.issuer, "alice", "test-op").status_code == 303
        )
        for query in QUERIES:
            answer = browser.get(f"/stepup/reauth/oidc/callback/?{query}")
            assert answer.status_code == 400, (query, answer.content[:200])
            assert NOT_CONFIRMED in answer.content.decode()
    assert store.take_challenge(trip.challenge_id, 1.0) == trip
