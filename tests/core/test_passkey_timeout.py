"""The options of every passkey ceremony carry WebAuthn's ``timeout`` (milliseconds):
the challenge's lifetime, so the browser gives up when the server would instead of
after its own default (a late answer could then only be refused as expired)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stepup.adapters.storage import MemoryStore
from stepup.passkeys import AsyncPasskeys, Passkeys, RelyingParty
from stepup.subject import Subject
from stepup.testing import SettableClock
from stepup.testing.webauthn import SoftAuthenticator

ORIGIN = "https://app.example.com"
ALICE = Subject("alice", "session-a")
PENDING = "pending-sign-in-0123456789"  # the random id a pending sign-in keeps


def _rp(ttl: float | None = None) -> RelyingParty:
    if ttl is None:
        return RelyingParty(id="example.com", name="Example", origins=(ORIGIN,))
    return RelyingParty(id="example.com", name="Example", origins=(ORIGIN,), challenge_ttl=ttl)


def _ceremonies(passkeys: Passkeys) -> dict[str, Any]:
    """The options of the three ceremonies, as the endpoints send them (JSON)."""
    key = SoftAuthenticator(origin=ORIGIN)
    registration = passkeys.begin_registration(ALICE, "alice")
    sent = {"registration": json.loads(json.dumps(registration))}
    assert passkeys.finish_registration(ALICE, key.create(registration), "Key")
    sent["authentication"] = json.loads(json.dumps(passkeys.begin_authentication(ALICE)))
    sent["sign-in"] = json.loads(json.dumps(passkeys.begin_sign_in("alice", PENDING)))
    return sent


def test_the_default_lifetime_is_sent_as_300000_ms() -> None:
    sent = _ceremonies(Passkeys(MemoryStore(), _rp(), clock=SettableClock(1_700_000_000.0)))
    assert {name: options["publicKey"]["timeout"] for name, options in sent.items()} == {
        "registration": 300_000,
        "authentication": 300_000,
        "sign-in": 300_000,
    }


@pytest.mark.parametrize(
    ("ttl", "ms"),
    [
        (60, 60_000),
        (90.5, 90_500),
        (120.0004, 120_000),  # whole milliseconds, never past the challenge's end
        (0.0001, 1),  # at least one
        (10**8, 2**32 - 1),  # at most what a browser reads as it is (unsigned long)
    ],
)
def test_the_timeout_is_the_challenge_lifetime(ttl: float, ms: int) -> None:
    sent = _ceremonies(Passkeys(MemoryStore(), _rp(ttl), clock=SettableClock(1_700_000_000.0)))
    for options in sent.values():
        timeout = options["publicKey"]["timeout"]
        assert timeout == ms
        assert type(timeout) is int  # an integer, as parseCreationOptionsFromJSON reads


def test_the_async_ceremonies_send_it_too() -> None:
    import asyncio

    passkeys = AsyncPasskeys(MemoryStore(), _rp(45), clock=SettableClock(1_700_000_000.0))
    key = SoftAuthenticator(origin=ORIGIN)

    async def run() -> list[Any]:
        registration = await passkeys.begin_registration(ALICE, "alice")
        assert await passkeys.finish_registration(ALICE, key.create(registration))
        authentication = await passkeys.begin_authentication(ALICE)
        sign_in = await passkeys.begin_sign_in("alice", PENDING)
        return [registration, authentication, sign_in]

    assert [o["publicKey"]["timeout"] for o in asyncio.run(run())] == [45_000] * 3
