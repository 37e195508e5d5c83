"""A credential write whose store answer was lost, not the write (a reply that never
came): confirming an enrolment is what happened, so the recovery codes are shown, the
event emitted and earlier re-authentications revoked. It raised the outage while two-
factor was on: the codes were never shown, no event, the grants standing, and a retry
answered "already enabled". When the write did not land, the outage stands."""

from __future__ import annotations

import pytest

from stepup.adapters.storage.memory import MemoryStore
from stepup.errors import StoreUnavailableError
from stepup.events import EventBus, StepupEvent, TwoFactorEnabled
from stepup.records import Credential, Grant
from stepup.testing import SettableClock
from stepup.totp import TOTP
from stepup.twofactor import TwoFactor

T0 = 1_700_000_000.0


class LostReply(MemoryStore):
    """The next ``replace_credential`` writes (or not) and then fails, as a lost reply."""

    def __init__(self) -> None:
        super().__init__()
        self.lose: bool | None = None  # True: written, then lost; False: not written

    def replace_credential(self, credential: Credential, expected_version: int) -> bool:
        lose, self.lose = self.lose, None
        if lose is None:
            return super().replace_credential(credential, expected_version)
        if lose:
            super().replace_credential(credential, expected_version)
        raise StoreUnavailableError("replace_credential: connection closed")


@pytest.mark.parametrize("written", [True, False])
def test_a_confirmation_whose_answer_was_lost(written: bool) -> None:
    store, events, clock = LostReply(), list[StepupEvent](), SettableClock(T0)
    tf = TwoFactor(store, clock=clock, issuer="Acme", events=EventBus(events.append))
    store.put_grant(Grant("alice", "s1", frozenset({"pwd"}), T0), T0 + 600)
    totp = TOTP(tf.begin_enrolment("alice", "alice@example.com").secret)
    store.lose = written
    if written:
        confirmation = tf.confirm_enrolment("alice", totp.at(clock()))
        assert confirmation.ok
        assert len(confirmation.recovery_codes) > 0
        assert [e for e in events if isinstance(e, TwoFactorEnabled)]
        assert store.get_grant("alice", "s1") is None
        assert tf.is_enrolled("alice")
    else:
        with pytest.raises(StoreUnavailableError):
            tf.confirm_enrolment("alice", totp.at(clock()))
        assert not [e for e in events if isinstance(e, TwoFactorEnabled)]
        assert not tf.is_enrolled("alice")
