"""A users file refuses guessable TOTP secrets (RFC 4226 section 4, R6: the secret is
random), not only short ones: a published example (the RFC test keys, the tutorials'
JBSWY3DPEHPK3PXP and its repetitions), a short pattern repeated over the whole key
(``AAAA...``, ``ABAB...``), a key of a handful of byte values. The refusal names the
cause and the user, never the secret; no random key is ever refused."""

from __future__ import annotations

import base64
import random
import re
import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stepup.cli import main
from stepup.config_users import ConfigUsers, guessable_secret
from stepup.errors import ConfigurationError
from stepup.totp import MIN_SECRET_BITS, decode_secret, generate_secret

DOCS = Path(__file__).resolve().parents[2] / "docs"

#: The published examples, as key bytes.
PUBLISHED = (
    b"1234567890",
    base64.b32decode("JBSWY3DPEHPK3PXP"),
    base64.b32decode("BASE32SECRET3232"),
)


def b32(key: bytes) -> str:
    return base64.b32encode(key).decode("ascii").rstrip("=")


def random_keys(min_size: int = 10, max_size: int = 64) -> st.SearchStrategy[bytes]:
    """Random bytes, as ``stepup totp new`` makes them, of every length from 10."""
    sizes = st.integers(min_value=min_size, max_value=max_size)
    return st.builds(lambda n, seed: random.Random(seed).randbytes(n), sizes, st.integers())


def refusal(secret: str) -> str:
    with pytest.raises(ConfigurationError) as info:
        ConfigUsers.from_mapping({"users": {"alice": {"otp_secret": secret}}}, source="u.toml")
    assert info.value.__cause__ is None
    return str(info.value)


# the pure check ------------------------------------------------------------------------


@given(key=random_keys())
def test_a_random_key_is_never_guessable(key: bytes) -> None:
    assert guessable_secret(key) is None


@given(key=random_keys(MIN_SECRET_BITS // 8, 64))
def test_a_random_secret_loads(key: bytes) -> None:
    users = ConfigUsers.from_mapping({"users": {"alice": {"otp_secret": b32(key)}}})
    assert "alice" in users


def test_stepup_totp_new_makes_secrets_that_are_not_guessable() -> None:
    for _ in range(200):
        assert guessable_secret(decode_secret(generate_secret())) is None


@given(
    pattern=st.binary(min_size=1, max_size=8),
    length=st.integers(min_value=MIN_SECRET_BITS // 8, max_value=64),
    start=st.integers(min_value=0, max_value=7),
)
def test_a_short_pattern_repeated_over_the_key_is_guessable(
    pattern: bytes, length: int, start: int
) -> None:
    key = (pattern * (2 * length))[start : start + length]
    reason = guessable_secret(key)
    assert reason is not None
    assert b32(key) not in reason


@given(
    values=st.lists(st.integers(min_value=0, max_value=255), min_size=1, max_size=4),
    picks=st.lists(st.integers(min_value=0, max_value=3), min_size=16, max_size=64),
)
def test_a_key_of_four_byte_values_or_fewer_is_guessable(
    values: list[int], picks: list[int]
) -> None:
    key = bytes(values[pick % len(values)] for pick in picks)
    assert guessable_secret(key) is not None


@given(
    example=st.sampled_from(PUBLISHED),
    before=random_keys(0, 20),
    after=random_keys(0, 20),
)
def test_a_key_holding_a_published_example_is_guessable(
    example: bytes, before: bytes, after: bytes
) -> None:
    reason = guessable_secret(before + example + after)
    assert reason is not None
    assert "published example" in reason


# through the users file ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("secret", "cause"),
    [
        ("A" * 32, "repeats a short pattern"),  # all zero bytes
        ("AB" * 16, "repeats a short pattern"),
        ("ABCDEFGH" * 4, "repeats a short pattern"),
        ("7" * 40, "repeats a short pattern"),  # all 0xff
        # zero bytes and ones, in no period: still only two values
        (b32(bytes([0, 1, 1, 0, 1, 0, 0, 0, 1, 1, 1, 0, 1, 0, 1, 1, 0, 0, 1, 0])), "few distinct"),
        ("JBSWY3DPEHPK3PXP" * 2, "published example"),  # the tutorials' secret, doubled
        ("JBSWY3DPEHPK3PXP" * 4, "published example"),
        ("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXQ", "published example"),  # ... with its end changed
        (b32(b"12345678901234567890"), "published example"),  # RFC 4226 / RFC 6238, SHA-1
        (b32(b"12345678901234567890123456789012"), "published example"),  # SHA-256
        (b32(b"1234567890" * 6 + b"1234"), "published example"),  # SHA-512
        ("base32secret3232" * 2, "published example"),  # pyotp's README
    ],
)
def test_a_users_file_refuses_a_guessable_secret_naming_the_cause(secret: str, cause: str) -> None:
    assert len(decode_secret(secret)) * 8 >= MIN_SECRET_BITS  # long enough: refused for R6
    message = refusal(secret)
    assert message.startswith("u.toml: users.'alice': otp_secret ")
    assert cause in message
    assert "stepup totp new" in message
    assert secret not in message
    assert secret.lower() not in message
    assert secret[:16] not in message


def test_stepup_users_check_refuses_a_guessable_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "users.toml"
    path.write_text(
        f'[users.alice]\notp_secret = "{generate_secret()}"\n'
        '[users.bob]\notp_secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"\n',
        encoding="utf-8",
    )
    path.chmod(0o600)
    assert main(["users", "check", str(path)]) == 1
    out, err = capsys.readouterr()
    assert err.startswith(f"invalid: {path}: users.'bob': otp_secret holds a published example")
    assert "JBSWY3DPEHPK3PXP" not in out + err


def test_the_docs_users_file_loads() -> None:
    """docs/totp.md's example is what people copy: it must be a file stepup loads."""
    page = (DOCS / "totp.md").read_text(encoding="utf-8")
    section = page[page.index("## Users defined in a configuration file") :]
    block = re.search(r"```toml\n(.*?)```", section, re.S)
    assert block is not None
    users = ConfigUsers.from_mapping(tomllib.loads(block.group(1)))
    assert users.user_ids() == ["alice@example.com", "bob"]


@pytest.mark.parametrize(
    "secret",
    [
        "ABCABCABCABCABCABCABCABCABCABCAB",  # 3 characters: every 15 bits
        "ABCDEFABCDEFABCDEFABCDEFABCDEFABCDEF",  # 6 characters: every 30 bits
        "ABCDEFGABCDEFGABCDEFGABCDEFGABCD",  # 7 characters: every 35 bits
        "ABCDEFGHIJKLMNOPABCDEFGHIJKLMNOP",  # 16 characters: every 80 bits
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567",  # the base32 alphabet
    ],
)
def test_a_base32_pattern_that_is_no_whole_number_of_bytes_is_refused(secret: str) -> None:
    assert guessable_secret(decode_secret(secret)) is not None
    reason = refusal(secret)
    assert "otp_secret" in reason
    assert secret not in reason


@given(
    pattern=st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", min_size=1, max_size=16),
    length=st.sampled_from([32, 40, 52, 64]),
)
def test_any_base32_pattern_of_up_to_16_characters_repeated_is_refused(
    pattern: str, length: int
) -> None:
    secret = (pattern * length)[:length]
    assert guessable_secret(decode_secret(secret)) is not None
