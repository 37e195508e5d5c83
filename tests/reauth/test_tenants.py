"""The tenant feature flag and its JSON:API PATCH."""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stepup.adapters.storage.memory import MemoryStore
from stepup.errors import PermissionDeniedError
from stepup.events import EventBus, StepupEvent, TenantAttributeChanged, TenantFlagChanged
from stepup.records import Tenant
from stepup.tenants import (
    AsyncTenantSettings,
    TenantNotFoundError,
    TenantPatchError,
    TenantSettings,
    tenant_document,
)
from stepup.testing import SettableClock

SEED_BODY = {
    "data": {
        "type": "tenant",
        "attributes": {"feature_flags": {"sensitive_actions_reauth": True}},
    }
}
ORIGINAL = {
    "name": "Acme",
    "plan": "gold",
    "feature_flags": {"beta_ui": True, "sensitive_actions_reauth": False},
}


def make() -> tuple[TenantSettings, MemoryStore, list[StepupEvent]]:
    store = MemoryStore()
    store.put_tenant(Tenant("t1", copy.deepcopy(ORIGINAL)))
    seen: list[StepupEvent] = []
    settings = TenantSettings(
        store,
        flags={"beta_ui": bool},
        attributes={"name": str},
        clock=SettableClock(),
        events=EventBus(seen.append),
    )
    return settings, store, seen


def test_seed_body_turns_the_flag_on_and_keeps_everything_else() -> None:
    settings, store, events = make()
    updated = settings.patch(
        "t1", json.dumps(SEED_BODY), actor_id="admin", actor_is_tenant_admin=True
    )
    assert updated.flag("sensitive_actions_reauth")
    stored = store.get_tenant("t1")
    assert stored is not None
    assert stored.attributes == {
        "name": "Acme",
        "plan": "gold",
        "feature_flags": {"beta_ui": True, "sensitive_actions_reauth": True},
    }
    assert events == [
        TenantFlagChanged(
            at=events[0].at,
            actor_id="admin",
            tenant_id="t1",
            flag="sensitive_actions_reauth",
            old=False,
            new=True,
        )
    ]


def test_off_again_and_unchanged_values_emit_nothing() -> None:
    settings, _, events = make()
    settings.patch("t1", SEED_BODY, actor_id="admin", actor_is_tenant_admin=True)
    settings.patch("t1", SEED_BODY, actor_id="admin", actor_is_tenant_admin=True)
    assert len(events) == 1
    off = copy.deepcopy(SEED_BODY)
    off["data"]["attributes"]["feature_flags"]["sensitive_actions_reauth"] = False  # type: ignore[index]
    tenant = settings.patch("t1", off, actor_id="admin", actor_is_tenant_admin=True)
    assert not tenant.flag("sensitive_actions_reauth")
    assert [(e.old, e.new) for e in events if isinstance(e, TenantFlagChanged)] == [
        (False, True),
        (True, False),
    ]


def test_default_is_off() -> None:
    store = MemoryStore()
    tenant = TenantSettings(store).ensure("new")
    assert tenant.flag("sensitive_actions_reauth") is False
    assert Tenant("x").flag("sensitive_actions_reauth") is False


def test_non_admin_is_forbidden_and_nothing_changes() -> None:
    settings, store, events = make()
    with pytest.raises(PermissionDeniedError):
        settings.patch("t1", SEED_BODY, actor_id="member", actor_is_tenant_admin=False)
    assert store.get_tenant("t1") == Tenant("t1", ORIGINAL)
    assert events == []


def test_unknown_tenant_is_not_found() -> None:
    settings, store, events = make()
    with pytest.raises(TenantNotFoundError):
        settings.patch("nope", SEED_BODY, actor_id="admin", actor_is_tenant_admin=True)
    assert store.get_tenant("nope") is None  # not created by the patch
    assert events == []


def test_the_callers_body_is_left_as_it_was() -> None:
    settings, *_ = make()
    body = copy.deepcopy(SEED_BODY)
    settings.patch("t1", body, actor_id="admin", actor_is_tenant_admin=True)
    assert body == SEED_BODY


class _StoreSays(MemoryStore):
    """A store whose patch answers a given (before, after): the flow must report it."""

    def __init__(self, before: Tenant, after: Tenant) -> None:
        super().__init__()
        self.answer = (before, after)
        self.asked: list[tuple[Any, ...]] = []

    def patch_tenant(
        self, tenant_id: str, attributes: Any, flags: Any
    ) -> tuple[Tenant, Tenant] | None:
        self.asked.append((tenant_id, dict(attributes), dict(flags)))
        return self.answer


def test_events_report_what_the_store_replaced_not_what_was_read() -> None:
    """One atomic patch per PATCH, and each changed flag's event carries the stored
    before and after; a flag that was already at its value emits nothing."""
    flags = {"sensitive_actions_reauth": True, "beta_ui": False}
    before = Tenant("t1", {"name": "Acme", "feature_flags": flags})
    after = Tenant("t1", {"name": "New", "feature_flags": {**flags, "beta_ui": True}})
    store = _StoreSays(before, after)
    seen: list[StepupEvent] = []
    settings = TenantSettings(
        store, flags={"beta_ui": bool}, attributes={"name": str}, events=EventBus(seen.append)
    )
    body = {
        "data": {
            "type": "tenant",
            "attributes": {
                "name": "New",
                "feature_flags": {"sensitive_actions_reauth": True, "beta_ui": True},
            },
        }
    }
    assert settings.patch("t1", body, actor_id="admin", actor_is_tenant_admin=True) == after
    assert store.asked == [
        ("t1", {"name": "New"}, {"sensitive_actions_reauth": True, "beta_ui": True})
    ]
    assert [(e.flag, e.old, e.new) for e in seen if isinstance(e, TenantFlagChanged)] == [
        ("beta_ui", False, True)
    ]
    assert [(e.attribute, e.old, e.new) for e in seen if isinstance(e, TenantAttributeChanged)] == [
        ("name", "Acme", "New")
    ]


@pytest.mark.parametrize(
    ("replaced", "events"),
    [
        ("Other", [("name", "Other", "New")]),  # another admin's value, not the one read
        ("New", []),  # another admin already set it: nothing changed here
    ],
)
def test_attribute_events_report_what_the_store_replaced(
    replaced: str, events: list[tuple[str, str, str]]
) -> None:
    """Issue 3: "Changes emit an event with actor, tenant, old and new value", for the
    app's attributes as for the flags (only flags had one). The old value is the one
    the store replaced under its lock, whatever a read before the PATCH showed."""
    store = _StoreSays(
        Tenant("t1", {"name": replaced, "feature_flags": {}}),
        Tenant("t1", {"name": "New", "feature_flags": {}}),
    )
    store.put_tenant(Tenant("t1", {"name": "Acme", "feature_flags": {}}))
    seen: list[StepupEvent] = []
    settings = TenantSettings(store, attributes={"name": str}, events=EventBus(seen.append))
    body = {"data": {"type": "tenant", "attributes": {"name": "New"}}}
    settings.patch("t1", body, actor_id="admin", actor_is_tenant_admin=True)
    assert [
        (e.attribute, e.old, e.new) for e in seen if isinstance(e, TenantAttributeChanged)
    ] == events
    assert [e for e in seen if not isinstance(e, TenantAttributeChanged)] == []


def test_a_changed_attribute_emits_its_event_and_an_unchanged_one_nothing() -> None:
    clock = SettableClock(1_700_000_000.0)
    store = MemoryStore()
    store.put_tenant(Tenant("t1", copy.deepcopy(ORIGINAL)))
    seen: list[StepupEvent] = []
    settings = TenantSettings(
        store,
        flags={"beta_ui": bool},
        attributes={"name": str, "seats": int},
        clock=clock,
        events=EventBus(seen.append),
    )

    def patch(attributes: dict[str, Any]) -> None:
        body = {"data": {"type": "tenant", "attributes": attributes}}
        settings.patch("t1", json.dumps(body), actor_id="admin", actor_is_tenant_admin=True)

    patch({"name": "Acme Ltd", "seats": 5, "feature_flags": {"beta_ui": False}})
    assert seen == [
        TenantAttributeChanged(
            at=1_700_000_000.0,
            actor_id="admin",
            tenant_id="t1",
            attribute="name",
            old="Acme",
            new="Acme Ltd",
        ),
        TenantAttributeChanged(  # the tenant had no seats: old is None
            at=1_700_000_000.0, actor_id="admin", tenant_id="t1", attribute="seats", old=None, new=5
        ),
        TenantFlagChanged(
            at=1_700_000_000.0,
            actor_id="admin",
            tenant_id="t1",
            flag="beta_ui",
            old=True,
            new=False,
        ),
    ]
    seen.clear()
    patch({"name": "Acme Ltd", "seats": 5})  # the values it already has
    assert seen == []


def test_a_value_of_another_type_is_a_change_all_the_way_down() -> None:
    """``[1]`` and ``[true]`` are equal to Python (``1 == True``) but not the same JSON."""
    store = MemoryStore()
    store.put_tenant(Tenant("t1", {"limits": {"seats": [1]}, "ratio": 1.0, "feature_flags": {}}))
    seen: list[StepupEvent] = []
    settings = TenantSettings(
        store, attributes={"limits": dict, "ratio": float}, events=EventBus(seen.append)
    )
    body = {"data": {"type": "tenant", "attributes": {"limits": {"seats": [True]}, "ratio": 1}}}
    settings.patch("t1", json.dumps(body), actor_id="admin", actor_is_tenant_admin=True)
    # ratio 1 is stored as the float 1.0 the app declared: unchanged, no event
    assert [(e.attribute, e.old, e.new) for e in seen if isinstance(e, TenantAttributeChanged)] == [
        ("limits", {"seats": [1]}, {"seats": [True]})
    ]


def test_the_attribute_event_carries_what_the_flag_event_carries() -> None:
    """Actor, tenant, which attribute, old and new value, when: nothing else (no session,
    no request, no body)."""
    fields = set(TenantAttributeChanged.__dataclass_fields__)
    assert fields == {"at", "actor_id", "tenant_id", "attribute", "old", "new"}
    assert fields - {"attribute"} == set(TenantFlagChanged.__dataclass_fields__) - {"flag"}


def _with(path: list[str], value: Any) -> dict[str, Any]:
    body = copy.deepcopy(SEED_BODY)
    target: Any = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return body


BAD_BODIES = [
    ("{not json", 400, ""),
    ("[]", 400, ""),
    ('"tenant"', 400, ""),
    (b"\xff\xfe", 400, ""),
    ({"data": []}, 400, "/data"),
    ({}, 400, "/data"),
    (_with(["data", "type"], "tenants"), 409, "/data/type"),  # another resource's
    (_with(["data", "type"], "user"), 409, "/data/type"),
    (_with(["data", "type"], 5), 400, "/data/type"),  # not a type at all
    (_with(["data", "id"], "t2"), 409, "/data/id"),
    (_with(["data", "id"], 1), 400, "/data/id"),
    (_with(["data", "relationships"], {}), 400, "/data/relationships"),
    (_with(["included"], []), 400, "/included"),
    (_with(["meta"], 1), 400, "/meta"),  # JSON:API 1.1 7.5: meta is an object
    (_with(["jsonapi"], "1.1"), 400, "/jsonapi"),  # 7.7
    (_with(["links"], ["/tenants/t1"]), 400, "/links"),  # 7.6
    (_with(["data", "meta"], [1]), 400, "/data/meta"),
    (_with(["data", "links"], "self"), 400, "/data/links"),
    (_with(["data", "attributes"], []), 400, "/data/attributes"),
    (
        _with(["data", "attributes", "feature_flags", "sensitive_actions_reauth"], "true"),
        422,
        "/data/attributes/feature_flags/sensitive_actions_reauth",
    ),
    (
        _with(["data", "attributes", "feature_flags", "sensitive_actions_reauth"], 1),
        422,
        "/data/attributes/feature_flags/sensitive_actions_reauth",
    ),
    (
        _with(["data", "attributes", "feature_flags", "sensitive_actions_reauth"], None),
        422,
        "/data/attributes/feature_flags/sensitive_actions_reauth",
    ),
    (
        _with(["data", "attributes", "feature_flags", "no_such_flag"], True),
        422,
        "/data/attributes/feature_flags/no_such_flag",
    ),
    (_with(["data", "attributes", "feature_flags"], True), 422, "/data/attributes/feature_flags"),
    (_with(["data", "attributes", "plan"], "free"), 422, "/data/attributes/plan"),
    (_with(["data", "attributes", "name"], 5), 422, "/data/attributes/name"),
]


@pytest.mark.parametrize(("body", "status", "pointer"), BAD_BODIES)
def test_bad_bodies_are_typed_errors_with_pointers_and_change_nothing(
    body: Any, status: int, pointer: str
) -> None:
    settings, store, events = make()
    raw = json.dumps(body) if isinstance(body, dict) else body
    with pytest.raises(TenantPatchError) as caught:
        settings.patch("t1", raw, actor_id="admin", actor_is_tenant_admin=True)
    error = caught.value
    assert error.status == status
    assert pointer in [e["source"]["pointer"] for e in error.errors]
    assert all(e["status"] in {"400", "409", "422"} for e in error.document["errors"])
    assert store.get_tenant("t1") == Tenant("t1", ORIGINAL)
    assert events == []


def test_a_conflict_beside_a_malformed_member_is_the_more_general_400() -> None:
    """JSON:API 1.1, Errors: several problems of different kinds answer the most
    generally applicable status; each error object keeps its own."""
    settings, _, _ = make()
    body = _with(["data", "id"], "t2")
    body["data"]["attributes"] = []
    with pytest.raises(TenantPatchError) as caught:
        settings.patch("t1", json.dumps(body), actor_id="admin", actor_is_tenant_admin=True)
    assert caught.value.status == 400
    assert {e["status"] for e in caught.value.errors} == {"400", "409"}


def test_a_valid_flag_beside_an_invalid_one_changes_nothing() -> None:
    settings, store, _ = make()
    body = _with(["data", "attributes", "feature_flags", "beta_ui"], "off")
    with pytest.raises(TenantPatchError):
        settings.patch("t1", body, actor_id="admin", actor_is_tenant_admin=True)
    assert store.get_tenant("t1") == Tenant("t1", ORIGINAL)


def test_a_wrong_type_is_named_in_words_a_translator_has() -> None:
    """The title was an f-string (``must be a bool``) no catalog could hold."""
    settings, _, _ = make()
    body = _with(["data", "attributes", "feature_flags", "sensitive_actions_reauth"], 1)
    with pytest.raises(TenantPatchError) as caught:
        settings.patch("t1", json.dumps(body), actor_id="admin", actor_is_tenant_admin=True)
    assert [e["title"] for e in caught.value.errors] == ["must be true or false"]


def test_members_json_api_allows_are_read_past() -> None:
    """JSON:API 1.1 7.1 and 7.2: top-level and resource ``links``, ``meta`` and a
    ``jsonapi`` object are valid in a request document; they change nothing."""
    settings, store, _ = make()
    body = copy.deepcopy(SEED_BODY)
    body["links"] = {"self": "/tenants/t1"}
    body["jsonapi"] = {"version": "1.1"}
    body["meta"] = {"reason": "audit"}
    body["data"]["links"] = {"self": "/tenants/t1"}
    body["data"]["meta"] = {}
    settings.patch("t1", json.dumps(body), actor_id="admin", actor_is_tenant_admin=True)
    stored = store.get_tenant("t1")
    assert stored is not None
    assert stored.flag("sensitive_actions_reauth")
    assert "links" not in stored.attributes


def test_matching_id_and_other_attributes_merge() -> None:
    settings, store, _ = make()
    body = _with(["data", "id"], "t1")
    body["data"]["attributes"]["name"] = "Acme Ltd"
    settings.patch("t1", body, actor_id="admin", actor_is_tenant_admin=True)
    stored = store.get_tenant("t1")
    assert stored is not None
    assert stored.attributes["name"] == "Acme Ltd"
    assert stored.attributes["plan"] == "gold"
    assert stored.feature_flags == {"beta_ui": True, "sensitive_actions_reauth": True}


def test_document_round_trip() -> None:
    assert tenant_document(Tenant("t1", {"feature_flags": {}})) == {
        "data": {"type": "tenant", "id": "t1", "attributes": {"feature_flags": {}}}
    }


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
        ),
        max_leaves=10,
    )
)
def test_arbitrary_json_never_changes_anything_unless_valid(body: Any) -> None:
    settings, store, _ = make()
    try:
        settings.patch("t1", json.dumps(body), actor_id="admin", actor_is_tenant_admin=True)
    except TenantPatchError as error:
        assert error.errors
        assert store.get_tenant("t1") == Tenant("t1", ORIGINAL)


def test_async_twin() -> None:
    store = MemoryStore()
    store.put_tenant(Tenant("t1", {}))
    settings = AsyncTenantSettings(store)
    tenant = asyncio.run(settings.patch("t1", SEED_BODY, actor_id="a", actor_is_tenant_admin=True))
    assert tenant.flag("sensitive_actions_reauth")


def test_async_twin_emits_the_attribute_event() -> None:
    store = MemoryStore()
    store.put_tenant(Tenant("t1", copy.deepcopy(ORIGINAL)))
    seen: list[StepupEvent] = []
    settings = AsyncTenantSettings(store, attributes={"name": str}, events=EventBus(seen.append))
    body = {"data": {"type": "tenant", "attributes": {"name": "Acme Ltd"}}}
    asyncio.run(settings.patch("t1", body, actor_id="a", actor_is_tenant_admin=True))
    assert len(seen) == 1
    assert [(e.actor_id, e.old, e.new) for e in seen if isinstance(e, TenantAttributeChanged)] == [
        ("a", "Acme", "Acme Ltd")
    ]


def test_a_whole_number_is_a_number_for_a_float_attribute() -> None:
    """RFC 8259 6: JSON has one number type, so ``1`` is a valid value for an attribute
    declared ``float`` (it was refused as "must be a number"); it is stored as the float
    the app declared. A float is still not a whole number, and a number too large for a
    float is refused by name instead of overflowing."""
    store = MemoryStore()
    store.put_tenant(Tenant("t1", {"feature_flags": {}}))
    settings = TenantSettings(
        store, flags={"ratio_flag": float}, attributes={"ratio": float, "seats": int}
    )

    def patch(attributes: dict[str, Any]) -> Tenant:
        body = {"data": {"type": "tenant", "attributes": attributes}}
        return settings.patch("t1", json.dumps(body), actor_id="a", actor_is_tenant_admin=True)

    updated = patch({"ratio": 1, "feature_flags": {"ratio_flag": -2}})
    assert updated.attributes["ratio"] == 1.0
    assert type(updated.attributes["ratio"]) is float
    assert type(updated.feature_flags["ratio_flag"]) is float
    with pytest.raises(TenantPatchError) as caught:
        patch({"seats": 10.0})
    assert [e["title"] for e in caught.value.errors] == ["must be a whole number"]
    with pytest.raises(TenantPatchError) as caught:
        patch({"ratio": 10**400, "seats": 3})
    assert [(e["code"], e["title"]) for e in caught.value.errors] == [
        ("out_of_range", "is too large a number")
    ]
    with pytest.raises(TenantPatchError):
        patch({"ratio": True})
    assert store.get_tenant("t1") == updated
