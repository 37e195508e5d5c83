"""Passkey ceremonies at the protocol level, with a software authenticator: every refusal."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stepup.adapters.storage import MemoryStore
from stepup.errors import ConfigurationError
from stepup.events import EventBus, StepupEvent
from stepup.passkeys import (
    MAX_PAYLOAD_BYTES,
    AsyncPasskeys,
    PasskeyCounterRegressed,
    PasskeyReason,
    Passkeys,
    RelyingParty,
)
from stepup.records import Grant
from stepup.subject import Subject
from stepup.testing import SettableClock
from stepup.testing.webauthn import SoftAuthenticator

ORIGIN = "https://app.example.com"
RP = RelyingParty(id="example.com", name="Example", origins=(ORIGIN,))
ALICE = Subject("alice", "session-a")
BOB = Subject("bob", "session-b")


class Harness:
    def __init__(self, store: Any = None) -> None:
        self.clock = SettableClock(1_700_000_000.25)
        self.events: list[StepupEvent] = []
        self.store = store if store is not None else MemoryStore()
        self.passkeys = Passkeys(
            self.store, RP, clock=self.clock, events=EventBus(self.events.append)
        )

    def register(self, subject: Subject = ALICE, **kwargs: Any) -> SoftAuthenticator:
        kwargs.setdefault("counter", 5)
        authenticator = SoftAuthenticator(origin=ORIGIN, **kwargs)
        options = self.passkeys.begin_registration(subject, subject.user_id)
        result = self.passkeys.finish_registration(subject, authenticator.create(options), "Key")
        assert result.reason is PasskeyReason.OK
        return authenticator

    def assert_with(
        self, authenticator: SoftAuthenticator, subject: Subject = ALICE, **kwargs: Any
    ) -> Any:
        options = self.passkeys.begin_authentication(subject, **kwargs)
        assert options is not None
        return options


@pytest.fixture
def h() -> Harness:
    return Harness()


def test_register_then_assert(h: Harness) -> None:
    key = h.register()
    options = h.assert_with(key)
    result = h.passkeys.finish_authentication(ALICE, key.get(options))
    assert result
    assert result.reason is PasskeyReason.OK
    assert result.methods == {"phr", "hwk", "user", "mfa"}
    (stored,) = h.passkeys.registered("alice")
    assert stored.sign_count == 6
    assert stored.last_used_at == h.clock()


def test_synced_passkey_proves_swk_not_hwk(h: Harness) -> None:
    key = h.register(backup_eligible=True, counter=0)
    result = h.passkeys.finish_authentication(ALICE, key.get(h.assert_with(key)))
    assert result.methods == {"phr", "swk", "user", "mfa"}
    assert h.passkeys.registered("alice")[0].backup_state is True


def test_another_users_credential_is_refused(h: Harness) -> None:
    """GHSA-f66q-9rf6-8795: a credential registered to Bob never satisfies Alice."""
    h.register(ALICE)
    bobs = h.register(BOB)
    options = h.assert_with(bobs, ALICE)
    bobs.user_handle = None  # even without a user handle to give it away
    result = h.passkeys.finish_authentication(ALICE, bobs.get(options))
    assert result.reason is PasskeyReason.UNKNOWN_CREDENTIAL
    assert not result


def test_user_handle_of_another_user_is_refused(h: Harness) -> None:
    key = h.register()
    key.user_handle = b"bob"
    result = h.passkeys.finish_authentication(ALICE, key.get(h.assert_with(key)))
    assert result.reason is PasskeyReason.UNKNOWN_CREDENTIAL


@pytest.mark.parametrize(
    "bend",
    [
        lambda k: setattr(k, "origin", "https://evil.example"),
        lambda k: setattr(k, "origin", "http://app.example.com"),
        lambda k: setattr(k, "rp_id", "evil.example"),
        lambda k: setattr(k, "_key", SoftAuthenticator(origin=ORIGIN)._key),  # wrong signature
    ],
    ids=["other-origin", "http-origin", "other-rp-id", "bad-signature"],
)
def test_library_checks_refuse(h: Harness, bend: Callable[[SoftAuthenticator], None]) -> None:
    key = h.register()
    options = h.assert_with(key)
    bend(key)
    result = h.passkeys.finish_authentication(ALICE, key.get(options))
    assert result.reason is PasskeyReason.INVALID
    assert h.passkeys.registered("alice")[0].sign_count == 5  # nothing changed


def test_registration_from_another_origin_is_refused(h: Harness) -> None:
    key = SoftAuthenticator(origin="https://evil.example")
    options = h.passkeys.begin_registration(ALICE, "alice")
    result = h.passkeys.finish_registration(ALICE, key.create(options))
    assert result.reason is PasskeyReason.INVALID
    assert h.passkeys.registered("alice") == ()


def test_replayed_challenge_is_refused(h: Harness) -> None:
    key = h.register()
    options = h.assert_with(key)
    assert h.passkeys.finish_authentication(ALICE, key.get(options))
    assert h.passkeys.finish_authentication(ALICE, key.get(options)).reason is (
        PasskeyReason.CHALLENGE
    )


def test_expired_challenge_is_refused(h: Harness) -> None:
    key = h.register()
    options = h.assert_with(key)
    h.clock.advance(RP.challenge_ttl)
    result = h.passkeys.finish_authentication(ALICE, key.get(options))
    assert result.reason is PasskeyReason.CHALLENGE


def test_challenge_from_another_session_is_refused(h: Harness) -> None:
    key = h.register()
    options = h.assert_with(key, Subject("alice", "stolen-elsewhere"))
    result = h.passkeys.finish_authentication(ALICE, key.get(options))
    assert result.reason is PasskeyReason.CHALLENGE


def test_registration_challenge_cannot_be_spent_on_an_assertion(h: Harness) -> None:
    key = h.register()
    options = h.passkeys.begin_registration(ALICE, "alice")
    result = h.passkeys.finish_authentication(ALICE, key.get(h.assert_with(key)), transaction=None)
    assert result  # the real one works ...
    stolen = key.get({"publicKey": {"rpId": "example.com", **options["publicKey"]}})
    assert h.passkeys.finish_authentication(ALICE, stolen).reason is PasskeyReason.CHALLENGE


def test_challenge_presented_twice_at_once_succeeds_once(h: Harness) -> None:
    """The competing request runs inside the first one, between claim and record."""
    key = h.register()
    options = h.assert_with(key)
    first, second = key.get(options), key.get(options)
    competing: list[Any] = []
    real_list = h.store.list_passkeys

    def interleaved(user_id: str) -> Any:
        if not competing:
            competing.append(None)  # before the call: the competing request lists too
            competing[0] = h.passkeys.finish_authentication(ALICE, second)
        return real_list(user_id)

    h.store.list_passkeys = interleaved
    result = h.passkeys.finish_authentication(ALICE, first)
    assert {result.reason, competing[0].reason} == {PasskeyReason.OK, PasskeyReason.CHALLENGE}


def test_user_verification_missing_where_required(h: Harness) -> None:
    key = h.register()
    key.user_verified = False
    result = h.passkeys.finish_authentication(ALICE, key.get(h.assert_with(key)))
    assert result.reason is PasskeyReason.USER_VERIFICATION


def test_user_verification_optional_when_rule_allows(h: Harness) -> None:
    key = h.register()
    key.user_verified = False
    options = h.assert_with(key, user_verification=False)
    result = h.passkeys.finish_authentication(ALICE, key.get(options))
    assert result
    assert result.methods == {"phr", "hwk"}


def test_counter_regression_is_refused_and_evented(h: Harness) -> None:
    key = h.register()
    assert h.passkeys.finish_authentication(ALICE, key.get(h.assert_with(key)))
    key.counter = 3  # a clone with an older counter
    result = h.passkeys.finish_authentication(ALICE, key.get(h.assert_with(key)))
    assert result.reason is PasskeyReason.COUNTER
    regressed = [e for e in h.events if isinstance(e, PasskeyCounterRegressed)]
    assert [(e.stored, e.presented) for e in regressed] == [(6, 4)]
    assert h.passkeys.registered("alice")[0].sign_count == 6


def test_counter_moved_by_a_concurrent_use_is_refused(h: Harness) -> None:
    """Compare-and-set: the other assertion lands between our read and our write."""
    key = h.register()
    clone = SoftAuthenticator(
        origin=ORIGIN, credential_id=key.credential_id, counter=9, _key=key._key
    )
    clone.user_handle = key.user_handle
    ours = key.get(h.assert_with(key))
    theirs = clone.get(h.assert_with(clone))
    competing: list[Any] = []
    real_record = h.store.record_passkey_use

    def interleaved(passkey: Any, expected: int) -> bool:
        if not competing:
            competing.append(None)  # before the call: the competing request records too
            competing[0] = h.passkeys.finish_authentication(ALICE, theirs)
        return real_record(passkey, expected)

    h.store.record_passkey_use = interleaved
    result = h.passkeys.finish_authentication(ALICE, ours)
    assert competing[0].reason is PasskeyReason.OK
    assert result.reason is PasskeyReason.COUNTER
    assert h.passkeys.registered("alice")[0].sign_count == 10


@pytest.mark.parametrize(
    "payload",
    [
        "",
        "null",
        "[]",
        "{}",
        "[" * 100_000,
        json.dumps({"id": "x", "rawId": "x", "response": {}}),
        "x" * (MAX_PAYLOAD_BYTES + 1),
    ],
    ids=["empty", "null", "list", "object", "nested", "empty-response", "oversized"],
)
def test_malformed_payload_is_a_clear_refusal_and_changes_nothing(h: Harness, payload: str) -> None:
    key = h.register()
    h.assert_with(key)
    challenges = dict(h.store._challenges)
    result = h.passkeys.finish_authentication(ALICE, payload)
    assert result.reason is PasskeyReason.MALFORMED
    assert h.store._challenges == challenges
    registration = h.passkeys.finish_registration(ALICE, payload)
    assert registration.reason is PasskeyReason.MALFORMED


@settings(max_examples=60, deadline=None)
@given(
    st.recursive(
        st.none() | st.text() | st.integers(), lambda c: st.lists(c) | st.dictionaries(st.text(), c)
    )
)
def test_arbitrary_json_never_passes(value: Any) -> None:
    h = Harness()
    key = h.register()
    h.assert_with(key)
    result = h.passkeys.finish_authentication(ALICE, json.dumps(value))
    assert not result
    assert result.reason in {PasskeyReason.MALFORMED, PasskeyReason.CHALLENGE}


def test_transaction_bound_assertion_cannot_be_spent_on_another(h: Harness) -> None:
    key = h.register()
    options = h.assert_with(key, transaction="delete workspace prod-eu")
    result = h.passkeys.finish_authentication(
        ALICE, key.get(options), transaction="delete workspace prod-us"
    )
    assert result.reason is PasskeyReason.CHALLENGE
    options = h.assert_with(key, transaction="delete workspace prod-eu")
    result = h.passkeys.finish_authentication(
        ALICE, key.get(options), transaction="delete workspace prod-eu"
    )
    assert result


def test_duplicate_credential_and_limit(h: Harness) -> None:
    key = h.register()
    options = h.passkeys.begin_registration(BOB, "bob")
    again = h.passkeys.finish_registration(BOB, key.create(options))
    assert again.reason is PasskeyReason.DUPLICATE
    limited = Passkeys(
        h.store,
        RelyingParty(id="example.com", name="x", origins=(ORIGIN,), max_passkeys_per_user=2),
        clock=h.clock,
    )
    options = limited.begin_registration(ALICE, "alice")  # one place left
    h.register()  # another device takes it between the begin and the finish
    other = SoftAuthenticator(origin=ORIGIN)
    result = limited.finish_registration(ALICE, other.create(options))
    assert result.reason is PasskeyReason.LIMIT
    assert len(h.passkeys.registered("alice")) == 2


def test_registration_excludes_existing_credentials(h: Harness) -> None:
    key = h.register()
    options = h.passkeys.begin_registration(ALICE, "alice")
    excluded = [c["id"] for c in options["publicKey"]["excludeCredentials"]]
    assert excluded == [h.passkeys.registered("alice")[0].credential_id]
    assert key.credential_id


def test_no_passkey_means_no_options(h: Harness) -> None:
    assert h.passkeys.begin_authentication(ALICE) is None


def test_names_are_one_short_line(h: Harness) -> None:
    key = SoftAuthenticator(origin=ORIGIN)
    options = h.passkeys.begin_registration(ALICE, "alice")
    result = h.passkeys.finish_registration(ALICE, key.create(options), "  my\n\tphone " + "x" * 99)
    assert result.passkey is not None
    assert result.passkey.name.startswith("my phone x")
    assert len(result.passkey.name) == 64
    assert h.passkeys.rename("alice", result.passkey.credential_id, "   ")
    assert h.passkeys.registered("alice")[0].name == "Passkey"


def test_removal_revokes_grants(h: Harness) -> None:
    h.register()
    h.store.put_grant(Grant("alice", "session-a", frozenset({"phr"}), h.clock()), h.clock() + 60)
    (passkey,) = h.passkeys.registered("alice")
    assert h.passkeys.remove("alice", passkey.credential_id, removed_by="alice")
    assert h.store.get_grant("alice", "session-a") is None
    assert h.passkeys.registered("alice") == ()
    assert not h.passkeys.remove("alice", passkey.credential_id, removed_by="alice")


def _grants_in_two_sessions(h: Harness) -> None:
    for session in ("session-a", "session-z"):
        grant = Grant("alice", session, frozenset({"pwd"}), h.clock())
        h.store.put_grant(grant, h.clock() + 3600)


def test_registration_revokes_the_users_grants_in_every_session(h: Harness) -> None:
    """Issue 12 item 9: adding a passkey changes the user's factors (ASVS 5.0 §7.4.3)."""
    _grants_in_two_sessions(h)
    h.store.put_grant(Grant("bob", "session-b", frozenset({"pwd"}), h.clock()), h.clock() + 60)
    h.register()
    assert h.store.get_grant("alice", "session-a") is None
    assert h.store.get_grant("alice", "session-z") is None
    assert h.store.get_grant("bob", "session-b") is not None  # only the user's own


def test_a_refused_registration_revokes_nothing(h: Harness) -> None:
    key = h.register()
    _grants_in_two_sessions(h)
    options = h.passkeys.begin_registration(ALICE, "alice")
    again = h.passkeys.finish_registration(ALICE, key.create(options))
    assert again.reason is PasskeyReason.DUPLICATE
    assert h.store.get_grant("alice", "session-a") is not None
    assert h.store.get_grant("alice", "session-z") is not None


def test_async_registration_revokes_too() -> None:
    import asyncio

    h = Harness()
    _grants_in_two_sessions(h)
    passkeys = AsyncPasskeys(h.store, RP, clock=h.clock)
    key = SoftAuthenticator(origin=ORIGIN)

    async def register() -> Any:
        options = await passkeys.begin_registration(ALICE, "alice")
        return await passkeys.finish_registration(ALICE, key.create(options))

    assert asyncio.run(register()).reason is PasskeyReason.OK
    assert h.store.get_grant("alice", "session-a") is None
    assert h.store.get_grant("alice", "session-z") is None


def test_store_failure_fails_closed(h: Harness) -> None:
    key = h.register()
    options = h.assert_with(key)

    def broken(*_: Any) -> Any:
        raise ConnectionError("postgresql://user:secret@db/x")

    h.store.list_passkeys = broken
    result = h.passkeys.finish_authentication(ALICE, key.get(options))
    assert result.reason is PasskeyReason.UNAVAILABLE


async def test_async_ceremonies_share_the_flow() -> None:
    clock = SettableClock(1_700_000_000.0)
    passkeys = AsyncPasskeys(MemoryStore(), RP, clock=clock)
    key = SoftAuthenticator(origin=ORIGIN, counter=1)
    options = await passkeys.begin_registration(ALICE, "alice")
    assert await passkeys.finish_registration(ALICE, key.create(options))
    options = await passkeys.begin_authentication(ALICE)
    assert options is not None
    assert await passkeys.finish_authentication(ALICE, key.get(options))
    assert not await passkeys.finish_authentication(ALICE, key.get(options))


@pytest.mark.parametrize(
    ("rp_id", "origins"),
    [
        ("", (ORIGIN,)),
        ("https://example.com", (ORIGIN,)),
        ("Example.com", (ORIGIN,)),
        ("example.com", ()),
        ("example.com", ("http://app.example.com",)),
        ("example.com", ("https://example.org",)),
        ("example.com", ("https://notexample.com",)),
        ("example.com", ("https://app.example.com/path",)),
    ],
)
def test_relying_party_is_checked_at_start_up(rp_id: str, origins: tuple[str, ...]) -> None:
    with pytest.raises(ConfigurationError):
        RelyingParty(id=rp_id, name="x", origins=origins)


def test_localhost_may_use_http() -> None:
    assert RelyingParty(id="localhost", name="dev", origins=("http://localhost:8000",))


def test_nothing_secret_in_events_or_reprs(h: Harness) -> None:
    key = h.register()
    options = h.assert_with(key)
    h.passkeys.finish_authentication(ALICE, key.get(options))
    challenge = options["publicKey"]["challenge"]
    for thing in [*h.events, *h.passkeys.registered("alice")]:
        assert challenge not in repr(thing)
        assert "credential_data" not in repr(thing)
