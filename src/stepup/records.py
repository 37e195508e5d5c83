"""The records stores keep. Plain frozen dataclasses with a JSON-friendly dict form."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "Attempt",
    "AttemptOutcome",
    "Challenge",
    "Credential",
    "Grant",
    "Tenant",
    "ThrottleState",
]


class AttemptOutcome(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    REPLAYED = "replayed"
    THROTTLED = "throttled"


@dataclass(frozen=True, slots=True)
class Attempt:
    """What a store decided about one attempt, atomically.

    ``retry_at`` is set when the credential is (now or from now on) blocked.
    """

    outcome: AttemptOutcome
    failures: int = 0
    retry_at: float | None = None


@dataclass(frozen=True, slots=True)
class ThrottleState:
    failures: int = 0
    blocked_until: float = 0.0
    last_step: int | None = None


@dataclass(frozen=True, slots=True)
class Credential:
    """A user's TOTP credential. ``secret`` is the sealed (encrypted) form, never plaintext
    unless the app configured no keys; ``recovery_hashes`` are digests, never codes."""

    user_id: str
    credential_id: str
    secret: str = field(repr=False)
    digits: int = 6
    period: int = 30
    algorithm: str = "SHA1"
    confirmed: bool = False
    created_at: float = 0.0
    recovery_hashes: tuple[str, ...] = field(default=(), repr=False)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["recovery_hashes"] = list(self.recovery_hashes)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Credential:
        return cls(**{**data, "recovery_hashes": tuple(data.get("recovery_hashes", ()))})


@dataclass(frozen=True, slots=True)
class Grant:
    """A successful re-authentication, bound to one user and one session.

    ``methods`` are amr-style names (``pwd``, ``otp``, ``oidc``, ``saml``).
    """

    user_id: str
    session_id: str
    methods: frozenset[str]
    authenticated_at: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "session_id": self.session_id,
            "methods": sorted(self.methods),
            "authenticated_at": self.authenticated_at,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Grant:
        return cls(
            user_id=data["user_id"],
            session_id=data["session_id"],
            methods=frozenset(data["methods"]),
            authenticated_at=float(data["authenticated_at"]),
        )


@dataclass(frozen=True, slots=True)
class Tenant:
    """A tenant and its JSON:API attributes (``feature_flags`` among them)."""

    tenant_id: str
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def feature_flags(self) -> dict[str, Any]:
        flags = self.attributes.get("feature_flags")
        return flags if isinstance(flags, dict) else {}

    def flag(self, name: str) -> bool:
        """A boolean flag; anything but a literal ``True`` is off."""
        flags = self.attributes.get("feature_flags")  # not via the property: a hot path
        return isinstance(flags, dict) and flags.get(name) is True

    def to_dict(self) -> dict[str, Any]:
        return {"tenant_id": self.tenant_id, "attributes": self.attributes}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tenant:
        return cls(tenant_id=data["tenant_id"], attributes=dict(data.get("attributes", {})))


@dataclass(frozen=True, slots=True)
class Challenge:
    """A pending federated re-authentication (OIDC state or SAML request id)."""

    challenge_id: str
    user_id: str
    session_id: str
    issued_at: float
    expires_at: float
    data: dict[str, Any] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Challenge:
        return cls(**data)
