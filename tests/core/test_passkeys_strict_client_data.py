"""The client data JSON is held to strict JSON (RFC 8259 8.1's unique names): with a
member named twice, which value counts is the parser's choice (python-fido2 and the
standard library take the last), and no browser serialises that (WebAuthn 5.8.1.2)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stepup.adapters.storage import MemoryStore
from stepup.passkeys import PasskeyReason, Passkeys, RelyingParty
from stepup.subject import Subject
from stepup.testing import SettableClock
from stepup.testing.webauthn import SoftAuthenticator

ORIGIN = "https://app.example.com"
RP = RelyingParty(id="example.com", name="Example", origins=(ORIGIN,))
ALICE = Subject("alice", "session-a")


class RawClientData(SoftAuthenticator):
    """Signs whatever client data text the test writes, duplicates and all."""

    raw: str = ""

    def _client_data(self, kind: str, challenge: str) -> bytes:
        return self.raw.replace("KIND", kind).replace("CHALLENGE", challenge).encode()


def _passkeys() -> Passkeys:
    return Passkeys(MemoryStore(), RP, clock=SettableClock(1_700_000_000.0))


DUPLICATES = [
    '{"type":"KIND","challenge":"CHALLENGE","origin":"https://evil.example.net",'
    '"origin":"https://app.example.com","crossOrigin":false}',
    '{"type":"webauthn.create","type":"KIND","challenge":"CHALLENGE",'
    '"origin":"https://app.example.com"}',
    '{"type":"KIND","challenge":"stale","challenge":"CHALLENGE",'
    '"origin":"https://app.example.com"}',
    '{"type":"KIND","challenge":"CHALLENGE","origin":"https://app.example.com",'
    '"crossOrigin":true,"crossOrigin":false}',
    '{"type":"KIND","challenge":"CHALLENGE","origin":"https://app.example.com","x":NaN}',
]


def test_the_same_client_data_without_duplicates_is_accepted() -> None:
    passkeys = _passkeys()
    key = RawClientData(origin=ORIGIN)
    key.raw = '{"type":"KIND","challenge":"CHALLENGE","origin":"https://app.example.com"}'
    options = passkeys.begin_registration(ALICE, "alice")
    assert (
        passkeys.finish_registration(ALICE, key.create(options), "Key").reason is PasskeyReason.OK
    )
    answer = key.get(passkeys.begin_authentication(ALICE) or {})
    assert passkeys.finish_authentication(ALICE, answer).reason is PasskeyReason.OK


@pytest.mark.parametrize("raw", DUPLICATES)
def test_an_assertion_whose_client_data_repeats_a_member_is_malformed(raw: str) -> None:
    passkeys = _passkeys()
    key = RawClientData(origin=ORIGIN)
    key.raw = '{"type":"KIND","challenge":"CHALLENGE","origin":"https://app.example.com"}'
    assert (
        passkeys.finish_registration(
            ALICE, key.create(passkeys.begin_registration(ALICE, "alice")), "Key"
        ).reason
        is PasskeyReason.OK
    )
    key.raw = raw
    answer = key.get(passkeys.begin_authentication(ALICE) or {})
    result = passkeys.finish_authentication(ALICE, answer)
    assert result.reason is PasskeyReason.MALFORMED
    assert [p.sign_count for p in passkeys.registered("alice")] == [0]


@pytest.mark.parametrize("raw", DUPLICATES)
def test_a_registration_whose_client_data_repeats_a_member_is_malformed(raw: str) -> None:
    passkeys = _passkeys()
    key = RawClientData(origin=ORIGIN)
    key.raw = raw
    result = passkeys.finish_registration(
        ALICE, key.create(passkeys.begin_registration(ALICE, "alice")), "Key"
    )
    assert result.reason is PasskeyReason.MALFORMED
    assert passkeys.registered("alice") == ()


def test_a_payload_repeating_a_member_or_holding_nan_is_malformed() -> None:
    passkeys = _passkeys()
    key = SoftAuthenticator(origin=ORIGIN)
    options = passkeys.begin_registration(ALICE, "alice")
    answer: dict[str, Any] = key.create(options)
    text = json.dumps(answer)
    repeated = text.replace('"type": "public-key"', '"type": "x", "type": "public-key"', 1)
    assert repeated != text
    assert passkeys.finish_registration(ALICE, repeated, "Key").reason is PasskeyReason.MALFORMED
    with_nan = text[:-1] + ', "extra": NaN}'
    assert passkeys.finish_registration(ALICE, with_nan, "Key").reason is PasskeyReason.MALFORMED
    assert passkeys.finish_registration(ALICE, text, "Key").reason is PasskeyReason.OK


def test_registration_options_ask_for_no_attestation_in_so_many_words() -> None:
    options = _passkeys().begin_registration(ALICE, "alice")
    assert options["publicKey"]["attestation"] == "none"
