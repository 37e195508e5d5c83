"""Storage adapters. The port is :mod:`.base`; :class:`MemoryStore` needs nothing else."""

from .base import AsyncStore, Store
from .memory import MemoryStore

__all__ = ["AsyncStore", "MemoryStore", "Store"]
