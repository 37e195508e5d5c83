"""stepup.strict_json: RFC 8259 JSON for documents from outside."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stepup.strict_json import NotStrictJSONError, strict_json, strict_json_object

_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(_values)
def test_what_json_dumps_writes_reads_back_the_same(value: Any) -> None:
    text = json.dumps(value)
    assert strict_json(text) == json.loads(text)
    assert strict_json(text.encode()) == json.loads(text)


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1, "a": 2}',
        '{"x": {"sensitive_actions_reauth": true, "sensitive_actions_reauth": false}}',
        '{"a": NaN}',
        "[Infinity]",
        "-Infinity",
        "1e999",  # Infinity written as a number: beyond a float's range (RFC 8259 6)
        '{"limit": -1.5e400}',
        "[" * 100_000 + "]" * 100_000,
        b'{"a": "\xff"}',
        '{"a": 1',
        "",
    ],
)
def test_what_is_not_one_rfc_8259_document_is_refused(text: str | bytes) -> None:
    with pytest.raises(NotStrictJSONError):
        strict_json(text)


def test_an_object_is_asked_for_by_name() -> None:
    assert strict_json_object('{"a": [1]}') == {"a": [1]}
    for text in ("[1]", '"a"', "1", "null"):
        with pytest.raises(NotStrictJSONError, match="not a JSON object"):
            strict_json_object(text)


def test_numbers_a_float_holds_are_read_and_tiny_ones_round_to_zero() -> None:
    assert strict_json("[1e308, 1.5, -2.5e-400]") == [1e308, 1.5, -0.0]


def test_a_tenant_float_attribute_refuses_a_number_beyond_its_range() -> None:
    """``1e999`` was stored as ``inf``: the answer was then not JSON (``Infinity``) and
    Redis refused to store it (a 503). It is invalid JSON (400) and changes nothing."""
    from stepup.adapters.storage.memory import MemoryStore
    from stepup.tenants import TenantPatchError, TenantSettings

    store = MemoryStore()
    settings = TenantSettings(store, attributes={"limit": float})
    settings.ensure("acme")
    before = store.get_tenant("acme")
    body = b'{"data": {"type": "tenant", "attributes": {"limit": 1e999}}}'
    with pytest.raises(TenantPatchError) as refused:
        settings.patch("acme", body, actor_id="a", actor_is_tenant_admin=True)
    assert refused.value.status == 400
    assert store.get_tenant("acme") == before
