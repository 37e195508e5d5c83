"""A first enrolment is confirmed within the time the pages still show it, no later.

``pending_enrolment`` stops showing a pending enrolment after ``max_age`` (600 s, the
pages' ``ENROLMENT_TTL``) and the pages call it expired; ``confirm_enrolment`` refuses it
from the same moment, as ``confirm_device`` refuses a device being added: nothing is
spent, nothing confirmed, no recovery codes issued.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from stepup.adapters.storage.memory import MemoryStore
from stepup.errors import NotEnrolledError
from stepup.events import TwoFactorEnabled, TwoFactorRejected
from stepup.integrations.views import ENROLMENT_TTL
from stepup.testing import SettableClock
from stepup.totp import TOTP

from .conftest import Recorder


@pytest.fixture
def tf(make_two_factor: Callable[..., Any]) -> Any:
    return make_two_factor(issuer="Acme")


def assert_nothing_happened(
    tf: Any, store: MemoryStore, recorder: Recorder, device_id: str
) -> None:
    credential = store.get_credential("alice")
    assert credential is not None
    assert not credential.confirmed
    assert not credential.recovery_hashes
    assert not tf.is_enrolled("alice")
    assert recorder.of(TwoFactorEnabled) == []
    assert recorder.of(TwoFactorRejected) == []
    state = store.throttle_state(device_id)  # the user's ledger: no step spent, no failure
    assert (state.failures, state.last_step) == (0, None)


def test_an_enrolment_older_than_the_pages_ttl_cannot_be_confirmed(
    tf: Any, store: MemoryStore, clock: SettableClock, recorder: Recorder
) -> None:
    enrolment = tf.begin_enrolment("alice", "alice@example.com")
    phone = TOTP(enrolment.secret)
    clock.advance(ENROLMENT_TTL)
    assert tf.pending_enrolment("alice", "alice@example.com", device_id=enrolment.device_id) is None
    with pytest.raises(NotEnrolledError, match="too long ago"):
        tf.confirm_enrolment("alice", phone.at(clock()))
    assert_nothing_happened(tf, store, recorder, enrolment.device_id)
    clock.advance(7200)  # hours later: the same
    with pytest.raises(NotEnrolledError):
        tf.confirm_enrolment("alice", phone.at(clock()))
    assert_nothing_happened(tf, store, recorder, enrolment.device_id)
    # Beginning again is the way on, and it is confirmed as usual.
    again = tf.begin_enrolment("alice", "alice@example.com")
    assert tf.confirm_enrolment("alice", TOTP(again.secret).at(clock())).ok


def test_up_to_the_ttl_it_is_confirmed(tf: Any, clock: SettableClock) -> None:
    enrolment = tf.begin_enrolment("alice", "alice@example.com")
    clock.advance(ENROLMENT_TTL - 1)
    assert tf.pending_enrolment("alice", "alice@example.com", device_id=enrolment.device_id)
    confirmation = tf.confirm_enrolment("alice", TOTP(enrolment.secret).at(clock()))
    assert confirmation.ok
    assert len(confirmation.recovery_codes) == 10


def test_max_age_is_the_callers_as_on_confirm_device(
    tf: Any, store: MemoryStore, clock: SettableClock, recorder: Recorder
) -> None:
    enrolment = tf.begin_enrolment("alice", "alice@example.com")
    phone = TOTP(enrolment.secret)
    clock.advance(60)
    with pytest.raises(NotEnrolledError):
        tf.confirm_enrolment("alice", phone.at(clock()), max_age=60)
    assert_nothing_happened(tf, store, recorder, enrolment.device_id)
    assert tf.confirm_enrolment("alice", phone.at(clock()), max_age=61).ok


def test_an_enrolment_dated_in_the_future_is_refused(
    tf: Any, store: MemoryStore, clock: SettableClock, recorder: Recorder
) -> None:
    """A clock set back (or an enrolment written by a host whose clock runs ahead) is
    not taken for a fresh one, as pending_enrolment does not show it."""
    enrolment = tf.begin_enrolment("alice", "alice@example.com")
    clock.set(clock() - 60)
    with pytest.raises(NotEnrolledError):
        tf.confirm_enrolment("alice", TOTP(enrolment.secret).at(clock()))
    assert_nothing_happened(tf, store, recorder, enrolment.device_id)
