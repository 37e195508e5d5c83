"""A memory store whose records of waiting sign-ins cannot be written or taken while
``down`` (every other call answers): the outage tests of the single-use waiting sign-in."""

from __future__ import annotations

from stepup.adapters.storage.memory import MemoryStore
from stepup.errors import StoreUnavailableError
from stepup.records import Challenge


class WaitingSignInsDown(MemoryStore):
    """The memory store, unable to keep or spend a waiting sign-in while ``down``."""

    down = False

    def put_challenge(self, challenge: Challenge) -> None:
        self._fail_for(challenge.challenge_id)
        super().put_challenge(challenge)

    def take_challenge(self, challenge_id: str, now: float) -> Challenge | None:
        self._fail_for(challenge_id)
        return super().take_challenge(challenge_id, now)

    def _fail_for(self, challenge_id: str) -> None:
        from stepup.integrations.views import WAITING_SIGN_IN_PREFIX  # read when used

        if self.down and challenge_id.startswith(WAITING_SIGN_IN_PREFIX):
            raise StoreUnavailableError("waiting sign-ins: the store is down")
