"""An action is named by a string. Anything else (a JSON list, object or number that an
endpoint passed on) is an unknown action: the typed error, never a TypeError, and
nothing is read or written."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stepup.adapters.storage.memory import MemoryStore
from stepup.errors import UnknownActionError
from stepup.policy import Policy
from stepup.reauth import AsyncReauth, Reauth
from stepup.records import Tenant
from stepup.subject import Subject
from stepup.testing import SettableClock

ALICE = Subject("alice", "s1")

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)
NOT_A_NAME = _json | st.tuples(st.text(max_size=5)) | st.binary(max_size=8)


def _store() -> MemoryStore:
    store = MemoryStore()
    store.put_tenant(Tenant("t1", {"feature_flags": {"sensitive_actions_reauth": True}}))
    return store


@given(action=NOT_A_NAME)
def test_anything_but_a_string_is_an_unknown_action(action: Any) -> None:
    store = _store()
    reauth = Reauth(store, Policy.default(environ={}), clock=SettableClock())
    for call in (
        lambda: reauth.check(ALICE, action, "t1"),
        lambda: reauth.offer(ALICE, action),
        lambda: reauth.policy.rule_for(action),
    ):
        with pytest.raises(UnknownActionError) as caught:
            call()
        assert caught.value.action == ""
        assert "string" in str(caught.value)
    assert action not in reauth.policy
    assert store.get_grant("alice", "s1") is None


@given(action=NOT_A_NAME)
def test_the_async_flow_refuses_the_same(action: Any) -> None:
    reauth = AsyncReauth(_store(), Policy.default(environ={}), clock=SettableClock())
    with pytest.raises(UnknownActionError):
        asyncio.run(reauth.check(ALICE, action, "t1"))
