"""Stored password hashes apps already have: recognised by format, verified by a
well-kept library per format.

A :class:`HashVerifier` claims a format by its prefix (cheap, no hashing) and then
verifies a password against it. :class:`PasswordReauth` tries its verifiers in order;
a hash no verifier claims is ``unsupported_hash``. Formats out of the box:

- argon2 PHC strings (``$argon2id$v=19$m=65536,t=3,p=4$...``, also ``$argon2i$``
  and ``$argon2d$``), verified with argon2-cffi;
- bcrypt (``$2b$12$...``, also ``$2a$`` and ``$2y$``), with the ``bcrypt`` package
  (extra ``passwords``);
- Werkzeug's ``scrypt:32768:8:1$...`` and ``pbkdf2:sha256:600000$...``, with
  :mod:`hashlib`;
- Django's ``pbkdf2_sha256$``, ``pbkdf2_sha1$``, ``argon2$``, ``bcrypt_sha256$``,
  ``bcrypt$`` and ``scrypt$`` outside Django, with :mod:`hashlib`, argon2-cffi and
  ``bcrypt``.

Not among the defaults, for an app to add:

- Flask-Security-Too's hashes (:class:`FlaskSecurityVerifier`): argon2, bcrypt and
  passlib's pbkdf2 of an HMAC of the password keyed with the app's
  ``SECURITY_PASSWORD_SALT``. They look like anyone's ``$argon2id$`` and ``$2b$``, so
  only the app can say which it has;
- passlib's ``$pbkdf2-sha256$`` and ``$pbkdf2-sha512$`` (:class:`PasslibPbkdf2Verifier`),
  with :mod:`hashlib`, for apps on plain passlib. Flask-Security-Too writes the same
  format over its HMAC, so a default would turn its ``unsupported_hash`` (a log line
  saying what is missing) into a right password called wrong.

Werkzeug's formats are implemented with :mod:`hashlib` rather than by calling
``werkzeug.security.check_password_hash``: the format is small and documented, an app
that moved from Flask to FastAPI should not need Werkzeug to check its users'
passwords, and reading the parameters ourselves lets us refuse absurd ones (an
``n`` that would allocate gigabytes) before any work. The tests check the result
against Werkzeug's own ``generate_password_hash``.

Inside Django, ``stepup.integrations.django.passwords.DjangoHashVerifier`` verifies
through Django's own ``check_password`` instead, so a project's custom hashers work.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import re
import unicodedata
from collections.abc import Collection, Mapping, Sequence
from typing import ClassVar, Final, Literal, Protocol, TypeAlias, cast, runtime_checkable

from argon2 import Parameters, PasswordHasher, Type, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from argon2.low_level import ARGON2_VERSION

from ...errors import StepupError

__all__ = [
    "FLASK_SECURITY_SINGLE_HASH",
    "MAX_ARGON2_MEMORY_KIB",
    "MAX_ARGON2_PARALLELISM",
    "MAX_ARGON2_TIME_COST",
    "MAX_BCRYPT_COST",
    "MAX_PBKDF2_ITERATIONS",
    "MAX_SCRYPT_MEMORY",
    "MAX_SCRYPT_N",
    "MAX_SCRYPT_P",
    "MAX_SCRYPT_R",
    "Argon2Verifier",
    "BcryptVerifier",
    "DjangoFormatsVerifier",
    "FlaskSecurityVerifier",
    "HashVerifier",
    "MalformedHashError",
    "PasslibPbkdf2Verifier",
    "UnsupportedHashError",
    "WerkzeugVerifier",
    "argon2_below",
    "default_verifiers",
    "find_verifier",
]

#: bcrypt reads at most this many bytes of a password; longer ones were truncated
#: by the libraries that made such hashes, so we truncate the same way to verify.
BCRYPT_MAX_BYTES: Final = 72
#: Cost bounds we accept from a stored hash: refusing absurd parameters keeps a
#: corrupt or planted hash from tying up the server (bcrypt 20 is about a minute).
MAX_BCRYPT_COST: Final = 20
MAX_PBKDF2_ITERATIONS: Final = 10_000_000
#: scrypt: at most this many bytes (128 * n * r * p), and each parameter bounded too.
MAX_SCRYPT_MEMORY: Final = 256 * 1024 * 1024
MAX_SCRYPT_N: Final = 2**20
MAX_SCRYPT_R: Final = 32
MAX_SCRYPT_P: Final = 16
#: argon2 (memory in KiB, as the hash's ``m=`` writes it). The largest profile anyone
#: recommends is RFC 9106's first option, 2 GiB with one pass and 4 lanes (argon2-cffi's
#: ``RFC_9106_HIGH_MEMORY``); OWASP's options and argon2-cffi's default (64 MiB, t=3)
#: are far below, so 2 GiB still admits every real deployment while 4 GiB is refused.
#: 20 passes is several times libsodium's "sensitive" profiles (t=4 to 8) and, at the
#: memory cap, about as long as the bcrypt cap. Lanes split the memory rather than add
#: work, so 64 only bounds the threads one check may start (RFC 9106 and Django use
#: 4 and 8; Bitwarden lets users pick up to 16).
MAX_ARGON2_MEMORY_KIB: Final = 2 * 1024 * 1024
MAX_ARGON2_TIME_COST: Final = 20
MAX_ARGON2_PARALLELISM: Final = 64


class MalformedHashError(StepupError):
    """A stored hash claims a known format but cannot be read. The message names the
    format only, never the hash."""


class UnsupportedHashError(StepupError):
    """A stored hash is in a format no verifier handles, or its library is missing."""


@runtime_checkable
class HashVerifier(Protocol):
    """One family of stored hash formats.

    ``name`` is for logs. :meth:`recognise` must be cheap (no hashing): it runs
    before the throttle is charged. :meth:`verify` runs only after the charge.
    """

    name: str

    def recognise(self, stored_hash: str) -> bool:
        """``True`` if the hash is in this format; raise :class:`MalformedHashError`
        if it claims the format (by its prefix) but its structure is wrong, and
        :class:`UnsupportedHashError` if the library it needs is not installed."""
        ...

    def verify(self, stored_hash: str, password: str) -> bool:
        """Does ``password`` match? Raise :class:`MalformedHashError` if the hash
        cannot be read after all."""
        ...

    def needs_upgrade(self, stored_hash: str) -> bool:
        """Should a match be re-hashed to the current argon2id parameters?"""
        ...


def find_verifier(verifiers: Sequence[HashVerifier], stored_hash: str) -> HashVerifier:
    """The first verifier that recognises ``stored_hash``.

    Raises :class:`MalformedHashError` or :class:`UnsupportedHashError` (from a
    verifier, or when none recognises the hash)."""
    for verifier in verifiers:
        if verifier.recognise(stored_hash):
            return verifier
    raise UnsupportedHashError("no verifier recognises this stored hash's format")


def _argon2_parameters(stored_hash: str) -> Parameters:
    """The hash's parameters, refused as malformed when unreadable or beyond the caps
    (a corrupt or planted ``m=4194304,t=1000000`` would tie up a worker for hours)."""
    try:
        parameters = extract_parameters(stored_hash)
    except (InvalidHashError, ValueError):
        raise MalformedHashError("an argon2 hash whose parameters cannot be read") from None
    if not (
        1 <= parameters.memory_cost <= MAX_ARGON2_MEMORY_KIB
        and 1 <= parameters.time_cost <= MAX_ARGON2_TIME_COST
        and 1 <= parameters.parallelism <= MAX_ARGON2_PARALLELISM
    ):
        raise MalformedHashError("an argon2 hash whose parameters are out of range")
    return parameters


def argon2_below(hasher: PasswordHasher, stored_hash: str) -> bool:
    """Is the argon2 ``stored_hash`` below ``hasher``'s profile anywhere, so a match
    should be re-hashed with it?

    Below means: less memory, fewer passes, fewer lanes, a shorter hash or a shorter salt
    than ``hasher``'s, an older argon2 version, or argon2i/argon2d where the hasher makes
    another type (argon2id is never below). A hash at or above the profile in every one
    of these is kept, so a deployment's stronger hashes (128 MiB, 4 passes) are never
    rewritten with weaker parameters. One above in some and below in another is below:
    its upgrade takes the profile's values for all of them.

    Raises :class:`MalformedHashError` when the parameters cannot be read or are beyond
    the caps."""
    stored = _argon2_parameters(stored_hash)
    return (
        (stored.type is not Type.ID and stored.type is not hasher.type)
        or stored.version < ARGON2_VERSION
        or stored.memory_cost < hasher.memory_cost
        or stored.time_cost < hasher.time_cost
        or stored.parallelism < hasher.parallelism
        or stored.hash_len < hasher.hash_len
        or stored.salt_len < hasher.salt_len
    )


class Argon2Verifier:
    """argon2 PHC strings (``$argon2id$``, ``$argon2i$``, ``$argon2d$``) via argon2-cffi.

    ``hasher`` holds the current parameters: a match below them anywhere (or made with
    argon2i/argon2d) needs an upgrade (:func:`argon2_below`); one at or above them in
    every parameter is kept."""

    name = "argon2"

    def __init__(self, hasher: PasswordHasher) -> None:
        self.hasher = hasher

    def __repr__(self) -> str:
        return "Argon2Verifier()"

    def recognise(self, stored_hash: str) -> bool:
        if not stored_hash.startswith(("$argon2id$", "$argon2i$", "$argon2d$")):
            return False
        _argon2_parameters(stored_hash)
        return True

    def verify(self, stored_hash: str, password: str) -> bool:
        _argon2_parameters(stored_hash)  # never hash with parameters recognise refuses
        try:
            return self.hasher.verify(stored_hash, password)
        except VerifyMismatchError:
            return False
        except (VerificationError, InvalidHashError):
            raise MalformedHashError("a corrupt argon2 hash") from None

    def needs_upgrade(self, stored_hash: str) -> bool:
        return argon2_below(self.hasher, stored_hash)


_BCRYPT = re.compile(r"\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}")


def _bcrypt_cost(stored_hash: str) -> int:
    match = _BCRYPT.fullmatch(stored_hash)
    if match is None or not 4 <= int(match.group(1)) <= MAX_BCRYPT_COST:
        raise MalformedHashError("a bcrypt hash that is not $2x$<cost 04-20>$<53 characters>")
    return int(match.group(1))


def _bcrypt_module() -> object:
    try:
        import bcrypt
    except ImportError:
        raise UnsupportedHashError(
            "a bcrypt hash, but the bcrypt package is not installed"
            " (pip install 'stepup-auth[passwords]')"
        ) from None
    return bcrypt


def _bcrypt_check(secret: bytes, stored_hash: str) -> bool:
    import bcrypt

    try:
        return bool(bcrypt.checkpw(secret[:BCRYPT_MAX_BYTES], stored_hash.encode("ascii")))
    except ValueError:
        raise MalformedHashError("a corrupt bcrypt hash") from None


class BcryptVerifier:
    """bcrypt (``$2b$``, ``$2a$``, ``$2y$``) via the ``bcrypt`` package.

    Passwords longer than 72 bytes are truncated to 72 before checking, as every
    library that made such hashes did (bcrypt 5 refuses them instead); the upgrade to
    argon2id then keeps the whole password."""

    name = "bcrypt"

    def __repr__(self) -> str:
        return "BcryptVerifier()"

    def recognise(self, stored_hash: str) -> bool:
        if not stored_hash.startswith(("$2a$", "$2b$", "$2y$")):
            return False
        _bcrypt_cost(stored_hash)
        _bcrypt_module()
        return True

    def verify(self, stored_hash: str, password: str) -> bool:
        return _bcrypt_check(password.encode("utf-8"), stored_hash)

    def needs_upgrade(self, stored_hash: str) -> bool:
        return True


#: The digests a Werkzeug ``pbkdf2:<digest>:<iterations>`` hash may name: Werkzeug passes
#: the name to :func:`hashlib.pbkdf2_hmac` as written, so any of hashlib's guaranteed
#: algorithms (md5 and sha1 to sha3_512 and blake2b/s) but the shake ones, whose output
#: has no fixed length (``pbkdf2_hmac`` refuses them). Matched exactly, as hashlib's
#: canonical lower-case names; whether this Python's OpenSSL offers one is asked once
#: (:func:`_pbkdf2_key_size`).
_PBKDF2_DIGESTS: Final = frozenset(
    name for name in hashlib.algorithms_guaranteed if not name.startswith("shake_")
)
_HEX = re.compile(r"[0-9a-f]+")
_SALT = re.compile(r"[!-#%-~]+")  # printable ASCII except '$' and space


def _int(text: str, low: int, high: int, what: str) -> int:
    # Longer than the bound's own digits is out of range unread: int() of thousands of
    # digits raises ValueError (Python's conversion limit), not MalformedHashError.
    if (
        not text.isascii()
        or not text.isdigit()
        or len(text.lstrip("0")) > len(str(high))
        or not low <= int(text) <= high
    ):
        raise MalformedHashError(f"{what} out of range")
    return int(text)


@functools.cache
def _pbkdf2_key_size(digest: str) -> int | None:
    """The size of what :func:`hashlib.pbkdf2_hmac` computes with ``digest`` here (the
    digest's size), or ``None`` when it refuses the name: a FIPS build of OpenSSL, say,
    may refuse md5. One iteration, asked once per name."""
    try:
        return len(hashlib.pbkdf2_hmac(digest, b"", b"", 1))
    except ValueError:
        return None


def _scrypt_parameters(n_text: str, r_text: str, p_text: str, what: str) -> tuple[int, int, int]:
    n = _int(n_text, 2, MAX_SCRYPT_N, f"{what}: scrypt n")
    r = _int(r_text, 1, MAX_SCRYPT_R, f"{what}: scrypt r")
    p = _int(p_text, 1, MAX_SCRYPT_P, f"{what}: scrypt p")
    if n & (n - 1) or 128 * n * r * p > MAX_SCRYPT_MEMORY:
        raise MalformedHashError(f"{what}: scrypt parameters out of range")
    return n, r, p


def _scrypt(password: str, salt: str, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt.encode("ascii"),
        n=n,
        r=r,
        p=p,
        maxmem=132 * n * r * p + 1024 * 1024,
        dklen=64,
    )


def _pbkdf2_digest_size(digest: str) -> int:
    """The size of a Werkzeug pbkdf2 hash's digest (its key length), or
    :class:`UnsupportedHashError`: the name is the hash's own text, so the message
    quotes it only when it is one of hashlib's names."""
    if digest not in _PBKDF2_DIGESTS:
        raise UnsupportedHashError(
            "a Werkzeug pbkdf2 hash whose digest is not one of hashlib's guaranteed"
            " algorithms (md5, sha1, sha224 to sha512, sha3_*, blake2b, blake2s)"
        )
    size = _pbkdf2_key_size(digest)
    if size is None:
        raise UnsupportedHashError(
            f"a Werkzeug pbkdf2:{digest} hash, but this Python's hashlib.pbkdf2_hmac"
            f" does not offer {digest}"
        )
    return size


class WerkzeugVerifier:
    """Werkzeug's ``generate_password_hash`` formats, implemented with :mod:`hashlib`:
    ``scrypt:<n>:<r>:<p>$<salt>$<hex>`` and ``pbkdf2:<digest>:<iterations>$<salt>$<hex>``.

    The method part must carry its parameters, as every Werkzeug release writes them:
    a bare ``pbkdf2:sha256`` means whatever default the installed Werkzeug had, which
    changed between releases, so it is refused as malformed. The pbkdf2 digest may be
    any of hashlib's guaranteed algorithms but shake (``sha256``, ``sha3_256``, ``md5``,
    ``blake2b``...), as Werkzeug hands the name to :func:`hashlib.pbkdf2_hmac`; another
    name is ``unsupported_hash``."""

    name = "werkzeug"

    def __repr__(self) -> str:
        return "WerkzeugVerifier()"

    def recognise(self, stored_hash: str) -> bool:
        if not stored_hash.startswith(("scrypt:", "pbkdf2:")):
            return False
        self._parse(stored_hash)
        return True

    @staticmethod
    def _parse(stored_hash: str) -> tuple[list[str], str, str]:
        parts = stored_hash.split("$")
        if len(parts) != 3 or not _SALT.fullmatch(parts[1]) or not _HEX.fullmatch(parts[2]):
            raise MalformedHashError("a Werkzeug hash that is not <method>$<salt>$<hex digest>")
        method = parts[0].split(":")
        if method[0] == "scrypt" and len(method) == 4:
            _scrypt_parameters(method[1], method[2], method[3], "a Werkzeug hash")
            expected = 128
        elif method[0] == "pbkdf2" and len(method) == 3:
            _int(method[2], 1, MAX_PBKDF2_ITERATIONS, "a Werkzeug hash: iterations")
            expected = 2 * _pbkdf2_digest_size(method[1])
        elif parts[0] == "scrypt" or (method[0] == "pbkdf2" and len(method) < 3):
            raise MalformedHashError(
                "a Werkzeug hash without explicit parameters (scrypt:n:r:p or pbkdf2:digest:n)"
            )
        else:
            raise MalformedHashError(
                "a Werkzeug hash whose method is not scrypt:n:r:p or pbkdf2:digest:n"
            )
        if len(parts[2]) != expected:
            raise MalformedHashError("a Werkzeug hash whose digest has the wrong length")
        return method, parts[1], parts[2]

    def verify(self, stored_hash: str, password: str) -> bool:
        method, salt, digest = self._parse(stored_hash)
        if method[0] == "scrypt":
            n, r, p = (int(x) for x in method[1:])
            computed = _scrypt(password, salt, n, r, p).hex()
        else:
            computed = hashlib.pbkdf2_hmac(
                method[1], password.encode("utf-8"), salt.encode("ascii"), int(method[2])
            ).hex()
        return hmac.compare_digest(computed, digest)

    def needs_upgrade(self, stored_hash: str) -> bool:
        return True


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, ValueError):
        raise MalformedHashError(f"{what} whose digest is not base64") from None


class DjangoFormatsVerifier:
    """Django's stored formats, for apps that moved away from Django (or read its user
    table from elsewhere): ``pbkdf2_sha256$``, ``pbkdf2_sha1$``, ``argon2$``,
    ``bcrypt_sha256$``, ``bcrypt$`` and ``scrypt$``, each verified as Django does.

    Inside a Django project use
    ``stepup.integrations.django.passwords.DjangoHashVerifier``, which asks Django."""

    name = "django"
    #: The ``<algorithm>`` names of the formats read here.
    ALGORITHMS: Final = (
        "pbkdf2_sha256",
        "pbkdf2_sha1",
        "argon2",
        "bcrypt_sha256",
        "bcrypt",
        "scrypt",
    )

    def __init__(self, argon2: Argon2Verifier) -> None:
        self._argon2 = argon2

    def __repr__(self) -> str:
        return "DjangoFormatsVerifier()"

    def recognise(self, stored_hash: str) -> bool:
        algorithm = stored_hash.partition("$")[0]
        if algorithm not in self.ALGORITHMS or "$" not in stored_hash:
            return False
        self._check(stored_hash, algorithm)
        return True

    def _check(self, stored_hash: str, algorithm: str) -> None:
        rest = stored_hash[len(algorithm) + 1 :]
        if algorithm.startswith("pbkdf2_"):
            parts = rest.split("$")
            if len(parts) != 3 or not _SALT.fullmatch(parts[1]):
                raise MalformedHashError(f"a Django {algorithm} hash that is not n$salt$digest")
            _int(parts[0], 1, MAX_PBKDF2_ITERATIONS, f"a Django {algorithm} hash: iterations")
            _b64(parts[2], f"a Django {algorithm} hash")
        elif algorithm == "argon2":
            if not self._argon2.recognise("$" + rest):
                raise MalformedHashError("a Django argon2 hash without its $argon2 part")
        elif algorithm in ("bcrypt_sha256", "bcrypt"):
            if not rest.startswith("$"):
                raise MalformedHashError(f"a Django {algorithm} hash without its $2b$ part")
            _bcrypt_cost(rest)
            _bcrypt_module()
        else:  # scrypt$n$salt$r$p$digest
            parts = rest.split("$")
            if len(parts) != 5 or not _SALT.fullmatch(parts[1]):
                raise MalformedHashError("a Django scrypt hash that is not n$salt$r$p$digest")
            _scrypt_parameters(parts[0], parts[2], parts[3], "a Django scrypt hash")
            _b64(parts[4], "a Django scrypt hash")

    def verify(self, stored_hash: str, password: str) -> bool:
        algorithm, _, rest = stored_hash.partition("$")
        self._check(stored_hash, algorithm)
        if algorithm.startswith("pbkdf2_"):
            iterations, salt, digest = rest.split("$")
            computed = hashlib.pbkdf2_hmac(
                algorithm.removeprefix("pbkdf2_"),
                password.encode("utf-8"),
                salt.encode("ascii"),
                int(iterations),
            )
            return hmac.compare_digest(computed, _b64(digest, "a Django pbkdf2 hash"))
        if algorithm == "argon2":
            return self._argon2.verify("$" + rest, password)
        if algorithm == "bcrypt_sha256":
            # Django pre-hashes so bcrypt never truncates (Django ticket #20138).
            prehashed = binascii.hexlify(hashlib.sha256(password.encode("utf-8")).digest())
            return _bcrypt_check(prehashed, rest)
        if algorithm == "bcrypt":
            return _bcrypt_check(password.encode("utf-8"), rest)
        n_text, salt, r_text, p_text, digest = rest.split("$")
        computed = _scrypt(password, salt, int(n_text), int(r_text), int(p_text))
        return hmac.compare_digest(computed, _b64(digest, "a Django scrypt hash"))

    def needs_upgrade(self, stored_hash: str) -> bool:
        return True


_PASSLIB_PBKDF2: Final = {"$pbkdf2-sha256$": "sha256", "$pbkdf2-sha512$": "sha512"}
#: passlib's "adapted base64": standard base64 with ``.`` for ``+`` and no padding
#: (passlib's ``ab64_decode`` also reads ``+``).
_AB64 = re.compile(r"[./+A-Za-z0-9]*")
#: passlib's bound on a pbkdf2 salt.
_PASSLIB_MAX_SALT_BYTES: Final = 1024


def _ab64_decode(text: str, what: str) -> bytes:
    """passlib's ``ab64_decode``, strict about its alphabet (passlib's decoder skips
    characters it does not know; a hash with such characters is corrupt anyway)."""
    if not _AB64.fullmatch(text) or len(text) % 4 == 1:
        raise MalformedHashError(f"{what} whose salt or digest is not passlib's base64")
    padded = text.replace(".", "+") + "=" * (-len(text) % 4)
    try:
        return base64.b64decode(padded.encode("ascii"), validate=True)
    except (binascii.Error, ValueError):
        raise MalformedHashError(f"{what} whose salt or digest is not passlib's base64") from None


class PasslibPbkdf2Verifier:
    """passlib's ``pbkdf2_sha256`` and ``pbkdf2_sha512``, implemented with :mod:`hashlib`:
    ``$pbkdf2-sha512$<rounds>$<salt>$<checksum>``, salt and checksum in passlib's adapted
    base64 ("ab64"), the checksum the digest's full size.

    Rounds beyond :data:`MAX_PBKDF2_ITERATIONS` (passlib allows 2**32 - 1) are refused
    before any work, as are zero-padded rounds and a hash without its checksum (passlib
    refuses both too). Not among :func:`default_verifiers`: give it to an app on plain
    passlib; Flask-Security-Too's hashes need :class:`FlaskSecurityVerifier`."""

    name = "passlib-pbkdf2"

    def __repr__(self) -> str:
        return "PasslibPbkdf2Verifier()"

    def recognise(self, stored_hash: str) -> bool:
        if not stored_hash.startswith(tuple(_PASSLIB_PBKDF2)):
            return False
        self._parse(stored_hash)
        return True

    @staticmethod
    def _parse(stored_hash: str) -> tuple[str, int, bytes, bytes]:
        prefix = next((p for p in _PASSLIB_PBKDF2 if stored_hash.startswith(p)), None)
        if prefix is None:
            raise MalformedHashError("not a passlib pbkdf2 hash")
        digest = _PASSLIB_PBKDF2[prefix]
        what = f"a passlib pbkdf2-{digest} hash"
        parts = stored_hash[len(prefix) :].split("$")
        if len(parts) != 3:
            raise MalformedHashError(f"{what} that is not $<rounds>$<salt>$<checksum>")
        if parts[0].startswith("0"):
            raise MalformedHashError(f"{what}: rounds out of range")
        rounds = _int(parts[0], 1, MAX_PBKDF2_ITERATIONS, f"{what}: rounds")
        salt = _ab64_decode(parts[1], what)
        checksum = _ab64_decode(parts[2], what)
        if len(salt) > _PASSLIB_MAX_SALT_BYTES:
            raise MalformedHashError(f"{what} whose salt is too long")
        if len(checksum) != hashlib.new(digest).digest_size:
            raise MalformedHashError(f"{what} whose checksum has the wrong length")
        return digest, rounds, salt, checksum

    def verify(self, stored_hash: str, password: str) -> bool:
        digest, rounds, salt, checksum = self._parse(stored_hash)
        computed = hashlib.pbkdf2_hmac(digest, password.encode("utf-8"), salt, rounds)
        return hmac.compare_digest(computed, checksum)

    def needs_upgrade(self, stored_hash: str) -> bool:
        return True


#: Flask-Security-Too's default ``SECURITY_PASSWORD_SINGLE_HASH``: the schemes it hashes
#: without the HMAC first (none of those :class:`FlaskSecurityVerifier` reads).
FLASK_SECURITY_SINGLE_HASH: Final = frozenset(
    {
        "django_argon2",
        "django_bcrypt_sha256",
        "django_pbkdf2_sha256",
        "django_pbkdf2_sha1",
        "django_bcrypt",
        "django_salted_md5",
        "django_salted_sha1",
        "django_des_crypt",
        "plaintext",
    }
)
#: The passlib schemes :class:`FlaskSecurityVerifier` reads, by the prefix of their hashes.
_FLASK_SECURITY_SCHEMES: Final = (
    (("$argon2id$", "$argon2i$", "$argon2d$"), "argon2"),
    (("$2a$", "$2b$", "$2y$"), "bcrypt"),
    (("$pbkdf2-sha256$",), "pbkdf2_sha256"),
    (("$pbkdf2-sha512$",), "pbkdf2_sha512"),
)
_NormalForm: TypeAlias = Literal["NFC", "NFD", "NFKC", "NFKD"]
_NORMALIZE_FORMS: Final = ("NFC", "NFD", "NFKC", "NFKD")


def _single_hash_schemes(single_hash: object) -> frozenset[str]:
    """Which of our schemes Flask-Security-Too hashes without the HMAC, read as its
    ``_use_double_hash`` reads ``SECURITY_PASSWORD_SINGLE_HASH``: ``True`` is every
    scheme, a false value none (it means ``{"plaintext"}``), else a collection of names."""
    ours = frozenset(scheme for _, scheme in _FLASK_SECURITY_SCHEMES)
    if single_hash is True:
        return ours
    if single_hash is None or single_hash is False:
        return frozenset()
    if isinstance(single_hash, (str, bytes)) or not isinstance(single_hash, Collection):
        raise ValueError(
            "single_hash (SECURITY_PASSWORD_SINGLE_HASH) must be True, False or a"
            " collection of passlib scheme names"
        )
    if not all(isinstance(name, str) for name in single_hash):
        raise ValueError("single_hash (SECURITY_PASSWORD_SINGLE_HASH): scheme names are strings")
    return ours & frozenset(single_hash)


def _utf8(text: str) -> bytes | None:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return None


class FlaskSecurityVerifier:
    """Flask-Security-Too's stored hashes, checked as its ``verify_password`` does.

    Flask-Security-Too normalises the password (``SECURITY_PASSWORD_NORMALIZE_FORM``,
    NFKD by default), then, unless the scheme is in ``SECURITY_PASSWORD_SINGLE_HASH``,
    replaces it with base64(HMAC-SHA512(``SECURITY_PASSWORD_SALT``, password)) (its
    ``get_hmac``), and hashes that with passlib: argon2 (its default), bcrypt (on the
    first 72 bytes) or pbkdf2_sha256/512. This verifier does the same and checks the
    result with :class:`Argon2Verifier`, :class:`BcryptVerifier` and
    :class:`PasslibPbkdf2Verifier`, so the same bounds apply. passlib's other schemes
    (``sha512_crypt``, ``des_crypt``, ``plaintext``...) are not read.

    ``salt`` is a secret: it is never in a repr, log line or error. A match never needs
    an upgrade: a plain argon2id hash stored over the user's would be one
    Flask-Security-Too's own sign-in cannot read (it would apply the HMAC first), and
    that sign-in already re-hashes to the app's current scheme itself.

    Build it from the Flask app's config with :meth:`from_config`."""

    #: It normalises the password itself: stepup's NFKC retry is not for it.
    normalises_passwords: ClassVar[bool] = True

    name = "flask-security"

    def __init__(
        self,
        salt: str | bytes | None,
        *,
        single_hash: bool | Collection[str] | None = FLASK_SECURITY_SINGLE_HASH,
        normalize_form: str | None = "NFKD",
    ) -> None:
        """``salt``, ``single_hash`` and ``normalize_form`` are the app's
        ``SECURITY_PASSWORD_SALT``, ``SECURITY_PASSWORD_SINGLE_HASH`` and
        ``SECURITY_PASSWORD_NORMALIZE_FORM``, with Flask-Security-Too's defaults.
        Raises :class:`ValueError` (never quoting the salt) for a value it would not
        take: no salt while some scheme is hashed with the HMAC, an unknown form."""
        self._single = _single_hash_schemes(single_hash)
        if normalize_form and normalize_form not in _NORMALIZE_FORMS:
            raise ValueError(
                "normalize_form (SECURITY_PASSWORD_NORMALIZE_FORM) must be None or"
                " one of NFC, NFD, NFKC, NFKD"
            )
        self._form = cast("_NormalForm", normalize_form) if normalize_form else None
        if isinstance(salt, str):
            # Raised outside the except: the encoding error's message and object (kept
            # as the context) would quote the salt.
            salt = _utf8(salt)
            if salt is None:
                raise ValueError("salt (SECURITY_PASSWORD_SALT) must be text UTF-8 can encode")
        if salt is not None and not isinstance(salt, bytes):
            raise ValueError("salt (SECURITY_PASSWORD_SALT) must be a string")
        if not salt and len(self._single) < len(_FLASK_SECURITY_SCHEMES):
            raise ValueError(
                "Flask-Security-Too hashes the password with an HMAC keyed with"
                " SECURITY_PASSWORD_SALT first: give its salt"
            )
        self._key = salt or b""
        argon2 = Argon2Verifier(PasswordHasher())  # verifies any parameters; never hashes
        pbkdf2 = PasslibPbkdf2Verifier()
        self._verifiers: dict[str, HashVerifier] = {
            "argon2": argon2,
            "bcrypt": BcryptVerifier(),
            "pbkdf2_sha256": pbkdf2,
            "pbkdf2_sha512": pbkdf2,
        }

    @classmethod
    def from_config(cls, config: Mapping[str, object]) -> FlaskSecurityVerifier:
        """From a Flask app's ``app.config``: ``SECURITY_PASSWORD_SALT``,
        ``SECURITY_PASSWORD_SINGLE_HASH`` and ``SECURITY_PASSWORD_NORMALIZE_FORM``, each
        with Flask-Security-Too's default when not set."""
        salt = config.get("SECURITY_PASSWORD_SALT")
        single_hash = config.get("SECURITY_PASSWORD_SINGLE_HASH", FLASK_SECURITY_SINGLE_HASH)
        form = config.get("SECURITY_PASSWORD_NORMALIZE_FORM", "NFKD")
        if salt is not None and not isinstance(salt, (str, bytes)):
            raise ValueError("SECURITY_PASSWORD_SALT must be a string")
        if form is not None and not isinstance(form, str):
            raise ValueError("SECURITY_PASSWORD_NORMALIZE_FORM must be None or a string")
        # single_hash is checked by the constructor, as it checks a caller's
        return cls(
            salt, single_hash=cast("bool | Collection[str]", single_hash), normalize_form=form
        )

    def __repr__(self) -> str:
        return (
            f"FlaskSecurityVerifier(single_hash={sorted(self._single)!r},"
            f" normalize_form={self._form!r})"
        )

    def _scheme(self, stored_hash: str) -> str | None:
        for prefixes, scheme in _FLASK_SECURITY_SCHEMES:
            if stored_hash.startswith(prefixes):
                return scheme
        return None

    def recognise(self, stored_hash: str) -> bool:
        scheme = self._scheme(stored_hash)
        if scheme is None:
            return False
        return self._verifiers[scheme].recognise(stored_hash)

    def verify(self, stored_hash: str, password: str) -> bool:
        scheme = self._scheme(stored_hash)
        if scheme is None:
            raise MalformedHashError("not a Flask-Security-Too hash")
        secret = unicodedata.normalize(self._form, password) if self._form else password
        if scheme not in self._single:
            mac = hmac.new(self._key, secret.encode("utf-8"), hashlib.sha512).digest()
            secret = base64.b64encode(mac).decode("ascii")
        # bcrypt reads the first 72 bytes, as Flask-Security-Too cuts the HMAC's 88.
        return self._verifiers[scheme].verify(stored_hash, secret)

    def needs_upgrade(self, stored_hash: str) -> bool:
        return False


def default_verifiers(hasher: PasswordHasher) -> tuple[HashVerifier, ...]:
    """argon2 (with ``hasher``'s parameters as current), bcrypt, Werkzeug and Django's
    formats, in that order."""
    argon2 = Argon2Verifier(hasher)
    return (argon2, BcryptVerifier(), WerkzeugVerifier(), DjangoFormatsVerifier(argon2))
