"""A TOTP secret this app can no longer open (its key taken out of the configuration, or
a new key under the old id): the code is refused as unavailable, never a 500, other
devices still work, and the log tells the operator which key and what to do."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from stepup.adapters.storage.memory import MemoryStore
from stepup.events import EventBus, TwoFactorRejected
from stepup.sealing import SecretBox
from stepup.testing import SettableClock
from stepup.totp import TOTP
from stepup.verifier import VerifyReason

DEV_KEY, PRODUCTION_KEY = bytes(range(32)), bytes(range(32, 64))
ACCOUNT = "alice@example.com"


@pytest.fixture
def make(make_two_factor: Callable[..., Any]) -> Callable[[SecretBox], Any]:
    return lambda box: make_two_factor(box=box)


def enrolled(make: Callable[[SecretBox], Any], clock: SettableClock, box: SecretBox) -> TOTP:
    tf = make(box)
    enrolment = tf.begin_enrolment("alice", ACCOUNT)
    assert tf.confirm_enrolment("alice", TOTP(enrolment.secret).at(clock())).ok
    clock.advance(60)
    return TOTP(enrolment.secret)


@pytest.mark.parametrize(
    ("later", "named"),
    [
        (SecretBox({"k1": PRODUCTION_KEY}, current="k1"), "with the key configured as 'k1'"),
        (SecretBox({"k2": PRODUCTION_KEY}, current="k2"), "key id 'k1', which is not configured"),
    ],
)
def test_a_secret_no_configured_key_opens_is_unavailable_and_explained(
    make: Callable[[SecretBox], Any],
    clock: SettableClock,
    events: EventBus,
    caplog: pytest.LogCaptureFixture,
    later: SecretBox,
    named: str,
) -> None:
    totp = enrolled(make, clock, SecretBox({"k1": DEV_KEY}, current="k1"))
    seen: list[object] = []
    events.subscribe(seen.append)
    with caplog.at_level(logging.ERROR, logger="stepup.twofactor"):
        result = make(later).verify("alice", totp.at(clock()))
    assert result.reason is VerifyReason.UNAVAILABLE
    assert not result.ok
    rejected = [event for event in seen if isinstance(event, TwoFactorRejected)]
    assert [event.reason for event in rejected] == [VerifyReason.UNAVAILABLE]
    [line] = [r.getMessage() for r in caplog.records if r.name == "stepup.twofactor"]
    assert named in line
    assert "'alice'" in line
    assert "STEPUP_ENCRYPTION_KEYS" in line
    assert "remove-2fa" in line
    assert totp.secret not in line
    assert totp.at(clock()) not in line


def test_the_devices_that_open_still_verify(
    make: Callable[[SecretBox], Any], clock: SettableClock, store: MemoryStore
) -> None:
    box = SecretBox({"k1": DEV_KEY}, current="k1")
    first = enrolled(make, clock, box)
    tf = make(box)
    added = tf.begin_device("alice", ACCOUNT, name="Tablet")
    assert tf.confirm_device("alice", TOTP(added.secret).at(clock())).ok
    clock.advance(60)
    # The first device's secret is sealed under a key this app no longer has.
    credential = store.get_credential("alice")
    assert credential is not None
    stranger = SecretBox({"old": PRODUCTION_KEY}, current="old")
    devices = list(credential.totp_devices)
    devices[0] = replace(
        devices[0], secret=stranger.seal(first.secret, context=devices[0].device_id)
    )
    store.put_credential(replace(credential, devices=tuple(devices)))
    assert tf.verify("alice", TOTP(added.secret).at(clock())).ok
    clock.advance(60)
    assert tf.verify("alice", first.at(clock())).reason is VerifyReason.INVALID


def test_confirming_an_enrolment_whose_secret_no_longer_opens_is_unavailable(
    make: Callable[[SecretBox], Any], clock: SettableClock
) -> None:
    enrolment = make(SecretBox({"k1": DEV_KEY}, current="k1")).begin_enrolment("alice", ACCOUNT)
    later = make(SecretBox({"k1": PRODUCTION_KEY}, current="k1"))
    confirmation = later.confirm_enrolment("alice", TOTP(enrolment.secret).at(clock()))
    assert confirmation.result.reason is VerifyReason.UNAVAILABLE
    assert not confirmation.ok
