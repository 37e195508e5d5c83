"""Password re-authentication: every outcome, on both twins, with a frozen clock."""

from __future__ import annotations

import logging
import threading
import unicodedata
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
from argon2 import PasswordHasher, Type, extract_parameters, profiles
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reauth_password.helpers import (
    CHEAP_NEWER,
    BrokenStore,
    CountingHasher,
    Recorder,
    Twin,
    all_text,
)
from stepup.adapters.idp.password import (
    CHEAPEST,
    MAX_PASSWORD_LENGTH,
    METHOD,
    PASSWORD_PARAMETERS,
    PUBLIC_FAILURE_MESSAGE,
    PasswordReason,
    PasswordReauth,
    PasswordResult,
    hash_password,
    throttle_key,
)
from stepup.adapters.storage.memory import MemoryStore
from stepup.adapters.storage.sql import SQLStore
from stepup.errors import MalformedInputError, StepupError
from stepup.events import ReauthFailed, Throttled
from stepup.subject import Subject
from stepup.testing import SettableClock
from stepup.throttle import ThrottlePolicy

PASSWORD = "correct horse battery staple"
WRONG = "Tr0ub4dor&3"
USER = "user-1"
R = PasswordReason


def cheap_hash(password: str = PASSWORD) -> str:
    return hash_password(password, hasher=PasswordHasher.from_parameters(CHEAPEST))


# parameters ---------------------------------------------------------------------------


def test_default_parameters_meet_owasp_and_rfc_9106() -> None:
    p = PASSWORD_PARAMETERS
    assert p.type is Type.ID
    # OWASP minimum: argon2id, m=19 MiB, t=2, p=1. Ours must be at least as strong.
    assert p.memory_cost >= 19 * 1024
    assert p.time_cost >= 2
    assert p.parallelism >= 1
    assert p.salt_len >= 16
    assert p.hash_len >= 32
    assert p == profiles.RFC_9106_LOW_MEMORY


def test_cheapest_is_still_argon2id() -> None:
    assert CHEAPEST.type is Type.ID
    assert CHEAPEST == profiles.CHEAPEST


def test_hash_password_uses_the_default_parameters() -> None:
    stored = hash_password(PASSWORD)
    assert stored.startswith("$argon2id$")
    assert extract_parameters(stored) == PASSWORD_PARAMETERS
    assert PASSWORD not in stored


@pytest.mark.parametrize(
    "bad", [None, 42, b"bytes", "", "x" * (MAX_PASSWORD_LENGTH + 1), "a\x00b", "\ud800"]
)
def test_hash_password_refuses_malformed_input_without_echoing_it(bad: object) -> None:
    with pytest.raises(MalformedInputError) as caught:
        cheap_hash(bad)  # type: ignore[arg-type]
    if isinstance(bad, str) and bad:
        assert bad not in str(caught.value)


# outcomes -----------------------------------------------------------------------------


def test_correct_password_is_ok(twin: Twin, hasher: CountingHasher) -> None:
    result = twin.build(hasher=hasher)(USER, PASSWORD, cheap_hash())
    assert result.reason is R.OK
    assert result.ok
    assert bool(result)
    assert not result.needs_rehash
    assert result.new_hash is None
    assert result.retry_at is None
    assert result.public_message == ""
    assert len(hasher.verified) == 1


def test_wrong_password_is_wrong_password(twin: Twin) -> None:
    result = twin.build()(USER, WRONG, cheap_hash())
    assert result.reason is R.WRONG_PASSWORD
    assert not result
    assert result.public_message == PUBLIC_FAILURE_MESSAGE


def test_unknown_user_spends_the_same_argon2_work_and_is_charged(
    twin: Twin, hasher: CountingHasher
) -> None:
    store = MemoryStore()
    verify = twin.build(store=store, hasher=hasher)
    result = verify("ghost", PASSWORD, None)
    assert result.reason is R.UNKNOWN_USER
    assert result.public_message == PUBLIC_FAILURE_MESSAGE
    # One argon2 verify, against a hash made with this hasher's own parameters.
    assert hasher.verified == [CHEAPEST]
    assert store.throttle_state(throttle_key("ghost")).failures == 1


def test_unknown_user_is_throttled_like_a_known_one(twin: Twin, clock: SettableClock) -> None:
    verify = twin.build()
    outcomes = [verify("ghost", PASSWORD, None).reason for _ in range(5)]
    assert outcomes == [R.UNKNOWN_USER] * 4 + [R.THROTTLED]


@pytest.mark.parametrize("name", ["a\x00b", "b\ud800", "x" * 5000, "tab\there", "\x7f"])
def test_a_name_no_store_can_hold_is_an_unknown_user_throttled_like_any(
    twin: Twin, hasher: CountingHasher, tmp_path: Path, name: str
) -> None:
    """A user name typed into a sign-in form reaches verify as the user id. One no store
    can hold (a NUL, a lone surrogate, 5000 characters) was a store failure: on SQLite
    the failed write even kept the database locked for every other user."""
    store = SQLStore.sqlite(tmp_path / "s.db")
    try:
        verify = twin.build(
            store=store, hasher=hasher, throttle=ThrottlePolicy(free_failures=0, base_delay=10.0)
        )
        assert verify(name, PASSWORD, None).reason is R.UNKNOWN_USER
        assert hasher.verified == [CHEAPEST]  # the same work as any unknown name
        assert verify(name, PASSWORD, None).reason is R.THROTTLED
        assert store.throttle_state(throttle_key(name)).failures >= 1
        assert throttle_key(name).startswith("pwd#")
        assert verify("bob", PASSWORD, cheap_hash()).reason is R.OK  # nobody else is harmed
    finally:
        store.close()


def test_the_first_check_makes_the_dummy_whoever_it_is_for(twin: Twin) -> None:
    """Made by the first unknown name's check, the dummy cost that one attempt a second
    hash, telling it apart (once per instance) from a known user's."""
    made: list[str] = []

    def dummy() -> str:
        made.append("dummy")
        return cheap_hash("nobody's password")

    verify = twin.build(dummy_hash=dummy)
    assert verify(USER, PASSWORD, cheap_hash()).reason is R.OK
    assert made == ["dummy"]  # a known user's first check made it
    assert verify("ghost", PASSWORD, None).reason is R.UNKNOWN_USER
    assert made == ["dummy"]  # the unknown name's check made nothing more


def test_dummy_hash_follows_a_custom_hasher(twin: Twin) -> None:
    hasher = CountingHasher.from_parameters(CHEAP_NEWER)
    assert isinstance(hasher, CountingHasher)
    twin.build(hasher=hasher)("ghost", PASSWORD, None)
    assert hasher.verified == [CHEAP_NEWER]


BAD_PASSWORDS = [None, 7, 1.5, b"bytes", ["list"], "", "x" * (MAX_PASSWORD_LENGTH + 1)]
BAD_PASSWORDS += ["nul\x00inside", "\x00", "lone \ud800 surrogate"]
BAD_HASHES: list[object] = [
    "",
    "$2b$12$tooshort",  # bcrypt's prefix, not its shape
    "$2b$99$abcdefghijklmnopqrstuuSm7gZDpE9n2l2Ro1n9QwGkzD6yD9XWy",  # cost out of range
    "pbkdf2:sha256$salt$00",  # Werkzeug without its iterations
    "pbkdf2_sha256$x$salt$AAAA",  # Django's, iterations not a number
    "$argon2id$v=19$m=8,t=1,p=1",
    "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA\x00",
    "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$" + "A" * 600,
    "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA\u00e9",
    b"$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA",
    42,
]


@pytest.mark.parametrize("password", BAD_PASSWORDS, ids=repr)
def test_malformed_password_is_refused_before_any_work(
    twin: Twin, hasher: CountingHasher, password: object
) -> None:
    store = MemoryStore()
    result = twin.build(store=store, hasher=hasher)(USER, password, cheap_hash())
    assert result.reason is R.MALFORMED
    assert result.public_message == PUBLIC_FAILURE_MESSAGE
    assert hasher.verified == []
    assert store.throttle_state(throttle_key(USER)).failures == 0


@pytest.mark.parametrize("stored", BAD_HASHES, ids=repr)
def test_malformed_stored_hash_costs_what_an_unknown_user_costs(
    twin: Twin, hasher: CountingHasher, stored: object
) -> None:
    """The stored hash itself is never hashed with, but the dummy is, after the
    charge: an unknown user's answer takes the same work, so timing cannot tell them
    apart."""
    store = MemoryStore()
    result = twin.build(store=store, hasher=hasher)(USER, PASSWORD, stored)  # type: ignore[arg-type]
    assert result.reason is R.MALFORMED
    assert hasher.verified == [CHEAPEST]  # the dummy only
    assert store.throttle_state(throttle_key(USER)).failures == 1


def test_corrupt_hash_that_parses_is_malformed_and_still_charged(twin: Twin) -> None:
    store = MemoryStore()
    corrupt = "$argon2id$v=19$m=8,t=1,p=1$!!!!$aGFzaA"  # parameters parse, salt does not
    result = twin.build(store=store)(USER, PASSWORD, corrupt)
    assert result.reason is R.MALFORMED
    assert store.throttle_state(throttle_key(USER)).failures == 1


def test_longest_allowed_password_works(twin: Twin) -> None:
    longest = "p" * MAX_PASSWORD_LENGTH
    assert twin.build()(USER, longest, cheap_hash(longest)).ok


def test_subject_or_user_id_must_be_usable(twin: Twin) -> None:
    verify = twin.build()
    for who in ("", None, 42):
        with pytest.raises(MalformedInputError):
            verify(who, PASSWORD, cheap_hash())  # type: ignore[arg-type]


TYPABLE = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    password=st.text(TYPABLE, min_size=1, max_size=40),
    other=st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40),
)
def test_any_valid_password_round_trips(password: str, other: str) -> None:
    stored = cheap_hash(password)
    reauth = PasswordReauth(
        MemoryStore(),
        hasher=PasswordHasher.from_parameters(CHEAPEST),
        clock=SettableClock(),
        throttle=ThrottlePolicy(free_failures=10**6),
    )
    assert reauth.verify(USER, password, stored).reason is R.OK
    # Equivalent spellings are one password (NIST SP 800-63B 5.1.1.2): NFKC decides.
    same = unicodedata.normalize("NFKC", other) == unicodedata.normalize("NFKC", password)
    expected = R.OK if same else R.WRONG_PASSWORD
    if "\x00" in other:
        expected = R.MALFORMED
    assert reauth.verify(USER, other, stored).reason is expected


# throttle -----------------------------------------------------------------------------


def test_default_throttle_blocks_after_free_failures_then_recovers(
    twin: Twin, clock: SettableClock, hasher: CountingHasher
) -> None:
    store = MemoryStore()
    verify = twin.build(store=store, hasher=hasher)
    stored = cheap_hash()
    t0 = clock()
    for _ in range(3):
        result = verify(USER, WRONG, stored)
        assert (result.reason, result.retry_at) == (R.WRONG_PASSWORD, None)
    blocking = verify(USER, WRONG, stored)
    assert (blocking.reason, blocking.retry_at) == (R.WRONG_PASSWORD, t0 + 30)
    # Even the right password waits, and argon2 is not run at all.
    verified_before = len(hasher.verified)
    throttled = verify(USER, PASSWORD, stored)
    assert (throttled.reason, throttled.retry_at) == (R.THROTTLED, t0 + 30)
    assert throttled.public_message == PUBLIC_FAILURE_MESSAGE
    assert len(hasher.verified) == verified_before
    clock.advance(29.9)
    assert verify(USER, PASSWORD, stored).reason is R.THROTTLED
    clock.advance(0.1)
    assert verify(USER, PASSWORD, stored).ok
    # The success takes back only its own charge: the four failures still count.
    assert store.throttle_state(throttle_key(USER)).failures == 4


def test_custom_throttle_doubles_up_to_its_cap(twin: Twin, clock: SettableClock) -> None:
    policy = ThrottlePolicy(free_failures=0, base_delay=5.0, max_delay=8.0, forget_after=100.0)
    verify = twin.build(throttle=policy)
    stored = cheap_hash()
    delays = []
    for _ in range(3):
        result = verify(USER, WRONG, stored)
        assert result.reason is R.WRONG_PASSWORD
        assert result.retry_at is not None
        delays.append(result.retry_at - clock())
        clock.set(result.retry_at)
    assert delays == [5.0, 8.0, 8.0]


def test_throttle_is_per_user_and_shared_by_their_sessions(twin: Twin) -> None:
    policy = ThrottlePolicy(free_failures=1)
    verify = twin.build(throttle=policy)
    stored = cheap_hash()
    first, second = Subject(USER, "session-a"), Subject(USER, "session-b")
    assert verify(first, WRONG, stored).reason is R.WRONG_PASSWORD
    assert verify(second, WRONG, stored).reason is R.WRONG_PASSWORD
    assert verify(first, PASSWORD, stored).reason is R.THROTTLED
    assert verify(second, PASSWORD, stored).reason is R.THROTTLED
    assert verify("someone-else", PASSWORD, stored).ok


def test_success_does_not_clear_earlier_failures(twin: Twin, clock: SettableClock) -> None:
    """Issue 12 item 8: a success refunds its own charge and nothing else, so guessing
    between the owner's re-authentications gains no fresh free failures."""
    store = MemoryStore()
    verify = twin.build(store=store)
    stored = cheap_hash()
    for _ in range(3):
        verify(USER, WRONG, stored)
    for _ in range(5):  # however often the owner succeeds
        assert verify(USER, PASSWORD, stored).ok
    assert store.throttle_state(throttle_key(USER)).failures == 3
    assert verify(USER, WRONG, stored).retry_at == clock() + 30


@pytest.mark.parametrize("free", [0, 3, 7])
def test_charge_before_verify_under_32_threads(free: int, clock: SettableClock) -> None:
    hasher = CountingHasher.from_parameters(CHEAPEST)
    assert isinstance(hasher, CountingHasher)
    policy = ThrottlePolicy(free_failures=free)
    reauth = PasswordReauth(MemoryStore(), hasher=hasher, clock=clock, throttle=policy)
    stored = cheap_hash()
    barrier = threading.Barrier(32)
    results: list[PasswordResult] = []
    lock = threading.Lock()

    def guess(n: int) -> None:
        barrier.wait(timeout=30)
        result = reauth.verify(USER, f"guess-{n}", stored)
        with lock:
            results.append(result)

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    reasons = [r.reason for r in results]
    assert len(reasons) == 32
    assert reasons.count(R.WRONG_PASSWORD) == free + 1
    assert reasons.count(R.THROTTLED) == 32 - (free + 1)
    assert len(hasher.verified) == free + 1


# rehash -------------------------------------------------------------------------------


def test_outdated_parameters_give_a_new_hash(twin: Twin) -> None:
    newer = PasswordHasher.from_parameters(CHEAP_NEWER)
    result = twin.build(hasher=newer)(USER, PASSWORD, cheap_hash())
    assert result.ok
    assert result.needs_rehash
    assert result.new_hash is not None
    assert extract_parameters(result.new_hash) == CHEAP_NEWER
    assert newer.verify(result.new_hash, PASSWORD)
    assert not newer.check_needs_rehash(result.new_hash)


def test_other_argon2_variant_is_verified_and_upgraded_to_argon2id(twin: Twin) -> None:
    argon2i = PasswordHasher.from_parameters(replace(CHEAPEST, type=Type.I))
    result = twin.build()(USER, PASSWORD, argon2i.hash(PASSWORD))
    assert result.ok
    assert result.new_hash is not None
    assert result.new_hash.startswith("$argon2id$")


def test_wrong_password_never_rehashes(twin: Twin) -> None:
    newer = PasswordHasher.from_parameters(CHEAP_NEWER)
    result = twin.build(hasher=newer)(USER, WRONG, cheap_hash())
    assert result.reason is R.WRONG_PASSWORD
    assert result.new_hash is None


def test_owasp_minimum_hash_is_upgraded_to_the_defaults(clock: SettableClock) -> None:
    owasp = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
    result = PasswordReauth(MemoryStore(), clock=clock).verify(USER, PASSWORD, owasp.hash(PASSWORD))
    assert result.ok
    assert result.new_hash is not None
    assert extract_parameters(result.new_hash) == PASSWORD_PARAMETERS


# store failure ------------------------------------------------------------------------


@pytest.mark.parametrize("failing", ["throttle_charge", "throttle_refund"])
def test_store_failure_fails_closed(
    twin: Twin, recorder: Recorder, hasher: CountingHasher, failing: str
) -> None:
    result = twin.build(store=BrokenStore(failing), hasher=hasher)(USER, PASSWORD, cheap_hash())
    assert result.reason is R.UNAVAILABLE
    assert not result
    assert result.public_message == PUBLIC_FAILURE_MESSAGE
    assert [(e.name, getattr(e, "reason", None)) for e in recorder.events] == [
        ("ReauthFailed", "unavailable")
    ]
    # Without a charge, argon2 is never reached.
    assert len(hasher.verified) == (0 if failing == "throttle_charge" else 1)


# what the end user and the logs see ---------------------------------------------------


def every_outcome(twin: Twin, clock: SettableClock) -> dict[PasswordReason, PasswordResult]:
    stored = cheap_hash()
    verify = twin.build(throttle=ThrottlePolicy(free_failures=0))
    outcomes = {
        R.OK: verify("ok-user", PASSWORD, stored),
        R.WRONG_PASSWORD: verify(USER, WRONG, stored),
        R.THROTTLED: verify(USER, PASSWORD, stored),
        R.UNKNOWN_USER: verify("ghost", PASSWORD, None),
        R.MALFORMED: verify(USER, "bad\x00", stored),
        R.UNSUPPORTED_HASH: verify("sso-user", PASSWORD, "{SSHA}not-a-format-we-know"),
        R.UNAVAILABLE: twin.build(store=BrokenStore("throttle_charge"))(USER, PASSWORD, stored),
    }
    assert {reason: result.reason for reason, result in outcomes.items()} == {r: r for r in R}
    return outcomes


def test_every_failure_shows_the_same_public_message(twin: Twin, clock: SettableClock) -> None:
    outcomes = every_outcome(twin, clock)
    failures = [r for reason, r in outcomes.items() if reason is not R.OK]
    assert {r.public_message for r in failures} == {PUBLIC_FAILURE_MESSAGE}
    assert len(failures) == len(R) - 1


def test_events_name_user_session_method_and_reason(
    twin: Twin, clock: SettableClock, recorder: Recorder
) -> None:
    verify = twin.build(throttle=ThrottlePolicy(free_failures=0, base_delay=10.0))
    stored = cheap_hash()
    verify(Subject(USER, "sess-1"), PASSWORD, stored)
    verify(Subject(USER, "sess-1"), WRONG, stored)
    # A right password emits nothing here: Reauth.record emits ReauthSucceeded, once.
    assert recorder.events == [
        ReauthFailed(at=clock(), user_id=USER, method=METHOD, reason="wrong_password"),
        Throttled(at=clock(), key=throttle_key(USER), retry_at=clock() + 10.0),
    ]
    recorder.events.clear()
    verify(USER, PASSWORD, stored)
    assert recorder.events == [
        ReauthFailed(at=clock(), user_id=USER, method=METHOD, reason="throttled"),
        Throttled(at=clock(), key=throttle_key(USER), retry_at=clock() + 10.0),
    ]


def test_no_password_or_hash_in_results_events_reprs_or_logs(
    twin: Twin, clock: SettableClock, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    def broken_listener(event: object) -> None:
        raise RuntimeError("listener failed")  # makes the event bus log

    recorder.bus.subscribe(broken_listener)
    newer = PasswordHasher.from_parameters(CHEAP_NEWER)
    stored = cheap_hash()
    secret_user = "user-" + uuid.uuid4().hex
    with caplog.at_level(logging.DEBUG):
        outcomes = every_outcome(twin, clock)
        rehashed = twin.build(hasher=newer)(secret_user, PASSWORD, stored)
    assert rehashed.new_hash is not None
    text = all_text([*outcomes.values(), rehashed, *recorder.events])
    text += caplog.text + "".join(str(r.args) for r in caplog.records)
    text += repr(PasswordReauth(MemoryStore(), hasher=newer))
    assert "listener failed" in caplog.text  # the logs were really captured
    for secret in (PASSWORD, WRONG, stored, rehashed.new_hash, stored.rsplit("$", 1)[-1]):
        assert secret not in text


def test_reauth_repr_shows_parameters_only() -> None:
    assert repr(PasswordReauth(MemoryStore())) == "PasswordReauth(argon2id: m=65536, t=3, p=4)"


def test_errors_are_stepup_errors() -> None:
    with pytest.raises(StepupError):
        hash_password("")
