"""The records stores keep. Plain frozen dataclasses with a JSON-friendly dict form."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "Attempt",
    "AttemptOutcome",
    "Challenge",
    "Credential",
    "Grant",
    "Passkey",
    "Tenant",
    "ThrottleState",
    "TotpDevice",
    "TotpDeviceInfo",
]


# Reading stored records strictly: a record the stores wrote has exactly these types, so
# anything else is a corrupt (or hand-edited) record. A loose read could weaken what it
# protects (``bool("false")`` is a confirmed device; ``int(True)`` one-digit codes; a NaN
# count no clone is ever compared against), so it is refused with ``ValueError``, which a
# store's read reports as it reports other data it cannot decode: unavailable (fail
# closed), never a decision made on a guess.


def _stored_bool(data: Mapping[str, Any], key: str, default: bool = False) -> bool:
    """Only a JSON ``true`` is true, only ``false`` false (``default`` when absent)."""
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise ValueError(f"stored record: {key} is not a boolean")
    return value


def _stored_int(data: Mapping[str, Any], key: str, default: int) -> int:
    """A whole number as stored: never a bool, a float or a string of digits."""
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"stored record: {key} is not a whole number")
    return value


def _stored_time(data: Mapping[str, Any], key: str, default: float | None = 0.0) -> float | None:
    """Unix seconds as stored: a finite number (``None`` only where ``default`` is)."""
    value = data.get(key, default)
    if value is None and default is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"stored record: {key} is not a finite number of seconds")
    return float(value)


def _stored_seconds(data: Mapping[str, Any], key: str, default: float = 0.0) -> float:
    seconds = _stored_time(data, key, default)
    assert seconds is not None  # a number default: never None
    return seconds


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
class TotpDevice:
    """One authenticator app of a user. ``secret`` is sealed with the device id as its
    context; ``last_used_at`` is kept to a day (see docs/totp.md, "Several devices")."""

    device_id: str
    secret: str = field(repr=False)
    name: str = ""
    digits: int = 6
    period: int = 30
    algorithm: str = "SHA1"
    confirmed: bool = False
    created_at: float = 0.0
    last_used_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def info(self) -> TotpDeviceInfo:
        """What may be shown of the device: everything but the secret."""
        return TotpDeviceInfo(
            device_id=self.device_id,
            name=self.name,
            digits=self.digits,
            period=self.period,
            algorithm=self.algorithm,
            created_at=self.created_at,
            last_used_at=self.last_used_at,
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TotpDevice:
        """The device as stored; ``ValueError`` for a corrupt record (see above)."""
        return cls(
            device_id=str(data["device_id"]),
            secret=str(data["secret"]),
            name=str(data.get("name", "")),
            digits=_stored_int(data, "digits", 6),
            period=_stored_int(data, "period", 30),
            algorithm=str(data.get("algorithm", "SHA1")),
            confirmed=_stored_bool(data, "confirmed"),
            created_at=_stored_seconds(data, "created_at"),
            last_used_at=_stored_time(data, "last_used_at", None),
        )


@dataclass(frozen=True, slots=True)
class TotpDeviceInfo:
    """A confirmed authenticator app as :meth:`stepup.twofactor.TwoFactor.devices` lists
    it: no secret, sealed or not, so a listing can go to a page, a log or JSON as it is
    (the secret is shown once, at enrolment, and never handed out again)."""

    device_id: str
    name: str = ""
    digits: int = 6
    period: int = 30
    algorithm: str = "SHA1"
    created_at: float = 0.0
    last_used_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Credential:
    """A user's TOTP credential: their devices and recovery codes. Secrets are sealed
    (encrypted), never plaintext unless the app configured no keys; ``recovery_hashes``
    are digests, never codes.

    ``devices`` are the user's authenticator apps. A credential stored before there
    could be several (``devices`` empty) is one device made of the fields ``secret`` to
    ``created_at``, with ``credential_id`` as its id: :attr:`totp_devices` reads both
    shapes, and the next write stores the new one (the legacy fields then keep
    ``credential_id``, ``confirmed`` and ``created_at`` only, ``secret`` empty).
    ``credential_id`` stays the key of the user's one replay ledger and throttle,
    whichever device a code comes from.

    ``version`` is the store's: every write of the credential (``put_credential``,
    ``consume_recovery_hash``, ``replace_credential``) adds one, so a flow that read
    version ``n`` can write back only if nothing changed meanwhile (compare-and-set).
    A credential that was never stored is at 0; stores ignore the value they are given.
    """

    user_id: str
    credential_id: str
    secret: str = field(repr=False)
    digits: int = 6
    period: int = 30
    algorithm: str = "SHA1"
    confirmed: bool = False
    created_at: float = 0.0
    recovery_hashes: tuple[str, ...] = field(default=(), repr=False)
    version: int = 0
    devices: tuple[TotpDevice, ...] = ()

    @property
    def totp_devices(self) -> tuple[TotpDevice, ...]:
        """Every device, pending ones included; a legacy credential is its one device."""
        if self.devices or not self.secret:
            return self.devices
        legacy = TotpDevice(
            device_id=self.credential_id,
            secret=self.secret,
            digits=self.digits,
            period=self.period,
            algorithm=self.algorithm,
            confirmed=self.confirmed,
            created_at=self.created_at,
        )
        return (legacy,)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["recovery_hashes"] = list(self.recovery_hashes)
        if self.devices:
            data["devices"] = [device.to_dict() for device in self.devices]
        else:  # absent, not empty: a reader from before devices sees the old shape
            del data["devices"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Credential:
        """The credential as stored; ``ValueError`` for a corrupt record (see above):
        ``confirmed`` decides whether two-factor is on, so only a JSON ``true`` is."""
        devices = tuple(TotpDevice.from_dict(d) for d in data.get("devices") or ())
        return cls(
            **{
                **data,
                "digits": _stored_int(data, "digits", 6),
                "period": _stored_int(data, "period", 30),
                "confirmed": _stored_bool(data, "confirmed"),
                "created_at": _stored_seconds(data, "created_at"),
                "version": _stored_int(data, "version", 0),
                "recovery_hashes": tuple(data.get("recovery_hashes", ())),
                "devices": devices,
            }
        )


@dataclass(frozen=True, slots=True)
class Grant:
    """A successful re-authentication, bound to one user and one session.

    ``methods`` are amr-style names (``pwd``, ``otp``, ``oidc``, ``saml``). ``level`` is
    the level of assurance a provider's signed ``acr`` / ``AuthnContextClassRef`` proved
    (``None``: the level is whatever ``methods`` prove, see :mod:`stepup.assurance`).
    """

    user_id: str
    session_id: str
    methods: frozenset[str]
    authenticated_at: float
    level: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "user_id": self.user_id,
            "session_id": self.session_id,
            "methods": sorted(self.methods),
            "authenticated_at": self.authenticated_at,
        }
        if self.level is not None:  # absent, not null: old readers see the old shape
            data["level"] = self.level
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Grant:
        level = data.get("level")
        return cls(
            user_id=data["user_id"],
            session_id=data["session_id"],
            methods=frozenset(data["methods"]),
            authenticated_at=float(data["authenticated_at"]),
            level=level if isinstance(level, str) and level else None,
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

    def patched(self, attributes: Mapping[str, Any], flags: Mapping[str, Any]) -> Tenant:
        """This tenant with each of ``attributes`` replaced and each of ``flags`` set
        inside ``feature_flags``; everything else kept. The merge every store's
        ``patch_tenant`` applies under its lock (``self`` is left unchanged)."""
        if "feature_flags" in attributes:
            raise ValueError("feature_flags are patched through `flags`, one flag at a time")
        merged = {**self.attributes, **attributes}
        merged["feature_flags"] = {**self.feature_flags, **flags}
        return Tenant(self.tenant_id, merged)

    def to_dict(self) -> dict[str, Any]:
        return {"tenant_id": self.tenant_id, "attributes": self.attributes}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tenant:
        return cls(tenant_id=data["tenant_id"], attributes=dict(data.get("attributes", {})))


@dataclass(frozen=True, slots=True)
class Challenge:
    """A pending federated re-authentication (OIDC state or SAML request id) or a
    passkey ceremony. The id is the value the browser brings back: not in the repr."""

    challenge_id: str = field(repr=False)
    user_id: str
    session_id: str
    issued_at: float
    expires_at: float
    data: dict[str, Any] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Challenge:
        """The challenge as stored; ``ValueError`` for a corrupt record (see above): a
        NaN ``expires_at`` is never past, so the challenge would never expire."""
        return cls(
            **{
                **data,
                "issued_at": _stored_seconds(data, "issued_at"),
                "expires_at": _stored_seconds(data, "expires_at"),
            }
        )


@dataclass(frozen=True, slots=True)
class Passkey:
    """One registered WebAuthn credential of a user (an "authenticator").

    ``credential_data`` is the COSE public key with its id and AAGUID (fido2's
    ``AttestedCredentialData``, base64url): public, but kept out of reprs for brevity.
    """

    user_id: str
    credential_id: str  # base64url of the raw credential id
    credential_data: str = field(repr=False)
    name: str
    sign_count: int = 0
    backup_eligible: bool = False
    backup_state: bool = False
    user_verified: bool = False
    created_at: float = 0.0
    last_used_at: float | None = None
    transports: tuple[str, ...] = ()

    @property
    def methods(self) -> frozenset[str]:
        """The amr-style methods an assertion with this passkey proves (RFC 8176)."""
        return frozenset({"phr", "swk" if self.backup_eligible else "hwk"})

    def to_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "credential_id": self.credential_id,
            "credential_data": self.credential_data,
            "name": self.name,
            "sign_count": self.sign_count,
            "backup_eligible": self.backup_eligible,
            "backup_state": self.backup_state,
            "user_verified": self.user_verified,
            "created_at": self.created_at,
            "last_used_at": self.last_used_at,
            "transports": list(self.transports),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Passkey:
        """The passkey as stored; ``ValueError`` for a corrupt record (see above): a
        ``"false"`` would claim user verification, a NaN count hides a cloned key."""
        return cls(
            **{
                **data,
                "sign_count": _stored_int(data, "sign_count", 0),
                "backup_eligible": _stored_bool(data, "backup_eligible"),
                "backup_state": _stored_bool(data, "backup_state"),
                "user_verified": _stored_bool(data, "user_verified"),
                "created_at": _stored_seconds(data, "created_at"),
                "last_used_at": _stored_time(data, "last_used_at", None),
                "transports": tuple(data.get("transports", ())),
            }
        )
