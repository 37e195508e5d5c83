"""A pytest plugin (registered by the ``pytest11`` entry point) with handy fixtures."""

from __future__ import annotations

import pytest

from .clock import SettableClock


@pytest.fixture
def settable_clock() -> SettableClock:
    """A clock frozen at a fixed instant; advance it instead of sleeping."""
    return SettableClock()


@pytest.fixture
def memory_store() -> object:
    from ..adapters.storage.memory import MemoryStore

    return MemoryStore()
