"""A memory store whose credential writes fail on demand, for the outage tests of the
two-factor pages."""

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
