"""Reading back the compact JSON the SQL and Redis stores write for their records."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

from ...frozen import frozen
from ...records import Grant, Tenant

__all__ = ["grant_text", "loads", "tenant", "tenant_for_decision"]

#: The C scanner behind ``json.loads`` (set by ``JSONDecoder.__init__``; untyped there).
_scan: Final[Callable[[str, int], tuple[Any, int]]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def loads(text: str) -> Any:
    """``json.loads`` for the compact JSON the stores write, without its per-call checks
    (a third of its time on a small record). Anything that is not exactly one JSON value
    goes to ``json.loads``, which parses or refuses it as ever."""
    try:
        value, end = _scan(text, 0)
    except StopIteration:  # not a JSON value at position 0 (e.g. leading space)
        return json.loads(text)
    if end != len(text):
        return json.loads(text)
    return value


def grant_text(grant: Grant, dumps: Callable[[dict[str, Any]], str]) -> str:
    """The one JSON text (by the store's ``dumps``) a store writes for ``grant`` and
    compares a grant it expects with (``replace_grant`` compares stored texts): the
    grant as :meth:`Grant.from_dict` reads it back, so equal grants have one text. An
    integer ``authenticated_at`` (a clock of whole seconds) is written as the float it
    reads back as, and an empty level, read back as none, is left out as none is."""
    data: dict[str, Any] = {
        "user_id": grant.user_id,
        "session_id": grant.session_id,
        "methods": sorted(grant.methods),
        "authenticated_at": float(grant.authenticated_at),
    }
    if isinstance(grant.level, str) and grant.level:
        data["level"] = grant.level
    return dumps(data)


def tenant(data: dict[str, Any]) -> Tenant:
    """A tenant from the dict just decoded from its stored JSON: nobody else holds that
    dict, so its attributes are taken as they are (``Tenant.from_dict`` copies them)."""
    attributes = data.get("attributes")
    return Tenant(data["tenant_id"], attributes if isinstance(attributes, dict) else {})


#: Tenants decoded for decision code, by the exact stored text, read-only (see
#: :mod:`stepup.frozen`): one decoded tenant answers every check of the same stored
#: value (a tenant's record is read on each guarded request), and no reader can change
#: it. An app's read decodes a changeable tenant of its own. Bounded: emptied when full.
_FOR_DECISION: dict[str, Tenant] = {}
_MOST_FOR_DECISION = 512


def tenant_for_decision(text: str) -> Tenant:
    """The tenant stored as ``text``, decoded once per distinct text and shared by the
    decisions that read it (a check's ``batch``); see :data:`_FOR_DECISION`."""
    found = _FOR_DECISION.get(text)
    if found is None:
        decoded = tenant(loads(text))
        found = Tenant(decoded.tenant_id, frozen(decoded.attributes))
        if len(_FOR_DECISION) >= _MOST_FOR_DECISION:
            _FOR_DECISION.clear()
        _FOR_DECISION[text] = found
    return found
