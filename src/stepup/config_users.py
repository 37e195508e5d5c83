"""Users whose TOTP secrets come from a TOML file instead of the UI.

The idea of the ``engine_user_otp_secret`` directive: an operator lists secrets in a
file; enrolment and removal through the API are then refused::

    [users."alice@example.com"]
    otp_secret = "<from stepup totp new>"
    # digits = 6, period = 30, algorithm = "SHA1" are optional

A secret holds at least 128 bits (RFC 4226 section 4; ``stepup totp new`` makes 160),
is not guessable (:func:`guessable_secret`: a published example, a short repeated
pattern, a handful of byte values) and belongs to one user only, a user id is well formed
(:func:`stepup.ids.is_well_formed_id`), and a file its group or others may read is
loaded with a warning on the ``stepup`` logger.
"""

from __future__ import annotations

import base64
import logging
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from ._toml import read_toml
from .errors import ConfigurationError, MalformedInputError
from .ids import MAX_ID_LENGTH, is_well_formed_id
from .totp import _HASHES, MIN_SECRET_BITS, TOTP, decode_secret

__all__ = ["ConfigUser", "ConfigUsers", "guessable_secret"]

_KEYS = frozenset({"otp_secret", "digits", "period", "algorithm"})
logger = logging.getLogger("stepup")

#: Example secrets that RFCs and tutorials publish, as key bytes. A key holding one
#: anywhere is refused: the RFC 4226 (appendix D) and RFC 6238 (appendix B) test keys are
#: repetitions of the first, the second is the Google Authenticator wiki's and many
#: tutorials' JBSWY3DPEHPK3PXP, the third pyotp's README's. A random key holds a given
#: 10 bytes with probability under len(key) / 2**80.
_PUBLISHED: Final = (
    b"1234567890",
    base64.b32decode("JBSWY3DPEHPK3PXP"),
    base64.b32decode("BASE32SECRET3232"),
    base64.b32decode("ABCDEFGHIJKLMNOP"),  # the base32 alphabet, in order
)
#: The longest repeated pattern refused, in bits: 80, the 16 base32 characters of
#: ``ABCDEFGHIJKLMNOPABCD...``; a pattern of c characters repeats every 5c bits, which
#: is no whole number of bytes unless c is a multiple of 8 (``ABCABC...``: every 15
#: bits), so the key is read as a string of bits. Refused only when the pattern comes
#: twice at least, so a random key of n bits repeats one with probability under
#: 2**-(n - min(80, n // 2)) * 2: below 4e-12 for 80 bits, 2e-14 for 128.
_LONGEST_PATTERN_BITS: Final = 80
#: A key with fewer distinct byte values is refused. A random key of n bytes has at most
#: 4 with probability sum over j <= 4 of C(256, j) * j! * S(n, j) / 256**n (S: Stirling
#: numbers of the second kind): 1.2e-10 for n = 10, 2.1e-21 for n = 16 (the shortest a
#: users file takes), 1.3e-28 for n = 20.
_FEWEST_BYTE_VALUES: Final = 5


def guessable_secret(key: bytes) -> str | None:
    """Why a TOTP key is guessable whatever its length, or ``None``: RFC 4226 section 4
    (R6) asks for random secrets, and these are not: a key holding a published example
    secret (:data:`_PUBLISHED`), one whose bits repeat a pattern of at most 80 bits over
    its whole length (``AAAA...``, ``ABAB...``, ``ABCABC...``: 16 base32 characters at
    most), or one of fewer than 5 distinct byte values.
    No random key of 10 bytes or more is refused in practice (the odds are by each
    constant). The reason names the cause, never the key, as a phrase to follow the
    secret's name ("otp_secret repeats a short pattern ...")."""
    if any(example in key for example in _PUBLISHED):
        return (
            "holds a published example secret (an RFC 4226 or RFC 6238 test key, or a"
            " tutorial's), which anyone can try"
        )
    if _repeats_a_pattern(key):
        return "repeats a short pattern, so it holds only a few unknown bits"
    if len(set(key)) < _FEWEST_BYTE_VALUES:
        return "holds only a few distinct byte values, which no random secret does"
    return None


def _repeats_a_pattern(key: bytes) -> bool:
    """Do the key's bits repeat one pattern of at most :data:`_LONGEST_PATTERN_BITS`
    bits, twice at least, over the whole key (the bits after the first ``period`` equal
    the bits before the last ``period``)?"""
    length = len(key) * 8
    bits = int.from_bytes(key, "big")
    for period in range(1, min(_LONGEST_PATTERN_BITS, length // 2) + 1):
        if bits >> period == bits & ((1 << (length - period)) - 1):
            return True
    return False


@dataclass(frozen=True, slots=True)
class ConfigUser:
    user_id: str
    totp: TOTP = field(repr=False)


class ConfigUsers:
    """The users of one configuration file, validated as a whole at load time."""

    def __init__(self, users: dict[str, ConfigUser], source: str = "<memory>") -> None:
        self._users = users
        self.source = source

    def __repr__(self) -> str:
        return f"ConfigUsers(source={self.source!r}, users={len(self._users)})"

    def __contains__(self, user_id: object) -> bool:
        return user_id in self._users

    def __len__(self) -> int:
        return len(self._users)

    def get(self, user_id: str) -> ConfigUser | None:
        return self._users.get(user_id)

    def user_ids(self) -> list[str]:
        """The user ids, sorted (for listings; never the secrets)."""
        return sorted(self._users)

    @classmethod
    def load(cls, path: str | Path) -> ConfigUsers:
        source = str(path)
        data = read_toml(path)
        _warn_if_open(path, source)
        return cls.from_mapping(data, source=source)

    @classmethod
    def from_mapping(cls, data: dict[str, Any], *, source: str = "<memory>") -> ConfigUsers:
        unknown = set(data) - {"users"}
        if unknown:
            raise ConfigurationError(f"{source}: unknown top-level keys {sorted(unknown)}")
        table = data.get("users", {})
        if not isinstance(table, dict):
            raise ConfigurationError(f"{source}: 'users' must be a table")
        users: dict[str, ConfigUser] = {}
        holders: dict[tuple[str, bytes], str] = {}  # each HMAC key once: see _hmac_keys
        keys: dict[str, bytes] = {}
        for position, (user_id, entry) in enumerate(table.items(), start=1):
            if not is_well_formed_id(user_id):
                # By position, not the id: it may hold what moves a terminal's cursor.
                raise ConfigurationError(
                    f"{source}: user {position} under [users] (in the file's order): an id"
                    f" must not be empty, longer than {MAX_ID_LENGTH} characters, or hold"
                    " control characters"
                )
            where = f"{source}: users.{user_id!r}"
            if not isinstance(entry, dict):
                raise ConfigurationError(f"{where} must be a table")
            extra = set(entry) - _KEYS
            if extra:
                raise ConfigurationError(f"{where}: unknown keys {sorted(extra)}")
            if "otp_secret" not in entry:
                raise ConfigurationError(f"{where}: otp_secret is required")
            try:
                # RFC 4226 section 4 (R6): 128 bits at least, for a file as for stepup's own.
                key = decode_secret(entry["otp_secret"], min_bits=MIN_SECRET_BITS)
                totp = TOTP.from_key(
                    key,
                    digits=entry.get("digits", 6),
                    period=entry.get("period", 30),
                    algorithm=entry.get("algorithm", "SHA1"),
                )
            except MalformedInputError as exc:
                raise ConfigurationError(f"{where}: {exc}") from None
            if (guessable := guessable_secret(key)) is not None:  # R6: a random secret
                raise ConfigurationError(
                    f"{where}: otp_secret {guessable}; use a random one (`stepup totp new`"
                    " makes one)"
                )
            if (holder := _holder_of(key, holders)) is not None:
                # Either user's codes would sign in as the other. Names only, never the
                # secret; compared as bytes, so case and padding do not hide a copy.
                raise ConfigurationError(_shared_secret(where, holder, keys[holder] == key))
            holders.update(dict.fromkeys(_hmac_keys(key), user_id))
            keys[user_id] = key
            users[user_id] = ConfigUser(user_id, totp)
        return cls(users, source)


def _hmac_keys(key: bytes) -> set[tuple[str, bytes]]:
    """The key HMAC (RFC 2104) really uses, under each algorithm: a key longer than the
    hash's block is hashed first, and a shorter one is padded with zero bytes, so ``K``
    and ``K + b"\\0"``, or a long key and its digest, give the same codes.

    Every algorithm, not only the entry's own: the algorithm is in the file, not secret,
    so whoever holds one key can compute the other user's codes whenever either
    algorithm maps both keys to the same HMAC key (equal bytes always do)."""
    return {
        (algorithm, (new(key).digest() if len(key) > block else key).rstrip(b"\0"))
        for algorithm, (new, block) in _HASHES.items()
    }


def _holder_of(key: bytes, holders: dict[tuple[str, bytes], str]) -> str | None:
    """The user listed earlier whose secret gives the same codes as ``key``, if any."""
    return next((holders[k] for k in _hmac_keys(key) if k in holders), None)


def _shared_secret(where: str, holder: str, same_bytes: bool) -> str:
    """The refusal of a secret another user's codes would match: names only."""
    what = (
        f"the same otp_secret as users.{holder!r}"
        if same_bytes
        else f"an otp_secret that gives the same codes as the one of users.{holder!r} (HMAC"
        " pads a key with zero bytes and hashes one longer than its block)"
    )
    return f"{where}: {what}; each user needs a secret of their own (`stepup totp new` makes one)"


def _warn_if_open(path: str | Path, source: str) -> None:
    """A warning when the file's mode lets its group or others at it (any access): the
    secrets are for the app's user only. Not a refusal: a container may mount the file
    read-only with whatever modes its volume has."""
    if os.name == "nt":  # no POSIX modes to read
        return
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:  # read a moment ago; gone now is the reader's problem, not ours
        return
    if mode & 0o077:
        logger.warning(
            "%s: the secrets file is open to its group or others (mode %s);"
            " only the app's user should read it (chmod 600)",
            source,
            oct(mode)[2:].zfill(4),
        )
