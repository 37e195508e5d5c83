"""The contract suite against the in-memory store, used directly and from async code."""

from __future__ import annotations

import pytest

from stepup.adapters.storage.memory import MemoryStore
from stepup.testing.contract import StoreContract


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def store(self) -> MemoryStore:
        return MemoryStore()
