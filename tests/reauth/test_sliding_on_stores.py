"""A sliding window lives until ``sliding_max`` on every store, also where the store
drops expired grants (Redis on each write of the user's grants; every store when the
operator purges): the proof's grant is kept as long as the window can last, not only
the longest lifetime."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stepup.policy import SENSITIVE, Policy
from stepup.reauth import Reauth
from stepup.records import Tenant
from stepup.subject import Subject
from stepup.testing import SettableClock
from store_kinds import STORE_KINDS, open_store

SLIDING = Policy({"key.read": SENSITIVE}, lifetime=3600).with_sliding_window(4 * 3600)


@pytest.fixture(params=STORE_KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    with open_store(request.param, tmp_path) as opened:
        yield opened


def test_each_action_renews_the_window_until_its_maximum(store: Any) -> None:
    store.put_tenant(Tenant("t1", {"feature_flags": {"sensitive_actions_reauth": True}}))
    clock = SettableClock(1_700_000_000.0)
    reauth = Reauth(store, SLIDING, clock=clock)
    alice = Subject("alice", "s1")
    reauth.record(alice, ["pwd"])
    proved = clock()
    purge = getattr(store, "purge_expired", None)
    while clock() + 1800 < proved + 4 * 3600:  # an action every half hour
        clock.advance(1800)
        if purge is not None:
            purge(clock())  # what an operator's cron does: drops what has expired
        assert reauth.check(alice, "key.read", "t1").ok, clock() - proved
    clock.set(proved + 4 * 3600)  # the window's end, however active the session
    assert not reauth.check(alice, "key.read", "t1").ok
