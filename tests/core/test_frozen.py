"""Read-only JSON containers: a shared record refuses every change, and still reads,
compares, deep-copies and serialises as the plain one."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stepup.frozen import FrozenDict, FrozenList, frozen, thawed

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)


@given(json_values)
def test_frozen_and_thawed_equal_the_value(value: Any) -> None:
    assert frozen(value) == value
    assert thawed(frozen(value)) == value
    assert json.dumps(frozen(value), sort_keys=True) == json.dumps(value, sort_keys=True)
    assert copy.deepcopy(frozen(value)) == value


def _containers(value: Any) -> list[Any]:
    found = []
    if isinstance(value, dict):
        found.append(value)
        for item in value.values():
            found += _containers(item)
    elif isinstance(value, list):
        found.append(value)
        for item in value:
            found += _containers(item)
    return found


@given(json_values)
def test_every_container_is_frozen_or_thawed_all_the_way_down(value: Any) -> None:
    for inner in _containers(frozen(value)):
        assert type(inner) in (FrozenDict, FrozenList)
    for inner in _containers(thawed(frozen(value))):
        assert type(inner) in (dict, list)


DICT_CHANGES: list[Callable[[Any], Any]] = [
    lambda d: d.__setitem__("a", 2),
    lambda d: d.__delitem__("a"),
    lambda d: d.clear(),
    lambda d: d.pop("a"),
    lambda d: d.popitem(),
    lambda d: d.setdefault("b", 1),
    lambda d: d.update(b=1),
    lambda d: d.__ior__({"b": 1}),
]
LIST_CHANGES: list[Callable[[Any], Any]] = [
    lambda v: v.__setitem__(0, 2),
    lambda v: v.__delitem__(0),
    lambda v: v.append(1),
    lambda v: v.extend([1]),
    lambda v: v.insert(0, 1),
    lambda v: v.pop(),
    lambda v: v.remove(1),
    lambda v: v.clear(),
    lambda v: v.sort(),
    lambda v: v.reverse(),
    lambda v: v.__iadd__([1]),
    lambda v: v.__imul__(2),
]


@pytest.mark.parametrize("change", DICT_CHANGES)
def test_a_frozen_dict_refuses_every_change(change: Callable[[Any], Any]) -> None:
    value = frozen({"a": 1, "nested": {"flag": True}})
    with pytest.raises(TypeError, match="read-only"):
        change(value)
    with pytest.raises(TypeError, match="read-only"):
        change(value["nested"])
    assert value == {"a": 1, "nested": {"flag": True}}


@pytest.mark.parametrize("change", LIST_CHANGES)
def test_a_frozen_list_refuses_every_change(change: Callable[[Any], Any]) -> None:
    value = frozen({"tags": [1, [1]]})
    with pytest.raises(TypeError, match="read-only"):
        change(value["tags"])
    with pytest.raises(TypeError, match="read-only"):
        change(value["tags"][1])
    assert value == {"tags": [1, [1]]}


def test_frozen_copies_what_it_is_given() -> None:
    given_value = {"feature_flags": {"on": True}, "tags": ["a"]}
    kept = frozen(given_value)
    given_value["feature_flags"]["on"] = False
    given_value["tags"].append("b")
    assert kept == {"feature_flags": {"on": True}, "tags": ["a"]}


def test_a_hand_built_frozen_dict_is_frozen_all_the_way_down() -> None:
    # FrozenDict is public: frozen() never trusts one to be read-only inside.
    outer = FrozenDict({"inner": {"x": 1}})
    kept = frozen(outer)
    with pytest.raises(TypeError):
        kept["inner"]["x"] = 2
