"""Stored hashes Django cannot read, and ones it would read for far too long: inside
Django, ``DjangoHashVerifier`` answers each with ``MalformedHashError`` naming the
algorithm only (Django's own errors can echo part of the hash), applies stepup's cost
bounds before Django hashes anything, and reads a ``bcrypt$`` hash on the first 72
bytes of a longer password, as the libraries that made it did (bcrypt 5 refuses)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import bcrypt
import pytest
from argon2 import PasswordHasher
from django.contrib.auth.hashers import make_password
from django.test import override_settings
from hypothesis import given, settings
from hypothesis import strategies as st

from stepup.adapters.idp.password import CHEAPEST, PasswordReason, PasswordReauth
from stepup.adapters.idp.password_formats import (
    MAX_PBKDF2_ITERATIONS,
    MalformedHashError,
    UnsupportedHashError,
)
from stepup.adapters.storage.memory import MemoryStore
from stepup.integrations.django.passwords import DjangoHashVerifier, django_verifiers
from stepup.throttle import ThrottlePolicy

HASHERS = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.BCryptPasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
    "django.contrib.auth.hashers.MD5PasswordHasher",
]
ALGORITHMS = ["pbkdf2_sha256", "pbkdf2_sha1", "argon2", "bcrypt_sha256", "bcrypt", "scrypt", "md5"]


@pytest.fixture(autouse=True)
def every_hasher() -> Iterator[None]:
    with override_settings(PASSWORD_HASHERS=HASHERS):
        yield


def reauth() -> PasswordReauth:
    cheap = PasswordHasher.from_parameters(CHEAPEST)
    return PasswordReauth(
        MemoryStore(),
        hasher=cheap,
        verifiers=django_verifiers(cheap),
        throttle=ThrottlePolicy(free_failures=100),
    )


#: Hashes whose prefix names a hasher in PASSWORD_HASHERS, that the hasher cannot read.
UNREADABLE = {
    "pbkdf2_sha256": "pbkdf2_sha256$abc$salt$aGVsbG8=",
    "pbkdf2_sha1": "pbkdf2_sha1$1000",
    "argon2": "argon2$garbage",
    "bcrypt_sha256": "bcrypt_sha256$garbage",
    "bcrypt": "bcrypt$$2b$12$short",
    "scrypt": "scrypt$x$y",
    "md5": "md5$onlyone",
}


@pytest.mark.parametrize("algorithm", sorted(UNREADABLE))
def test_a_hash_django_cannot_read_is_malformed_naming_the_algorithm_only(algorithm: str) -> None:
    stored = UNREADABLE[algorithm]
    verifier = DjangoHashVerifier()
    with pytest.raises(MalformedHashError) as caught:
        verifier.verify(stored, "pw")
    assert algorithm in str(caught.value)
    assert stored.partition("$")[2] not in str(caught.value)
    assert reauth().verify("u1", "pw", stored).reason is PasswordReason.MALFORMED


def test_pbkdf2_beyond_stepups_bound_is_refused_before_django_hashes() -> None:
    """Django's hashers have no bound: a planted 50 000 000 took 11.5 s of a worker."""
    stored = make_password("pw", salt="saltsalt", hasher="pbkdf2_sha256")
    digest = stored.rsplit("$", 1)[1]
    planted = f"pbkdf2_sha256${MAX_PBKDF2_ITERATIONS + 1}$saltsalt${digest}"
    verifier = DjangoHashVerifier()
    with pytest.raises(MalformedHashError, match="iterations"):
        verifier.recognise(planted)
    started = time.perf_counter()
    with pytest.raises(MalformedHashError, match="iterations"):
        verifier.verify(planted, "pw")
    assert time.perf_counter() - started < 1.0
    assert reauth().verify("u1", "pw", planted).reason is PasswordReason.MALFORMED


@pytest.mark.parametrize("length", [72, 73, 100])
def test_a_django_bcrypt_hash_reads_the_first_72_bytes_of_a_longer_password(length: int) -> None:
    stored = "bcrypt$" + bcrypt.hashpw(b"a" * 72, bcrypt.gensalt(4)).decode()
    assert DjangoHashVerifier().verify(stored, "a" * length)
    assert not DjangoHashVerifier().verify(stored, "b" + "a" * (length - 1))
    assert reauth().verify("u1", "a" * length, stored).ok


def test_a_cut_inside_a_character_is_checked_on_those_bytes() -> None:
    """71 ASCII bytes and an ``é``: the hash's maker read its first byte only."""
    password = "a" * 71 + "é"
    stored = "bcrypt$" + bcrypt.hashpw(password.encode()[:72], bcrypt.gensalt(4)).decode()
    assert DjangoHashVerifier().verify(stored, password)
    assert DjangoHashVerifier().verify(stored, "a" * 71 + "è")  # the same first byte


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_readable_hashes_still_verify_through_django(algorithm: str) -> None:
    stored = make_password("pw", hasher=algorithm)
    assert reauth().verify("u1", "pw", stored).ok
    assert reauth().verify("u1", "pw!", stored).reason is PasswordReason.WRONG_PASSWORD


_TAIL = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=40)


@settings(max_examples=80, deadline=None)
@given(algorithm=st.sampled_from(ALGORITHMS), tail=_TAIL)
def test_any_hash_is_an_answer_and_never_echoed(algorithm: str, tail: str) -> None:
    stored = f"{algorithm}${tail}"
    verifier = DjangoHashVerifier()
    try:
        if verifier.recognise(stored):
            verifier.verify(stored, "pw")
    except (MalformedHashError, UnsupportedHashError) as exc:
        if len(tail) >= 8:
            assert tail not in str(exc)
