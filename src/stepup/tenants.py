"""Tenant settings through a JSON:API ``PATCH``: the only way to flip feature flags.

The body is the seed's::

    {"data": {"type": "tenant",
              "attributes": {"feature_flags": {"sensitive_actions_reauth": true}}}}

Only what is given is merged; everything else stays. Only a tenant admin of that
tenant may patch it. Invalid input is a :class:`TenantPatchError` carrying JSON:API
``errors`` with ``source.pointer`` (an RFC 6901 JSON Pointer), and changes nothing.
JSON:API 1.1's @-members (a name starting with ``@``) are ignored wherever they occur:
they are never an unknown member, an attribute or a flag, and never stored.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

from ._flow import Flow, run, run_async
from .adapters.storage.base import AsyncStore, Store
from .clock import Clock, system_clock
from .errors import (
    MalformedInputError,
    PermissionDeniedError,
    StepupError,
    StoreUnavailableError,
)
from .events import EventBus, TenantAttributeChanged, TenantFlagChanged
from .i18n import N_
from .ids import MAX_ID_LENGTH, is_well_formed_id
from .reauth import FEATURE_FLAG
from .records import Tenant
from .strict_json import NotStrictJSONError, strict_json

__all__ = [
    "JSONAPI_MEDIA_TYPE",
    "MAX_BODY",
    "MAX_DEPTH",
    "AsyncTenantSettings",
    "TenantNotFoundError",
    "TenantPatchError",
    "TenantSettings",
    "body_not_json",
    "body_too_large",
    "tenant_document",
]

JSONAPI_MEDIA_TYPE: Final = "application/vnd.api+json"
RESOURCE_TYPE: Final = "tenant"
_TOP_MEMBERS: Final = frozenset({"data", "meta", "jsonapi", "links"})
_DATA_MEMBERS: Final = frozenset({"type", "id", "attributes", "meta", "links"})
#: Members JSON:API 1.1 allows and this endpoint reads nothing from, each of which must
#: be an object (sections 7.5 meta, 7.6 links, 7.7 jsonapi); checked, then ignored.
_OBJECT_MEMBERS: Final = {
    "meta": N_("meta must be an object"),
    "jsonapi": N_("jsonapi must be an object"),
    "links": N_("links must be an object"),
}
#: The largest ``PATCH`` body read, in bytes.
MAX_BODY: Final = 64 * 1024
#: The deepest nesting of objects and arrays a ``PATCH`` body may have (the seed's
#: document is 4 deep). Deeper is a 400: a value nested hundreds deep that the decoder
#: still takes could make the store's or the response's encoder recurse too far.
MAX_DEPTH: Final = 32


@dataclass(frozen=True, slots=True)
class _Problem:
    status: int
    code: str
    title: str
    pointer: str

    def as_error(self) -> dict[str, Any]:
        return {
            "status": str(self.status),
            "code": self.code,
            "title": self.title,
            "source": {"pointer": self.pointer},
        }


class TenantPatchError(StepupError, ValueError):
    """The request is invalid: 400; 409 when it names another resource (a type or id
    other than the endpoint's); 422 for a well-formed but unacceptable value. Problems
    of different kinds together are a 400, the most general (JSON:API 1.1, Errors).

    ``errors`` is a JSON:API ``errors`` array, ``document`` the whole response body.
    """

    def __init__(self, problems: list[_Problem]) -> None:
        kinds = {p.status for p in problems}
        self.status = kinds.pop() if len(kinds) == 1 else 400
        self.errors = [p.as_error() for p in problems]
        super().__init__("; ".join(f"{p.pointer or '/'}: {p.title}" for p in problems))

    @property
    def document(self) -> dict[str, Any]:
        return {"errors": self.errors}


class TenantNotFoundError(StepupError, LookupError):
    """No such tenant (404)."""

    status: Final = 404

    @property
    def document(self) -> dict[str, Any]:
        return {"errors": [{"status": "404", "code": "not_found", "title": N_("No such tenant")}]}


def tenant_document(tenant: Tenant) -> dict[str, Any]:
    """The JSON:API resource document for ``tenant``."""
    return {
        "data": {"type": RESOURCE_TYPE, "id": tenant.tenant_id, "attributes": tenant.attributes}
    }


def body_too_large() -> TenantPatchError:
    """The error for a body over :data:`MAX_BODY` bytes (integrations stop reading there)."""
    return TenantPatchError([_Problem(400, "too_large", N_("The body is too large"), "")])


def _too_deep(document: object) -> bool:
    """Is any object or array nested more than :data:`MAX_DEPTH` deep (iteratively)?"""
    level: list[object] = [document]
    for _ in range(MAX_DEPTH):
        level = [
            child
            for value in level
            if isinstance(value, dict | list)
            for child in (value.values() if isinstance(value, dict) else value)
            if isinstance(child, dict | list)
        ]
        if not level:
            return False
    return True


def body_not_json() -> TenantPatchError:
    """The error for a body that is not one JSON document: unparseable, or one the
    server could not read whole (a client gone mid-body, fewer bytes than declared)."""
    return TenantPatchError([_Problem(400, "invalid_json", N_("The body is not JSON"), "")])


def _parse(body: bytes | str | Mapping[str, Any]) -> Mapping[str, Any]:
    """The JSON object in ``body``; anything else is a 400 :class:`TenantPatchError`.

    Too deep a nesting (over :data:`MAX_DEPTH`, or a ``RecursionError`` in the decoder),
    a repeated member name, ``NaN`` or ``Infinity``, bytes that are not UTF-8 and numbers
    too long to convert are all "not JSON", never an unexpected exception.
    """
    if isinstance(body, Mapping):
        return body
    if len(body) > MAX_BODY:
        raise body_too_large()
    try:
        document = strict_json(body)
    except NotStrictJSONError:
        raise body_not_json() from None
    if not isinstance(document, dict):
        raise TenantPatchError(
            [_Problem(400, "invalid_document", N_("Expected a JSON object"), "")]
        )
    if _too_deep(document):
        raise body_not_json()
    return document


S = TypeVar("S")


def _pointer(base: str, name: str) -> str:
    """The JSON Pointer to member ``name`` of the value at ``base`` (RFC 6901 section 3:
    ``~`` is written ``~0`` and ``/`` is written ``~1``, ``~`` first)."""
    return f"{base}/{name.replace('~', '~0').replace('/', '~1')}"


def _is_at_member(name: str) -> bool:
    """Is ``name`` a JSON:API 1.1 @-member? Those are ignored when the document is read:
    "an @-Member that occurs in an attributes object is not an attribute"."""
    return name.startswith("@")


def _members(members: Mapping[str, Any]) -> list[str]:
    """The names in ``members`` other than @-members."""
    return [name for name in members if not _is_at_member(name)]


def _not_objects(members: Mapping[str, Any], base: str) -> list[_Problem]:
    """``meta``, ``jsonapi`` and ``links`` that are present but not objects (400)."""
    return [
        _Problem(400, "invalid", title, _pointer(base, name))
        for name, title in _OBJECT_MEMBERS.items()
        if name in members and not isinstance(members[name], dict)
    ]


class _TenantSettingsFlows(Generic[S]):
    def __init__(
        self,
        store: S,
        *,
        flags: Mapping[str, type] | None = None,
        attributes: Mapping[str, type] | None = None,
        clock: Clock = system_clock,
        events: EventBus | None = None,
    ) -> None:
        """``flags`` are the feature flags a PATCH may set (``sensitive_actions_reauth``
        always); ``attributes`` the other attributes it may set, with their JSON types."""
        self.store = store
        self.flags: dict[str, type] = {FEATURE_FLAG: bool, **(flags or {})}
        self.attributes: dict[str, type] = dict(attributes or {})
        self.clock = clock
        self.events = events or EventBus()

    def _validate(self, tenant_id: str, document: Mapping[str, Any]) -> dict[str, Any]:
        """Check the whole document and return the attributes to merge."""
        problems: list[_Problem] = []
        for member in sorted(set(_members(document)) - _TOP_MEMBERS):
            problems.append(
                _Problem(400, "unknown_member", N_("Unknown member"), _pointer("", member))
            )
        problems.extend(_not_objects(document, ""))
        data = document.get("data")
        if not isinstance(data, dict):
            problems.append(
                _Problem(400, "invalid_data", N_("data must be a resource object"), "/data")
            )
            raise TenantPatchError(problems)
        for member in sorted(set(_members(data)) - _DATA_MEMBERS):
            problems.append(
                _Problem(400, "unknown_member", N_("Unknown member"), _pointer("/data", member))
            )
        problems.extend(_not_objects(data, "/data"))
        # JSON:API 1.1 (Updating Resources): a type or id other than the endpoint's is a
        # 409 Conflict; a resource object without a type, or with a type or id that is
        # not a string, is malformed (400). The id may be left out: the seed's own body
        # has none.
        kind, identifier = data.get("type"), data.get("id", tenant_id)
        if not isinstance(kind, str):
            problems.append(
                _Problem(400, "invalid_type", N_("type must be 'tenant'"), "/data/type")
            )
        elif kind != RESOURCE_TYPE:
            problems.append(_Problem(409, "wrong_type", N_("type must be 'tenant'"), "/data/type"))
        if not isinstance(identifier, str):
            problems.append(_Problem(400, "invalid_id", N_("id must be a string"), "/data/id"))
        elif identifier != tenant_id:
            problems.append(
                _Problem(409, "id_mismatch", N_("id does not match the URL"), "/data/id")
            )
        attributes = data.get("attributes", {})
        if not isinstance(attributes, dict):
            problems.append(
                _Problem(400, "invalid", N_("attributes must be an object"), "/data/attributes")
            )
            raise TenantPatchError(problems)
        problems.extend(self._check_attributes(attributes))
        if problems:
            raise TenantPatchError(problems)
        return self._as_declared(attributes)

    def _as_declared(self, attributes: Mapping[str, Any]) -> dict[str, Any]:
        """The checked attributes with each whole number given for a ``float`` as a
        float, so the stored value has the type the app declared. @-members are left
        out: they are neither attributes nor flags."""
        declared = {
            name: _declared(self.attributes, name, attributes[name])
            for name in _members(attributes)
            if name != "feature_flags"
        }
        if "feature_flags" in attributes:
            flags = attributes["feature_flags"]
            declared["feature_flags"] = {
                flag: _declared(self.flags, flag, flags[flag]) for flag in _members(flags)
            }
        return declared

    def _check_attributes(self, attributes: Mapping[str, Any]) -> list[_Problem]:
        problems = []
        base = "/data/attributes"
        for name in _members(attributes):
            value, pointer = attributes[name], _pointer(base, name)
            if name == "feature_flags":
                if not isinstance(value, dict):
                    problems.append(
                        _Problem(422, "invalid", N_("feature_flags must be an object"), pointer)
                    )
                    continue
                for flag in _members(value):
                    problems.extend(_typed(self.flags, flag, value[flag], _pointer(pointer, flag)))
            else:
                problems.extend(_typed(self.attributes, name, value, pointer))
        return problems

    def _patch(
        self, tenant_id: str, body: bytes | str | Mapping[str, Any], actor_id: str, is_admin: bool
    ) -> Flow[Tenant]:
        if is_admin is not True:  # only True: "false" or 1 from an app's hook is no
            raise PermissionDeniedError(
                "only a tenant admin of this tenant may change its settings"
            )
        changes = dict(self._validate(tenant_id, _parse(body)))  # a copy: the body is the caller's
        flags = changes.pop("feature_flags", {})
        if not is_well_formed_id(tenant_id):  # no tenant has it, and a store cannot hold it
            raise TenantNotFoundError(tenant_id)
        # Read first only to recognise this patch's write if its answer is lost.
        read_before: Tenant | None = yield ("get_tenant", (tenant_id,))
        # One atomic store operation per PATCH: the store merges into what it holds at
        # that moment, so a concurrent PATCH of another attribute or flag survives, and
        # the events below report the values it actually replaced.
        patched: tuple[Tenant, Tenant] | None
        try:
            patched = yield ("patch_tenant", (tenant_id, changes, flags))
        except StoreUnavailableError:
            patched = yield from _landed(tenant_id, read_before, changes, flags)
        if patched is None:
            raise TenantNotFoundError(tenant_id)
        before, after = patched
        now = self.clock()
        for name in changes:
            old, new = before.attributes.get(name), after.attributes.get(name)
            if not _same(old, new):
                self.events.emit(
                    TenantAttributeChanged(
                        at=now,
                        actor_id=actor_id,
                        tenant_id=tenant_id,
                        attribute=name,
                        old=old,
                        new=new,
                    )
                )
        old_flags, new_flags = before.feature_flags, after.feature_flags
        for flag in flags:
            old, new = old_flags.get(flag, False), new_flags.get(flag, False)
            if not _same(old, new):
                self.events.emit(
                    TenantFlagChanged(
                        at=now,
                        actor_id=actor_id,
                        tenant_id=tenant_id,
                        flag=flag,
                        old=old,
                        new=new,
                    )
                )
        return after

    def _ensure(self, tenant_id: str, attributes: Mapping[str, Any] | None) -> Flow[Tenant]:
        # Create-unless-present in one store operation: a get-then-put could write the
        # defaults (flag off) over a tenant another process created and an admin
        # switched on in between.
        if not is_well_formed_id(tenant_id):
            raise MalformedInputError(
                f"a tenant id is non-empty text of at most {MAX_ID_LENGTH} characters,"
                " without control characters or lone surrogates"
            )
        default = Tenant(tenant_id, {"feature_flags": {FEATURE_FLAG: False}, **(attributes or {})})
        tenant: Tenant = yield ("add_tenant", (default,))
        return tenant


def _landed(
    tenant_id: str,
    read_before: Tenant | None,
    changes: Mapping[str, Any],
    flags: Mapping[str, Any],
) -> Flow[tuple[Tenant, Tenant]]:
    """``(read_before, stored)`` when the tenant stored is what this patch makes of the
    tenant read before it: the ``patch_tenant`` whose answer was lost (a reply that never
    came) ran, so its events are due and the PATCH is answered as done, as when the
    store answers. Anything else (another value, no tenant, no answer) cannot be told
    from a write that did not land: the outage stands (raised)."""
    try:
        stored: Tenant | None = yield ("get_tenant", (tenant_id,))
    except StoreUnavailableError:
        stored = None
    if (
        read_before is not None
        and stored is not None
        and _same(stored.attributes, read_before.patched(changes, flags).attributes)
    ):
        return read_before, stored
    raise StoreUnavailableError("patch_tenant: no answer, and the patch is not known to be stored")


#: Each JSON type's name in an error title (translated: these reach a person).
_TYPE_TITLES: Final[dict[type, str]] = {
    bool: N_("must be true or false"),
    str: N_("must be a string"),
    int: N_("must be a whole number"),
    float: N_("must be a number"),
    dict: N_("must be an object"),
    list: N_("must be an array"),
}


def _typed(allowed: Mapping[str, type], name: str, value: object, pointer: str) -> list[_Problem]:
    expected = allowed.get(name)
    if expected is None:
        return [_Problem(422, "unknown_member", N_("Unknown attribute"), pointer)]
    if expected is float and type(value) is int:  # JSON has one number type: 1 is one
        if abs(value) > _LARGEST_FLOAT:
            return [_Problem(422, "out_of_range", N_("is too large a number"), pointer)]
        return []
    if type(value) is not expected:
        title = _TYPE_TITLES.get(expected, N_("has the wrong type"))
        return [_Problem(422, "invalid_type", title, pointer)]
    return []


#: The largest whole number a float holds (about 1.8e308); beyond it ``float()`` fails.
_LARGEST_FLOAT: Final = int(sys.float_info.max)


def _same(old: object, new: object) -> bool:
    """Are ``old`` and ``new`` the same JSON value: equal, with the same types all the
    way down (``1``, ``1.0`` and ``true`` are three values, ``[1]`` and ``[true]`` two)?
    Iterative, so no stored value is too deep to compare."""
    pairs = [(old, new)]
    while pairs:
        a, b = pairs.pop()
        if type(a) is not type(b):
            return False
        if isinstance(a, dict) and isinstance(b, dict):
            if a.keys() != b.keys():
                return False
            pairs.extend((a[key], b[key]) for key in a)
        elif isinstance(a, list) and isinstance(b, list):
            if len(a) != len(b):
                return False
            pairs.extend(zip(a, b, strict=True))
        elif a != b:
            return False
    return True


def _declared(allowed: Mapping[str, type], name: str, value: object) -> object:
    """``value`` as the type declared for ``name``: a whole number for a float, a float."""
    if allowed.get(name) is float and type(value) is int:
        return float(value)
    return value


class TenantSettings(_TenantSettingsFlows[Store]):
    """Tenant settings over a sync store."""

    def patch(
        self,
        tenant_id: str,
        body: bytes | str | Mapping[str, Any],
        *,
        actor_id: str,
        actor_is_tenant_admin: bool,
    ) -> Tenant:
        """Merge the body's attributes into the tenant. An unknown tenant, or an id that
        is not well formed (:func:`stepup.ids.is_well_formed_id`), is
        :class:`TenantNotFoundError` (404), and nothing changes."""
        return run(self._patch(tenant_id, body, actor_id, actor_is_tenant_admin), self.store)

    def ensure(self, tenant_id: str, attributes: Mapping[str, Any] | None = None) -> Tenant:
        """Create the tenant with the flag off if it does not exist yet. A tenant id that is
        not well formed (:func:`stepup.ids.is_well_formed_id`) is
        :class:`~stepup.errors.MalformedInputError`, and nothing is written."""
        return run(self._ensure(tenant_id, attributes), self.store)


class AsyncTenantSettings(_TenantSettingsFlows[AsyncStore | Store]):
    """Tenant settings over an async store."""

    async def patch(
        self,
        tenant_id: str,
        body: bytes | str | Mapping[str, Any],
        *,
        actor_id: str,
        actor_is_tenant_admin: bool,
    ) -> Tenant:
        flow = self._patch(tenant_id, body, actor_id, actor_is_tenant_admin)
        return await run_async(flow, self.store)

    async def ensure(self, tenant_id: str, attributes: Mapping[str, Any] | None = None) -> Tenant:
        return await run_async(self._ensure(tenant_id, attributes), self.store)
