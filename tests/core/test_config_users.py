"""Users whose OTP secrets come from a TOML file (the engine_user_otp_secret idea)."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stepup.adapters.storage.memory import MemoryStore
from stepup.config_users import ConfigUsers
from stepup.errors import ConfigurationError, ManagedByConfigFileError, NotEnrolledError
from stepup.events import EventBus
from stepup.testing import SettableClock
from stepup.totp import MIN_SECRET_BITS, TOTP, generate_secret
from stepup.twofactor import AsyncTwoFactor, TwoFactor
from stepup.verifier import VerifyReason

ALICE = generate_secret()
BOB = generate_secret()


@pytest.fixture
def users_file(tmp_path: Path) -> Path:
    path = tmp_path / "users.toml"
    path.write_text(
        f"""
[users."alice@example.com"]
otp_secret = "{ALICE}"

[users.bob]
otp_secret = "{BOB}"
digits = 8
period = 60
algorithm = "SHA256"
""",
        encoding="utf-8",
    )
    path.chmod(0o600)
    return path


@pytest.fixture(params=["sync", "async"])
def tf(
    request: pytest.FixtureRequest,
    users_file: Path,
    store: MemoryStore,
    clock: SettableClock,
    events: EventBus,
    synced: Callable[[Any], Any],
    yielding_store: Callable[[MemoryStore], Any],
) -> Any:
    users = ConfigUsers.load(users_file)
    if request.param == "sync":
        return synced(TwoFactor(store, clock=clock, events=events, config_users=users))
    return synced(
        AsyncTwoFactor(yielding_store(store), clock=clock, events=events, config_users=users)
    )


def test_load_reads_every_user(users_file: Path) -> None:
    users = ConfigUsers.load(users_file)
    assert len(users) == 2
    assert "alice@example.com" in users
    assert "carol" not in users
    bob = users.get("bob")
    assert bob is not None
    assert (bob.totp.digits, bob.totp.period, bob.totp.algorithm) == (8, 60, "SHA256")
    assert ALICE not in repr(users)
    assert BOB not in repr(bob)
    assert str(users_file) in repr(users)


def test_verify_uses_the_file_secrets(tf: Any, clock: SettableClock) -> None:
    alice = TOTP(ALICE)
    bob = TOTP(BOB, digits=8, period=60, algorithm="SHA256")
    assert tf.is_enrolled("alice@example.com")
    assert not tf.is_enrolled("carol")
    result = tf.verify("alice@example.com", alice.at(clock()))
    assert result.ok
    assert result.step == alice.step(clock())
    assert tf.verify("bob", bob.at(clock())).ok
    assert tf.verify("bob", alice.at(clock())).reason is not VerifyReason.OK
    with pytest.raises(NotEnrolledError):
        tf.verify("carol", alice.at(clock()))


def test_same_replay_rule(tf: Any, clock: SettableClock) -> None:
    alice = TOTP(ALICE)
    now = alice.step(clock())
    assert tf.verify("alice@example.com", alice.code_for_step(now + 1)).ok
    assert tf.verify("alice@example.com", alice.code_for_step(now + 1)).reason is (
        VerifyReason.REPLAYED
    )
    assert tf.verify("alice@example.com", alice.code_for_step(now)).reason is VerifyReason.REPLAYED


def test_same_throttle_rule(tf: Any, clock: SettableClock) -> None:
    alice = TOTP(ALICE)
    wrong = next(c for c in ("000000", "111111", "222222") if alice.match(c, clock(), 1) is None)
    results = [tf.verify("alice@example.com", wrong) for _ in range(4)]
    assert [r.reason for r in results] == [VerifyReason.INVALID] * 4
    assert results[-1].retry_at == clock() + 30
    blocked = tf.verify("alice@example.com", alice.at(clock()))
    assert blocked.reason is VerifyReason.THROTTLED
    # Throttling is per user: bob is unaffected.
    assert tf.verify("bob", TOTP(BOB, digits=8, period=60, algorithm="SHA256").at(clock())).ok


@pytest.mark.parametrize(
    ("method", "args", "kwargs"),
    [
        ("begin_enrolment", ("alice@example.com", "alice@example.com"), {}),
        ("confirm_enrolment", ("alice@example.com", "123456"), {}),
        ("remove", ("alice@example.com",), {"actor_id": "alice@example.com"}),
        ("remove", ("alice@example.com",), {"actor_id": "root", "actor_has_full_access": True}),
        ("regenerate_recovery_codes", ("alice@example.com",), {}),
        ("use_recovery_code", ("alice@example.com", "aaaaa-aaaaa"), {}),
        ("reseal", ("alice@example.com",), {}),
    ],
)
def test_the_api_may_not_change_file_users(
    tf: Any, users_file: Path, method: str, args: tuple[str, ...], kwargs: dict[str, Any]
) -> None:
    with pytest.raises(ManagedByConfigFileError) as info:
        getattr(tf, method)(*args, **kwargs)
    assert str(users_file) in str(info.value)
    assert tf.is_enrolled("alice@example.com")


SECRET_IN_FILE = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXQ"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (f'[users.alice]\notp_secret = "{SECRET_IN_FILE}"\n[users.alice', "not valid TOML"),
        (f'[users.alice]\notp_secret = "{SECRET_IN_FILE}', "not valid TOML"),
        ("[users.alice]\ndigits = 6\n", "otp_secret is required"),
        (f'[users.alice]\notp_secret = "{SECRET_IN_FILE}!"\n', "base32"),
        ('[users.alice]\notp_secret = "JBSWY3DP"\n', "128 bits"),
        ('[users.alice]\notp_secret = "JBSWY3DPEHPK3PXP"\n', "128 bits"),
        ("[users.alice]\notp_secret = 12345\n", "base32 string"),
        (f'[users.alice]\notp_secret = "{SECRET_IN_FILE}"\ndigits = 7\n', "digits"),
        (f'[users.alice]\notp_secret = "{SECRET_IN_FILE}"\ndigits = [6]\n', "digits"),
        (f'[users.alice]\notp_secret = "{SECRET_IN_FILE}"\nperiod = "30"\n', "period"),
        (f'[users.alice]\notp_secret = "{SECRET_IN_FILE}"\nalgorithm = "MD5"\n', "algorithm"),
        (f'[users.alice]\notp_secret = "{SECRET_IN_FILE}"\nalgorithm = ["SHA1"]\n', "algorithm"),
        (f'[users.alice]\notp_secret = "{SECRET_IN_FILE}"\nsecret = "x"\n', "unknown keys"),
        (f'users = "{SECRET_IN_FILE}"\n', "'users' must be a table"),
        (f'[users]\nalice = "{SECRET_IN_FILE}"\n', "must be a table"),
        (f'[people.alice]\notp_secret = "{SECRET_IN_FILE}"\n', "unknown top-level keys"),
        (f'[users.""]\notp_secret = "{SECRET_IN_FILE}"\n', "must not be empty"),
    ],
)
def test_bad_files_name_file_and_user_but_never_the_secret(
    tmp_path: Path, body: str, fragment: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ConfigurationError) as info:
        ConfigUsers.load(path)
    message = str(info.value)
    assert fragment in message
    assert str(path) in message
    if "users.alice" in body:
        assert "'alice'" in message or "not valid TOML" in message
    assert SECRET_IN_FILE not in message
    assert SECRET_IN_FILE[:16] not in message
    assert info.value.__cause__ is None  # nothing chained that could carry the text


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read") as info:
        ConfigUsers.load(tmp_path / "nope.toml")
    assert "nope.toml" in str(info.value)


def test_an_empty_file_has_no_users(tmp_path: Path) -> None:
    path = tmp_path / "empty.toml"
    path.write_text("", encoding="utf-8")
    assert len(ConfigUsers.load(path)) == 0


# secret length (RFC 4226 section 4, R6) -----------------------------------------------


def b32(key: bytes) -> str:
    return base64.b32encode(key).decode("ascii").rstrip("=")


def random_keys(min_size: int, max_size: int) -> st.SearchStrategy[bytes]:
    """Keys as ``stepup totp new`` makes them: random bytes (``st.binary`` would give
    all-zero and other guessable keys, which a users file refuses)."""
    sizes = st.integers(min_value=min_size, max_value=max_size)
    return st.builds(lambda n, seed: random.Random(seed).randbytes(n), sizes, st.integers())


@given(key=st.binary(min_size=10, max_size=MIN_SECRET_BITS // 8 - 1))
def test_a_secret_under_128_bits_is_refused_naming_file_and_user(key: bytes) -> None:
    secret = b32(key)
    with pytest.raises(ConfigurationError) as info:
        ConfigUsers.from_mapping({"users": {"alice": {"otp_secret": secret}}}, source="u.toml")
    message = str(info.value)
    assert message.startswith("u.toml: users.'alice': ")
    assert f"at least {MIN_SECRET_BITS} bits (this one holds {len(key) * 8})" in message
    assert secret not in message
    assert info.value.__cause__ is None


@given(key=random_keys(MIN_SECRET_BITS // 8, 64))
def test_a_secret_of_128_bits_or_more_is_accepted(key: bytes) -> None:
    users = ConfigUsers.from_mapping({"users": {"alice": {"otp_secret": b32(key).lower()}}})
    alice = users.get("alice")
    assert alice is not None
    assert alice.totp.at(59) == TOTP.from_key(key).at(59)


# encoding -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "offset", "line"),
    [
        (b'[users.alice]\notp_secret = "%s"\n# caf\xe9\n', 67, 3),
        (b"\xff\xfe[users.alice]\n", 0, 1),  # UTF-16
        (b'[users."al\xc3"]\notp_secret = "%s"\n', 10, 1),  # a cut-off sequence
    ],
)
def test_a_file_that_is_not_utf8_names_the_file_and_the_byte(
    tmp_path: Path, raw: bytes, offset: int, line: int
) -> None:
    path = tmp_path / "users.toml"
    path.write_bytes(raw.replace(b"%s", SECRET_IN_FILE.encode()) if b"%s" in raw else raw)
    with pytest.raises(ConfigurationError) as info:
        ConfigUsers.load(path)
    assert str(info.value) == f"{path}: not UTF-8, as TOML must be (byte {offset}, line {line})"
    assert info.value.__cause__ is None


# user ids -----------------------------------------------------------------------------

REFUSED_IN_IDS = st.sampled_from(["\x00", "\x1b", "\n", "\t", "\x7f", "\x9b"])


@given(
    before=st.integers(min_value=0, max_value=3),
    head=st.text(st.characters(codec="ascii", categories=["L", "N"]), max_size=8),
    bad=REFUSED_IN_IDS,
)
def test_a_user_id_with_a_control_character_is_refused_by_position(
    before: int, head: str, bad: str
) -> None:
    table = {f"user{n}": {"otp_secret": generate_secret()} for n in range(before)}
    table[f"{head}{bad}[2Jroot"] = {"otp_secret": SECRET_IN_FILE}
    with pytest.raises(ConfigurationError) as info:
        ConfigUsers.from_mapping({"users": table}, source="u.toml")
    message = str(info.value)
    assert message.startswith(f"u.toml: user {before + 1} under [users] (in the file's order): ")
    assert bad not in message
    assert "root" not in message


def test_an_overlong_user_id_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "users.toml"
    path.write_text(f'[users.{"a" * 1025}]\notp_secret = "{SECRET_IN_FILE}"\n', "utf-8")
    with pytest.raises(ConfigurationError, match="user 1 under") as info:
        ConfigUsers.load(path)
    assert "a" * 100 not in str(info.value)


def test_an_escaped_control_character_in_a_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "users.toml"
    path.write_text(
        f'[users.alice]\notp_secret = "{ALICE}"\n'
        f'[users."x\\u001b[31mroot"]\notp_secret = "{SECRET_IN_FILE}"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigurationError, match=r": user 2 under \[users\]") as info:
        ConfigUsers.load(path)
    assert "\x1b" not in str(info.value)


# file modes ---------------------------------------------------------------------------

posix_only = pytest.mark.skipif(os.name == "nt", reason="POSIX file modes")


@posix_only
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o620, 0o602, 0o610, 0o601, 0o777])
def test_a_file_its_group_or_others_may_use_is_loaded_with_a_warning(
    users_file: Path, caplog: pytest.LogCaptureFixture, mode: int
) -> None:
    users_file.chmod(mode)
    with caplog.at_level(logging.WARNING, logger="stepup"):
        users = ConfigUsers.load(users_file)
    assert len(users) == 2  # a warning, not a refusal
    [record] = caplog.records
    assert (record.name, record.levelno) == ("stepup", logging.WARNING)
    assert record.getMessage() == (
        f"{users_file}: the secrets file is open to its group or others (mode {mode:04o});"
        " only the app's user should read it (chmod 600)"
    )
    assert ALICE not in caplog.text


@posix_only
@pytest.mark.parametrize("mode", [0o600, 0o400, 0o700])
def test_a_file_only_its_owner_may_use_is_loaded_without_a_word(
    users_file: Path, caplog: pytest.LogCaptureFixture, mode: int
) -> None:
    users_file.chmod(mode)
    with caplog.at_level(logging.DEBUG, logger="stepup"):
        assert len(ConfigUsers.load(users_file)) == 2
    assert caplog.records == []


# one secret, one user -----------------------------------------------------------------


@given(
    key=random_keys(MIN_SECRET_BITS // 8, 40),
    spelling=st.sampled_from([str.lower, str.upper, lambda s: s + "=" * (-len(s) % 8)]),
)
def test_a_secret_two_users_share_is_refused_naming_both_never_the_secret(
    key: bytes, spelling: Callable[[str], str]
) -> None:
    """Either user's codes would sign in as the other: refused at load, also when the
    copy is spelt in another case or with padding, or under other TOTP settings."""
    secret = b32(key)
    table = {
        "alice": {"otp_secret": secret},
        "bob": {"otp_secret": spelling(secret), "digits": 8},
    }
    with pytest.raises(ConfigurationError) as info:
        ConfigUsers.from_mapping({"users": table}, source="u.toml")
    message = str(info.value)
    assert message.startswith("u.toml: users.'bob': the same otp_secret as users.'alice'")
    assert secret not in message
    assert secret.lower() not in message


ALGORITHMS = ("SHA1", "SHA256", "SHA512")
BLOCK = {"SHA1": 64, "SHA256": 64, "SHA512": 128}
HASH = {"SHA1": hashlib.sha1, "SHA256": hashlib.sha256, "SHA512": hashlib.sha512}


def same_codes(first: TOTP, second: TOTP) -> bool:
    return all(first.at(t) == second.at(t) for t in range(0, 3000, 30))


def refusal(alice: dict[str, Any], bob: dict[str, Any]) -> str:
    """The message refusing users alice and bob (bob listed second)."""
    with pytest.raises(ConfigurationError) as info:
        ConfigUsers.from_mapping({"users": {"alice": alice, "bob": bob}}, source="u.toml")
    return str(info.value)


@given(
    key=random_keys(MIN_SECRET_BITS // 8, 40),
    zeros=st.integers(min_value=1, max_value=20),
    algorithm=st.sampled_from(ALGORITHMS),
    swap=st.booleans(),
)
def test_a_secret_that_differs_by_trailing_zero_bytes_is_refused(
    key: bytes, zeros: int, algorithm: str, swap: bool
) -> None:
    """HMAC (RFC 2104) pads a short key with zero bytes: K and K + 00 are one HMAC key,
    so either user's codes sign in as the other; refused like a copy, in either order."""
    padded = key + b"\0" * zeros
    first, second = (padded, key) if swap else (key, padded)
    settings = {"algorithm": algorithm}
    assert same_codes(
        TOTP.from_key(first, algorithm=algorithm),  # type: ignore[arg-type]
        TOTP.from_key(second, algorithm=algorithm),  # type: ignore[arg-type]
    )
    message = refusal(
        {"otp_secret": b32(first), **settings}, {"otp_secret": b32(second), **settings}
    )
    assert message.startswith("u.toml: users.'bob': an otp_secret that gives the same codes")
    assert "users.'alice'" in message
    assert b32(first) not in message
    assert b32(second) not in message


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_long_secret_and_its_digest_are_refused(algorithm: str) -> None:
    """HMAC hashes a key longer than the hash's block (64 bytes for SHA-1 and SHA-256,
    128 for SHA-512): such a key and its digest give the same codes."""
    long_key = os.urandom(BLOCK[algorithm] + 6)
    digest = HASH[algorithm](long_key).digest()
    assert same_codes(
        TOTP.from_key(long_key, algorithm=algorithm),  # type: ignore[arg-type]
        TOTP.from_key(digest, algorithm=algorithm),  # type: ignore[arg-type]
    )
    for first, second in ((long_key, digest), (digest, long_key)):
        message = refusal(
            {"otp_secret": b32(first), "algorithm": algorithm},
            {"otp_secret": b32(second), "algorithm": algorithm},
        )
        assert "users.'bob'" in message
        assert "users.'alice'" in message
        assert b32(first) not in message
        assert b32(second) not in message


@pytest.mark.parametrize("first", ALGORITHMS)
@pytest.mark.parametrize("second", ALGORITHMS)
def test_hmac_equal_secrets_are_refused_whatever_each_users_algorithm(
    first: str, second: str
) -> None:
    """The algorithm is in the file, not secret: alice's key padded with a zero byte lets
    bob compute alice's codes under alice's algorithm, whatever bob's own says (and the
    same bytes under two algorithms stay refused, as before)."""
    key = os.urandom(20)
    for other in (key, key + b"\0"):
        message = refusal(
            {"otp_secret": b32(key), "algorithm": first},
            {"otp_secret": b32(other), "algorithm": second, "digits": 8, "period": 60},
        )
        assert message.startswith("u.toml: users.'bob': ")
        assert "users.'alice'" in message


def test_a_digest_of_a_long_secret_under_another_algorithm_is_refused() -> None:
    """Bob's key is the SHA-1 digest of alice's long one: anyone holding alice's key
    computes bob's (SHA-256) codes, so the pair is refused too."""
    long_key = os.urandom(70)
    message = refusal(
        {"otp_secret": b32(long_key), "algorithm": "SHA1"},
        {"otp_secret": b32(HASH["SHA1"](long_key).digest()), "algorithm": "SHA256"},
    )
    assert message.startswith("u.toml: users.'bob': an otp_secret that gives the same codes")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_secrets_of_their_own_load_under_every_algorithm(algorithm: str) -> None:
    """No false alarm: different keys, long ones included, still load."""
    table = {
        name: {"otp_secret": b32(os.urandom(size)), "algorithm": algorithm}
        for name, size in (("alice", 20), ("bob", 20), ("carol", 140), ("dave", 16))
    }
    assert len(ConfigUsers.from_mapping({"users": table})) == 4


def test_users_with_secrets_of_their_own_load(users_file: Path) -> None:
    assert ConfigUsers.load(users_file).user_ids() == ["alice@example.com", "bob"]
