"""Events from the two-factor path name the user: an audit log sees credential ids it
cannot map back to anyone, so TwoFactor puts the user on every event it causes."""

from __future__ import annotations

from typing import Any

import pytest

from stepup.adapters.storage.memory import MemoryStore
from stepup.events import (
    EventBus,
    ReplayDetected,
    Throttled,
    TwoFactorRejected,
    TwoFactorVerified,
)
from stepup.sealing import SecretBox
from stepup.testing import SettableClock
from stepup.totp import TOTP
from stepup.twofactor import AsyncTwoFactor, TwoFactor

KEY = bytes(range(32))


@pytest.fixture(params=["sync", "async"])
def tf(
    request: pytest.FixtureRequest,
    store: MemoryStore,
    clock: SettableClock,
    events: EventBus,
    synced: Any,
) -> Any:
    options = {
        "clock": clock,
        "events": events,
        "issuer": "Acme",
        "box": SecretBox({"k1": KEY}, current="k1"),
    }
    if request.param == "sync":
        return synced(TwoFactor(store, **options))
    return synced(AsyncTwoFactor(store, **options))


def test_every_two_factor_event_names_the_user(
    tf: Any, clock: SettableClock, recorder: Any
) -> None:
    enrolment = tf.begin_enrolment("alice", "alice@example.com")
    totp = TOTP(enrolment.secret)
    assert not tf.confirm_enrolment("alice", "12").ok  # malformed
    confirming = totp.at(clock())
    assert tf.confirm_enrolment("alice", confirming).ok
    assert not tf.verify("alice", confirming).ok  # replayed
    clock.advance(30)
    assert tf.verify("alice", totp.at(clock())).ok
    for _ in range(12):  # wrong codes until the throttle answers
        tf.verify("alice", "000000" if totp.at(clock()) != "000000" else "111111")
    assert not tf.use_recovery_code("alice", "not-a-recovery-code").ok

    caused = [
        *recorder.of(TwoFactorVerified),
        *recorder.of(TwoFactorRejected),
        *recorder.of(ReplayDetected),
        *recorder.of(Throttled),
    ]
    assert {type(event) for event in caused} == {
        TwoFactorVerified,
        TwoFactorRejected,
        ReplayDetected,
        Throttled,
    }
    assert {event.user_id for event in caused} == {"alice"}
