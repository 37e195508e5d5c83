"""The tenant PATCH against JSON:API 1.1 and RFC 6901: every ``source.pointer`` is a
JSON Pointer that leads back to the member it names, and @-members are ignored
wherever they occur (never an unknown member, an attribute or a flag, never stored)."""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from stepup.adapters.storage.memory import MemoryStore
from stepup.events import EventBus, StepupEvent, TenantFlagChanged
from stepup.records import Tenant
from stepup.tenants import AsyncTenantSettings, TenantPatchError, TenantSettings
from stepup.testing import SettableClock

ORIGINAL = {
    "name": "Acme",
    "plan": "gold",
    "feature_flags": {"beta_ui": True, "sensitive_actions_reauth": False},
}
#: The value put at the member each pointer must lead back to.
MARK = "the member the error is about"


def _settings(
    store: MemoryStore | None = None,
) -> tuple[TenantSettings, MemoryStore, list[StepupEvent]]:
    store = store or MemoryStore()
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


def _body(attributes: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "data": {
            "type": "tenant",
            "attributes": attributes
            if attributes is not None
            else {"feature_flags": {"sensitive_actions_reauth": True}},
        }
    }


def _resolve(document: Any, pointer: str) -> Any:
    """The value ``pointer`` names in ``document``, read as RFC 6901 says (section 4:
    each reference token's ``~1`` becomes ``/``, then ``~0`` becomes ``~``)."""
    assert pointer.startswith("/"), pointer
    value = document
    for token in pointer[1:].split("/"):
        assert isinstance(value, dict), (pointer, value)
        value = value[token.replace("~1", "/").replace("~0", "~")]
    return value


def _pointers(settings: TenantSettings, document: dict[str, Any]) -> list[str]:
    with pytest.raises(TenantPatchError) as caught:
        settings.patch("t1", json.dumps(document), actor_id="admin", actor_is_tenant_admin=True)
    return [e["source"]["pointer"] for e in caught.value.errors]


# Where a member of any name can stand: (the path of its object, the names that are
# valid there and so would not be an error).
PLACES = [
    ([], {"data", "meta", "jsonapi", "links"}),
    (["data"], {"type", "id", "attributes", "meta", "links"}),
    (["data", "attributes"], {"name", "feature_flags"}),
    (["data", "attributes", "feature_flags"], {"sensitive_actions_reauth", "beta_ui"}),
]


@given(name=st.text(max_size=12), place=st.sampled_from(PLACES))
@example(name="x/y", place=PLACES[0])
@example(name="x~y", place=PLACES[1])
@example(name="x/y", place=PLACES[2])
@example(name="~1", place=PLACES[2])
@example(name="c/d", place=PLACES[3])
@example(name="~01/", place=PLACES[3])
@example(name="", place=PLACES[2])
def test_every_pointer_leads_back_to_the_member_it_names(
    name: str, place: tuple[list[str], set[str]]
) -> None:
    """RFC 6901 section 3: a member named ``x/y`` is ``x~1y`` in a pointer and ``x~y`` is
    ``x~0y``. Unescaped, ``/data/attributes/x/y`` named a member ``y`` inside ``x``."""
    path, valid = place
    assume(name not in valid and not name.startswith("@"))
    settings, store, events = _settings()
    document = _body()
    target = document
    for key in path:
        target = target[key]
    target[name] = MARK
    pointers = _pointers(settings, document)
    assert [_resolve(document, p) for p in pointers] == [MARK]
    assert store.get_tenant("t1") == Tenant("t1", ORIGINAL)
    assert events == []


def test_the_pointers_are_written_as_rfc_6901_writes_them() -> None:
    settings, _, _ = _settings()
    document = _body({"x/y": 1, "x~y": 2, "feature_flags": {"c/d": True, "~/": False}})
    document["a/b"] = {}
    document["data"]["~"] = {}
    assert sorted(_pointers(settings, document)) == [
        "/a~1b",
        "/data/attributes/feature_flags/c~1d",
        "/data/attributes/feature_flags/~0~1",
        "/data/attributes/x~0y",
        "/data/attributes/x~1y",
        "/data/~0",
    ]


SEEDED = {
    "name": "Acme",
    "plan": "gold",
    "feature_flags": {"beta_ui": True, "sensitive_actions_reauth": True},
}


def test_at_members_are_ignored_at_every_level_and_never_stored() -> None:
    """JSON:API 1.1, @-Members: they "MUST be ignored when interpreting this
    specification's definitions"; one in an attributes object "is not an attribute"
    (and one in ``feature_flags`` not a flag). Each was refused: 400 at the top level
    and in ``data``, 422 "Unknown attribute" in ``attributes`` and ``feature_flags``."""
    settings, store, events = _settings()
    document = {
        "@context": "https://schema.org",
        "data": {
            "type": "tenant",
            "@type": "Organization",
            "attributes": {
                "@id": "https://example.com/acme",
                "@name": 5,  # not the attribute "name", whose type it would break
                "@": {"any": ["value"]},
                "feature_flags": {"sensitive_actions_reauth": True, "@beta_ui": "no"},
            },
        },
    }
    tenant = settings.patch(
        "t1", json.dumps(document), actor_id="admin", actor_is_tenant_admin=True
    )
    assert tenant.attributes == SEEDED
    assert store.get_tenant("t1") == Tenant("t1", SEEDED)
    assert [(e.flag, e.old, e.new) for e in events if isinstance(e, TenantFlagChanged)] == [
        ("sensitive_actions_reauth", False, True)
    ]
    assert len(events) == 1


class _Recording(MemoryStore):
    """A memory store that keeps what each ``patch_tenant`` was asked to write."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def patch_tenant(
        self, tenant_id: str, attributes: Any, flags: Any
    ) -> tuple[Tenant, Tenant] | None:
        self.asked.append((dict(attributes), dict(flags)))
        return super().patch_tenant(tenant_id, attributes, flags)


def test_the_store_is_never_asked_to_write_an_at_member() -> None:
    store = _Recording()
    settings, _, _ = _settings(store)
    document = _body(
        {"@note": "x", "name": "Acme Ltd", "feature_flags": {"@x": True, "beta_ui": False}}
    )
    settings.patch("t1", document, actor_id="admin", actor_is_tenant_admin=True)
    assert store.asked == [({"name": "Acme Ltd"}, {"beta_ui": False})]


def test_a_body_of_only_at_members_changes_nothing() -> None:
    settings, store, events = _settings()
    document = _body({"@a": 1, "feature_flags": {"@b": 2}})
    document["@c"] = 3
    tenant = settings.patch("t1", document, actor_id="admin", actor_is_tenant_admin=True)
    assert tenant == Tenant("t1", ORIGINAL)
    assert store.get_tenant("t1") == Tenant("t1", ORIGINAL)
    assert events == []


def test_an_at_member_beside_an_error_is_no_error_itself() -> None:
    settings, store, _ = _settings()
    document = _body({"@a": 1, "plan": "free", "feature_flags": {"@b": 2}})
    document["@c"] = 3
    document["data"]["@d"] = 4
    assert _pointers(settings, document) == ["/data/attributes/plan"]
    assert store.get_tenant("t1") == Tenant("t1", ORIGINAL)


def test_at_members_are_ignored_by_the_async_twin_too() -> None:
    store = MemoryStore()
    store.put_tenant(Tenant("t1", copy.deepcopy(ORIGINAL)))
    settings = AsyncTenantSettings(store)
    document = _body({"@a": 1, "feature_flags": {"sensitive_actions_reauth": True, "@b": 2}})
    document["@context"] = "https://schema.org"
    tenant = asyncio.run(
        settings.patch("t1", document, actor_id="admin", actor_is_tenant_admin=True)
    )
    assert tenant.attributes == SEEDED
