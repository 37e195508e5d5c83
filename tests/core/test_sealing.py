"""Secrets at rest: AES-GCM under versioned keys, bound to the credential, rotatable."""

from __future__ import annotations

import base64
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stepup.adapters.storage.memory import MemoryStore
from stepup.errors import ConfigurationError, StepupError
from stepup.sealing import SealError, SecretBox
from stepup.testing import SettableClock
from stepup.testing.strategies import secrets as base32_secrets
from stepup.totp import TOTP
from stepup.twofactor import TwoFactor
from stepup.verifier import VerifyReason

K1, K2 = bytes(range(32)), bytes(range(32, 64))


@given(secret=base32_secrets(), context=st.text(min_size=1, max_size=40))
def test_seal_round_trip_hides_the_secret(secret: str, context: str) -> None:
    box = SecretBox({"k1": K1}, current="k1")
    sealed = box.seal(secret, context=context)
    assert sealed.startswith("v1:k1:")
    assert secret not in sealed
    assert box.open(sealed, context=context) == secret


def test_each_seal_uses_a_fresh_nonce() -> None:
    box = SecretBox({"k1": K1}, current="k1")
    assert box.seal("JBSWY3DPEHPK3PXP", context="c") != box.seal("JBSWY3DPEHPK3PXP", context="c")


def test_wrong_context_fails() -> None:
    box = SecretBox({"k1": K1}, current="k1")
    sealed = box.seal("JBSWY3DPEHPK3PXP", context="totp:one")
    with pytest.raises(SealError):
        box.open(sealed, context="totp:two")


@pytest.mark.parametrize("position", [0, 5, 12, 20, -1])
def test_tampering_fails(position: int) -> None:
    box = SecretBox({"k1": K1}, current="k1")
    version, key_id, blob = box.seal("JBSWY3DPEHPK3PXP", context="c").split(":")
    raw = bytearray(base64.urlsafe_b64decode(blob))
    raw[position] ^= 0x01
    tampered = f"{version}:{key_id}:{base64.urlsafe_b64encode(bytes(raw)).decode()}"
    with pytest.raises(SealError):
        box.open(tampered, context="c")


@pytest.mark.parametrize(
    "sealed", ["v1:k1:", "v1:k1:!!!", "v1:k1:AAAA", "v2:k1:AAAA", "v1:nope:AAAA", "garbage", ""]
)
def test_garbage_fails_typed(sealed: str) -> None:
    with pytest.raises(SealError) as info:
        SecretBox({"k1": K1}, current="k1").open(sealed, context="c")
    assert isinstance(info.value, StepupError)


def test_a_wrong_key_under_the_same_id_fails() -> None:
    sealed = SecretBox({"k1": K1}, current="k1").seal("JBSWY3DPEHPK3PXP", context="c")
    with pytest.raises(SealError):
        SecretBox({"k1": K2}, current="k1").open(sealed, context="c")


def test_rotation_old_key_opens_reseal_moves_to_current() -> None:
    old = SecretBox({"k1": K1}, current="k1")
    sealed = old.seal("JBSWY3DPEHPK3PXP", context="c")
    rotated = SecretBox({"k1": K1, "k2": K2}, current="k2")
    assert rotated.open(sealed, context="c") == "JBSWY3DPEHPK3PXP"
    assert rotated.needs_reseal(sealed)
    resealed = rotated.reseal(sealed, context="c")
    assert resealed.startswith("v1:k2:")
    assert not rotated.needs_reseal(resealed)
    retired = SecretBox({"k2": K2}, current="k2")
    assert retired.open(resealed, context="c") == "JBSWY3DPEHPK3PXP"
    with pytest.raises(SealError):
        retired.open(sealed, context="c")


def test_plain_secrets_migrate_to_sealed() -> None:
    box = SecretBox({"k1": K1}, current="k1")
    assert box.needs_reseal("plain:JBSWY3DPEHPK3PXP")
    resealed = box.reseal("plain:JBSWY3DPEHPK3PXP", context="c")
    assert box.open(resealed, context="c") == "JBSWY3DPEHPK3PXP"
    assert not SecretBox().needs_reseal("plain:X")


@pytest.mark.parametrize(
    ("keys", "current"),
    [
        ({"k1": b"short"}, "k1"),
        ({"k1": "x" * 32}, "k1"),
        ({"": K1}, ""),
        ({"a:b": K1}, "a:b"),
        ({"k1": K1}, "k2"),
        ({"k1": K1}, None),
        ({}, "k1"),
    ],
)
def test_bad_key_configuration(keys: dict[str, bytes], current: str | None) -> None:
    with pytest.raises(ConfigurationError) as info:
        SecretBox(keys, current=current)
    for key in keys.values():
        assert repr(key) not in str(info.value)


def test_repr_names_key_ids_only() -> None:
    box = SecretBox({"k1": K1, "k2": K2}, current="k2")
    assert repr(box) == "SecretBox(key_ids=['k1', 'k2'], current='k2')"
    assert SecretBox.generate_key() != SecretBox.generate_key()
    assert len(SecretBox.generate_key()) == 32


def test_twofactor_rotation_end_to_end() -> None:
    clock = SettableClock(1_699_999_980)
    store = MemoryStore()
    before = TwoFactor(store, clock=clock, box=SecretBox({"k1": K1}, current="k1"))
    enrolment = before.begin_enrolment("alice", "alice@example.com")
    totp = TOTP(enrolment.secret)
    assert before.confirm_enrolment("alice", totp.at(clock())).ok

    after = TwoFactor(store, clock=clock, box=SecretBox({"k1": K1, "k2": K2}, current="k2"))
    clock.advance(30)
    assert after.verify("alice", totp.at(clock())).ok  # old key id still opens
    assert after.reseal("alice") is True
    credential = store.get_credential("alice")
    assert credential is not None
    assert credential.totp_devices[0].secret.startswith("v1:k2:")
    assert after.reseal("alice") is False
    assert after.reseal("nobody") is False

    retired = TwoFactor(store, clock=clock, box=SecretBox({"k2": K2}, current="k2"))
    clock.advance(30)
    assert retired.verify("alice", totp.at(clock())).ok

    # A secret copied onto another user's device (another device id) does not open there.
    (device,) = credential.totp_devices
    store.put_credential(
        replace(
            credential,
            user_id="bob",
            credential_id="totp:bob",
            recovery_hashes=(),
            devices=(replace(device, device_id="totp:bob"),),
        )
    )
    # It is refused as unavailable (and logged for the operator), never accepted.
    assert retired.verify("bob", totp.at(clock())).reason is VerifyReason.UNAVAILABLE
