"""Users whose OTP secrets come from a TOML file (the engine_user_otp_secret idea)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from stepup.adapters.storage.memory import MemoryStore
from stepup.config_users import ConfigUsers
from stepup.errors import ConfigurationError, ManagedByConfigFileError, NotEnrolledError
from stepup.events import EventBus
from stepup.testing import SettableClock
from stepup.totp import TOTP, generate_secret
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
        ('[users.alice]\notp_secret = "JBSWY3DP"\n', "80 bits"),
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
