"""Stores that fail at one moment, for the tests of what each framework answers then:
while a re-authentication's grant is recorded (``put_grant``), or while a guard decides
(``get_grant``, ``get_tenant``)."""

from __future__ import annotations

from typing import Any

from stepup.adapters.storage.memory import MemoryStore
from stepup.errors import StoreUnavailableError

#: What the 503 page says (the views' TEXT["unavailable"]).
TRY_AGAIN = "This cannot be done right now. Try again in a moment."


class GrantOutage(MemoryStore):
    """A memory store whose ``put_grant`` fails while ``down`` is set."""

    down = False

    def put_grant(self, *args: Any, **kwargs: Any) -> Any:
        if self.down:
            raise StoreUnavailableError("put_grant: the store is down")
        return super().put_grant(*args, **kwargs)


class ReadOutage(MemoryStore):
    """A memory store whose grant and tenant reads fail while ``down`` is set: a guard
    cannot decide (``ReauthUnavailable``)."""

    down = False

    def get_grant(self, *args: Any, **kwargs: Any) -> Any:
        if self.down:
            raise StoreUnavailableError("get_grant: the store is down")
        return super().get_grant(*args, **kwargs)

    def get_tenant(self, *args: Any, **kwargs: Any) -> Any:
        if self.down:
            raise StoreUnavailableError("get_tenant: the store is down")
        return super().get_tenant(*args, **kwargs)
