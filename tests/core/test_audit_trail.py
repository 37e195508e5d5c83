"""The audit trail of factor changes: an event for every change that was stored, even
when the grant revocation after it fails; a recovery code spent during a store hiccup
is a success, counted from what is stored; renames are events too."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stepup.adapters.storage.memory import MemoryStore
from stepup.errors import StoreUnavailableError
from stepup.events import (
    EventBus,
    PasskeyRemoved,
    RecoveryCodesRegenerated,
    RecoveryCodeUsed,
    StepupEvent,
    TwoFactorDeviceAdded,
    TwoFactorDeviceRemoved,
    TwoFactorEnabled,
    TwoFactorRejected,
    TwoFactorRemoved,
)
from stepup.passkeys import (
    AsyncPasskeys,
    PasskeyRegistered,
    Passkeys,
    RelyingParty,
)
from stepup.records import Grant
from stepup.subject import Subject
from stepup.testing import SettableClock
from stepup.testing.webauthn import SoftAuthenticator
from stepup.totp import TOTP
from stepup.twofactor import AsyncTwoFactor, TwoFactor
from stepup.verifier import VerifyReason

T0 = 1_699_999_980.0
ACCOUNT = "alice@example.com"


class FailingAfterWrite(MemoryStore):
    """The real memory store; the calls named in ``failing`` meet an outage (what
    :mod:`stepup._flow` hands the flow for a driver's error), and those named in
    ``after_consume`` once a recovery code was consumed."""

    def __init__(self) -> None:
        super().__init__()
        self.failing: frozenset[str] = frozenset()
        self.after_consume: frozenset[str] = frozenset()
        self._consumed = False

    def _outage(self, method: str) -> None:
        if method in self.failing or (self._consumed and method in self.after_consume):
            raise StoreUnavailableError(f"FailingAfterWrite.{method} failed (ConnectionError)")

    def consume_recovery_hash(self, user_id: str, digest: str) -> bool:
        self._consumed = super().consume_recovery_hash(user_id, digest)
        return self._consumed

    def revoke_grants(self, user_id: str, session_id: str | None = None) -> int:
        self._outage("revoke_grants")
        return super().revoke_grants(user_id, session_id)

    def throttle_refund(self, *args: Any) -> None:
        self._outage("throttle_refund")
        super().throttle_refund(*args)

    def throttle_clear(self, key: str) -> None:
        self._outage("throttle_clear")
        super().throttle_clear(key)

    def totp_attempt(self, *args: Any) -> Any:
        self._outage("totp_attempt")
        return super().totp_attempt(*args)

    def get_credential(self, user_id: str) -> Any:
        self._outage("get_credential")
        return super().get_credential(user_id)


@pytest.fixture
def store() -> FailingAfterWrite:
    """Overrides the conftest's store: make_two_factor builds over this one."""
    return FailingAfterWrite()


def _enrol(tf: Any, clock: SettableClock) -> tuple[TOTP, tuple[str, ...]]:
    enrolment = tf.begin_enrolment("alice", ACCOUNT)
    confirmation = tf.confirm_enrolment("alice", TOTP(enrolment.secret).at(clock()))
    assert confirmation.ok
    clock.advance(30)
    return TOTP(enrolment.secret), confirmation.recovery_codes


def _add_device(tf: Any, clock: SettableClock) -> Any:
    enrolment = tf.begin_device("alice", ACCOUNT, name="Tablet")
    return enrolment, TOTP(enrolment.secret).at(clock())


def _grant(store: MemoryStore, clock: SettableClock) -> None:
    store.put_grant(Grant("alice", "s1", frozenset({"pwd"}), clock()), clock() + 600)


# D1: the event reports what was stored, before the revocation ------------------------


def _while_revocation_fails(
    store: FailingAfterWrite, recorder: Any, change: Callable[[], object]
) -> list[StepupEvent]:
    """Run ``change`` with revoke_grants failing: it raises, and the events it emitted."""
    recorder.events.clear()
    store.failing = frozenset({"revoke_grants"})
    with pytest.raises(StoreUnavailableError):
        change()
    store.failing = frozenset()
    return list(recorder.events)


def test_confirming_the_first_device_is_in_the_audit_when_revocation_fails(
    make_two_factor: Callable[..., Any],
    store: FailingAfterWrite,
    clock: SettableClock,
    recorder: Any,
) -> None:
    tf = make_two_factor()
    enrolment = tf.begin_enrolment("alice", ACCOUNT)
    code = TOTP(enrolment.secret).at(clock())
    events = _while_revocation_fails(store, recorder, lambda: tf.confirm_enrolment("alice", code))
    assert [e for e in events if isinstance(e, TwoFactorEnabled)] == [
        TwoFactorEnabled(at=clock(), user_id="alice")
    ]
    assert tf.is_enrolled("alice")  # the change stands, and the audit has it


def test_regenerated_codes_are_in_the_audit_when_revocation_fails(
    make_two_factor: Callable[..., Any],
    store: FailingAfterWrite,
    clock: SettableClock,
    recorder: Any,
) -> None:
    tf = make_two_factor()
    _enrol(tf, clock)
    before = store.get_credential("alice").recovery_hashes  # type: ignore[union-attr]
    events = _while_revocation_fails(store, recorder, lambda: tf.regenerate_recovery_codes("alice"))
    assert [e.name for e in events] == ["RecoveryCodesRegenerated"]
    assert events == [RecoveryCodesRegenerated(at=clock(), user_id="alice")]
    assert store.get_credential("alice").recovery_hashes != before  # type: ignore[union-attr]


@pytest.mark.parametrize("actor", ["alice", "admin:bob"])
def test_removal_is_in_the_audit_when_revocation_fails(
    make_two_factor: Callable[..., Any],
    store: FailingAfterWrite,
    clock: SettableClock,
    recorder: Any,
    actor: str,
) -> None:
    tf = make_two_factor()
    _enrol(tf, clock)

    def remove() -> object:
        return tf.remove("alice", actor_id=actor, actor_has_full_access=actor != "alice")

    events = _while_revocation_fails(store, recorder, remove)
    assert events == [TwoFactorRemoved(at=clock(), user_id="alice", removed_by=actor)]
    assert not tf.is_enrolled("alice")


def test_an_added_device_is_in_the_audit_when_revocation_fails(
    make_two_factor: Callable[..., Any],
    store: FailingAfterWrite,
    clock: SettableClock,
    recorder: Any,
) -> None:
    tf = make_two_factor()
    _enrol(tf, clock)
    enrolment, code = _add_device(tf, clock)
    events = _while_revocation_fails(store, recorder, lambda: tf.confirm_device("alice", code))
    added = [e for e in events if isinstance(e, TwoFactorDeviceAdded)]
    assert added == [
        TwoFactorDeviceAdded(at=clock(), user_id="alice", device_id=enrolment.device_id)
    ]
    assert len(tf.devices("alice")) == 2


def test_a_removed_device_is_in_the_audit_when_revocation_fails(
    make_two_factor: Callable[..., Any],
    store: FailingAfterWrite,
    clock: SettableClock,
    recorder: Any,
) -> None:
    tf = make_two_factor()
    _enrol(tf, clock)
    enrolment, code = _add_device(tf, clock)
    assert tf.confirm_device("alice", code).ok
    device_id = enrolment.device_id

    def remove() -> object:
        return tf.remove_device("alice", device_id, actor_id="alice")

    events = _while_revocation_fails(store, recorder, remove)
    assert events == [
        TwoFactorDeviceRemoved(at=clock(), user_id="alice", device_id=device_id, removed_by="alice")
    ]
    assert [d.device_id for d in tf.devices("alice")] != [device_id]
    assert len(tf.devices("alice")) == 1


def test_a_change_with_the_store_up_still_revokes_and_emits_once(
    make_two_factor: Callable[..., Any],
    store: FailingAfterWrite,
    clock: SettableClock,
    recorder: Any,
) -> None:
    tf = make_two_factor()
    _enrol(tf, clock)
    _grant(store, clock)
    recorder.events.clear()
    tf.regenerate_recovery_codes("alice")
    assert recorder.names() == ["RecoveryCodesRegenerated"]
    assert store.get_grant("alice", "s1") is None


# D2, D3: a spent recovery code is a success, counted from the store ------------------

AFTER_CONSUME = ("throttle_refund", "totp_attempt", "get_credential")


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    failing=st.sets(st.sampled_from(AFTER_CONSUME), min_size=1),
    mode=st.sampled_from(["sync", "async"]),
)
def test_a_recovery_code_spent_before_a_store_hiccup_is_accepted(
    failing: set[str], mode: str
) -> None:
    store, clock, events = FailingAfterWrite(), SettableClock(T0), []
    tf = _two_factor(mode, store, clock, events.append)
    _, codes = _enrol(tf, clock)
    events.clear()
    store.after_consume = frozenset(failing)
    result = tf.use_recovery_code("alice", codes[0])
    store.after_consume = frozenset()
    assert result.reason is VerifyReason.OK
    assert not [e for e in events if isinstance(e, TwoFactorRejected)]
    # Nine are stored; the re-read says so, or, when it failed, ten less this one.
    assert events == [RecoveryCodeUsed(at=clock(), user_id="alice", remaining=9)]
    assert len(store.get_credential("alice").recovery_hashes) == 9  # type: ignore[union-attr]
    assert tf.use_recovery_code("alice", codes[1]).reason is VerifyReason.OK  # the next one


def test_each_failed_step_is_a_warning_naming_it_and_never_the_code(
    store: FailingAfterWrite, clock: SettableClock, caplog: pytest.LogCaptureFixture
) -> None:
    tf = TwoFactor(store, clock=clock)
    _, codes = _enrol(tf, clock)
    store.after_consume = frozenset(AFTER_CONSUME)
    with caplog.at_level(logging.WARNING, logger="stepup.twofactor"):
        assert tf.use_recovery_code("alice", codes[0]).ok
    lines = [r for r in caplog.records if r.name == "stepup.twofactor"]
    assert {r.levelno for r in lines} == {logging.WARNING}
    text = "\n".join(r.getMessage() for r in lines)
    for step in AFTER_CONSUME:
        assert f"{step} failed (StoreUnavailableError)" in text
    for code in codes:
        assert code not in text
        assert code.replace("-", "") not in text


def test_a_store_failing_before_the_consume_still_answers_unavailable(
    store: FailingAfterWrite, clock: SettableClock, recorder: Any, events: EventBus
) -> None:
    tf = TwoFactor(store, clock=clock, events=events)
    _, codes = _enrol(tf, clock)
    recorder.events.clear()
    store.failing = frozenset({"get_credential"})
    assert tf.use_recovery_code("alice", codes[0]).reason is VerifyReason.UNAVAILABLE
    store.failing = frozenset()
    assert recorder.names() == ["TwoFactorRejected"]
    assert len(store.get_credential("alice").recovery_hashes) == 10  # type: ignore[union-attr]


class Racing:
    """A real store, and another sign-in's recovery code spent right before this one's
    consume: the interleaving two concurrent sign-ins produce."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.other: Callable[[], object] | None = None

    def consume_recovery_hash(self, user_id: str, digest: str) -> bool:
        if self.other is not None:
            other, self.other = self.other, None
            other()
        return bool(self.inner.consume_recovery_hash(user_id, digest))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def real_store(request: pytest.FixtureRequest, tmp_path: Any) -> Any:
    from store_kinds import open_store

    with open_store(request.param, tmp_path) as opened:
        yield opened


def test_two_codes_spent_at_once_each_report_what_is_stored(
    real_store: Any, clock: SettableClock
) -> None:
    events: list[StepupEvent] = []
    racing = Racing(real_store)
    tf = TwoFactor(racing, clock=clock, events=EventBus(events.append))
    _, codes = _enrol(tf, clock)
    events.clear()
    racing.other = lambda: tf.use_recovery_code("alice", codes[1])
    assert tf.use_recovery_code("alice", codes[0]).ok
    used = [e.remaining for e in events if isinstance(e, RecoveryCodeUsed)]
    assert used == [9, 8]  # the racing sign-in first, then this one: what each left
    assert len(real_store.get_credential("alice").recovery_hashes) == 8


# passkeys ---------------------------------------------------------------------------

ORIGIN = "https://app.example.com"
RP = RelyingParty(id="example.com", name="Example", origins=(ORIGIN,))
ALICE = Subject("alice", "s1")


def _passkeys(mode: str, store: MemoryStore, clock: SettableClock, events: EventBus) -> Any:
    if mode == "sync":
        return Passkeys(store, RP, clock=clock, events=events)
    passkeys = AsyncPasskeys(store, RP, clock=clock, events=events)

    class Driven:
        def __getattr__(self, name: str) -> Any:
            method = getattr(passkeys, name)
            return lambda *a, **k: asyncio.run(method(*a, **k))

    return Driven()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_registered_passkey_is_in_the_audit_when_revocation_fails(
    mode: str, store: FailingAfterWrite, clock: SettableClock, recorder: Any, events: EventBus
) -> None:
    passkeys = _passkeys(mode, store, clock, events)
    options = passkeys.begin_registration(ALICE, "alice")
    payload = SoftAuthenticator(origin=ORIGIN).create(options)
    emitted = _while_revocation_fails(
        store, recorder, lambda: passkeys.finish_registration(ALICE, payload, "Key")
    )
    (passkey,) = store.list_passkeys("alice")
    assert emitted == [
        PasskeyRegistered(
            at=clock(), user_id="alice", credential_id=passkey.credential_id, passkey_name="Key"
        )
    ]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_removed_passkey_is_in_the_audit_when_revocation_fails(
    mode: str, store: FailingAfterWrite, clock: SettableClock, recorder: Any, events: EventBus
) -> None:
    passkeys = _passkeys(mode, store, clock, events)
    options = passkeys.begin_registration(ALICE, "alice")
    assert passkeys.finish_registration(ALICE, SoftAuthenticator(origin=ORIGIN).create(options))
    (passkey,) = store.list_passkeys("alice")
    cid = passkey.credential_id
    emitted = _while_revocation_fails(
        store, recorder, lambda: passkeys.remove("alice", cid, removed_by="admin:bob")
    )
    assert emitted == [
        PasskeyRemoved(at=clock(), user_id="alice", credential_id=cid, removed_by="admin:bob")
    ]
    assert store.list_passkeys("alice") == ()


def _two_factor(
    mode: str, store: MemoryStore, clock: SettableClock, listener: Callable[[Any], None]
) -> Any:
    bus = EventBus(listener)
    if mode == "sync":
        return TwoFactor(store, clock=clock, events=bus)
    two_factor = AsyncTwoFactor(store, clock=clock, events=bus)

    class Driven:
        def __getattr__(self, name: str) -> Any:
            method = getattr(two_factor, name)
            return lambda *a, **k: asyncio.run(method(*a, **k))

    return Driven()
