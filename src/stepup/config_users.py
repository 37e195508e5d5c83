"""Users whose TOTP secrets come from a TOML file instead of the UI.

The idea of the ``engine_user_otp_secret`` directive: an operator lists secrets in a
file; enrolment and removal through the API are then refused::

    [users."alice@example.com"]
    otp_secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    # digits = 6, period = 30, algorithm = "SHA1" are optional
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._toml import read_toml
from .errors import ConfigurationError, MalformedInputError
from .totp import TOTP

__all__ = ["ConfigUser", "ConfigUsers"]

_KEYS = frozenset({"otp_secret", "digits", "period", "algorithm"})


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
        for user_id, entry in table.items():
            where = f"{source}: users.{user_id!r}"
            if not user_id:
                raise ConfigurationError(f"{where}: a user id must not be empty")
            if not isinstance(entry, dict):
                raise ConfigurationError(f"{where} must be a table")
            extra = set(entry) - _KEYS
            if extra:
                raise ConfigurationError(f"{where}: unknown keys {sorted(extra)}")
            if "otp_secret" not in entry:
                raise ConfigurationError(f"{where}: otp_secret is required")
            try:
                totp = TOTP(
                    entry["otp_secret"],
                    digits=entry.get("digits", 6),
                    period=entry.get("period", 30),
                    algorithm=entry.get("algorithm", "SHA1"),
                )
            except MalformedInputError as exc:
                raise ConfigurationError(f"{where}: {exc}") from None
            users[user_id] = ConfigUser(user_id, totp)
        return cls(users, source)
