"""Several TOTP devices per user (issue 15): adding, confirming, naming, removing, and
verifying against all of them with one replay ledger and one throttle."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stepup.adapters.storage.memory import MemoryStore
from stepup.config_users import ConfigUsers
from stepup.errors import (
    DeviceLimitError,
    InvalidDeviceNameError,
    MalformedInputError,
    ManagedByConfigFileError,
    NotEnrolledError,
    PermissionDeniedError,
    UnknownDeviceError,
)
from stepup.events import (
    EventBus,
    TwoFactorDeviceAdded,
    TwoFactorDeviceRemoved,
    TwoFactorEnabled,
    TwoFactorRemoved,
    TwoFactorVerified,
)
from stepup.records import Credential, Grant, TotpDevice
from stepup.sealing import SecretBox
from stepup.testing import SettableClock
from stepup.throttle import ThrottlePolicy
from stepup.totp import TOTP
from stepup.twofactor import (
    LAST_USED_GRANULARITY,
    MAX_DEVICE_NAME_LENGTH,
    TwoFactor,
    clean_device_name,
)
from stepup.verifier import VerifyReason

KEY = bytes(range(32))
ACCOUNT = "alice@example.com"


@pytest.fixture
def tf(make_two_factor: Callable[..., Any]) -> Any:
    return make_two_factor(box=SecretBox({"k1": KEY}, current="k1"), max_devices=3)


def enrol(tf: Any, clock: SettableClock, name: str = "Phone") -> tuple[TOTP, str]:
    enrolment = tf.begin_enrolment("alice", ACCOUNT, name=name)
    assert tf.confirm_enrolment("alice", TOTP(enrolment.secret).at(clock())).ok
    clock.advance(30)
    return TOTP(enrolment.secret), enrolment.device_id


def add(tf: Any, clock: SettableClock, name: str) -> tuple[TOTP, str]:
    enrolment = tf.begin_device("alice", ACCOUNT, name=name)
    assert enrolment.name == name
    assert tf.confirm_device("alice", TOTP(enrolment.secret).at(clock())).ok
    clock.advance(30)
    return TOTP(enrolment.secret), enrolment.device_id


def test_two_devices_each_verify_and_are_listed_with_times(
    tf: Any, clock: SettableClock, store: MemoryStore, recorder: Any
) -> None:
    phone, phone_id = enrol(tf, clock)
    hashes = store.get_credential("alice").recovery_hashes  # type: ignore[union-attr]
    tablet, tablet_id = add(tf, clock, "Tablet")
    # Adding a device issues no recovery codes and keeps the ones the user has.
    assert store.get_credential("alice").recovery_hashes == hashes  # type: ignore[union-attr]
    listed = tf.devices("alice")
    assert [(d.device_id, d.name, d.last_used_at) for d in listed] == [
        (phone_id, "Phone", None),
        (tablet_id, "Tablet", None),
    ]
    assert listed[0].created_at < listed[1].created_at
    assert tf.verify("alice", tablet.at(clock())).ok
    clock.advance(30)
    assert tf.verify("alice", phone.at(clock())).ok
    used = {d.device_id: d.last_used_at for d in tf.devices("alice")}
    assert used == {tablet_id: clock() - 30, phone_id: clock()}
    verified = recorder.of(TwoFactorVerified)
    assert [e.device_id for e in verified[-2:]] == [tablet_id, phone_id]
    assert [e.device_id for e in recorder.of(TwoFactorDeviceAdded)] == [tablet_id]
    assert len(recorder.of(TwoFactorEnabled)) == 1


def test_a_step_used_from_one_device_is_a_replay_from_every_device(
    tf: Any, clock: SettableClock
) -> None:
    phone, _ = enrol(tf, clock)
    tablet, _ = add(tf, clock, "Tablet")
    assert tf.verify("alice", phone.at(clock())).ok
    assert tf.verify("alice", tablet.at(clock())).reason is VerifyReason.REPLAYED
    earlier = tablet.at(clock() - 30)
    assert tf.verify("alice", earlier).reason is VerifyReason.REPLAYED


def test_the_throttle_counts_the_users_guesses_not_each_devices(
    store: MemoryStore, clock: SettableClock, synced: Callable[[Any], Any]
) -> None:
    policy = ThrottlePolicy(free_failures=3, base_delay=60.0, max_delay=600.0)
    tf = synced(TwoFactor(store, clock=clock, throttle=policy, max_devices=5))
    phone, _ = enrol(tf, clock)
    totps = [phone] + [add(tf, clock, name)[0] for name in ("B", "C", "D")]
    codes = {totp.at(clock() + drift) for totp in totps for drift in (-30, 0, 30)}
    wrong = next(f"{n:06d}" for n in range(10**6) if f"{n:06d}" not in codes)
    reasons = [tf.verify("alice", wrong).reason for _ in range(4)]
    # One charge per guess, however many devices it was tried against.
    assert reasons == [VerifyReason.INVALID] * 4
    credential = store.get_credential("alice")
    assert credential is not None
    assert store.throttle_state(credential.credential_id).failures == 4
    assert tf.verify("alice", phone.at(clock())).reason is VerifyReason.THROTTLED


def test_last_used_is_written_at_most_once_a_day(
    tf: Any, clock: SettableClock, store: MemoryStore
) -> None:
    phone, _ = enrol(tf, clock)
    assert tf.verify("alice", phone.at(clock())).ok
    first_use = clock()
    version = store.get_credential("alice").version  # type: ignore[union-attr]
    for _ in range(3):
        clock.advance(3600)
        assert tf.verify("alice", phone.at(clock())).ok
    assert store.get_credential("alice").version == version  # type: ignore[union-attr]
    assert tf.devices("alice")[0].last_used_at == first_use
    clock.set(first_use + LAST_USED_GRANULARITY)
    assert tf.verify("alice", phone.at(clock())).ok
    assert tf.devices("alice")[0].last_used_at == clock()


def test_a_failing_last_used_write_never_fails_the_verification(
    clock: SettableClock, store: MemoryStore, synced: Callable[[Any], Any]
) -> None:
    class NoReplace(MemoryStore):
        def replace_credential(self, credential: Credential, expected_version: int) -> bool:
            if any(d.last_used_at for d in credential.totp_devices):
                raise ConnectionError("down")
            return super().replace_credential(credential, expected_version)

    flaky = NoReplace()
    tf = synced(TwoFactor(flaky, clock=clock))
    phone, _ = enrol(tf, clock)
    assert tf.verify("alice", phone.at(clock())).ok
    assert tf.devices("alice")[0].last_used_at is None


def test_adding_and_removing_a_device_revoke_every_grant(
    tf: Any, clock: SettableClock, store: MemoryStore, recorder: Any
) -> None:
    enrol(tf, clock)

    def grant() -> None:
        store.put_grant(Grant("alice", "s1", frozenset({"pwd"}), clock()), clock() + 600)

    grant()
    pending = tf.begin_device("alice", ACCOUNT, name="Tablet")
    assert store.get_grant("alice", "s1") is not None  # beginning changes no factor
    assert tf.confirm_device("alice", TOTP(pending.secret).at(clock())).ok
    assert store.get_grant("alice", "s1") is None
    grant()
    tf.rename_device("alice", pending.device_id, "iPad")
    assert store.get_grant("alice", "s1") is not None  # a name is not a factor
    tf.remove_device("alice", pending.device_id, actor_id="alice")
    assert store.get_grant("alice", "s1") is None
    removed = recorder.of(TwoFactorDeviceRemoved)
    assert [(e.device_id, e.removed_by) for e in removed] == [(pending.device_id, "alice")]
    assert recorder.of(TwoFactorRemoved) == []


def test_removing_the_last_device_removes_two_factor(
    tf: Any, clock: SettableClock, store: MemoryStore, recorder: Any
) -> None:
    _, phone_id = enrol(tf, clock)
    tablet, tablet_id = add(tf, clock, "Tablet")
    tf.remove_device("alice", phone_id, actor_id="root", actor_has_full_access=True)
    assert tf.is_enrolled("alice")
    assert tf.verify("alice", tablet.at(clock())).ok
    tf.remove_device("alice", tablet_id, actor_id="alice")
    assert not tf.is_enrolled("alice")
    assert store.get_credential("alice") is None
    assert [(e.user_id, e.removed_by) for e in recorder.of(TwoFactorRemoved)] == [
        ("alice", "alice")
    ]
    assert [e.device_id for e in recorder.of(TwoFactorDeviceRemoved)] == [phone_id]


def test_removing_the_device_of_an_enrolment_never_confirmed_changes_nothing(
    tf: Any, clock: SettableClock, store: MemoryStore, recorder: Any
) -> None:
    """The one (pending) device of an enrolment begun and not confirmed: two-factor is
    not on, so this is no removal of it (as ``remove``): nothing revoked, no event."""
    pending = tf.begin_enrolment("alice", ACCOUNT).device_id
    before = store.get_credential("alice")
    store.put_grant(Grant("alice", "s1", frozenset({"pwd"}), clock()), clock() + 600)
    with pytest.raises(NotEnrolledError):
        tf.remove_device("alice", pending, actor_id="alice")
    assert store.get_credential("alice") == before
    assert store.get_grant("alice", "s1") is not None
    assert recorder.events == []


def test_only_the_user_or_a_full_access_admin_removes_a_device(
    tf: Any, clock: SettableClock
) -> None:
    _, phone_id = enrol(tf, clock)
    add(tf, clock, "Tablet")
    for kwargs in ({}, {"actor_has_full_access": False}, {"actor_has_full_access": "yes"}):
        with pytest.raises(PermissionDeniedError):
            tf.remove_device("alice", phone_id, actor_id="mallory", **kwargs)
    assert len(tf.devices("alice")) == 2


def test_unknown_devices_are_refused_and_nothing_changes(
    tf: Any, clock: SettableClock, store: MemoryStore
) -> None:
    with pytest.raises(NotEnrolledError):
        tf.begin_device("alice", ACCOUNT, name="Tablet")
    with pytest.raises(UnknownDeviceError):
        tf.remove_device("alice", "totp:nope", actor_id="alice")
    enrol(tf, clock)
    before = store.get_credential("alice")
    with pytest.raises(UnknownDeviceError):
        tf.remove_device("alice", "totp:nope", actor_id="alice")
    with pytest.raises(UnknownDeviceError):
        tf.rename_device("alice", "totp:nope", "Other")
    with pytest.raises(NotEnrolledError):
        tf.confirm_device("alice", "123456")  # nothing being added
    assert store.get_credential("alice") == before


def test_the_device_limit(tf: Any, clock: SettableClock, store: MemoryStore) -> None:
    enrol(tf, clock)
    add(tf, clock, "B")
    add(tf, clock, "C")
    before = store.get_credential("alice")
    with pytest.raises(DeviceLimitError):
        tf.begin_device("alice", ACCOUNT, name="D")
    assert store.get_credential("alice") == before


def test_a_pending_device_is_replaced_by_a_new_one_and_expires(
    tf: Any, clock: SettableClock
) -> None:
    enrol(tf, clock)
    first = tf.begin_device("alice", ACCOUNT, name="Tablet")
    assert tf.pending_device("alice", ACCOUNT).secret == first.secret
    second = tf.begin_device("alice", ACCOUNT, name="Tablet")
    assert second.device_id != first.device_id
    assert tf.pending_device("alice", ACCOUNT).device_id == second.device_id
    old_code = TOTP(first.secret).at(clock())
    if old_code != TOTP(second.secret).at(clock()):
        assert not tf.confirm_device("alice", old_code).ok
    assert [d.name for d in tf.devices("alice")] == ["Phone"]  # pending is not listed
    clock.advance(600)
    assert tf.pending_device("alice", ACCOUNT) is None
    with pytest.raises(NotEnrolledError):
        tf.confirm_device("alice", TOTP(second.secret).at(clock()))


def test_a_wrong_confirming_code_changes_nothing_and_counts_as_a_guess(
    tf: Any, clock: SettableClock, store: MemoryStore
) -> None:
    phone, _ = enrol(tf, clock)
    pending = tf.begin_device("alice", ACCOUNT, name="Tablet")
    code = phone.at(clock())  # a code, but from the other device
    if code != TOTP(pending.secret).at(clock()):
        result = tf.confirm_device("alice", code)
        assert result.reason is VerifyReason.INVALID
    credential = store.get_credential("alice")
    assert store.throttle_state(credential.credential_id).failures == 1  # type: ignore[union-attr]
    assert len(tf.devices("alice")) == 1


def test_a_credential_from_before_devices_is_one_device(
    tf: Any, clock: SettableClock, store: MemoryStore
) -> None:
    box = SecretBox({"k1": KEY}, current="k1")
    secret = "JBSWY3DPEHPK3PXP"
    legacy = Credential(
        "alice",
        "totp:legacy",
        box.seal(secret, context="totp:legacy"),
        confirmed=True,
        created_at=clock() - 1000,
        recovery_hashes=("h1",),
    )
    store.put_credential(legacy)
    (device,) = tf.devices("alice")
    assert (device.device_id, device.name, device.created_at) == ("totp:legacy", "", clock() - 1000)
    tablet, tablet_id = add(tf, clock, "Tablet")
    stored = store.get_credential("alice")
    assert stored is not None
    assert stored.secret == ""  # rewritten in the new shape: each secret once
    assert stored.recovery_hashes == ("h1",)
    assert [d.device_id for d in stored.devices] == ["totp:legacy", tablet_id]
    assert tf.verify("alice", TOTP(secret).at(clock())).ok
    clock.advance(30)
    assert tf.verify("alice", tablet.at(clock())).ok


def test_rename(tf: Any, clock: SettableClock) -> None:
    _, phone_id = enrol(tf, clock)
    tf.rename_device("alice", phone_id, "  Work phone  ")
    assert tf.devices("alice")[0].name == "Work phone"
    with pytest.raises(InvalidDeviceNameError):
        tf.rename_device("alice", phone_id, "\x1b[31mred")
    assert tf.devices("alice")[0].name == "Work phone"


def test_config_file_users_refuse_device_management(
    clock: SettableClock, synced: Callable[[Any], Any]
) -> None:
    users = ConfigUsers.from_mapping(
        {"users": {"alice": {"otp_secret": "464QWPSWHGKV4Z2X43DDVOL5YEDH547Y"}}}
    )
    tf = synced(TwoFactor(MemoryStore(), clock=clock, config_users=users))
    calls: list[Callable[[], Any]] = [
        lambda: tf.devices("alice"),
        lambda: tf.begin_device("alice", ACCOUNT),
        lambda: tf.confirm_device("alice", "123456"),
        lambda: tf.rename_device("alice", "d", "x"),
        lambda: tf.remove_device("alice", "d", actor_id="alice"),
    ]
    for call in calls:
        with pytest.raises(ManagedByConfigFileError):
            call()
    assert tf.pending_device("alice", ACCOUNT) is None


# names --------------------------------------------------------------------------------

_PRINTABLE = st.characters(blacklist_categories=("Cc", "Cs", "Cf", "Zl", "Zp", "Zs"))


@settings(deadline=None)  # pure and fast; a loaded CI machine must not fail it
@given(st.text(_PRINTABLE, min_size=1, max_size=MAX_DEVICE_NAME_LENGTH), st.text(" ", max_size=3))
def test_a_printable_name_is_kept_without_its_surrounding_spaces(name: str, pad: str) -> None:
    assert clean_device_name(pad + name + pad) == name


@settings(deadline=None)  # pure and fast; a loaded CI machine must not fail it
@given(
    st.text(max_size=20),
    st.sampled_from(["\x00", "\n", "\t", "\x7f", "\x9b", "\u202e", "\u2066", "\ud800"]),
    st.text(max_size=20),
)
def test_control_and_bidi_characters_are_refused(before: str, bad: str, after: str) -> None:
    with pytest.raises(InvalidDeviceNameError):
        clean_device_name(before + bad + after)


@settings(deadline=None)  # pure and fast; a loaded CI machine must not fail it
@given(st.one_of(st.just(""), st.text(" ", max_size=5), st.none(), st.integers()))
def test_empty_or_non_text_names_are_refused(name: object) -> None:
    with pytest.raises(InvalidDeviceNameError):
        clean_device_name(name)


def test_too_long_names_are_refused_as_malformed_input() -> None:
    assert clean_device_name("x" * MAX_DEVICE_NAME_LENGTH) == "x" * MAX_DEVICE_NAME_LENGTH
    with pytest.raises(MalformedInputError):
        clean_device_name("x" * (MAX_DEVICE_NAME_LENGTH + 1))


def test_a_bad_name_when_adding_changes_nothing(
    tf: Any, clock: SettableClock, store: MemoryStore
) -> None:
    enrol(tf, clock)
    before = store.get_credential("alice")
    with pytest.raises(InvalidDeviceNameError):
        tf.begin_device("alice", ACCOUNT, name="x" * 65)
    assert store.get_credential("alice") == before


def test_an_account_too_long_for_a_qr_code_when_adding_changes_nothing(
    tf: Any, clock: SettableClock, store: MemoryStore
) -> None:
    enrol(tf, clock)
    before = store.get_credential("alice")
    with pytest.raises(MalformedInputError, match="QR code"):
        tf.begin_device("alice", "é" * 400, name="Tablet")
    assert store.get_credential("alice") == before


def test_devices_never_show_a_secret(tf: Any, clock: SettableClock, store: MemoryStore) -> None:
    phone, _ = enrol(tf, clock)
    pending = tf.begin_device("alice", ACCOUNT, name="Tablet")
    for shown in (repr(tf.devices("alice")), repr(store.get_credential("alice")), repr(pending)):
        assert phone.secret not in shown
        assert pending.secret not in shown
        assert "v1:k1:" not in shown


def test_verify_with_a_device_of_other_digits(clock: SettableClock, synced: Any) -> None:
    store = MemoryStore()
    six = synced(TwoFactor(store, clock=clock))
    phone, _ = enrol(six, clock)
    eight = synced(TwoFactor(store, clock=clock, digits=8))
    pending = eight.begin_device("alice", ACCOUNT, name="Token")
    token = TOTP(pending.secret, digits=8)
    assert eight.confirm_device("alice", token.at(clock())).ok
    clock.advance(30)
    assert six.verify("alice", token.at(clock())).ok
    clock.advance(30)
    assert six.verify("alice", phone.at(clock())).ok
    assert six.verify("alice", "12345").reason is VerifyReason.MALFORMED
    credential = store.get_credential("alice")
    assert credential is not None
    assert replace(credential).devices[1].digits == 8


def test_devices_added_at_one_moment_are_listed_as_added(
    tf: Any, clock: SettableClock, store: MemoryStore
) -> None:
    devices = tuple(
        TotpDevice(device_id, "plain:JBSWY3DPEHPK3PXP", name, confirmed=True, created_at=clock())
        for device_id, name in (("totp:z", "First"), ("totp:a", "Second"), ("totp:m", "Third"))
    )
    store.put_credential(Credential("alice", "totp:z", "", confirmed=True, devices=devices))
    assert [d.name for d in tf.devices("alice")] == ["First", "Second", "Third"]


@settings(deadline=None, max_examples=40)
@given(
    count=st.integers(min_value=1, max_value=5),
    pick=st.integers(min_value=0, max_value=4),
    at=st.floats(min_value=1e9, max_value=4e9, allow_nan=False),
)
def test_a_code_from_any_device_verifies_and_names_it(count: int, pick: int, at: float) -> None:
    clock = SettableClock(at)
    events: list[Any] = []
    tf = TwoFactor(MemoryStore(), clock=clock, events=EventBus(events.append), max_devices=5)
    first = tf.begin_enrolment("alice", ACCOUNT, name="D0")
    totps, ids = [TOTP(first.secret)], [first.device_id]
    assert tf.confirm_enrolment("alice", totps[0].at(clock())).ok
    for n in range(1, count):
        clock.advance(30)
        added = tf.begin_device("alice", ACCOUNT, name=f"D{n}")
        totps.append(TOTP(added.secret))
        ids.append(added.device_id)
        assert tf.confirm_device("alice", totps[-1].at(clock())).ok
    clock.advance(30)
    which = pick % count
    code = totps[which].at(clock())
    assert tf.verify("alice", code).ok
    verified = [e for e in events if isinstance(e, TwoFactorVerified)][-1]
    matching = [i for i, t in enumerate(totps) if t.at(clock()) == code]
    assert verified.device_id in {ids[i] for i in matching}  # a collision names either
    assert code not in repr(events)


def test_every_device_is_matched_whichever_the_code_is_from(
    clock: SettableClock, synced: Callable[[Any], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    tf = synced(TwoFactor(MemoryStore(), clock=clock, max_devices=5))
    phone, _ = enrol(tf, clock)
    tablet, _ = add(tf, clock, "Tablet")
    laptop, _ = add(tf, clock, "Laptop")
    calls: list[str] = []
    real = TOTP.match

    def counted(self: TOTP, code: str, at: float, window: int = 1) -> int | None:
        calls.append(self.secret)
        return real(self, code, at, window)

    monkeypatch.setattr(TOTP, "match", counted)
    for totp in (phone, laptop, None):
        calls.clear()
        clock.advance(30)
        code = totp.at(clock()) if totp is not None else "000000"
        tf.verify("alice", code)
        assert sorted(calls) == sorted({phone.secret, tablet.secret, laptop.secret}), totp


def test_a_record_on_without_a_confirmed_device_fails_closed(
    tf: Any, clock: SettableClock, store: MemoryStore
) -> None:
    pending = TotpDevice("totp:p", "plain:JBSWY3DPEHPK3PXP", "P", created_at=clock())
    store.put_credential(Credential("alice", "totp:p", "", confirmed=True, devices=(pending,)))
    with pytest.raises(NotEnrolledError):
        tf.verify("alice", TOTP("JBSWY3DPEHPK3PXP").at(clock()))
    with pytest.raises(NotEnrolledError):
        tf.begin_device("alice", ACCOUNT, name="Other")
    assert tf.devices("alice") == ()


def test_a_credential_from_before_devices_records_its_last_use(
    tf: Any, clock: SettableClock, store: MemoryStore
) -> None:
    box = SecretBox({"k1": KEY}, current="k1")
    sealed = box.seal("JBSWY3DPEHPK3PXP", context="totp:legacy")
    store.put_credential(Credential("alice", "totp:legacy", sealed, confirmed=True))
    assert tf.verify("alice", TOTP("JBSWY3DPEHPK3PXP").at(clock())).ok
    stored = store.get_credential("alice")
    assert stored is not None
    assert [(d.device_id, d.last_used_at) for d in stored.devices] == [("totp:legacy", clock())]
    assert stored.secret == ""
