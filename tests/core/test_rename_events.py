"""Renaming a TOTP device or a passkey is in the audit trail: an event when a name was
written, naming who renamed it, never the name (the user's own text)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from stepup.adapters.storage.memory import MemoryStore
from stepup.events import EventBus, TwoFactorDeviceRenamed
from stepup.passkeys import AsyncPasskeys, PasskeyReason, PasskeyRenamed, Passkeys, RelyingParty
from stepup.subject import Subject
from stepup.testing import SettableClock
from stepup.testing.webauthn import SoftAuthenticator
from stepup.totp import TOTP

ACCOUNT = "alice@example.com"
ORIGIN = "https://app.example.com"
RP = RelyingParty(id="example.com", name="Example", origins=(ORIGIN,))
ALICE = Subject("alice", "s1")


def _enrol(tf: Any, clock: SettableClock) -> None:
    enrolment = tf.begin_enrolment("alice", ACCOUNT)
    assert tf.confirm_enrolment("alice", TOTP(enrolment.secret).at(clock())).ok
    clock.advance(30)


def _passkeys(mode: str, store: MemoryStore, clock: SettableClock, events: EventBus) -> Any:
    if mode == "sync":
        return Passkeys(store, RP, clock=clock, events=events)
    passkeys = AsyncPasskeys(store, RP, clock=clock, events=events)

    class Driven:
        def __getattr__(self, name: str) -> Any:
            method = getattr(passkeys, name)
            return lambda *a, **k: asyncio.run(method(*a, **k))

    return Driven()


# D7: renames ------------------------------------------------------------------------


def test_renaming_a_device_is_an_event_only_when_the_name_changes(
    make_two_factor: Callable[..., Any], clock: SettableClock, recorder: Any
) -> None:
    tf = make_two_factor()
    _enrol(tf, clock)
    (device,) = tf.devices("alice")
    recorder.events.clear()
    tf.rename_device("alice", device.device_id, "Work phone")
    tf.rename_device("alice", device.device_id, "  Work phone ")  # the same name: no write
    tf.rename_device("alice", device.device_id, "Old phone", actor_id="admin:bob")
    assert recorder.events == [
        TwoFactorDeviceRenamed(
            at=clock(), user_id="alice", device_id=device.device_id, renamed_by="alice"
        ),
        TwoFactorDeviceRenamed(
            at=clock(), user_id="alice", device_id=device.device_id, renamed_by="admin:bob"
        ),
    ]
    assert "Work phone" not in repr(recorder.events)  # the user's text stays out


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_renaming_a_passkey_is_an_event_when_it_was_written(
    mode: str, store: MemoryStore, clock: SettableClock, recorder: Any, events: EventBus
) -> None:
    passkeys = _passkeys(mode, store, clock, events)
    options = passkeys.begin_registration(ALICE, "alice")
    result = passkeys.finish_registration(ALICE, SoftAuthenticator(origin=ORIGIN).create(options))
    assert result.reason is PasskeyReason.OK
    cid = result.passkey.credential_id
    recorder.events.clear()
    assert passkeys.rename("alice", cid, "Blue key")
    assert passkeys.rename("alice", cid, "Red key", renamed_by="admin:bob")
    assert not passkeys.rename("alice", "bm9uZQ", "Nobody's")  # no such passkey: no event
    assert recorder.events == [
        PasskeyRenamed(at=clock(), user_id="alice", credential_id=cid, renamed_by="alice"),
        PasskeyRenamed(at=clock(), user_id="alice", credential_id=cid, renamed_by="admin:bob"),
    ]
