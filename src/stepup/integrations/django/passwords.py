"""Password re-authentication against the hashes Django stores, checked by Django.

:class:`DjangoHashVerifier` recognises any hash one of the project's
``PASSWORD_HASHERS`` can read (PBKDF2, argon2, bcrypt_sha256, scrypt, a custom one)
and verifies it with ``django.contrib.auth.hashers.check_password``, so stepup agrees
with Django's own sign-in exactly. It asks for an upgrade only of Django's own argon2
hashes made with other parameters than stepup's hasher (``PASSWORD_HASHER``), which the
project's ``Argon2PasswordHasher`` reads either way, and only a
``PASSWORD_REHASH_SAVER`` ever stores it. Other formats are left to Django, which
re-hashes at its own sign-in to the project's first hasher: an argon2id hash saved over
a PBKDF2 one would lock the user out of a project without ``Argon2PasswordHasher``.

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
    """Hashes in Django's ``<algorithm>$...`` form, verified by Django's hashers.

    ``hasher`` (stepup's argon2 parameters) decides whether a Django ``argon2$`` hash
    is outdated; without one, nothing is ever upgraded."""

    name = "django-hashers"

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self.hasher = hasher

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
        if self.hasher is None or not stored_hash.startswith("argon2$argon2"):
            return False
        return self.hasher.check_needs_rehash(stored_hash[len("argon2") :])


def django_dummy_hash() -> str:
    """A hash of a random password by the project's default hasher."""
    from django.contrib.auth.hashers import make_password

    return str(make_password(secrets.token_urlsafe(32)))


def django_verifiers(hasher: PasswordHasher | None) -> tuple[HashVerifier, ...]:
    """Django's own hashers first, then stepup's (raw argon2, bcrypt, Werkzeug) for
    projects whose hash loader returns hashes kept outside Django's password field."""
    argon2 = hasher or PasswordHasher.from_parameters(PASSWORD_PARAMETERS)
    return (DjangoHashVerifier(argon2), *default_verifiers(argon2))
