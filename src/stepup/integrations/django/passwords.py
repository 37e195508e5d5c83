"""Password re-authentication against the hashes Django stores, checked by Django.

:class:`DjangoHashVerifier` recognises any hash one of the project's
``PASSWORD_HASHERS`` can read (PBKDF2, argon2, bcrypt_sha256, scrypt, a custom one)
and verifies it with ``django.contrib.auth.hashers.check_password``, so stepup agrees
with Django's own sign-in exactly. A hash in one of Django's formats that no hasher in
``PASSWORD_HASHERS`` reads (``bcrypt$`` on Django's default hashers, ``pbkdf2_sha1$``
on a list of ``PBKDF2PasswordHasher`` alone: the way a project turns a format off) is
``unsupported_hash``, as Django's ``check_password`` refuses it: it never falls through
to stepup's own reading of Django's formats. It asks for an upgrade only of Django's own
argon2 hashes made with other parameters than stepup's hasher (``PASSWORD_HASHER``), as
Django's ``Argon2PasswordHasher.must_update`` does, which the project's
``Argon2PasswordHasher`` reads either way, and only a
``PASSWORD_REHASH_SAVER`` ever stores it. Other formats are left to Django, which
re-hashes at its own sign-in to the project's first hasher: an argon2id hash saved over
a PBKDF2 one would lock the user out of a project without ``Argon2PasswordHasher``.

A hash Django cannot read is ``malformed``, never an error: the formats stepup reads
itself (``pbkdf2_sha256$``, ``argon2$``, ``bcrypt$``...) must first pass the structure
and cost bounds of :class:`~stepup.adapters.idp.password_formats.DjangoFormatsVerifier`
(a planted ``pbkdf2_sha256$50000000$...`` would tie up a worker for seconds, and
Django's hashers have no bounds), and whatever Django's hasher then raises is a
:class:`~stepup.adapters.idp.password_formats.MalformedHashError` naming the algorithm
only (its text can echo part of the hash). A ``bcrypt$`` hash reads only 72 bytes of a
password, as the libraries that made such hashes did; bcrypt 5 refuses longer ones.

An unknown user's password is checked against a hash made by Django's default
hasher, so it costs what a known user's check costs.
"""

from __future__ import annotations

import secrets
from typing import Any, Final

from argon2 import PasswordHasher

from ...adapters.idp.password import PASSWORD_PARAMETERS
from ...adapters.idp.password_formats import (
    BCRYPT_MAX_BYTES,
    Argon2Verifier,
    BcryptVerifier,
    DjangoFormatsVerifier,
    HashVerifier,
    MalformedHashError,
    UnsupportedHashError,
    WerkzeugVerifier,
)

__all__ = ["DjangoHashVerifier", "django_dummy_hash", "django_verifiers"]

#: What Django's hashers raise for a hash they cannot read: ``ValueError`` (argon2's
#: ``InvalidHashError``, ``binascii.Error`` and bcrypt's complaints are ones), and the
#: odd ``TypeError``, ``IndexError`` or ``OverflowError`` of a hand-made hasher.
_UNREADABLE: Final = (ValueError, TypeError, ArithmeticError, LookupError)
#: stepup's own reading of Django's formats: its structure and cost bounds, checked
#: before Django hashes anything, and its bcrypt check for passwords over 72 bytes.
_BOUNDS: Final = DjangoFormatsVerifier(
    Argon2Verifier(PasswordHasher.from_parameters(PASSWORD_PARAMETERS))
)
#: The ``<algorithm>`` of every hasher Django ships or shipped (``sha1``, ``crypt`` and the
#: unsalted ones until Django 5.1), with those stepup reads itself: a hash that starts
#: with one and a ``$`` is Django's, judged by ``PASSWORD_HASHERS`` alone.
_DJANGO_ALGORITHMS: Final = frozenset(
    {
        *DjangoFormatsVerifier.ALGORITHMS,  # pbkdf2_sha256, argon2, bcrypt, scrypt...
        "md5",
        "sha1",
        "unsalted_md5",
        "unsalted_sha1",
        "crypt",
    }
)


class DjangoHashVerifier:
    """Hashes in Django's ``<algorithm>$...`` form, verified by Django's hashers.

    A hash in one of Django's own formats that no hasher in ``PASSWORD_HASHERS`` reads
    is :class:`UnsupportedHashError` here, so no verifier after this one reads what the
    project turned off. ``hasher`` (stepup's argon2 parameters) decides whether a Django
    ``argon2$`` hash is outdated; without one, nothing is ever upgraded."""

    name = "django-hashers"

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self.hasher = hasher

    def __repr__(self) -> str:
        return "DjangoHashVerifier()"

    def recognise(self, stored_hash: str) -> bool:
        """Django's, and readable without hashing (this runs before the throttle's
        charge): within stepup's bounds, and taken apart by its hasher's ``decode``."""
        from django.contrib.auth.hashers import is_password_usable

        if not is_password_usable(stored_hash):
            return False
        hasher = _hasher_of(stored_hash)
        if hasher is None:
            _refuse_if_djangos(stored_hash)
            return False  # not Django's: stepup's other verifiers may read it
        _BOUNDS.recognise(stored_hash)
        try:
            hasher.decode(stored_hash)
        except NotImplementedError:  # a custom hasher without decode: verify tells
            pass
        except _UNREADABLE:
            raise _unreadable(hasher) from None
        return True

    def verify(self, stored_hash: str, password: str) -> bool:
        from django.contrib.auth.hashers import check_password

        hasher = _hasher_of(stored_hash)
        if hasher is None:
            _refuse_if_djangos(stored_hash)
            raise MalformedHashError("a hash no hasher in PASSWORD_HASHERS reads")
        _BOUNDS.recognise(stored_hash)  # verify may come without recognise
        if hasher.algorithm == "bcrypt" and len(password.encode("utf-8")) > BCRYPT_MAX_BYTES:
            # bcrypt reads the first 72 bytes, which may end inside a character: checked
            # on those bytes, as Django's hasher did before bcrypt 5 refused them.
            return _BOUNDS.verify(stored_hash, password)
        try:
            return bool(check_password(password, stored_hash))
        except _UNREADABLE:
            raise _unreadable(hasher) from None

    def needs_upgrade(self, stored_hash: str) -> bool:
        if self.hasher is None or not stored_hash.startswith("argon2$argon2"):
            return False
        # Django's own rule (Argon2PasswordHasher.must_update): any other parameters,
        # not only weaker ones, as Django's sign-in would re-hash them too.
        return self.hasher.check_needs_rehash(stored_hash[len("argon2") :])


def _hasher_of(stored_hash: str) -> Any:
    """The project's hasher for ``stored_hash``, or ``None``."""
    from django.contrib.auth.hashers import identify_hasher

    try:
        return identify_hasher(stored_hash)
    except ValueError:
        return None


def _refuse_if_djangos(stored_hash: str) -> None:
    """A hash in Django's own format that no hasher in ``PASSWORD_HASHERS`` reads is
    ``unsupported_hash``, named by its algorithm (one of Django's names, never the
    hash's other text): Django's ``check_password`` refuses it too."""
    algorithm, dollar, _ = stored_hash.partition("$")
    if dollar and algorithm in _DJANGO_ALGORITHMS:
        raise UnsupportedHashError(
            f"a Django {algorithm} hash, but no hasher in PASSWORD_HASHERS reads it"
        )


def _unreadable(hasher: Any) -> MalformedHashError:
    # The algorithm only: the hasher's own message can echo part of the hash.
    return MalformedHashError(f"a Django {hasher.algorithm} hash that Django cannot read")


def django_dummy_hash() -> str:
    """A hash of a random password by the project's default hasher."""
    from django.contrib.auth.hashers import make_password

    return str(make_password(secrets.token_urlsafe(32)))


def django_verifiers(hasher: PasswordHasher | None) -> tuple[HashVerifier, ...]:
    """Django's own hashers first, then stepup's (raw argon2, bcrypt, Werkzeug) for
    projects whose hash loader returns hashes kept outside Django's password field.
    Django's formats are read by ``PASSWORD_HASHERS`` only: stepup's own reading of
    them (:class:`DjangoFormatsVerifier`) is not among these."""
    argon2 = hasher or PasswordHasher.from_parameters(PASSWORD_PARAMETERS)
    return (
        DjangoHashVerifier(argon2),
        Argon2Verifier(argon2),
        BcryptVerifier(),
        WerkzeugVerifier(),
    )
