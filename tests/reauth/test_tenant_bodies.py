"""Issue 12, item 5 in the core: any body that is not a JSON object is a typed 400 and
changes nothing (deep nesting included), and the shared streamed reader stops early."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stepup.adapters.storage.memory import MemoryStore
from stepup.integrations.tenant_endpoint import aread_body, read_body
from stepup.records import Tenant
from stepup.tenants import MAX_BODY, TenantPatchError, TenantSettings

FLAG_OFF = {"feature_flags": {"sensitive_actions_reauth": False}}


def _settings() -> tuple[TenantSettings, MemoryStore]:
    store = MemoryStore()
    store.put_tenant(Tenant("t1", FLAG_OFF))
    return TenantSettings(store), store


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000,
        b"{" * 100_000,
        b'{"data":' * 50_000,
        b'{"data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b"\xff\xfe{}",
        b"1" * 20_000,
        b"",
        "[" * 100_000,
    ],
    ids=["lists", "objects", "members", "balanced", "not-utf8", "long-int", "empty", "str"],
)
def test_bodies_that_are_not_json_are_a_typed_400(body: bytes | str) -> None:
    settings, store = _settings()
    with pytest.raises(TenantPatchError) as caught:
        settings.patch("t1", body, actor_id="alice", actor_is_tenant_admin=True)
    assert caught.value.status == 400
    assert caught.value.errors[0]["code"] in {"invalid_json", "too_large", "invalid_document"}
    assert store.get_tenant("t1") == Tenant("t1", FLAG_OFF)


@given(st.binary(max_size=300))
def test_any_bytes_are_a_typed_answer(body: bytes) -> None:
    settings, store = _settings()
    try:
        settings.patch("t1", body, actor_id="alice", actor_is_tenant_admin=True)
    except TenantPatchError as exc:
        assert exc.status in {400, 422}
        assert store.get_tenant("t1") == Tenant("t1", FLAG_OFF)


class _Counting:
    """A body source that counts what was taken from it."""

    def __init__(self, chunk: int, chunks: int) -> None:
        self.chunk, self.left, self.taken = chunk, chunks, 0

    def __iter__(self) -> Iterator[bytes]:
        while self.left:
            self.left -= 1
            self.taken += self.chunk
            yield b"a" * self.chunk

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for part in self:
            yield part


def test_an_oversized_body_is_abandoned_as_soon_as_it_is_over_the_limit() -> None:
    source = _Counting(4096, 10_000)  # 40 MB on offer
    with pytest.raises(TenantPatchError) as caught:
        read_body(source)
    assert caught.value.errors[0]["code"] == "too_large"
    assert source.taken <= MAX_BODY + 4096


def test_an_oversized_async_body_is_abandoned_too() -> None:
    source = _Counting(4096, 10_000)
    with pytest.raises(TenantPatchError):
        asyncio.run(aread_body(source.__aiter__()))
    assert source.taken <= MAX_BODY + 4096


def test_a_declared_oversized_length_reads_nothing() -> None:
    source = _Counting(4096, 10)
    with pytest.raises(TenantPatchError):
        read_body(source, str(MAX_BODY + 1))
    assert source.taken == 0


def test_a_body_at_the_limit_is_read_whole() -> None:
    assert read_body([b"a" * MAX_BODY], str(MAX_BODY)) == b"a" * MAX_BODY


# What json.loads takes but JSON (RFC 8259) or a safe store does not ------------------


def _doc(attributes: str) -> bytes:
    return b'{"data": {"type": "tenant", "attributes": ' + attributes.encode() + b"}}"


def _loose_settings() -> tuple[TenantSettings, MemoryStore]:
    store = MemoryStore()
    store.put_tenant(Tenant("t1", FLAG_OFF))
    attributes = {"ratio": float, "limits": dict, "tags": list}
    return TenantSettings(store, attributes=attributes), store


@pytest.mark.parametrize(
    "body",
    [
        # A repeated name: "the last one wins" in Python, the first in other parsers.
        _doc(
            '{"feature_flags": {"sensitive_actions_reauth": true, "sensitive_actions_reauth": false}}'
        ),
        _doc('{"feature_flags": {"sensitive_actions_reauth": true}, "feature_flags": {}}'),
        b'{"data": {"type": "tenant", "attributes": {}}, "data": '
        + _doc('{"feature_flags": {"sensitive_actions_reauth": true}}')[9:-1]
        + b"}",
        b'{"data": {"type": "tenant", "type": "tenant", "attributes": {}}}',
        # Not JSON numbers.
        _doc('{"ratio": NaN}'),
        _doc('{"ratio": Infinity}'),
        _doc('{"ratio": -Infinity}'),
        # Deep, but not deep enough for the decoder to give up.
        _doc('{"limits": ' + '{"a": ' * 900 + "1" + "}" * 900 + "}"),
        _doc('{"tags": ' + "[" * 900 + "]" * 900 + "}"),
        _doc('{"limits": ' + '{"a": ' * 30 + "1" + "}" * 30 + "}"),
    ],
    ids=[
        "repeated-flag",
        "repeated-attribute",
        "repeated-data",
        "repeated-type",
        "nan",
        "infinity",
        "minus-infinity",
        "900-objects",
        "900-arrays",
        "33-deep",
    ],
)
def test_bodies_json_loads_would_take_are_a_400_and_change_nothing(body: bytes) -> None:
    settings, store = _loose_settings()
    with pytest.raises(TenantPatchError) as caught:
        settings.patch("t1", body, actor_id="alice", actor_is_tenant_admin=True)
    assert caught.value.status == 400
    assert caught.value.errors == [
        {
            "status": "400",
            "code": "invalid_json",
            "title": "The body is not JSON",
            "source": {"pointer": ""},
        }
    ]
    assert store.get_tenant("t1") == Tenant("t1", FLAG_OFF)


def test_nesting_up_to_the_limit_is_read() -> None:
    settings, store = _loose_settings()
    # The document, data, attributes and 29 objects in limits: 32 deep.
    body = _doc('{"limits": ' + '{"a": ' * 29 + "1" + "}" * 29 + "}")
    tenant = settings.patch("t1", body, actor_id="alice", actor_is_tenant_admin=True)
    assert store.get_tenant("t1") == tenant
    assert "limits" in tenant.attributes


@given(st.integers(0, 60), st.booleans())
def test_depth_is_counted_exactly(extra: int, objects: bool) -> None:
    """The document, data and attributes are 3 levels; ``extra`` more in an attribute."""
    from stepup.tenants import MAX_DEPTH

    settings, _ = _loose_settings()
    if not extra:
        attribute, value = "ratio", "0.5"
    elif objects:
        attribute, value = "limits", '{"a": ' * (extra - 1) + "{}" + "}" * (extra - 1)
    else:
        attribute, value = "tags", "[" * extra + "]" * extra
    body = _doc(f'{{"{attribute}": {value}}}')
    try:
        settings.patch("t1", body, actor_id="alice", actor_is_tenant_admin=True)
        accepted = True
    except TenantPatchError as exc:
        assert exc.errors[0]["code"] == "invalid_json"
        accepted = False
    assert accepted is (3 + extra <= MAX_DEPTH)


class _GoneError(Exception):
    """What a server's reader raises when the client goes away mid-body."""


def _parts_then_gone() -> Iterator[bytes]:
    yield b'{"data": {"type": "tenant", '
    raise _GoneError


def test_a_body_the_server_cannot_read_whole_is_a_typed_400() -> None:
    with pytest.raises(TenantPatchError) as caught:
        read_body(_parts_then_gone())
    assert caught.value.errors[0]["code"] == "invalid_json"
    assert isinstance(caught.value.__cause__, _GoneError)


def test_an_async_body_the_server_cannot_read_whole_is_a_typed_400() -> None:
    async def parts() -> AsyncIterator[bytes]:
        for part in _parts_then_gone():
            yield part

    with pytest.raises(TenantPatchError) as caught:
        asyncio.run(aread_body(parts()))
    assert caught.value.errors[0]["code"] == "invalid_json"
