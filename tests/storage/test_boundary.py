"""The one table of store-boundary checks is held to the store protocol: every operation
but the decision reads has its check, and each check takes its operation's arguments by
the same names (the Django store calls it with the caller's own positional and keyword
arguments)."""

from __future__ import annotations

import inspect

import pytest

from stepup.adapters.storage.base import Store
from stepup.adapters.storage.boundary import INPUT_CHECKS

#: Reads that run on every guarded request and take ids decision code checked itself.
DECISION_READS = {"get_tenant", "get_grant", "batch"}


def operations() -> list[str]:
    return sorted(
        name
        for name, member in inspect.getmembers(Store, inspect.isfunction)
        if not name.startswith("_")
    )


def test_every_operation_but_the_decision_reads_has_a_check() -> None:
    assert set(INPUT_CHECKS) == set(operations()) - DECISION_READS


@pytest.mark.parametrize("operation", sorted(INPUT_CHECKS))
def test_a_check_takes_its_operations_arguments_by_name(operation: str) -> None:
    method = list(inspect.signature(getattr(Store, operation)).parameters.values())[1:]
    check = list(inspect.signature(INPUT_CHECKS[operation]).parameters.values())
    assert [p.name for p in check] == [p.name for p in method]
    # A default of the operation's is one of the check's too (a call may leave it out).
    for mine, theirs in zip(check, method, strict=True):
        if theirs.default is not inspect.Parameter.empty:
            assert mine.default is not inspect.Parameter.empty, mine.name
