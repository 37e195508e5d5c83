"""Build frozen, slotted dataclasses on hot paths without their generated ``__init__``.

A frozen dataclass's ``__init__`` goes through ``object.__setattr__`` once per field,
which costs more than the rest of building the object. Setting the slots through their
descriptors makes the same object, just as immutable afterwards. Used only where a
benchmark showed the difference (decisions, throttle states, verify results).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Any

__all__ = ["slot_setters"]


def slot_setters(cls: type, names: str) -> list[Callable[[Any, Any], None]]:
    """The slot setters of ``cls``, in field order; ``names`` must list every field, so a
    field added later fails at import instead of being left unset."""
    assert [f.name for f in fields(cls)] == names.split(), f"{cls.__name__} fields changed"
    return [getattr(cls, name).__set__ for name in names.split()]
