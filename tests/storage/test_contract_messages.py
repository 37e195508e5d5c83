"""A contract failure names the promise the store broke, not a bare diff."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from stepup.adapters.storage.memory import MemoryStore
from stepup.records import Attempt, Challenge
from stepup.testing.contract import StoreContract, _Runner
from stepup.throttle import apply_attempt, keep_until


class KeepsChallenges(MemoryStore):
    def take_challenge(self, challenge_id: str, now: float) -> Challenge | None:
        found = self._challenges.get(challenge_id)
        return found if found is not None and found.expires_at > now else None


class NeverBlocks(MemoryStore):
    def totp_attempt(self, key: str, step: int | None, now: float, throttle: Any) -> Attempt:
        state, attempt = apply_attempt(self._state(key, now), step, now, throttle)
        kept = keep_until(state, now, throttle)
        self._attempts[key] = (replace(state, blocked_until=0.0), kept)  # forgets the block
        return attempt  # says when the block ends, and then does not keep it


def _failure(case: str, store: Any) -> str:
    runner = _Runner(store)
    try:
        with pytest.raises(AssertionError) as caught:
            getattr(StoreContract(), case)(runner)
    finally:
        runner.close()
    return str(caught.value)


def test_a_challenge_handed_out_many_times_is_named() -> None:
    said = _failure("test_concurrent_take_wins_once", KeepsChallenges())
    assert said.startswith("take_challenge handed out one challenge 32 times: it must delete")
    said = _failure("test_challenge_is_taken_once", KeepsChallenges())
    assert said.startswith("take_challenge handed out a challenge twice")


def test_a_throttle_that_forgets_is_named() -> None:
    said = _failure("test_failures_follow_the_schedule", NeverBlocks())
    assert said.startswith("the throttle lost count: failure 2 in a row was counted as 1")
