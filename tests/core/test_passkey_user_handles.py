"""Opaque WebAuthn user handles (WebAuthn L3 §5.4.3, §14.6.1: the handle must not
contain personally identifying information). With a ``user_handle_key`` a new
registration's ``user.id`` is 32 bytes of HMAC-SHA256 under a purpose-specific subkey,
never the user id (which may be an e-mail address). An assertion's handle may be that
one, one under a rotated key, or the legacy raw-id handle of a passkey registered
before; anything else, another user's handle above all, is ``unknown_credential``."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from stepup.adapters.storage import MemoryStore
from stepup.errors import ConfigurationError
from stepup.passkeys import PasskeyReason, Passkeys, RelyingParty
from stepup.subject import Subject
from stepup.testing import SettableClock
from stepup.testing.webauthn import SoftAuthenticator

ORIGIN = "https://app.example.com"
RP = RelyingParty(id="example.com", name="Example", origins=(ORIGIN,))
ALICE = Subject("alice@example.com", "session-a")
BOB = Subject("bob@example.com", "session-b")
KEY = "a server secret of the integration"


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _passkeys(store: MemoryStore, key: object = KEY) -> Passkeys:
    return Passkeys(store, RP, clock=SettableClock(1_700_000_000.0), user_handle_key=key)  # type: ignore[arg-type]


def _handle(passkeys: Passkeys, subject: Subject) -> bytes:
    options = passkeys.begin_registration(subject, subject.user_id)
    return _unb64(options["publicKey"]["user"]["id"])


def _register(passkeys: Passkeys, subject: Subject = ALICE) -> SoftAuthenticator:
    key = SoftAuthenticator(origin=ORIGIN, counter=1)
    options = passkeys.begin_registration(subject, subject.user_id)
    assert passkeys.finish_registration(subject, key.create(options), "Key")
    return key


def _assert(passkeys: Passkeys, key: SoftAuthenticator, subject: Subject = ALICE) -> PasskeyReason:
    options = passkeys.begin_authentication(subject)
    assert options is not None
    return passkeys.finish_authentication(subject, key.get(options)).reason


def test_a_new_registration_gets_an_opaque_handle() -> None:
    passkeys = _passkeys(MemoryStore())
    handle = _handle(passkeys, ALICE)
    assert len(handle) == 32
    assert b"alice" not in handle
    assert handle != ALICE.user_id.encode()
    # HMAC-SHA256 of the id under a subkey of the secret, never under the secret itself.
    assert handle != hmac.new(KEY.encode(), ALICE.user_id.encode(), hashlib.sha256).digest()
    assert handle != hashlib.sha256(ALICE.user_id.encode()).digest()
    # Stable for the user (the authenticator keeps it), distinct between users and keys.
    assert _handle(_passkeys(MemoryStore()), ALICE) == handle
    assert _handle(passkeys, BOB) != handle
    assert _handle(_passkeys(MemoryStore(), "another secret"), ALICE) != handle
    # The name the app gave is kept for the browser to show.
    options = passkeys.begin_registration(ALICE, "Alice A.")
    assert options["publicKey"]["user"]["name"] == "Alice A."


def test_the_new_handle_passes_and_the_authenticator_sends_it() -> None:
    passkeys = _passkeys(MemoryStore())
    key = _register(passkeys)
    assert key.user_handle == _handle(passkeys, ALICE)
    assert _assert(passkeys, key) is PasskeyReason.OK


def test_a_passkey_registered_with_the_legacy_handle_keeps_working() -> None:
    store = MemoryStore()
    before = Passkeys(store, RP, clock=SettableClock(1_700_000_000.0))  # no key: legacy
    key = _register(before)
    assert key.user_handle == ALICE.user_id.encode()
    now = _passkeys(store)  # the same store after the upgrade
    assert _assert(now, key) is PasskeyReason.OK


def test_a_rotated_key_is_still_accepted_after_the_current_one() -> None:
    store = MemoryStore()
    key = _register(_passkeys(store, "the old secret"))
    rotated = _passkeys(store, ["the new secret", "the old secret"])
    assert _handle(rotated, ALICE) == _handle(_passkeys(MemoryStore(), "the new secret"), ALICE)
    assert _assert(rotated, key) is PasskeyReason.OK
    forgotten = _passkeys(store, "the new secret")
    assert _assert(forgotten, key) is PasskeyReason.UNKNOWN_CREDENTIAL


@pytest.mark.parametrize("whose", ["opaque", "legacy", "other key"])
def test_another_users_handle_never_passes(whose: str) -> None:
    """The GHSA-f66q-9rf6-8795 lesson: alice's own credential, sent with a handle that
    names bob (his opaque one, his raw id, or his handle under another key), is refused."""
    store = MemoryStore()
    passkeys = _passkeys(store)
    key = _register(passkeys)
    handles = {
        "opaque": _handle(passkeys, BOB),
        "legacy": BOB.user_id.encode(),
        "other key": _handle(_passkeys(MemoryStore(), "another secret"), ALICE),
    }
    key.user_handle = handles[whose]
    assert _assert(passkeys, key) is PasskeyReason.UNKNOWN_CREDENTIAL
    assert [p.sign_count for p in passkeys.registered(ALICE.user_id)] == [1]  # unchanged


def test_bobs_credential_with_alices_handle_is_refused() -> None:
    store = MemoryStore()
    passkeys = _passkeys(store)
    _register(passkeys)
    bobs = _register(passkeys, BOB)
    bobs.user_handle = _handle(passkeys, ALICE)
    assert _assert(passkeys, _register(passkeys), ALICE) is PasskeyReason.OK
    options = passkeys.begin_authentication(ALICE)
    assert options is not None
    result = passkeys.finish_authentication(ALICE, bobs.get(options))
    assert result.reason is PasskeyReason.UNKNOWN_CREDENTIAL


@pytest.mark.parametrize("key", ["", b"", [], [""], [7], 7])
def test_an_empty_or_odd_key_stops_start_up(key: object) -> None:
    with pytest.raises(ConfigurationError):
        _passkeys(MemoryStore(), key)


def test_without_a_key_the_legacy_handle_is_used() -> None:
    """Keyword-only and optional: an app that builds ``Passkeys`` itself without a key
    keeps the handle it had (the integrations always pass their secret)."""
    passkeys = Passkeys(MemoryStore(), RP)
    assert _handle(passkeys, ALICE) == ALICE.user_id.encode()
    with pytest.raises(TypeError):
        Passkeys(MemoryStore(), RP, None, None, None, KEY)  # type: ignore[misc]
