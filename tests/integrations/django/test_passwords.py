"""Password re-authentication against Django's stored hashes, checked by Django."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import (
    Argon2PasswordHasher,
    BCryptSHA256PasswordHasher,
    PBKDF2PasswordHasher,
    ScryptPasswordHasher,
    make_password,
)
from django.test import override_settings

from integrations.django.django_support import CHEAP, Site, create_users, user_id
from integrations.django.testapp.hooks import REHASHED
from stepup.adapters.idp.password import CHEAPEST, PasswordReason, PasswordReauth
from stepup.adapters.storage.memory import MemoryStore
from stepup.integrations.django.hooks import django_password_hash
from stepup.integrations.django.passwords import (
    DjangoHashVerifier,
    django_dummy_hash,
    django_verifiers,
)


class QuickPBKDF2(PBKDF2PasswordHasher):
    iterations = 10


class QuickArgon2(Argon2PasswordHasher):
    time_cost, memory_cost, parallelism = 1, 8, 1


class QuickBCryptSHA256(BCryptSHA256PasswordHasher):
    rounds = 4


class QuickScrypt(ScryptPasswordHasher):
    work_factor = 2**10


HASHERS: dict[str, Callable[[], Any]] = {
    "pbkdf2_sha256": QuickPBKDF2,
    "argon2": QuickArgon2,
    "bcrypt_sha256": QuickBCryptSHA256,
    "scrypt": QuickScrypt,
}


@pytest.mark.parametrize("algorithm", sorted(HASHERS))
def test_each_django_hasher_is_checked_by_django_in_the_reauth_view(
    site: Site, algorithm: str
) -> None:
    encoded = make_password("battery staple", hasher=HASHERS[algorithm]())
    assert encoded.startswith(f"{algorithm}$")
    users = get_user_model()._default_manager
    users.filter(username="bob").update(password=encoded)
    try:
        bob = site.browser("bob")
        assert bob.reauth("/stepup/reauth/?next=/api-key/", "wrong staple").status_code == 400
        assert REHASHED.get(user_id("bob")) is None
        assert bob.reauth("/stepup/reauth/?next=/api-key/", "battery staple").status_code == 303
        assert users.get(username="bob").password == encoded
        upgraded = REHASHED.pop(user_id("bob"), None)
        if algorithm == "argon2":  # Django's argon2, other parameters than PASSWORD_HASHER's
            assert upgraded is not None
            assert CHEAP.verify(upgraded, "battery staple")
        else:  # PBKDF2, bcrypt, scrypt: Django re-hashes at its own sign-in, not us
            assert upgraded is None
    finally:
        REHASHED.clear()
        create_users()


def test_an_unusable_password_is_no_password() -> None:
    users = get_user_model()._default_manager
    users.filter(username="bob").update(password=make_password(None))
    try:
        assert django_password_hash(user_id("bob")) is None
    finally:
        create_users()


class Counting(DjangoHashVerifier):
    def __init__(self) -> None:
        self.verified: list[str] = []

    def verify(self, stored_hash: str, password: str) -> bool:
        self.verified.append(stored_hash)
        return super().verify(stored_hash, password)


@override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"])
def test_an_unknown_user_costs_a_check_with_djangos_default_hasher() -> None:
    from argon2 import PasswordHasher

    counting = Counting()
    reauth = PasswordReauth(
        MemoryStore(),
        hasher=PasswordHasher.from_parameters(CHEAPEST),
        verifiers=[counting, *django_verifiers(None)[1:]],
        dummy_hash=django_dummy_hash,
    )
    assert reauth.verify("ghost", "anything", None).reason is PasswordReason.UNKNOWN_USER
    assert len(counting.verified) == 1
    assert counting.verified[0].startswith("md5$")  # the project's default hasher's format


def test_hashes_kept_outside_django_still_verify() -> None:
    """A loader may return stepup's raw argon2id or a Werkzeug hash: the default
    verifiers follow Django's."""
    from argon2 import PasswordHasher
    from werkzeug.security import generate_password_hash

    hasher = PasswordHasher.from_parameters(CHEAPEST)
    reauth = PasswordReauth(MemoryStore(), hasher=hasher, verifiers=django_verifiers(hasher))
    assert reauth.verify("u", "pw", hasher.hash("pw")).ok
    werkzeug = reauth.verify("u", "pw", generate_password_hash("pw", "pbkdf2:sha256:10"))
    assert werkzeug.ok
    assert werkzeug.new_hash is not None
