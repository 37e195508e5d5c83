"""``held_user``: whom a sign-in that skipped stepup's second step is held for (Django's
``hold_sign_in`` and Flask's ``hold_login`` both ask it)."""

from __future__ import annotations

import pytest

from stepup.integrations.views import held_user
from stepup.signin import SecondFactors
from stepup.subject import Subject
from stepup.twofactor import Channel

TOTP = SecondFactors(totp=True)
NONE = SecondFactors()


@pytest.mark.parametrize(
    ("subject", "enrolled", "expected"),
    [
        (None, {"7"}, ("7", TOTP)),
        (None, set(), ("7", NONE)),
        (Subject("pk-7", "s"), {"pk-7"}, ("pk-7", TOTP)),  # the app's own id
        (Subject("pk-7", "s"), {"7"}, ("7", TOTP)),  # the framework's id
        (Subject("pk-7", "s"), set(), ("pk-7", NONE)),
        (Subject("7", "s"), {"7"}, ("7", TOTP)),  # the same id, asked once
        # A loader that answers for an API key on the request is not believed alone.
        (Subject("alice", "k", channel=Channel.API_KEY), {"7"}, ("7", TOTP)),
        (Subject("alice", "t", channel=Channel.API), set(), ("7", NONE)),
    ],
)
def test_whom_the_sign_in_is_held_for(
    subject: Subject | None, enrolled: set[str], expected: tuple[str, SecondFactors]
) -> None:
    asked: list[str] = []

    def of(user_id: str) -> SecondFactors:
        asked.append(user_id)
        return TOTP if user_id in enrolled else NONE

    assert held_user("7", subject, of) == expected
    assert len(asked) == len(set(asked))  # each id asked once at most
    assert "alice" not in asked
