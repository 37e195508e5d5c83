"""Recovery codes at 120 bits (OWASP ASVS 5.0 §6.5.2): format, input, digests at rest,
codes issued before still consumed once, one hash per attempt, nothing in the open."""

from __future__ import annotations

import dataclasses
import hashlib
import math
import threading
from collections.abc import Callable
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import stepup.recovery as recovery
from stepup.adapters.storage.memory import MemoryStore
from stepup.errors import NotEnrolledError
from stepup.events import EventBus, RecoveryCodeUsed
from stepup.recovery import (
    LEGACY_RECOVERY_CODE_LENGTH,
    MAX_RECOVERY_INPUT_LENGTH,
    RECOVERY_CODE_BITS,
    RECOVERY_CODE_LENGTH,
    digest_recovery_code,
    is_legacy_recovery_digest,
    issue_recovery_codes,
    new_recovery_codes,
    normalize_recovery_code,
    recovery_digest,
)
from stepup.sealing import SecretBox
from stepup.testing import SettableClock
from stepup.totp import TOTP
from stepup.twofactor import AsyncTwoFactor, TwoFactor
from stepup.verifier import VerifyReason

ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
KEY = bytes(range(32))
#: Two codes as issued before 120-bit codes, and their digests as they sit in stores.
OLD_CODES = ("abcde-fghij", "k2l3m-4n5o6")
OLD_DIGESTS = tuple(hashlib.sha256(c.replace("-", "").encode()).hexdigest() for c in OLD_CODES)

raw_new = st.text(alphabet=ALPHABET, min_size=RECOVERY_CODE_LENGTH, max_size=RECOVERY_CODE_LENGTH)
raw_old = st.text(
    alphabet=ALPHABET, min_size=LEGACY_RECOVERY_CODE_LENGTH, max_size=LEGACY_RECOVERY_CODE_LENGTH
)


@st.composite
def typed_as(draw: st.DrawFn, raw: str) -> str:
    """``raw`` as a person might type it: any case, spaces and hyphens here and there."""
    out = []
    for ch in raw:
        out.append(draw(st.sampled_from(["", " ", "-", "  ", " - ", "--"])))
        out.append(ch.upper() if draw(st.booleans()) else ch)
    out.append(draw(st.sampled_from(["", " ", "-"])))
    return "".join(out)  # may be longer than 64 characters: then it is malformed


def raw_and_typed(raws: st.SearchStrategy[str]) -> st.SearchStrategy[tuple[str, str]]:
    return raws.flatmap(lambda raw: st.tuples(st.just(raw), typed_as(raw)))


# the format -----------------------------------------------------------------------------


def test_new_codes_carry_at_least_112_bits() -> None:
    assert RECOVERY_CODE_BITS == RECOVERY_CODE_LENGTH * math.log2(len(ALPHABET)) == 120
    assert RECOVERY_CODE_BITS >= 112
    codes = new_recovery_codes()
    assert len(codes) == len(set(codes)) == 10
    for code in codes:
        groups = code.split("-")
        assert [len(g) for g in groups] == [4] * 6
        assert set("".join(groups)) <= set(ALPHABET)
        assert normalize_recovery_code(code) == "".join(groups)


def test_every_character_of_the_alphabet_is_drawn() -> None:
    """A generator over a smaller alphabet (fewer bits) would leave letters out: 4800
    draws miss one of 32 characters with probability below 10^-64."""
    seen = "".join(new_recovery_codes(100) + new_recovery_codes(100)).replace("-", "")
    assert len(seen) == 200 * RECOVERY_CODE_LENGTH
    assert set(seen) == set(ALPHABET)


def test_issued_digests_match_the_codes_in_order() -> None:
    codes, digests = issue_recovery_codes()
    assert len(codes) == len(digests) == 10
    for code, digest in zip(codes, digests, strict=True):
        compact = code.replace("-", "")
        assert digest == "v2:" + hashlib.sha256(compact.encode()).hexdigest()
        assert recovery_digest(code) == digest
        assert not is_legacy_recovery_digest(digest)
        assert code not in digest
        assert compact not in digest


@pytest.mark.parametrize("count", [0, -1, 101, True, 1.0, "10"])
def test_a_bad_count_is_refused(count: Any) -> None:
    with pytest.raises(ValueError, match="count"):
        new_recovery_codes(count)


# input ----------------------------------------------------------------------------------


@given(raw_and_typed(raw_new))
def test_any_case_and_separators_give_the_same_new_digest(pair: tuple[str, str]) -> None:
    raw, typed = pair
    if len(typed) > MAX_RECOVERY_INPUT_LENGTH:
        assert recovery_digest(typed) is None
        return
    assert normalize_recovery_code(typed) == raw
    assert recovery_digest(typed) == "v2:" + hashlib.sha256(raw.encode()).hexdigest()


@given(raw_and_typed(raw_old))
def test_any_case_and_separators_give_the_same_old_digest(pair: tuple[str, str]) -> None:
    raw, typed = pair
    if len(typed) > MAX_RECOVERY_INPUT_LENGTH:
        assert recovery_digest(typed) is None
        return
    assert normalize_recovery_code(typed) == raw
    digest = recovery_digest(typed)
    assert digest == hashlib.sha256(raw.encode()).hexdigest()  # as stored before
    assert digest is not None
    assert is_legacy_recovery_digest(digest)


@given(raw_new, raw_old)
def test_the_two_formats_never_share_a_digest(new: str, old: str) -> None:
    assert digest_recovery_code(new) != digest_recovery_code(old)
    assert digest_recovery_code(new).startswith("v2:")
    assert ":" not in digest_recovery_code(old)


MALFORMED: list[object] = [
    None,
    123,
    b"abcd-efgh-ijkl-mnop-qrst-uvwx",
    ["abcde-fghij"],
    "",
    "   ",
    "- - -",
    "abcde-fghi",  # 9 characters
    "abcde-fghijk",  # 11
    "abcd-efgh-ijkl-mnop-qrst-uvw",  # 23
    "abcd-efgh-ijkl-mnop-qrst-uvwxy",  # 25
    "abcd-efgh-ijkl-mnop-qrst-uvwx-abcd-efgh-ijkl-mnop",  # two codes at once
    "abcde-fghi0",  # 0, 1, 8, 9 are not base32: nothing is converted
    "abcde-fghi1",
    "abcde-fghi8",
    "abcd-efgh-ijkl-mnop-qrst-uvw9",
    "abcde_fghij",
    "abcde.fghij",
    "abcde\tfghij",
    "abcde-fghij\n",
    "abcde-fghi\u212a",  # KELVIN SIGN, lower() would make it "k"
    "ａｂｃｄｅ-ｆｇｈｉｊ",  # full-width
    "abcde-fghıj",  # dotless i
    "abcde-fgh\u0131j",
    "abcdé-fghij",
    "a" * 10 + " " * (MAX_RECOVERY_INPUT_LENGTH - 9),  # right letters, too long in all
    "a" * 1000,
]


@pytest.mark.parametrize("code", MALFORMED, ids=repr)
def test_malformed_input_is_refused(code: object) -> None:
    assert normalize_recovery_code(code) is None
    assert recovery_digest(code) is None


@given(st.text(max_size=80))
def test_only_base32_letters_and_separators_in_a_right_length_pass(text: str) -> None:
    normalized = normalize_recovery_code(text)
    compact = text.replace(" ", "").replace("-", "")
    ok = (
        len(text) <= MAX_RECOVERY_INPUT_LENGTH
        and text.isascii()
        and len(compact) in (RECOVERY_CODE_LENGTH, LEGACY_RECOVERY_CODE_LENGTH)
        and set(compact.lower()) <= set(ALPHABET)
    )
    assert normalized == (compact.lower() if ok else None)


@pytest.mark.parametrize("length", [0, 9, 11, 23, 25, 64])
def test_digest_refuses_what_is_not_normalised(length: int) -> None:
    with pytest.raises(ValueError, match="normalise"):
        digest_recovery_code("a" * length)


# through the two-factor service -----------------------------------------------------------


class CountingStore:
    """The memory store, counting calls (and the digests looked up); ``before_consume``
    runs between the credential read and the consume, to force an interleaving."""

    def __init__(self, inner: MemoryStore) -> None:
        self.inner = inner
        self.calls: list[str] = []
        self.looked_up: list[str] = []
        self.before_consume: Callable[[], None] | None = None

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.inner, name)

        def call(*args: Any) -> Any:
            self.calls.append(name)
            if name == "consume_recovery_hash":
                self.looked_up.append(args[1])
                if self.before_consume is not None:
                    hook, self.before_consume = self.before_consume, None
                    hook()
            return method(*args)

        return call


@pytest.fixture
def counting(store: MemoryStore) -> CountingStore:
    return CountingStore(store)


@pytest.fixture(params=["sync", "async"])
def tf(
    request: pytest.FixtureRequest,
    counting: CountingStore,
    clock: SettableClock,
    events: EventBus,
    synced: Callable[[Any], Any],
    yielding_store: Callable[[Any], Any],
) -> Any:
    options: dict[str, Any] = {
        "clock": clock,
        "events": events,
        "box": SecretBox({"k1": KEY}, current="k1"),
    }
    if request.param == "sync":
        return synced(TwoFactor(counting, **options))  # type: ignore[arg-type]
    return synced(AsyncTwoFactor(yielding_store(counting), **options))


def enrol(tf: Any, clock: SettableClock, user: str = "alice") -> tuple[str, ...]:
    enrolment = tf.begin_enrolment(user, f"{user}@example.com")
    confirmation = tf.confirm_enrolment(user, TOTP(enrolment.secret).at(clock()))
    assert confirmation.ok
    clock.advance(30)
    return tuple(confirmation.recovery_codes)


def with_old_codes(store: MemoryStore, user: str = "alice", *, keep_new: bool = False) -> None:
    """The user's stored digests as a release before 120-bit codes left them."""
    credential = store.get_credential(user)
    assert credential is not None
    kept = credential.recovery_hashes if keep_new else ()
    store.put_credential(replace(credential, recovery_hashes=OLD_DIGESTS + kept))


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_new_code_typed_any_way_signs_in_once(
    tf: Any, clock: SettableClock, store: MemoryStore, data: st.DataObject
) -> None:
    store.delete_credential("alice")
    codes = enrol(tf, clock)
    code = data.draw(st.sampled_from(codes))
    typed = data.draw(typed_as(code.replace("-", "")).filter(lambda t: len(t) <= 64))
    assert tf.use_recovery_code("alice", typed).ok
    assert tf.use_recovery_code("alice", typed).reason is VerifyReason.INVALID
    assert tf.use_recovery_code("alice", code).reason is VerifyReason.INVALID
    store.throttle_clear("recovery:alice")


def test_codes_issued_before_still_work_once_each(
    tf: Any, clock: SettableClock, store: MemoryStore, recorder: Any
) -> None:
    new = enrol(tf, clock)
    with_old_codes(store, keep_new=True)
    assert tf.legacy_recovery_codes("alice") == 2
    assert tf.use_recovery_code("alice", "ABCDE FGHIJ").ok
    assert recorder.of(RecoveryCodeUsed)[-1].remaining == 11
    assert tf.use_recovery_code("alice", "abcdefghij").reason is VerifyReason.INVALID
    assert tf.legacy_recovery_codes("alice") == 1
    assert tf.use_recovery_code("alice", new[0]).ok  # both kinds side by side
    assert tf.use_recovery_code("alice", OLD_CODES[1]).ok
    assert tf.legacy_recovery_codes("alice") == 0
    assert tf.use_recovery_code("alice", OLD_CODES[1]).reason is VerifyReason.INVALID


def test_regenerating_removes_the_weak_digests(
    tf: Any, clock: SettableClock, store: MemoryStore
) -> None:
    enrol(tf, clock)
    with_old_codes(store)
    assert tf.legacy_recovery_codes("alice") == 2
    fresh = tf.regenerate_recovery_codes("alice")
    assert tf.legacy_recovery_codes("alice") == 0
    credential = store.get_credential("alice")
    assert credential is not None
    assert not set(credential.recovery_hashes) & set(OLD_DIGESTS)
    assert all(d.startswith("v2:") for d in credential.recovery_hashes)
    assert tf.use_recovery_code("alice", OLD_CODES[0]).reason is VerifyReason.INVALID
    assert tf.use_recovery_code("alice", fresh[0]).ok


def test_legacy_count_for_someone_without_2fa_is_zero(tf: Any) -> None:
    assert tf.legacy_recovery_codes("nobody") == 0


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every SHA-256 that stepup.recovery computes, by its input."""
    seen: list[bytes] = []

    def sha256(data: bytes) -> Any:
        seen.append(data)
        return hashlib.sha256(data)

    monkeypatch.setattr(recovery, "hashlib", SimpleNamespace(sha256=sha256))
    return seen


@pytest.mark.parametrize(
    "attempt", ["zzzz-zzzz-zzzz-zzzz-zzzz-zzzz", "zzzzz-zzzzz"], ids=["new", "old"]
)
def test_a_wrong_code_costs_one_hash_and_one_lookup(
    tf: Any,
    clock: SettableClock,
    store: MemoryStore,
    counting: CountingStore,
    hashes: list[bytes],
    attempt: str,
) -> None:
    enrol(tf, clock)
    with_old_codes(store, keep_new=True)  # twelve stored digests of both kinds
    hashes.clear()
    counting.calls.clear()
    assert tf.use_recovery_code("alice", attempt).reason is VerifyReason.INVALID
    assert hashes == [attempt.replace("-", "").encode()]
    assert counting.calls.count("consume_recovery_hash") == 1
    assert counting.looked_up == [recovery_digest(attempt)]


def test_a_malformed_code_costs_no_hash_and_touches_nothing(
    tf: Any, clock: SettableClock, store: MemoryStore, counting: CountingStore, hashes: list[bytes]
) -> None:
    codes = enrol(tf, clock)
    before = store.get_credential("alice")
    hashes.clear()
    counting.calls.clear()
    for bad in ("abcd-efgh-ijkl-mnop-qrst-uvw", codes[0] + "x", codes[0].replace("a", "0")):
        if normalize_recovery_code(bad) is not None:
            continue  # the replacement found no "a"; the other inputs still count
        assert tf.use_recovery_code("alice", bad).reason is VerifyReason.MALFORMED
    assert hashes == []
    assert counting.calls == []
    assert store.get_credential("alice") == before
    assert store.throttle_state("recovery:alice").failures == 0
    assert tf.use_recovery_code("alice", codes[0]).ok


def test_one_code_presented_twice_at_once_wins_once(
    tf: Any, clock: SettableClock, counting: CountingStore
) -> None:
    """The competing use runs between this attempt's credential read and its consume."""
    codes = enrol(tf, clock)
    plain = TwoFactor(counting.inner, clock=clock, box=SecretBox({"k1": KEY}, current="k1"))
    competing: list[Any] = []
    counting.before_consume = lambda: competing.append(plain.use_recovery_code("alice", codes[3]))
    result = tf.use_recovery_code("alice", codes[3])
    assert [r.reason for r in competing] == [VerifyReason.OK]
    assert result.reason is VerifyReason.INVALID


def test_sixteen_threads_one_old_code_one_winner(clock: SettableClock, store: MemoryStore) -> None:
    tf = TwoFactor(store, clock=clock, box=SecretBox({"k1": KEY}, current="k1"))
    enrolment = tf.begin_enrolment("alice", "alice@example.com")
    assert tf.confirm_enrolment("alice", TOTP(enrolment.secret).at(clock())).ok
    clock.advance(30)
    with_old_codes(store)
    barrier = threading.Barrier(16)
    results: list[bool] = []

    def use() -> None:
        barrier.wait()
        results.append(tf.use_recovery_code("alice", OLD_CODES[0]).ok)

    threads = [threading.Thread(target=use) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(True) == 1


# nothing in the open ----------------------------------------------------------------------


def test_no_code_in_reprs_events_or_errors(
    tf: Any, clock: SettableClock, store: MemoryStore, recorder: Any
) -> None:
    enrolment = tf.begin_enrolment("alice", "alice@example.com")
    confirmation = tf.confirm_enrolment("alice", TOTP(enrolment.secret).at(clock()))
    clock.advance(30)
    codes = list(confirmation.recovery_codes)
    fresh = tf.regenerate_recovery_codes("alice")
    with_old_codes(store, keep_new=True)
    outputs = [repr(confirmation), str(confirmation), repr(tf), repr(store)]
    results = [
        tf.use_recovery_code("alice", fresh[0]),
        tf.use_recovery_code("alice", fresh[0]),
        tf.use_recovery_code("alice", OLD_CODES[0]),
        tf.use_recovery_code("alice", codes[1]),  # replaced by regenerating: invalid
        tf.use_recovery_code("alice", fresh[1] + "!"),  # malformed
    ]
    outputs += [repr(r) for r in results] + [str(r) for r in results]
    credential = store.get_credential("alice")
    outputs += [repr(credential), str(credential)]
    for event in recorder.events:
        fields = dataclasses.asdict(event)
        outputs += [repr(event), str(event), *(str(v) for v in fields.values())]
    with pytest.raises(NotEnrolledError) as info:
        tf.use_recovery_code("bob", fresh[2])
    outputs += [str(info.value), repr(info.value)]
    text = "\n".join(outputs)
    secrets = [*codes, *fresh, *OLD_CODES]
    secrets += [c.replace("-", "") for c in secrets] + [c.upper() for c in secrets]
    assert credential is not None
    secrets += list(credential.recovery_hashes)  # nor the digests, outside the store
    leaked = [s for s in secrets if s in text]
    assert leaked == []
