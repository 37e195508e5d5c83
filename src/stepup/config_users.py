"""Users whose TOTP secrets come from a TOML file instead of the UI.

The idea of the ``engine_user_otp_secret`` directive: an operator lists secrets in a
file; enrolment and removal through the API are then refused::

    [users."alice@example.com"]
    otp_secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    # digits = 6, period = 30, algorithm = "SHA1" are optional

A secret holds at least 128 bits (RFC 4226 section 4; ``stepup totp new`` makes 160)
and belongs to one user only, a user id is well formed
(:func:`stepup.ids.is_well_formed_id`), and a file its group or others may read is
loaded with a warning on the ``stepup`` logger.
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._toml import read_toml
from .errors import ConfigurationError, MalformedInputError
from .ids import MAX_ID_LENGTH, is_well_formed_id
from .totp import _HASHES, MIN_SECRET_BITS, TOTP, decode_secret

__all__ = ["ConfigUser", "ConfigUsers"]

_KEYS = frozenset({"otp_secret", "digits", "period", "algorithm"})
logger = logging.getLogger("stepup")


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
