"""Werkzeug's ``pbkdf2:<digest>:<iterations>`` with every digest Werkzeug can write.

Werkzeug hands the digest name to ``hashlib.pbkdf2_hmac`` as written, so
``generate_password_hash(pw, "pbkdf2:sha3_256:1000")`` and ``"pbkdf2:md5:1000"`` are
valid hashes; stepup read only sha1 and sha2 and called the others malformed, with a log
line saying they had no parameters. Every hash here is made by Werkzeug itself.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher
from werkzeug.security import check_password_hash, generate_password_hash

from reauth_password.helpers import Twin
from stepup.adapters.idp import password_formats
from stepup.adapters.idp.password import CHEAPEST, PasswordReason
from stepup.adapters.idp.password_formats import (
    MAX_PBKDF2_ITERATIONS,
    MalformedHashError,
    WerkzeugVerifier,
    default_verifiers,
    find_verifier,
)

PASSWORD = "correct horse battery staple"
WRONG = "Tr0ub4dor&3"
USER = "user-1"
#: Every digest hashlib guarantees and pbkdf2_hmac computes (the shake ones vary in length).
DIGESTS = sorted(d for d in hashlib.algorithms_guaranteed if not d.startswith("shake_"))


@pytest.fixture
def uncached() -> Iterator[None]:
    """stepup asks hashlib once per digest name: forget the answers around a test."""
    cached = password_formats._pbkdf2_key_size
    cached.cache_clear()
    yield
    cached.cache_clear()


def test_the_digests_are_the_ones_werkzeug_can_write() -> None:
    assert {"md5", "sha1", "sha256", "sha512", "sha3_256", "blake2b", "blake2s"} <= set(DIGESTS)


@pytest.mark.parametrize("digest", DIGESTS)
def test_every_hashlib_digest_werkzeug_writes_verifies_and_upgrades(
    twin: Twin, digest: str
) -> None:
    stored = generate_password_hash(PASSWORD, f"pbkdf2:{digest}:1000")
    assert check_password_hash(stored, PASSWORD)
    hasher = PasswordHasher.from_parameters(CHEAPEST)
    assert find_verifier(default_verifiers(hasher), stored).name == "werkzeug"
    verify = twin.build(hasher=hasher)

    assert verify(USER, WRONG, stored).reason is PasswordReason.WRONG_PASSWORD
    result = verify(USER, PASSWORD, stored)
    assert result.reason is PasswordReason.OK
    assert result.new_hash is not None


@pytest.mark.parametrize(
    "method",
    [
        "pbkdf2:SHA256:1000",  # OpenSSL takes it, but it is not hashlib's name
        "pbkdf2:sha512_256:1000",  # OpenSSL's, not among hashlib's guaranteed
        "pbkdf2:ripemd160:1000",
    ],
)
def test_a_digest_outside_hashlibs_guaranteed_is_unsupported_and_logged_as_such(
    twin: Twin, method: str, caplog: pytest.LogCaptureFixture
) -> None:
    stored = generate_password_hash(PASSWORD, method)  # Werkzeug made it, here
    with caplog.at_level(logging.WARNING, "stepup"):
        result = twin.build()(USER, PASSWORD, stored)
    assert result.reason is PasswordReason.UNSUPPORTED_HASH
    assert "digest is not one of hashlib's guaranteed algorithms" in caplog.text
    assert "without explicit parameters" not in caplog.text
    assert stored.split(":")[1] not in caplog.text  # the name is the hash's own text
    assert stored.split("$", 1)[1] not in caplog.text


@pytest.mark.parametrize("digest", ["shake_128", "shake_256", "whirlpool", ""])
def test_a_digest_pbkdf2_cannot_use_is_unsupported(twin: Twin, digest: str) -> None:
    stored = f"pbkdf2:{digest}:1000$saltsalt$" + "00" * 32
    assert twin.build()(USER, PASSWORD, stored).reason is PasswordReason.UNSUPPORTED_HASH


@pytest.mark.usefixtures("uncached")
def test_a_digest_this_pythons_openssl_does_not_offer_is_unsupported_and_says_so(
    twin: Twin, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A FIPS build of OpenSSL refuses md5: the hash is unsupported here, never a 500."""
    stored = generate_password_hash(PASSWORD, "pbkdf2:md5:1000")
    real = hashlib.pbkdf2_hmac

    def fips(name: str, *args: object, **kwargs: object) -> bytes:
        if name == "md5":
            raise ValueError("[digital envelope routines] unsupported")
        return real(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(hashlib, "pbkdf2_hmac", fips)
    with caplog.at_level(logging.WARNING, "stepup"):
        result = twin.build()(USER, PASSWORD, stored)
    assert result.reason is PasswordReason.UNSUPPORTED_HASH
    assert "does not offer md5" in caplog.text


@pytest.mark.parametrize("digest", ["sha3_512", "blake2b", "md5"])
def test_the_iteration_bound_holds_for_every_digest(digest: str) -> None:
    size = len(hashlib.pbkdf2_hmac(digest, b"", b"", 1))
    planted = f"pbkdf2:{digest}:{MAX_PBKDF2_ITERATIONS + 1}$saltsalt$" + "00" * size
    started = time.perf_counter()
    with pytest.raises(MalformedHashError, match="iterations"):
        WerkzeugVerifier().recognise(planted)
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize("digest", ["md5", "sha3_256", "blake2s"])
def test_a_digest_of_the_wrong_length_for_its_algorithm_is_malformed(digest: str) -> None:
    stored = generate_password_hash(PASSWORD, f"pbkdf2:{digest}:1000")
    with pytest.raises(MalformedHashError, match="wrong length"):
        WerkzeugVerifier().recognise(stored + "00")


@pytest.mark.parametrize(
    ("stored", "message"),
    [
        ("pbkdf2:sha256$saltsalt$" + "00" * 32, "without explicit parameters"),
        ("pbkdf2:sha256:1000:9$saltsalt$" + "00" * 32, "method is not"),
        ("scrypt:1024:8$saltsalt$" + "00" * 64, "method is not"),
    ],
)
def test_a_wrong_method_shape_is_malformed_with_an_accurate_reason(
    stored: str, message: str
) -> None:
    with pytest.raises(MalformedHashError, match=message):
        WerkzeugVerifier().recognise(stored)
