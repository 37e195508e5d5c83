"""What the SSO refusal tests of the three frameworks share: a memory store whose
challenges cannot be taken while it is down (stepup's own store failing between the
trip's start and the provider's answer), and the checks on what a refusal reports."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import pytest

from stepup.adapters.storage.memory import MemoryStore
from stepup.errors import StoreUnavailableError
from stepup.events import ReauthFailed
from stepup.records import Challenge

#: The logger a refused SSO re-authentication is noted on.
LOGGER = "stepup.integrations"

#: The words of each refusal page (the English text of the msgids in
#: stepup.integrations.views), enough of them to tell the pages apart.
TOOK_TOO_LONG = "You took too long to sign in at your identity provider"
CANCELLED = "The sign-in was cancelled at your identity provider"
PROVIDER_REFUSED = "Your identity provider did not sign you in"
OTHER_ACCOUNT = "as a different account than the one you are signed in with here"
NOT_ASKED_AGAIN = "Your identity provider did not ask you to sign in again"
NOT_CONFIRMED = "Your identity provider did not confirm it is you"
TRY_AGAIN_SOON = "This cannot be done right now. Try again in a moment."


class ChallengeOutage(MemoryStore):
    """A memory store whose pending challenges cannot be taken while ``down``."""

    down = False

    def take_challenge(self, challenge_id: str, now: float) -> Challenge | None:
        if self.down:
            raise StoreUnavailableError("take_challenge: down")
        return super().take_challenge(challenge_id, now)


def refusals(events: Iterable[object]) -> list[tuple[str, str, str]]:
    """The ``ReauthFailed`` events among ``events``: (user, method, reason)."""
    return [(e.user_id, e.method, str(e.reason)) for e in events if isinstance(e, ReauthFailed)]


def assert_noted(caplog: pytest.LogCaptureFixture, method: str, reason: str) -> None:
    """Exactly one INFO line on stepup's logger notes the refusal, with its reason."""
    lines = [r for r in caplog.records if r.name == LOGGER]
    assert [(r.levelno, r.getMessage()) for r in lines] == [
        (logging.INFO, f"{method} re-authentication refused: {reason}")
    ]
    caplog.clear()


def assert_not_noted(caplog: pytest.LogCaptureFixture) -> None:
    """No INFO line on stepup's logger: an answer that matched no re-authentication of
    this session (a replay, a forged callback) is no failure of this user's."""
    assert [
        r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno >= logging.INFO
    ] == []
    caplog.clear()
