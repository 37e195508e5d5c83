"""Hashes apps already have: made by the libraries themselves, verified, upgraded.

Each hash here is made by the library that makes it in real apps (argon2-cffi,
bcrypt, Werkzeug's ``generate_password_hash``, Django's hasher classes), with cheap
parameters so the tests stay instant.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable

import bcrypt
import pytest
from argon2 import Parameters, PasswordHasher, Type, extract_parameters, profiles
from django.contrib.auth.hashers import (
    Argon2PasswordHasher,
    BCryptPasswordHasher,
    BCryptSHA256PasswordHasher,
    PBKDF2PasswordHasher,
    PBKDF2SHA1PasswordHasher,
    ScryptPasswordHasher,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.security import generate_password_hash

from reauth_password.helpers import CountingHasher, Recorder, Twin, all_text
from stepup.adapters.idp.password import (
    CHEAPEST,
    PasswordReason,
    PasswordReauth,
    throttle_key,
)
from stepup.adapters.idp.password_formats import (
    MAX_ARGON2_MEMORY_KIB,
    MAX_ARGON2_PARALLELISM,
    MAX_ARGON2_TIME_COST,
    Argon2Verifier,
    BcryptVerifier,
    DjangoFormatsVerifier,
    HashVerifier,
    MalformedHashError,
    WerkzeugVerifier,
    default_verifiers,
    find_verifier,
)
from stepup.adapters.storage.memory import MemoryStore
from stepup.events import ReauthFailed
from stepup.testing import SettableClock
from stepup.throttle import ThrottlePolicy

PASSWORD = "correct horse battery staple"
WRONG = "Tr0ub4dor&3"
USER = "user-1"
R = PasswordReason
#: A salt and digest that read, to put after argon2 parameters.
ARGON2_TAIL = "c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"


class QuickArgon2(Argon2PasswordHasher):
    time_cost, memory_cost, parallelism = 1, 8, 1


class QuickBCryptSHA256(BCryptSHA256PasswordHasher):
    rounds = 4


class QuickBCrypt(BCryptPasswordHasher):
    rounds = 4


class QuickScrypt(ScryptPasswordHasher):
    work_factor = 2**10


def django(hasher: object, **options: int) -> Callable[[str], str]:
    def make(password: str) -> str:
        return hasher.encode(password, hasher.salt(), **options)  # type: ignore[attr-defined, no-any-return]

    return make


def bcrypt_with(prefix: bytes, shown_as: str | None = None) -> Callable[[str], str]:
    def make(password: str) -> str:
        made = bcrypt.hashpw(password.encode(), bcrypt.gensalt(4, prefix=prefix)).decode()
        return made if shown_as is None else shown_as + made[4:]

    return make


#: name -> (make a hash of a password, the verifier that must recognise it)
MAKERS: dict[str, tuple[Callable[[str], str], str]] = {
    "argon2-cffi argon2id": (PasswordHasher.from_parameters(CHEAPEST).hash, "argon2"),
    "bcrypt $2b$": (bcrypt_with(b"2b"), "bcrypt"),
    "bcrypt $2a$": (bcrypt_with(b"2a"), "bcrypt"),
    # $2y$ is PHP's name for the same algorithm; the bcrypt package reads it.
    "bcrypt $2y$": (bcrypt_with(b"2b", shown_as="$2y$"), "bcrypt"),
    "werkzeug scrypt": (lambda p: generate_password_hash(p, "scrypt:1024:8:1"), "werkzeug"),
    "werkzeug pbkdf2 sha256": (
        lambda p: generate_password_hash(p, "pbkdf2:sha256:1000"),
        "werkzeug",
    ),
    "werkzeug pbkdf2 sha512": (
        lambda p: generate_password_hash(p, "pbkdf2:sha512:1000"),
        "werkzeug",
    ),
    "django pbkdf2_sha256": (django(PBKDF2PasswordHasher(), iterations=1000), "django"),
    "django pbkdf2_sha1": (django(PBKDF2SHA1PasswordHasher(), iterations=1000), "django"),
    "django argon2": (django(QuickArgon2()), "django"),
    "django bcrypt_sha256": (django(QuickBCryptSHA256()), "django"),
    "django bcrypt": (django(QuickBCrypt()), "django"),
    "django scrypt": (django(QuickScrypt()), "django"),
}


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_library_made_hashes_verify_and_upgrade_to_argon2id(twin: Twin, name: str) -> None:
    make, verifier_name = MAKERS[name]
    stored = make(PASSWORD)
    hasher = PasswordHasher.from_parameters(CHEAPEST)
    assert find_verifier(default_verifiers(hasher), stored).name == verifier_name
    upgraded: list[tuple[str, str]] = []
    verify = twin.build(hasher=hasher, on_upgrade=lambda u, h: upgraded.append((u, h)))

    assert verify(USER, WRONG, stored).reason is R.WRONG_PASSWORD
    assert upgraded == []
    result = verify(USER, PASSWORD, stored)
    assert result.reason is R.OK

    if name == "argon2-cffi argon2id":  # already current: nothing to upgrade
        assert result.new_hash is None
        assert upgraded == []
        return
    assert result.new_hash is not None
    assert upgraded == [(USER, result.new_hash)]
    assert extract_parameters(result.new_hash) == CHEAPEST
    assert extract_parameters(result.new_hash).type is Type.ID
    again = verify(USER, PASSWORD, result.new_hash)
    assert again.reason is R.OK
    assert again.new_hash is None
    assert verify(USER, WRONG, result.new_hash).reason is R.WRONG_PASSWORD


def test_outdated_argon2_parameters_reach_the_hook_too(twin: Twin) -> None:
    old = PasswordHasher.from_parameters(CHEAPEST).hash(PASSWORD)
    newer = PasswordHasher(time_cost=2, memory_cost=8, parallelism=1)
    upgraded: list[str] = []
    result = twin.build(hasher=newer, on_upgrade=lambda _u, h: upgraded.append(h))(
        USER, PASSWORD, old
    )
    assert result.ok
    assert upgraded == [result.new_hash]
    assert extract_parameters(upgraded[0]).time_cost == 2


def test_a_failing_upgrade_hook_does_not_deny_and_logs_no_hash(
    twin: Twin, caplog: pytest.LogCaptureFixture
) -> None:
    stored = generate_password_hash(PASSWORD, "pbkdf2:sha256:1000")

    def broken(user_id: str, new_hash: str) -> None:
        raise RuntimeError(f"database is down ({new_hash})")

    with caplog.at_level(logging.ERROR, "stepup"):
        result = twin.build(on_upgrade=broken)(USER, PASSWORD, stored)
    assert result.ok
    assert result.new_hash is not None
    assert "on_upgrade hook raised RuntimeError" in caplog.text
    assert result.new_hash not in caplog.text
    assert PASSWORD not in caplog.text


def test_the_async_twin_awaits_a_coroutine_hook(clock: SettableClock, recorder: Recorder) -> None:
    from stepup.adapters.idp.password import AsyncPasswordReauth

    saved: list[str] = []

    async def save(user_id: str, new_hash: str) -> None:
        await asyncio.sleep(0)
        saved.append(new_hash)

    reauth = AsyncPasswordReauth(
        MemoryStore(), hasher=PasswordHasher.from_parameters(CHEAPEST), on_upgrade=save
    )
    stored = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    result = asyncio.run(reauth.verify(USER, PASSWORD, stored))
    assert result.ok
    assert saved == [result.new_hash]


def test_a_coroutine_hook_on_the_sync_twin_is_refused_not_left_unawaited(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def save(user_id: str, new_hash: str) -> None:
        raise AssertionError("never run")

    reauth = PasswordReauth(
        MemoryStore(), hasher=PasswordHasher.from_parameters(CHEAPEST), on_upgrade=save
    )
    stored = generate_password_hash(PASSWORD, "pbkdf2:sha256:1000")
    with caplog.at_level(logging.ERROR, "stepup"):
        assert reauth.verify(USER, PASSWORD, stored).ok
    assert "raised TypeError" in caplog.text


def test_bcrypt_reads_72_bytes_as_the_libraries_that_made_the_hash_did(twin: Twin) -> None:
    long = "é" * 40  # 80 bytes in UTF-8
    stored = bcrypt.hashpw(long.encode()[:72], bcrypt.gensalt(4)).decode()
    verify = twin.build()
    result = verify(USER, long, stored)
    assert result.ok
    assert result.new_hash is not None
    # The upgrade keeps the whole password: its truncated form no longer matches.
    assert verify(USER, long, result.new_hash).ok
    assert verify(USER, "é" * 36, result.new_hash).reason is R.WRONG_PASSWORD


def test_django_bcrypt_sha256_does_not_truncate(twin: Twin) -> None:
    long = "x" * 100
    stored = django(QuickBCryptSHA256())(long)
    verify = twin.build()
    assert verify(USER, long, stored).ok
    assert verify(USER, "x" * 72, stored).reason is R.WRONG_PASSWORD


class CountingVerifier:
    """Wraps a real verifier and counts the hashes it was asked to verify."""

    def __init__(self, inner: HashVerifier) -> None:
        self.inner = inner
        self.name = inner.name
        self.verified: list[str] = []

    def recognise(self, stored_hash: str) -> bool:
        return self.inner.recognise(stored_hash)

    def verify(self, stored_hash: str, password: str) -> bool:
        self.verified.append(stored_hash)
        return self.inner.verify(stored_hash, password)

    def needs_upgrade(self, stored_hash: str) -> bool:
        return self.inner.needs_upgrade(stored_hash)


def test_unknown_user_verifies_a_dummy_hash_of_the_default_format(twin: Twin) -> None:
    hasher = PasswordHasher.from_parameters(CHEAPEST)
    counting = CountingVerifier(Argon2Verifier(hasher))
    verify = twin.build(hasher=hasher, verifiers=[counting, WerkzeugVerifier()])
    assert verify("ghost", PASSWORD, None).reason is R.UNKNOWN_USER
    assert verify("ghost-2", PASSWORD, None).reason is R.UNKNOWN_USER
    assert len(counting.verified) == 2
    assert counting.verified[0] == counting.verified[1]  # made once
    assert extract_parameters(counting.verified[0]) == CHEAPEST


def test_the_dummy_can_be_in_the_apps_own_format(twin: Twin) -> None:
    counting = CountingVerifier(WerkzeugVerifier())
    hasher = PasswordHasher.from_parameters(CHEAPEST)
    argon2 = CountingHasher.from_parameters(CHEAPEST)
    assert isinstance(argon2, CountingHasher)
    verify = twin.build(
        hasher=argon2,
        verifiers=[Argon2Verifier(hasher), counting],
        dummy_hash=lambda: generate_password_hash("dummy-never-matches", "pbkdf2:sha256:1000"),
    )
    known = verify(USER, WRONG, generate_password_hash(PASSWORD, "pbkdf2:sha256:1000"))
    unknown = verify("ghost", PASSWORD, None)
    assert (known.reason, unknown.reason) == (R.WRONG_PASSWORD, R.UNKNOWN_USER)
    assert len(counting.verified) == 2  # the same work for both
    assert argon2.verified == []


def test_throttle_is_charged_before_any_hash_work_for_every_format(twin: Twin) -> None:
    counting = CountingVerifier(WerkzeugVerifier())
    store = MemoryStore()
    verify = twin.build(store=store, verifiers=[counting], throttle=ThrottlePolicy(free_failures=1))
    stored = generate_password_hash(PASSWORD, "pbkdf2:sha256:1000")
    assert verify(USER, WRONG, stored).reason is R.WRONG_PASSWORD
    assert verify(USER, WRONG, stored).reason is R.WRONG_PASSWORD
    blocked = verify(USER, PASSWORD, stored)
    assert blocked.reason is R.THROTTLED
    assert len(counting.verified) == 2
    assert store.throttle_state(throttle_key(USER)).failures == 2


UNSUPPORTED = [
    "{SSHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=",  # LDAP
    "md5$salt$0123456789abcdef",  # Django's removed MD5 hasher
    "sha1$salt$0123456789abcdef",
    "$1$saltsalt$abcdefghijklmnopqrstuv",  # crypt(3) MD5
    "$6$rounds=5000$salt$hash",  # crypt(3) SHA-512
    "!unusable-django-password",
]


@pytest.mark.parametrize("stored", UNSUPPORTED)
def test_unknown_formats_fail_with_a_typed_reason_and_no_secret_in_logs(
    twin: Twin, recorder: Recorder, stored: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = MemoryStore()
    cheap = PasswordHasher.from_parameters(CHEAPEST)
    dummy = CountingVerifier(Argon2Verifier(cheap))
    counting = CountingVerifier(WerkzeugVerifier())
    verifiers = [dummy, *default_verifiers(cheap)[1:], counting]
    with caplog.at_level(logging.DEBUG, "stepup"):
        result = twin.build(store=store, hasher=cheap, verifiers=verifiers)(USER, PASSWORD, stored)
    assert result.reason is R.UNSUPPORTED_HASH
    assert result.public_message == "Re-authentication failed."
    assert counting.verified == []
    # The same work as an unknown user's: charged, and the dummy hash checked once, so
    # an SSO-only user ("!...") cannot be told from an unknown one by timing.
    assert len(dummy.verified) == 1
    assert dummy.verified[0] != stored
    assert store.throttle_state(throttle_key(USER)).failures == 1
    assert [type(e) for e in recorder.events] == [ReauthFailed]
    assert recorder.events[0].reason == "unsupported_hash"  # type: ignore[attr-defined]
    assert "no verifier recognises" in caplog.text
    text = caplog.text + all_text([result, *recorder.events])
    assert stored not in text
    assert PASSWORD not in text


def test_bcrypt_without_its_package_is_unsupported_and_says_how_to_fix_it(
    twin: Twin, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    stored = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    monkeypatch.setitem(sys.modules, "bcrypt", None)
    with caplog.at_level(logging.WARNING, "stepup"):
        result = twin.build()(USER, PASSWORD, stored)
    assert result.reason is R.UNSUPPORTED_HASH
    assert "pip install" in caplog.text
    assert stored not in caplog.text


@pytest.mark.parametrize(
    "stored",
    [
        "scrypt:1024:8:1$salt$" + "0" * 127,  # digest one short
        "scrypt:1000:8:1$salt$" + "0" * 128,  # n not a power of two
        "scrypt:1048576:32:16$salt$" + "0" * 128,  # gigabytes of memory
        "pbkdf2:md5:1000$salt$" + "0" * 64,  # md5's digest is 32 hex digits
        "pbkdf2:sha256:99999999999$salt$" + "0" * 64,  # absurd iterations
        "pbkdf2_sha256$1000$salt$not base64!",
        "scrypt$1024$salt$8$5",  # Django's, digest missing
        "argon2$bcrypt$whatever",
        "bcrypt_sha256$2b$04$missing-the-empty-part",
        f"$argon2id$v=19$m={4 * 1024 * 1024},t=1,p=1${ARGON2_TAIL}",  # 4 GiB
        f"$argon2id$v=19$m=8,t=1000000,p=1${ARGON2_TAIL}",  # a million passes
        f"$argon2id$v=19$m=8192,t=1,p=1000${ARGON2_TAIL}",  # a thousand threads
        f"argon2$argon2id$v=19$m={4 * 1024 * 1024},t=3,p=4${ARGON2_TAIL}",  # Django's
    ],
)
def test_known_prefixes_with_a_wrong_shape_are_malformed_without_their_own_work(
    twin: Twin, stored: str
) -> None:
    store = MemoryStore()
    cheap = PasswordHasher.from_parameters(CHEAPEST)
    dummy = CountingVerifier(Argon2Verifier(cheap))
    verifiers = [dummy, *default_verifiers(cheap)[1:]]
    result = twin.build(store=store, hasher=cheap, verifiers=verifiers)(USER, PASSWORD, stored)
    assert result.reason is R.MALFORMED
    assert len(dummy.verified) == 1  # the dummy, as for an unknown user; never `stored`
    assert dummy.verified[0] != stored
    assert store.throttle_state(throttle_key(USER)).failures == 1


@pytest.mark.parametrize(
    "parameters",
    [
        profiles.RFC_9106_HIGH_MEMORY,  # 2 GiB, the largest profile anyone recommends
        profiles.RFC_9106_LOW_MEMORY,
        profiles.CHEAPEST,
        Parameters(Type.ID, 19, 16, 32, MAX_ARGON2_TIME_COST, MAX_ARGON2_MEMORY_KIB, 4),
        Parameters(Type.ID, 19, 16, 32, 1, 8 * MAX_ARGON2_PARALLELISM, MAX_ARGON2_PARALLELISM),
    ],
)
def test_argon2_parameters_of_real_deployments_are_recognised(parameters: Parameters) -> None:
    stored = (
        f"$argon2id$v=19$m={parameters.memory_cost},t={parameters.time_cost},"
        f"p={parameters.parallelism}${ARGON2_TAIL}"
    )
    assert Argon2Verifier(PasswordHasher.from_parameters(CHEAPEST)).recognise(stored)


@settings(max_examples=50, deadline=None)
@given(
    memory=st.integers(1, 2**32 - 1),
    time=st.integers(1, 2**32 - 1),
    lanes=st.integers(1, 2**24 - 1),
)
def test_argon2_parameters_beyond_a_cap_are_malformed(memory: int, time: int, lanes: int) -> None:
    stored = f"$argon2id$v=19$m={memory},t={time},p={lanes}${ARGON2_TAIL}"
    verifier = Argon2Verifier(PasswordHasher.from_parameters(CHEAPEST))
    within = (
        memory <= MAX_ARGON2_MEMORY_KIB
        and time <= MAX_ARGON2_TIME_COST
        and lanes <= MAX_ARGON2_PARALLELISM
    )
    if within:
        assert verifier.recognise(stored)
    else:
        with pytest.raises(MalformedHashError, match="out of range"):
            verifier.recognise(stored)
        with pytest.raises(MalformedHashError):
            verifier.verify(stored, PASSWORD)  # never hashed, even if recognise is skipped


TYPABLE = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
PASSWORDS = st.text(TYPABLE, min_size=1, max_size=60)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(password=PASSWORDS, other=PASSWORDS)
def test_any_password_round_trips_through_every_format(password: str, other: str) -> None:
    formats: list[tuple[Callable[[str], str], HashVerifier]] = [
        (lambda p: generate_password_hash(p, "pbkdf2:sha256:100"), WerkzeugVerifier()),
        (lambda p: generate_password_hash(p, "scrypt:1024:8:1"), WerkzeugVerifier()),
        (django(PBKDF2PasswordHasher(), iterations=100), DjangoFormatsVerifier(_argon2())),
        (django(QuickBCryptSHA256()), DjangoFormatsVerifier(_argon2())),
        (lambda p: bcrypt.hashpw(p.encode()[:72], bcrypt.gensalt(4)).decode(), BcryptVerifier()),
    ]
    for make, verifier in formats:
        stored = make(password)
        assert verifier.recognise(stored)
        assert verifier.verify(stored, password)
        same = other == password
        if isinstance(verifier, BcryptVerifier):  # bcrypt reads 72 bytes, as it always did
            same = other.encode()[:72] == password.encode()[:72]
        assert verifier.verify(stored, other) is same


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(password=PASSWORDS)
def test_any_password_upgrades_to_an_argon2id_hash_that_verifies(password: str) -> None:
    upgraded: list[str] = []
    reauth = PasswordReauth(
        MemoryStore(),
        hasher=PasswordHasher.from_parameters(CHEAPEST),
        on_upgrade=lambda _u, h: upgraded.append(h),
    )
    stored = generate_password_hash(password, "pbkdf2:sha256:100")
    assert reauth.verify(USER, password, stored).ok
    assert len(upgraded) == 1
    assert reauth.verify(USER, password, upgraded[0]).ok


def _argon2() -> Argon2Verifier:
    return Argon2Verifier(PasswordHasher.from_parameters(CHEAPEST))


class LosesItsLibrary(CountingVerifier):
    def verify(self, stored_hash: str, password: str) -> bool:
        from stepup.adapters.idp.password_formats import UnsupportedHashError

        raise UnsupportedHashError("a bcrypt hash, but the bcrypt package is not installed")


def test_a_library_missing_at_check_time_is_unsupported_not_an_exception(twin: Twin) -> None:
    store = MemoryStore()
    verify = twin.build(store=store, verifiers=[LosesItsLibrary(BcryptVerifier())])
    stored = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    assert verify(USER, PASSWORD, stored).reason is R.UNSUPPORTED_HASH
    assert store.throttle_state(throttle_key(USER)).failures == 1  # charged before the work


class Buggy(CountingVerifier):
    """A third-party verifier with a bug: ``where`` raises something of its own."""

    def __init__(self, inner: HashVerifier, where: str) -> None:
        super().__init__(inner)
        self.where = where

    def recognise(self, stored_hash: str) -> bool:
        if self.where == "recognise":
            raise KeyError(f"no scheme for {stored_hash} and {PASSWORD}")
        return super().recognise(stored_hash)

    def verify(self, stored_hash: str, password: str) -> bool:
        if self.where == "verify":
            raise RuntimeError(f"cannot read {stored_hash} for {password}")
        return super().verify(stored_hash, password)

    def needs_upgrade(self, stored_hash: str) -> bool:
        if self.where == "needs_upgrade":
            raise AttributeError(stored_hash)
        return super().needs_upgrade(stored_hash)


@pytest.mark.parametrize("where", ["recognise", "verify", "needs_upgrade"])
def test_a_verifier_raising_its_own_exception_is_a_malformed_hash_not_an_error(
    twin: Twin, recorder: Recorder, where: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = MemoryStore()
    stored = generate_password_hash(PASSWORD, "pbkdf2:sha256:1000")
    buggy = Buggy(WerkzeugVerifier(), where)
    verify = twin.build(store=store, verifiers=[_argon2(), buggy])
    with caplog.at_level(logging.DEBUG, "stepup"):
        result = verify(USER, PASSWORD, stored)
    assert result.reason is R.MALFORMED
    assert not result.ok
    assert store.throttle_state(throttle_key(USER)).failures == 1  # charged, not refunded
    assert [e.reason for e in recorder.events] == ["malformed"]  # type: ignore[attr-defined]
    assert f"hash verifier's {where} raised" in caplog.text
    text = caplog.text + all_text([result, *recorder.events])
    assert stored not in text
    assert PASSWORD not in text
