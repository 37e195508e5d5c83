"""Reading back the compact JSON the SQL and Redis stores write for their records."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

from ...records import Tenant

__all__ = ["loads", "tenant"]

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


def tenant(data: dict[str, Any]) -> Tenant:
    """A tenant from the dict just decoded from its stored JSON: nobody else holds that
    dict, so its attributes are taken as they are (``Tenant.from_dict`` copies them)."""
    attributes = data.get("attributes")
    return Tenant(data["tenant_id"], attributes if isinstance(attributes, dict) else {})
