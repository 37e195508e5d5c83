"""Decoding stored tenants: an app's read gets a tenant of its own; decision code (a
check's ``batch``) shares one decoded tenant per distinct stored text."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from stepup.adapters.storage import stored_json
from stepup.records import Tenant

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
attributes = st.dictionaries(st.text(max_size=6), json_values, max_size=4)


def _text(tenant_id: str, attrs: dict[str, Any]) -> str:
    return json.dumps({"tenant_id": tenant_id, "attributes": attrs}, separators=(",", ":"))


@given(st.text(min_size=1, max_size=8), attributes)
def test_a_decision_reads_the_tenant_an_app_reads(tenant_id: str, attrs: dict[str, Any]) -> None:
    text = _text(tenant_id, attrs)
    assert stored_json.tenant_for_decision(text) == Tenant(tenant_id, attrs)
    assert stored_json.tenant_for_decision(text) == stored_json.tenant(json.loads(text))


def test_the_same_stored_text_is_decoded_once_for_decisions() -> None:
    text = _text("acme-shared", {"feature_flags": {"sensitive_actions_reauth": True}})
    first = stored_json.tenant_for_decision(text)
    assert stored_json.tenant_for_decision(text) is first
    # An app's read is its own, never the decisions' shared one.
    assert stored_json.tenant(json.loads(text)) is not first


def test_a_changed_record_is_decoded_anew() -> None:
    on = stored_json.tenant_for_decision(
        _text("acme-flip", {"feature_flags": {"sensitive_actions_reauth": True}})
    )
    off = stored_json.tenant_for_decision(
        _text("acme-flip", {"feature_flags": {"sensitive_actions_reauth": False}})
    )
    assert on.flag("sensitive_actions_reauth") is True
    assert off.flag("sensitive_actions_reauth") is False


def test_the_shared_tenants_are_bounded() -> None:
    for index in range(stored_json._MOST_FOR_DECISION + 10):
        stored_json.tenant_for_decision(_text(f"bounded-{index}", {}))
    assert len(stored_json._FOR_DECISION) <= stored_json._MOST_FOR_DECISION
    # Emptied when full, and still right afterwards.
    again = stored_json.tenant_for_decision(_text("bounded-0", {"x": 1}))
    assert again == Tenant("bounded-0", {"x": 1})
