"""A store that fails while a re-authentication's grant is recorded (``put_grant``), for
the tests of what each framework answers then."""

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
