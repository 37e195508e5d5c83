"""A passkey registration whose store answer is lost, not its write (the reply that
never came, a store's later step that failed: Redis adds a passkey in three round
trips), is what happened: registered, with the event and every earlier
re-authentication revoked. It was answered "unavailable" while the passkey was stored
and worked, with no event and the grants standing. When the passkey is not stored, the
answer is the outage, and earlier re-authentications are revoked all the same (a factor
may have been added)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from stepup.adapters.storage import MemoryStore
from stepup.errors import StoreUnavailableError
from stepup.events import EventBus, StepupEvent
from stepup.passkeys import (
    AsyncPasskeys,
    PasskeyReason,
    PasskeyRegistered,
    Passkeys,
    RelyingParty,
)
from stepup.records import Grant, Passkey
from stepup.subject import Subject
from stepup.testing import SettableClock
from stepup.testing.webauthn import SoftAuthenticator

ORIGIN = "https://app.example.com"
RP = RelyingParty(id="example.com", name="Example", origins=(ORIGIN,))
ALICE = Subject("alice", "session-a")
T0 = 1_700_000_000.0


class LostReply(MemoryStore):
    """``add_passkey`` stores (or not) and then fails, as a lost reply does."""

    def __init__(self, *, stores: bool, reads: bool = True) -> None:
        super().__init__()
        self.stores, self.reads, self.down = stores, reads, False

    def add_passkey(self, passkey: Passkey, limit: int) -> bool:
        if self.stores:
            super().add_passkey(passkey, limit)
        self.down = not self.reads  # the reads after the add fail too
        raise StoreUnavailableError("add_passkey: connection closed")

    def list_passkeys(self, user_id: str) -> Any:
        if self.down:
            raise StoreUnavailableError("list_passkeys: connection closed")
        return super().list_passkeys(user_id)


def _register(store: MemoryStore, events: list[StepupEvent], *, use_async: bool = False) -> Any:
    key = SoftAuthenticator(origin=ORIGIN, counter=1)
    clock = SettableClock(T0)
    store.put_grant(Grant("alice", "session-a", frozenset({"pwd"}), T0), T0 + 600)
    if use_async:
        passkeys: Any = AsyncPasskeys(store, RP, clock=clock, events=EventBus(events.append))

        async def run() -> Any:
            options = await passkeys.begin_registration(ALICE, "alice")
            return await passkeys.finish_registration(ALICE, key.create(options), "Key")

        return asyncio.run(run())
    sync = Passkeys(store, RP, clock=clock, events=EventBus(events.append))
    options = sync.begin_registration(ALICE, "alice")
    return sync.finish_registration(ALICE, key.create(options), "Key")


@pytest.mark.parametrize("use_async", [False, True])
def test_a_stored_passkey_whose_answer_was_lost_is_registered(use_async: bool) -> None:
    store, events = LostReply(stores=True), []
    result = _register(store, events, use_async=use_async)
    assert result.reason is PasskeyReason.OK
    assert result.passkey is not None
    assert [type(e) for e in events if isinstance(e, PasskeyRegistered)] == [PasskeyRegistered]
    assert store.get_grant("alice", "session-a") is None  # earlier re-authentications gone


@pytest.mark.parametrize("reads", [True, False], ids=["not-stored", "unreadable"])
def test_a_passkey_not_known_to_be_stored_is_an_outage_that_revokes(reads: bool) -> None:
    store, events = LostReply(stores=False, reads=reads), []
    result = _register(store, events)
    assert result.reason is PasskeyReason.UNAVAILABLE
    assert not [e for e in events if isinstance(e, PasskeyRegistered)]
    assert store.get_grant("alice", "session-a") is None
