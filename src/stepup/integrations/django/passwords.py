"""Password re-authentication against the hashes Django stores, checked by Django.

:class:`DjangoHashVerifier` recognises any hash one of the project's
``PASSWORD_HASHERS`` can read (PBKDF2, argon2, bcrypt_sha256, scrypt, a custom one)
and verifies it with ``django.contrib.auth.hashers.check_password``, so stepup agrees
with Django's own sign-in exactly. It never asks for an upgrade: Django re-hashes at
its own sign-in, and a hash changed from here would change the session auth hash and
sign the user out of every session, this one included.

An unknown user's password is checked against a hash made by Django's default
hasher, so it costs what a known user's check costs.
"""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher

from ...adapters.idp.password import PASSWORD_PARAMETERS
from ...adapters.idp.password_formats import HashVerifier, default_verifiers

__all__ = ["DjangoHashVerifier", "django_dummy_hash", "django_verifiers"]


class DjangoHashVerifier:
    """Hashes in Django's ``<algorithm>$...`` form, verified by Django's hashers."""

    name = "django-hashers"

    def __repr__(self) -> str:
        return "DjangoHashVerifier()"

    def recognise(self, stored_hash: str) -> bool:
        from django.contrib.auth.hashers import identify_hasher, is_password_usable

        if not is_password_usable(stored_hash):
            return False
        try:
            identify_hasher(stored_hash)
        except ValueError:  # not Django's, or its hasher is not in PASSWORD_HASHERS
            return False
        return True

    def verify(self, stored_hash: str, password: str) -> bool:
        from django.contrib.auth.hashers import check_password

        return bool(check_password(password, stored_hash))

    def needs_upgrade(self, stored_hash: str) -> bool:
        return False


def django_dummy_hash() -> str:
    """A hash of a random password by the project's default hasher."""
    from django.contrib.auth.hashers import make_password

    return str(make_password(secrets.token_urlsafe(32)))


def django_verifiers(hasher: PasswordHasher | None) -> tuple[HashVerifier, ...]:
    """Django's own hashers first, then stepup's (raw argon2, bcrypt, Werkzeug) for
    projects whose hash loader returns hashes kept outside Django's password field."""
    argon2 = hasher or PasswordHasher.from_parameters(PASSWORD_PARAMETERS)
    return (DjangoHashVerifier(), *default_verifiers(argon2))
