"""Read-only JSON containers, for a record many readers share.

A tenant's attributes are a dict, and a check only reads its flag. One decoded tenant
can then answer every check of the same stored value, as long as no reader can change
it: a careless ``tenant.attributes["feature_flags"][flag] = False`` on a shared tenant
would turn the protection off for every later check. :func:`frozen` gives a copy whose
dicts and lists refuse every change (``TypeError``) and still compare, serialise and
read as the plain ones; :func:`thawed` gives a plain, changeable copy back.
"""

from __future__ import annotations

from copy import deepcopy
from typing import Any, NoReturn, SupportsIndex

__all__ = ["FrozenDict", "FrozenList", "frozen", "thawed"]

_REFUSAL = "this record is shared and read-only; read one of your own to change it"
#: JSON's scalars: immutable, so a copy may be the value itself.
_SCALARS = frozenset({str, int, float, bool, type(None)})


def _refuse(self: object, *args: Any, **kwargs: Any) -> NoReturn:
    raise TypeError(_REFUSAL)


class FrozenDict(dict[str, Any]):
    """A ``dict`` that refuses changes (``isinstance(x, dict)`` and ``==`` still hold)."""

    __slots__ = ()
    __setitem__ = __delitem__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __ior__(self, other: Any) -> NoReturn:  # type: ignore[misc]
        raise TypeError(_REFUSAL)

    def __reduce__(self) -> tuple[type[FrozenDict], tuple[dict[str, Any]]]:
        return (FrozenDict, (dict(self),))  # copies and pickles build it whole


class FrozenList(list[Any]):
    """A ``list`` that refuses changes (``isinstance(x, list)`` and ``==`` still hold)."""

    __slots__ = ()
    __setitem__ = __delitem__ = _refuse
    append = extend = insert = pop = remove = clear = sort = reverse = _refuse

    def __iadd__(self, other: Any) -> NoReturn:  # type: ignore[misc]
        raise TypeError(_REFUSAL)

    def __imul__(self, other: SupportsIndex) -> NoReturn:
        raise TypeError(_REFUSAL)

    def __reduce__(self) -> tuple[type[FrozenList], tuple[list[Any]]]:
        return (FrozenList, (list(self),))


def frozen(value: Any) -> Any:
    """A read-only deep copy of a JSON-shaped ``value`` (other objects are deep-copied)."""
    if type(value) in _SCALARS:
        return value
    if isinstance(value, dict):
        return FrozenDict({key: frozen(item) for key, item in value.items()})
    if isinstance(value, list):
        return FrozenList([frozen(item) for item in value])
    return deepcopy(value)


def thawed(value: Any) -> Any:
    """A plain, changeable deep copy of ``value`` (frozen or not)."""
    if type(value) in _SCALARS:
        return value
    if isinstance(value, dict):
        return {key: thawed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [thawed(item) for item in value]
    return deepcopy(value)
