"""The TwoFactor lifecycle, sync and async, over the memory store."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from typing import Any

import pytest

from stepup.adapters.storage.memory import MemoryStore
from stepup.errors import (
    AlreadyEnrolledError,
    MalformedInputError,
    NotEnrolledError,
    PermissionDeniedError,
    StepupError,
    StoreUnavailableError,
)
from stepup.events import (
    RecoveryCodesRegenerated,
    RecoveryCodeUsed,
    Throttled,
    TwoFactorEnabled,
    TwoFactorRejected,
    TwoFactorRemoved,
)
from stepup.records import Grant
from stepup.sealing import SecretBox
from stepup.testing import SettableClock
from stepup.totp import TOTP
from stepup.twofactor import AsyncTwoFactor, Channel, TwoFactor
from stepup.verifier import VerifyReason

KEY = bytes(range(32))


@pytest.fixture
def make(make_two_factor: Callable[..., Any]) -> Callable[..., Any]:
    """Build the service under test; the async one runs over an ``async def`` store."""
    return functools.partial(make_two_factor, issuer="Acme")


@pytest.fixture
def tf(make: Callable[..., Any]) -> Any:
    return make(box=SecretBox({"k1": KEY}, current="k1"))


def enrol(tf: Any, clock: SettableClock, user: str = "alice") -> tuple[TOTP, tuple[str, ...]]:
    enrolment = tf.begin_enrolment(user, f"{user}@example.com")
    totp = TOTP(enrolment.secret)
    confirmation = tf.confirm_enrolment(user, totp.at(clock()))
    assert confirmation.ok
    clock.advance(30)  # the confirming step (and window) is burned; move on
    return totp, confirmation.recovery_codes


# enrolment ---------------------------------------------------------------------------


def test_begin_returns_the_secret_once_and_stores_it_sealed_and_pending(
    tf: Any, store: MemoryStore
) -> None:
    enrolment = tf.begin_enrolment("alice", "alice@example.com")
    assert len(enrolment.secret) == 32
    assert enrolment.uri.startswith("otpauth://totp/Acme:alice%40example.com?secret=")
    assert enrolment.secret in enrolment.uri
    assert enrolment.secret not in repr(enrolment)
    assert "otpauth" not in repr(enrolment)
    assert "<svg" in enrolment.qr_svg()
    assert "█" in enrolment.qr_text()

    credential = store.get_credential("alice")
    assert credential is not None
    assert not credential.confirmed
    (device,) = credential.totp_devices
    assert device.secret.startswith("v1:k1:")
    assert enrolment.secret not in device.secret
    assert credential.secret == ""  # stored once, in the device
    assert enrolment.secret not in repr(credential)
    assert not tf.is_enrolled("alice")
    with pytest.raises(NotEnrolledError):
        tf.verify("alice", TOTP(enrolment.secret).at(0))


def test_without_keys_the_secret_is_stored_marked_plain(
    make: Callable[..., Any], store: MemoryStore
) -> None:
    enrolment = make().begin_enrolment("alice", "alice@example.com")
    credential = store.get_credential("alice")
    assert credential is not None
    assert credential.totp_devices[0].secret == f"plain:{enrolment.secret}"
    assert enrolment.secret not in repr(credential)


def test_beginning_again_replaces_a_pending_secret(tf: Any, clock: SettableClock) -> None:
    first = tf.begin_enrolment("alice", "alice@example.com")
    second = tf.begin_enrolment("alice", "alice@example.com")
    assert first.secret != second.secret
    old_code = TOTP(first.secret).at(clock())
    if old_code != TOTP(second.secret).at(clock()):
        assert not tf.confirm_enrolment("alice", old_code).ok
    assert tf.confirm_enrolment("alice", TOTP(second.secret).at(clock())).ok


#: 400 characters, each six in a Key URI: no QR code holds it (a long name in another script).
TOO_LONG_FOR_A_QR_CODE = "é" * 400


def test_an_account_too_long_for_a_qr_code_is_refused_before_anything_is_written(
    tf: Any, store: MemoryStore
) -> None:
    with pytest.raises(MalformedInputError, match="QR code"):
        tf.begin_enrolment("alice", TOO_LONG_FOR_A_QR_CODE)
    assert store.get_credential("alice") is None
    pending = tf.begin_enrolment("alice", "alice@example.com")
    before = store.get_credential("alice")
    with pytest.raises(MalformedInputError, match="QR code"):
        tf.begin_enrolment("alice", TOO_LONG_FOR_A_QR_CODE)
    assert store.get_credential("alice") == before
    assert tf.pending_enrolment("alice", "alice@example.com").secret == pending.secret


def test_confirm_needs_the_right_code(tf: Any, clock: SettableClock, recorder: Any) -> None:
    enrolment = tf.begin_enrolment("alice", "alice@example.com")
    totp = TOTP(enrolment.secret)
    wrong = tf.confirm_enrolment("alice", "000000" if totp.at(clock()) != "000000" else "111111")
    assert not wrong.ok
    assert wrong.result.reason is VerifyReason.INVALID
    assert wrong.recovery_codes == ()
    assert not tf.is_enrolled("alice")
    malformed = tf.confirm_enrolment("alice", "１２３４５６")
    assert malformed.result.reason is VerifyReason.MALFORMED

    right = tf.confirm_enrolment("alice", totp.at(clock()))
    assert right.ok
    assert len(right.recovery_codes) == 10
    assert all(code not in repr(right) for code in right.recovery_codes)
    assert tf.is_enrolled("alice")
    assert recorder.of(TwoFactorEnabled)[0].user_id == "alice"


def test_the_confirming_code_cannot_sign_in(tf: Any, clock: SettableClock) -> None:
    enrolment = tf.begin_enrolment("alice", "alice@example.com")
    totp = TOTP(enrolment.secret)
    code = totp.at(clock())
    assert tf.confirm_enrolment("alice", code).ok
    replay = tf.verify("alice", code)
    assert replay.reason is VerifyReason.REPLAYED
    clock.advance(30)
    fresh = totp.at(clock())
    if fresh != code:
        assert tf.verify("alice", fresh).ok


def test_confirm_errors(tf: Any, clock: SettableClock) -> None:
    with pytest.raises(NotEnrolledError):
        tf.confirm_enrolment("nobody", "123456")
    totp, _ = enrol(tf, clock)
    with pytest.raises(AlreadyEnrolledError):
        tf.confirm_enrolment("alice", totp.at(clock()))
    with pytest.raises(AlreadyEnrolledError):
        tf.begin_enrolment("alice", "alice@example.com")


def test_verify_at_sign_in(tf: Any, clock: SettableClock) -> None:
    totp, _ = enrol(tf, clock)
    code = totp.at(clock())
    ok = tf.verify("alice", code)
    assert ok.ok
    assert ok.step == totp.step(clock())
    assert tf.verify("alice", code).reason is VerifyReason.REPLAYED
    assert tf.verify("alice", "12345").reason is VerifyReason.MALFORMED
    with pytest.raises(NotEnrolledError):
        tf.verify("bob", code)


def test_verify_is_throttled_per_user(tf: Any, clock: SettableClock) -> None:
    totp, _ = enrol(tf, clock)
    wrong = next(c for c in ("000000", "111111", "222222") if totp.match(c, clock(), 1) is None)
    results = [tf.verify("alice", wrong) for _ in range(4)]
    assert results[-1].retry_at == clock() + 30
    assert tf.verify("alice", totp.at(clock())).reason is VerifyReason.THROTTLED
    clock.advance(30)
    assert tf.verify("alice", totp.at(clock())).ok


# recovery codes -------------------------------------------------------------------------


def test_ten_recovery_codes_hashed_at_rest(
    tf: Any, clock: SettableClock, store: MemoryStore
) -> None:
    _, codes = enrol(tf, clock)
    assert len(codes) == len(set(codes)) == 10
    for code in codes:
        assert len(code) == 29  # six groups of four: 24 base32 characters, 120 bits
        assert [len(group) for group in code.split("-")] == [4] * 6
    credential = store.get_credential("alice")
    assert credential is not None
    stored = repr(credential.to_dict())
    assert all(code not in stored and code.replace("-", "") not in stored for code in codes)
    expected = {"v2:" + hashlib.sha256(c.replace("-", "").encode()).hexdigest() for c in codes}
    assert set(credential.recovery_hashes) == expected


def test_a_recovery_code_works_once_and_is_reported(
    tf: Any, clock: SettableClock, recorder: Any
) -> None:
    _, codes = enrol(tf, clock)
    assert tf.use_recovery_code("alice", codes[0]).ok
    used = recorder.of(RecoveryCodeUsed)
    assert [(e.user_id, e.remaining) for e in used] == [("alice", 9)]
    assert tf.use_recovery_code("alice", codes[0]).reason is VerifyReason.INVALID
    # Case and separators do not matter; other codes still work.
    assert tf.use_recovery_code("alice", codes[1].upper().replace("-", " ")).ok
    assert recorder.of(RecoveryCodeUsed)[-1].remaining == 8


def test_a_recovery_code_burns_the_current_totp_window(tf: Any, clock: SettableClock) -> None:
    totp, codes = enrol(tf, clock)
    now = totp.step(clock())
    assert tf.use_recovery_code("alice", codes[0]).ok
    for step in (now - 1, now, now + 1):
        assert tf.verify("alice", totp.code_for_step(step)).reason is VerifyReason.REPLAYED
    clock.advance(60)
    later = totp.code_for_step(now + 2)
    assert tf.verify("alice", later).ok


def wrong_code(totp: TOTP, at: float) -> str:
    """A code no step of the window at ``at`` has."""
    step = totp.step(at)
    valid = {totp.code_for_step(step + d) for d in (-1, 0, 1)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in valid)


def guess_until_failures(tf: Any, clock: SettableClock, totp: TOTP, failures: int) -> float:
    """Wrong codes, as fast as the throttle lets them through, until ``failures`` are
    counted; the time the last block ends."""
    retry_at = clock()
    for _ in range(failures):
        clock.set(max(clock(), retry_at))
        result = tf.verify("alice", wrong_code(totp, clock()))
        assert result.reason is VerifyReason.INVALID
        retry_at = result.retry_at if result.retry_at is not None else clock()
    return retry_at


def test_a_recovery_code_leaves_the_totp_failures_counted(
    tf: Any, clock: SettableClock, store: MemoryStore
) -> None:
    """The owner's recovery code refills nobody's guesses: the TOTP failures stay, as
    after any success, while the window is still burned."""
    totp, codes = enrol(tf, clock)
    now = totp.step(clock())
    guess_until_failures(tf, clock, totp, 2)  # free ones: not blocked
    credential = store.get_credential("alice")
    assert credential is not None
    assert tf.use_recovery_code("alice", codes[0]).ok
    state = store.throttle_state(credential.credential_id)
    assert (state.failures, state.last_step) == (2, now + 1)


def test_a_recovery_code_gives_whoever_is_guessing_no_fresh_guesses(
    tf: Any, clock: SettableClock, store: MemoryStore
) -> None:
    """Someone guessing TOTP codes has the owner blocked; the owner uses a recovery code
    (what the docs tell them to). The block and the count stand: no code signs in while
    blocked, and the next guess after the block waits the next, longer delay."""
    totp, codes = enrol(tf, clock)
    blocked_until = guess_until_failures(tf, clock, totp, 6)  # blocked 120 s
    credential = store.get_credential("alice")
    assert credential is not None
    before = store.throttle_state(credential.credential_id)
    clock.advance(1)
    assert tf.use_recovery_code("alice", codes[0]).ok
    assert store.throttle_state(credential.credential_id) == before
    step = totp.step(clock())
    for code in (totp.code_for_step(s) for s in (step - 1, step, step + 1)):
        assert tf.verify("alice", code).reason is VerifyReason.THROTTLED
    clock.set(blocked_until)
    after = tf.verify("alice", wrong_code(totp, clock()))
    assert after.reason is VerifyReason.INVALID
    assert after.retry_at == clock() + 240  # failure 7, not a free one


def test_a_recovery_code_after_a_future_step_is_accepted_cleanly(
    tf: Any, clock: SettableClock, store: MemoryStore
) -> None:
    """The window was claimed already, so the burn is a replay: the failure it counted
    is taken back, and the ones counted before stay."""
    totp, codes = enrol(tf, clock)
    guess_until_failures(tf, clock, totp, 2)
    assert tf.verify("alice", totp.code_for_step(totp.step(clock()) + 1)).ok
    assert tf.use_recovery_code("alice", codes[0]).ok
    credential = store.get_credential("alice")
    assert credential is not None
    assert store.throttle_state(credential.credential_id).failures == 2


def test_regenerate_invalidates_the_old_codes(tf: Any, clock: SettableClock, recorder: Any) -> None:
    _, old = enrol(tf, clock)
    new = tf.regenerate_recovery_codes("alice")
    assert len(new) == 10
    assert not set(new) & set(old)
    assert tf.use_recovery_code("alice", old[0]).reason is VerifyReason.INVALID
    assert tf.use_recovery_code("alice", new[0]).ok
    assert [e.user_id for e in recorder.of(RecoveryCodesRegenerated)] == ["alice"]
    with pytest.raises(NotEnrolledError):
        tf.regenerate_recovery_codes("bob")


def test_recovery_codes_are_throttled_and_malformed_ones_free(
    tf: Any, clock: SettableClock, recorder: Any
) -> None:
    _, codes = enrol(tf, clock)
    for _ in range(20):
        assert tf.use_recovery_code("alice", "not a code").reason is VerifyReason.MALFORMED
    bad = "aaaaa-aaaaa"
    results = [tf.use_recovery_code("alice", bad) for _ in range(6)]
    assert [r.reason for r in results] == [VerifyReason.INVALID] * 6
    assert results[-1].retry_at == clock() + 60
    blocked = tf.use_recovery_code("alice", codes[0])
    assert blocked.reason is VerifyReason.THROTTLED
    assert recorder.of(Throttled)[-1].retry_at == clock() + 60
    clock.advance(60)
    assert tf.use_recovery_code("alice", codes[0]).ok


def test_recovery_code_for_someone_not_enrolled(tf: Any) -> None:
    with pytest.raises(NotEnrolledError):
        tf.use_recovery_code("bob", "aaaaa-aaaaa")


# removal ------------------------------------------------------------------------------


def test_remove_by_the_user_themselves(tf: Any, clock: SettableClock, recorder: Any) -> None:
    enrol(tf, clock)
    tf.remove("alice", actor_id="alice")
    assert not tf.is_enrolled("alice")
    assert [(e.user_id, e.removed_by) for e in recorder.of(TwoFactorRemoved)] == [
        ("alice", "alice")
    ]
    with pytest.raises(NotEnrolledError):
        tf.remove("alice", actor_id="alice")


def test_remove_by_a_full_access_admin(tf: Any, clock: SettableClock, recorder: Any) -> None:
    enrol(tf, clock)
    tf.remove("alice", actor_id="root", actor_has_full_access=True)
    assert not tf.is_enrolled("alice")
    assert [(e.user_id, e.removed_by) for e in recorder.of(TwoFactorRemoved)] == [("alice", "root")]


def test_remove_by_anyone_else_is_refused(tf: Any, clock: SettableClock, recorder: Any) -> None:
    enrol(tf, clock)
    with pytest.raises(PermissionDeniedError):
        tf.remove("alice", actor_id="mallory")
    with pytest.raises(PermissionDeniedError):
        tf.remove("alice", actor_id="mallory", actor_has_full_access=False)
    assert tf.is_enrolled("alice")
    assert recorder.of(TwoFactorRemoved) == []


def test_removing_an_enrolment_never_confirmed_is_not_enrolled_and_changes_nothing(
    tf: Any, clock: SettableClock, store: MemoryStore, recorder: Any
) -> None:
    """Opening the enrolment page does not turn two-factor on, so there is nothing to
    remove: no grant is revoked, no TwoFactorRemoved, and the pending enrolment stays."""
    tf.begin_enrolment("carol", "carol@example.com")
    pending = store.get_credential("carol")
    store.put_grant(Grant("carol", "s1", frozenset({"pwd"}), clock()), clock() + 600)
    for actor, admin in (("carol", False), ("root", True)):
        with pytest.raises(NotEnrolledError):
            tf.remove("carol", actor_id=actor, actor_has_full_access=admin)
    assert store.get_credential("carol") == pending
    assert store.get_grant("carol", "s1") is not None
    assert recorder.of(TwoFactorRemoved) == []


def test_re_enrolment_after_removal_starts_a_fresh_credential(
    tf: Any, clock: SettableClock, store: MemoryStore
) -> None:
    enrol(tf, clock)
    old = store.get_credential("alice")
    tf.remove("alice", actor_id="alice")
    totp, _ = enrol(tf, clock)
    new = store.get_credential("alice")
    assert old is not None
    assert new is not None
    assert new.credential_id != old.credential_id
    assert tf.verify("alice", totp.at(clock())).ok


# channels ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "required"),
    [
        ("web", True),
        (Channel.WEB, True),
        ("api", False),
        (Channel.API, False),
        ("api_key", False),
        (Channel.API_KEY, False),
        ("message_injection", False),
        (Channel.MESSAGE_INJECTION, False),
    ],
)
def test_required_for(tf: Any, channel: str, required: bool) -> None:
    assert tf.required_for(channel) is required
    assert TwoFactor.required_for(channel) is required


@pytest.mark.parametrize("channel", ["smtp", "WEB", "", None, 1])
def test_required_for_an_unknown_channel_is_an_error(channel: object) -> None:
    with pytest.raises(MalformedInputError) as info:
        TwoFactor.required_for(channel)  # type: ignore[arg-type]
    assert isinstance(info.value, StepupError)


@pytest.mark.parametrize("window", [11, -1, True, False, 1.0, "1", None])
def test_bad_window_is_refused(store: MemoryStore, window: object) -> None:
    """A boolean is no number of steps (``True`` is 1 to Python), as TOTPVerifier says."""
    with pytest.raises(ValueError, match="window"):
        TwoFactor(store, window=window)  # type: ignore[arg-type]


def test_an_outage_is_unavailable_on_verify(failing_store: Any, clock: SettableClock) -> None:
    tf = TwoFactor(failing_store, clock=clock)
    assert tf.verify("alice", "123456").reason is VerifyReason.UNAVAILABLE
    assert tf.use_recovery_code("alice", "aaaaa-aaaaa").reason is VerifyReason.UNAVAILABLE
    with pytest.raises(StoreUnavailableError) as info:
        tf.begin_enrolment("alice", "a@example.com")
    assert "10.0.0.1" not in str(info.value)  # driver messages (URLs, hosts) are not passed on


def test_event_types_cover_the_lifecycle(tf: Any, clock: SettableClock, recorder: Any) -> None:
    totp, codes = enrol(tf, clock)
    tf.verify("alice", totp.at(clock()))
    tf.verify("alice", "x")
    tf.use_recovery_code("alice", codes[0])
    tf.regenerate_recovery_codes("alice")
    tf.remove("alice", actor_id="alice")
    assert recorder.names() == [
        "TwoFactorVerified",  # the confirming code
        "TwoFactorEnabled",
        "TwoFactorVerified",
        "TwoFactorRejected",
        "RecoveryCodeUsed",
        "RecoveryCodesRegenerated",
        "TwoFactorRemoved",
    ]
    assert recorder.of(TwoFactorRejected)[0].reason == "malformed"


def test_32_concurrent_sign_ins_with_one_code_one_wins(
    make: Callable[..., Any], clock: SettableClock
) -> None:
    """Through the whole service (threads for sync, tasks for async), 50 times."""
    import asyncio
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from stepup.throttle import ThrottlePolicy

    service = make(throttle=ThrottlePolicy(free_failures=10**6))
    target = service._target

    async def tasks(user: str, code: str) -> list[Any]:
        return list(await asyncio.gather(*(target.verify(user, code) for _ in range(32))))

    def threads(pool: ThreadPoolExecutor, user: str, code: str) -> list[Any]:
        barrier = threading.Barrier(32)

        def one() -> Any:
            barrier.wait()
            return target.verify(user, code)

        return [f.result() for f in [pool.submit(one) for _ in range(32)]]

    with ThreadPoolExecutor(32) as pool:
        for round_ in range(50):
            user = f"user-{round_}"
            totp, _ = enrol(service, clock, user)
            code = totp.at(clock())
            if isinstance(target, AsyncTwoFactor):
                results = asyncio.run(tasks(user, code))
            else:
                results = threads(pool, user, code)
            reasons = [r.reason for r in results]
            assert reasons.count(VerifyReason.OK) == 1, reasons
            assert reasons.count(VerifyReason.REPLAYED) == 31
