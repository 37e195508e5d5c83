"""Memory stores that fail on demand, for the outage tests: credential writes only
(:class:`FailingWrites`, the two-factor pages), or every call (:class:`StoreDown`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stepup.adapters.storage.memory import MemoryStore
from stepup.errors import StoreUnavailableError

#: The store calls that change a credential: they fail while ``broken`` (reads answer).
WRITES = ("replace_credential", "delete_credential", "revoke_grants")


class FailingWrites(MemoryStore):
    """A memory store whose writes fail on demand (a database gone read-only)."""

    broken = False


def _failing(name: str) -> Callable[..., Any]:
    real = getattr(MemoryStore, name)

    def call(self: FailingWrites, *args: Any, **kwargs: Any) -> Any:
        if self.broken:
            raise StoreUnavailableError(f"{name}: down")
        return real(self, *args, **kwargs)

    return call


for _name in WRITES:
    setattr(FailingWrites, _name, _failing(_name))


class StoreDown(MemoryStore):
    """A memory store that answers nothing while ``down`` is set (the database gone):
    every call raises, reads included."""

    down = False

    def __getattribute__(self, name: str) -> Any:
        value = super().__getattribute__(name)
        if name.startswith("_") or not callable(value) or not super().__getattribute__("down"):
            return value

        def fail(*args: Any, **kwargs: Any) -> Any:
            raise StoreUnavailableError(f"{name}: the store is down")

        return fail
