"""A tenant id no store can hold is refused, never read as an unknown tenant whose flag
is off: on every store, a malformed id from a tenant loader gone wrong fails closed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stepup.errors import MalformedInputError
from stepup.ids import MAX_ID_LENGTH
from stepup.policy import Policy, Rule, Sensitivity
from stepup.reauth import Allowed, AllowReason, Reauth, ReauthUnavailable
from stepup.records import Tenant
from stepup.subject import Subject
from stepup.testing import SettableClock
from store_kinds import STORE_KINDS, open_store

ALICE = Subject("alice", "s1")
POLICY = Policy({"billing.export": Rule(Sensitivity.SENSITIVE)})

_MALFORMED = st.one_of(
    st.just(""),
    st.just("x" * (MAX_ID_LENGTH + 1)),
    st.text(min_size=1, max_size=8).map(lambda text: text + "\x00"),
    st.text(min_size=0, max_size=4).map(lambda text: "t\ud800" + text),
    st.integers(),
    st.none(),
    st.binary(min_size=1, max_size=4),
)


@pytest.fixture(params=STORE_KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    with open_store(request.param, tmp_path) as opened:
        opened.put_tenant(Tenant("acme", {"feature_flags": {"sensitive_actions_reauth": True}}))
        yield opened


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(tenant_id=_MALFORMED)
def test_a_malformed_tenant_id_never_allows(store: Any, tenant_id: Any) -> None:
    reauth = Reauth(store, POLICY, clock=SettableClock(1_700_000_000.0))
    try:
        decision = reauth.check(ALICE, "billing.export", tenant_id)
    except MalformedInputError as exc:
        assert "tenant_id" in str(exc)
    else:  # a store that cannot even send it (NUL on PostgreSQL): unavailable
        assert isinstance(decision, ReauthUnavailable)


def test_a_well_formed_unknown_tenant_is_still_off(store: Any) -> None:
    reauth = Reauth(store, POLICY, clock=SettableClock(1_700_000_000.0))
    decision = reauth.check(ALICE, "billing.export", "nobody-configured-this")
    assert decision == Allowed("billing.export", AllowReason.FLAG_OFF, None)
