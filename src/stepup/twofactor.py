"""The two-factor lifecycle: enrol, confirm, verify, recovery codes, devices, removal.

Every operation is one decision flow (see :mod:`stepup._flow`), driven by
:class:`TwoFactor` for sync stores and :class:`AsyncTwoFactor` for async ones.
"""

from __future__ import annotations

import logging
import secrets
import unicodedata
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Generic, TypeVar, cast

from ._flow import Flow, run, run_async
from ._lost_replies import credential_deleted_after_outage, passkey_removed_after_outage
from .adapters.storage.base import AsyncStore, Store
from .clock import Clock, system_clock
from .config_users import ConfigUsers
from .errors import (
    AlreadyEnrolledError,
    ConcurrentUpdateError,
    ConfigurationError,
    DeviceLimitError,
    InvalidAccountNameError,
    InvalidDeviceNameError,
    MalformedInputError,
    ManagedByConfigFileError,
    NotEnrolledError,
    PermissionDeniedError,
    StoreUnavailableError,
    UnknownDeviceError,
)
from .events import (
    EventBus,
    PasskeyRemoved,
    RecoveryCodesRegenerated,
    RecoveryCodeUsed,
    Throttled,
    TwoFactorDeviceAdded,
    TwoFactorDeviceRemoved,
    TwoFactorDeviceRenamed,
    TwoFactorEnabled,
    TwoFactorRejected,
    TwoFactorRemoved,
)
from .ids import checked_id, is_well_formed_id
from .records import (
    Attempt,
    AttemptOutcome,
    Credential,
    Passkey,
    TotpDevice,
    TotpDeviceInfo,
)
from .recovery import is_legacy_recovery_digest, issue_recovery_codes, recovery_digest
from .sealing import SealError, SecretBox
from .throttle import ThrottlePolicy, ledger_policy
from .totp import (
    ALGORITHMS,
    MAX_KEY_URI_LENGTH,
    TOTP,
    Algorithm,
    check_key_uri_label,
    generate_secret,
    qr_svg,
    qr_text,
)
from .verifier import VerifyReason, VerifyResult, verify_devices_flow, verify_flow

#: Operators read here why a TOTP secret could not be opened (never the secret).
logger = logging.getLogger("stepup.twofactor")

__all__ = [
    "DEFAULT_DEVICE_NAME",
    "LAST_USED_GRANULARITY",
    "MAX_DEVICES",
    "MAX_DEVICE_NAME_LENGTH",
    "AsyncTwoFactor",
    "Channel",
    "Confirmation",
    "DeviceList",
    "Enrolment",
    "RemovedFactors",
    "TwoFactor",
    "clean_device_name",
]


class Channel(StrEnum):
    """How a request reached the app. Only the interactive UI ever asks for 2FA."""

    WEB = "web"
    API = "api"
    API_KEY = "api_key"
    MESSAGE_INJECTION = "message_injection"


@dataclass(frozen=True, slots=True)
class Enrolment:
    """Shown to the user once: the secret, its otpauth URI and QR codes, which device it
    is (its id and name), and the device's own settings, which a user typing the key in
    must choose (an added device steps with the first one, whatever the app's settings
    say now)."""

    user_id: str
    secret: str = field(repr=False)
    uri: str = field(repr=False)
    device_id: str = ""
    name: str = ""
    digits: int = 6
    period: int = 30
    algorithm: str = "SHA1"

    def qr_svg(self) -> str:
        return qr_svg(self.uri)

    def qr_text(self) -> str:
        return qr_text(self.uri)


@dataclass(frozen=True, slots=True)
class Confirmation:
    """The confirming verification and, when it succeeded, the recovery codes (shown once)."""

    result: VerifyResult
    recovery_codes: tuple[str, ...] = field(default=(), repr=False)

    @property
    def ok(self) -> bool:
        return self.result.ok


@dataclass(frozen=True, slots=True)
class RemovedFactors:
    """What :meth:`TwoFactor.remove` removed: the authenticator apps and recovery codes
    (``totp``), and how many passkeys (an admin's removal only)."""

    totp: bool
    passkeys: int = 0


class DeviceList(tuple[TotpDeviceInfo, ...]):
    """What :meth:`TwoFactor.devices` answers: the user's confirmed authenticator apps,
    oldest first (a tuple, as before), and how many unused recovery codes the same read
    of their credential found (``recovery_codes_left``: 0 when two-factor is off), so the
    two-factor page can say how many are left without asking the store again."""

    recovery_codes_left: int

    def __new__(
        cls, devices: Iterable[TotpDeviceInfo] = (), recovery_codes_left: int = 0
    ) -> DeviceList:
        listed = super().__new__(cls, devices)
        listed.recovery_codes_left = recovery_codes_left
        return listed


#: Recovery codes carry 120 bits (50 for codes issued before), so a gentler schedule
#: than TOTP's still holds.
RECOVERY_THROTTLE = ThrottlePolicy(free_failures=5, base_delay=60.0, max_delay=3600.0)
#: How often :meth:`TwoFactor.reseal` reads and tries again when the credential changed
#: between its read and its write, before it gives up with ConcurrentUpdateError.
RESEAL_TRIES = 5
#: How many confirmed TOTP devices one user may have.
MAX_DEVICES = 10
MAX_DEVICE_NAME_LENGTH = 64
#: The name of a device nobody named.
DEFAULT_DEVICE_NAME = "Authenticator app"
#: A device's ``last_used_at`` is written when a code from it is accepted and the stored
#: time is at least this much older (seconds): verifying stays one read and one
#: ``totp_attempt``, plus at most one write per device per day.
LAST_USED_GRANULARITY = 86400.0
#: Bidirectional formatting characters: they can make a name read as another one.
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def clean_device_name(name: object) -> str:
    """``name`` without surrounding spaces, or :class:`InvalidDeviceNameError` when it is
    not text, empty, longer than :data:`MAX_DEVICE_NAME_LENGTH`, or holds a control
    character, a bidirectional formatting character or a lone surrogate."""
    if not isinstance(name, str):
        raise InvalidDeviceNameError("a device name must be text")
    for char in name:
        if char in _BIDI_CONTROLS or unicodedata.category(char) in ("Cc", "Cs"):
            raise InvalidDeviceNameError("a device name cannot hold control characters")
    cleaned = name.strip()
    if not cleaned:
        raise InvalidDeviceNameError("a device name cannot be empty")
    if len(cleaned) > MAX_DEVICE_NAME_LENGTH:
        raise InvalidDeviceNameError(
            f"a device name is at most {MAX_DEVICE_NAME_LENGTH} characters"
        )
    return cleaned


S = TypeVar("S")


def _landed(user_id: str, updated: Credential, expected_version: int) -> Flow[bool]:
    """``True`` when the credential stored is ``updated``, written by the
    ``replace_credential`` whose answer was lost (a reply that never came): the write
    happened, and what follows it (the event, the recovery codes shown, earlier
    re-authentications revoked) must too. Otherwise the outage stands (raised)."""
    try:
        stored: Credential | None = yield ("get_credential", (user_id,))
    except StoreUnavailableError:
        stored = None
    if (
        stored is not None
        and stored.version == expected_version + 1
        and replace(stored, version=updated.version) == updated
    ):
        return True
    raise StoreUnavailableError("replace_credential: no answer, and the write is not stored")


@dataclass
class _Removed:
    """What a removal of two-factor has removed so far."""

    totp: bool = False
    passkeys: list[str] = field(default_factory=list)


def _delete_credential(user_id: str, credential_id: str) -> Flow[bool]:
    """``delete_credential``, its lost answer read back (the credential gone is deleted)."""
    try:
        deleted: bool = yield ("delete_credential", (user_id,))
    except StoreUnavailableError:
        deleted = yield from credential_deleted_after_outage(user_id, credential_id)
    return deleted


def _remove_passkey(user_id: str, credential_id: str) -> Flow[bool]:
    """``remove_passkey`` of a passkey just listed, its lost answer read back."""
    try:
        removed: bool = yield ("remove_passkey", (user_id, credential_id))
    except StoreUnavailableError:
        removed = yield from passkey_removed_after_outage(user_id, credential_id)
    return removed


class _TwoFactorFlows(Generic[S]):
    def __init__(
        self,
        store: S,
        *,
        issuer: str = "stepup",
        box: SecretBox | None = None,
        clock: Clock = system_clock,
        events: EventBus | None = None,
        window: int = 1,
        throttle: ThrottlePolicy | None = None,
        recovery_throttle: ThrottlePolicy = RECOVERY_THROTTLE,
        config_users: ConfigUsers | None = None,
        digits: int = 6,
        period: int = 30,
        algorithm: Algorithm = "SHA1",
        max_devices: int = MAX_DEVICES,
    ) -> None:
        self.store = store
        if isinstance(max_devices, bool) or not isinstance(max_devices, int) or max_devices < 1:
            raise ConfigurationError("max_devices must be a whole number of at least 1")
        self.max_devices = max_devices
        if isinstance(window, bool) or not isinstance(window, int) or not 0 <= window <= 10:
            raise ConfigurationError("window must be a whole number of steps from 0 to 10")
        _check_totp_settings(issuer, digits, period, algorithm)
        self.issuer = issuer
        self.box = box if box is not None else SecretBox()
        self.clock = clock
        self.events = events if events is not None else EventBus()
        self.window = window
        self.throttle = throttle if throttle is not None else ThrottlePolicy()
        self.recovery_throttle = recovery_throttle
        self.config_users = config_users
        self.digits, self.period, self.algorithm = digits, period, algorithm

    def __repr__(self) -> str:
        mode = "config file" if self.config_users is not None else "store"
        return f"{type(self).__name__}(issuer={self.issuer!r}, secrets from {mode})"

    @staticmethod
    def required_for(channel: Channel | str) -> bool:
        """2FA is asked on the interactive UI only, never on API, API-key or injection."""
        try:
            return Channel(channel) is Channel.WEB
        except ValueError:
            raise MalformedInputError(f"unknown channel {channel!r}") from None

    def _readable(self, user_id: str, devices: list[TotpDevice]) -> list[tuple[str, TOTP]]:
        """Each device's TOTP, leaving out (and logging) those whose sealed secret this
        box cannot open: a key taken out of the configuration, or a new key under the
        old id. Their codes can only be refused; the others still work."""
        readable = []
        for device in devices:
            try:
                readable.append((device.device_id, self._totp(device)))
            except SealError as exc:
                logger.error(
                    "the TOTP secret of a device of user %r cannot be opened: %s. Configure"
                    " that key again (Flask: STEPUP_ENCRYPTION_KEYS; Django: the old key in"
                    " SECRET_KEY_FALLBACKS, or STEPUP['ENCRYPTION_KEYS']) and reseal"
                    " (stepup operator reseal; Django: manage.py stepup_operator reseal),"
                    " or remove the user's two-factor authentication (stepup operator"
                    " remove-2fa; Django: manage.py stepup_operator remove-2fa) so they"
                    " enrol again; recovery codes still work",
                    user_id,
                    exc,
                )
        return readable

    def _totp(self, device: TotpDevice) -> TOTP:
        secret = self.box.open(device.secret, context=device.device_id)
        return TOTP(
            secret,
            digits=device.digits,
            period=device.period,
            algorithm=device.algorithm,  # type: ignore[arg-type]
        )

    def _new_device(
        self, secret: str, name: str, now: float, period: int | None = None
    ) -> TotpDevice:
        device_id = f"totp:{secrets.token_urlsafe(12)}"
        return TotpDevice(
            device_id=device_id,
            secret=self.box.seal(secret, context=device_id),
            name=name,
            digits=self.digits,
            period=self.period if period is None else period,
            algorithm=self.algorithm,
            created_at=now,
        )

    def _enrolment(self, user_id: str, account: str, device: TotpDevice) -> Enrolment:
        totp = self._totp(device)
        uri = totp.provisioning_uri(account, self.issuer)
        return Enrolment(
            user_id,
            totp.secret,
            uri,
            device.device_id,
            device.name,
            digits=device.digits,
            period=device.period,
            algorithm=device.algorithm,
        )

    def _refuse_in_config_mode(self) -> None:
        if self.config_users is not None:
            raise ManagedByConfigFileError(
                f"two-factor secrets are defined in {self.config_users.source}"
            )

    def _reject(
        self,
        now: float,
        key: str,
        reason: VerifyReason,
        retry_at: float | None = None,
        *,
        user_id: str,
    ) -> None:
        if not self.events.listening:
            return
        self.events.emit(
            TwoFactorRejected(at=now, credential_id=key, reason=reason, user_id=user_id)
        )
        if retry_at is not None:
            self.events.emit(Throttled(at=now, key=key, retry_at=retry_at, user_id=user_id))

    def _verify_with(
        self, key: str, totp: TOTP, code: object, now: float, user_id: str, device_id: str = ""
    ) -> Flow[VerifyResult]:
        # The events name the user: an audit log cannot map a credential id back to one.
        return verify_flow(
            key,
            totp,
            code,
            now=now,
            window=self.window,
            throttle=self.throttle,
            events=self.events,
            user_id=user_id,
            device_id=device_id,
        )

    @staticmethod
    def _update(
        user_id: str, change: Callable[[Credential | None], Credential | None]
    ) -> Flow[Credential | None]:
        """Write ``change(credential)`` as a compare-and-set on the version read, reading
        again when another write came first (a reseal, a spent recovery code), so no
        write ever puts back what another one replaced. ``change`` returns ``None`` when
        there is nothing to write, and raises to refuse."""
        for _ in range(RESEAL_TRIES):
            credential: Credential | None = yield ("get_credential", (user_id,))
            updated = change(credential)
            if updated is None or credential is None:
                return None
            try:
                written = yield ("replace_credential", (updated, credential.version))
            except StoreUnavailableError:
                written = yield from _landed(user_id, updated, credential.version)
            if written:
                return updated
        raise ConcurrentUpdateError(
            f"the credential changed during each of {RESEAL_TRIES} attempts; nothing was written"
        )

    @staticmethod
    def _factors_changed(user_id: str) -> Flow[None]:
        """The user's factors changed: no re-authentication made before counts any more,
        in any session (OWASP ASVS 5.0 section 7.4.3). A store failure here propagates
        (the change is made, so the caller must not report it as a clean success): the
        caller emits its event before this, so the audit has what was stored."""
        yield ("revoke_grants", (user_id, None))

    # flows ------------------------------------------------------------------

    def _enrolled(self, user_id: str) -> Flow[bool]:
        checked_id(user_id, "user_id")
        if self.config_users is not None:
            return user_id in self.config_users
        credential: Credential | None = yield ("get_credential", (user_id,))
        return credential is not None and credential.confirmed

    def _begin(self, user_id: str, account: str, name: str) -> Flow[Enrolment]:
        checked_id(user_id, "user_id")
        self._refuse_in_config_mode()
        name = clean_device_name(name)
        now = self.clock()
        device = self._new_device(generate_secret(), name, now)
        # The Key URI (its QR code) is made, and so checked, before anything is written.
        enrolment = self._enrolment(user_id, account, device)
        # The first device's id is the credential's: the key of the user's replay ledger.
        credential = Credential(
            user_id=user_id,
            credential_id=device.device_id,
            secret="",
            confirmed=False,
            created_at=now,
            devices=(device,),
        )
        for _ in range(RESEAL_TRIES):
            existing: Credential | None = yield ("get_credential", (user_id,))
            if existing is not None and existing.confirmed:
                raise AlreadyEnrolledError("two-factor authentication is already enabled")
            if existing is None:
                # Only if there is still none: another first enrolment (a second tab, a
                # double submit) may have stored, even confirmed, one meanwhile; then
                # read again, and refuse a confirmed one or replace a pending one.
                if (yield ("add_credential", (credential,))):
                    return enrolment
                continue
            # A pending enrolment is replaced only at the version read: a confirmation
            # that landed meanwhile is read again above and refused, never overwritten.
            if (yield ("replace_credential", (credential, existing.version))):
                return enrolment
        raise ConcurrentUpdateError(
            f"the credential changed during each of {RESEAL_TRIES} attempts; nothing was written"
        )

    def _pending(
        self, user_id: str, account: str, max_age: float, device_id: str | None
    ) -> Flow[Enrolment | None]:
        """The enrolment started less than ``max_age`` seconds ago and not confirmed yet
        (its secret, sealed in the store, opened again), so a wrong code or a reload
        shows the same QR code instead of one the phone does not have; ``None`` when
        there is none, it is older (then a new one is begun), or it is not the device
        ``device_id`` (another session's: its secret is not this session's to see)."""
        checked_id(user_id, "user_id")
        _checked_device_id(device_id)
        if self.config_users is not None:
            return None
        credential: Credential | None = yield ("get_credential", (user_id,))
        if credential is None or credential.confirmed or not credential.totp_devices:
            return None
        if not 0 <= self.clock() - credential.created_at < max_age:
            return None
        device = credential.totp_devices[0]
        if not _is_device(device, device_id):
            return None
        return self._enrolment(user_id, account, device)

    def _confirm(self, user_id: str, code: object, max_age: float) -> Flow[Confirmation]:
        checked_id(user_id, "user_id")
        self._refuse_in_config_mode()
        credential: Credential | None = yield ("get_credential", (user_id,))
        if credential is None:
            raise NotEnrolledError("no enrolment was started")
        if credential.confirmed:
            raise AlreadyEnrolledError("two-factor authentication is already enabled")
        if not credential.totp_devices:
            raise NotEnrolledError("no enrolment was started")
        now = self.clock()
        # As old as pending_enrolment still shows, no older (as confirm_device): nothing
        # is spent on an enrolment the pages already call expired.
        if not 0 <= now - credential.created_at < max_age:
            raise NotEnrolledError("no enrolment was started (or it was begun too long ago)")
        # Verifying burns the step, so the confirming code cannot also sign in.
        device = credential.totp_devices[0]
        readable = self._readable(user_id, [device])
        if not readable:
            return Confirmation(VerifyResult(VerifyReason.UNAVAILABLE))
        result = yield from self._verify_with(
            credential.credential_id, readable[0][1], code, now, user_id, device.device_id
        )
        if not result.ok:
            return Confirmation(result)
        codes, hashes = issue_recovery_codes()
        enrolment = credential.credential_id
        yield from self._update(user_id, lambda c: _confirmed(c, enrolment, hashes))
        self.events.emit(TwoFactorEnabled(at=now, user_id=user_id))
        yield from self._factors_changed(user_id)
        return Confirmation(result, codes)

    def _verify(self, user_id: str, code: object) -> Flow[VerifyResult]:
        checked_id(user_id, "user_id")
        now = self.clock()
        if self.config_users is not None:
            user = self.config_users.get(user_id)
            if user is None:
                raise NotEnrolledError("this user has no OTP secret in the configuration file")
            return (
                yield from self._verify_with(f"config:{user_id}", user.totp, code, now, user_id)
            )
        try:
            credential: Credential | None = yield ("get_credential", (user_id,))
        except StoreUnavailableError:
            return VerifyResult(VerifyReason.UNAVAILABLE)
        if credential is None or not credential.confirmed:
            raise NotEnrolledError("two-factor authentication is not enabled")
        confirmed = [d for d in credential.totp_devices if d.confirmed]
        if not confirmed:  # a record that says "on" without a confirmed device: fail closed
            raise NotEnrolledError("two-factor authentication is not enabled")
        readable = self._readable(user_id, confirmed)
        if not readable:  # no secret opens: nothing can be checked, nothing is counted
            self._reject(now, credential.credential_id, VerifyReason.UNAVAILABLE, user_id=user_id)
            return VerifyResult(VerifyReason.UNAVAILABLE)
        result, device_id = yield from verify_devices_flow(
            credential.credential_id,
            readable,
            code,
            now=now,
            window=self.window,
            throttle=self.throttle,
            events=self.events,
            user_id=user_id,
        )
        if result.ok:  # the hot path: a comparison, and a write at most once a day
            used = confirmed[0]
            if used.device_id != device_id:
                used = next(d for d in confirmed if d.device_id == device_id)
            last = used.last_used_at
            if last is None or not 0 <= now - last < LAST_USED_GRANULARITY:
                yield from _touch(credential, used, now)
        return result

    def _use_recovery_code(self, user_id: str, code: object) -> Flow[VerifyResult]:
        checked_id(user_id, "user_id")
        self._refuse_in_config_mode()
        now = self.clock()
        key = f"recovery:{user_id}"
        digest = recovery_digest(code)  # one SHA-256, whatever is stored
        if digest is None:
            self._reject(now, key, VerifyReason.MALFORMED, user_id=user_id)
            return VerifyResult(VerifyReason.MALFORMED)
        try:
            # Charge first, clear on success: concurrent guesses are all counted.
            charge = yield ("throttle_charge", (key, now, self.recovery_throttle))
            if charge.outcome is AttemptOutcome.THROTTLED:
                self._reject(now, key, VerifyReason.THROTTLED, charge.retry_at, user_id=user_id)
                return VerifyResult(VerifyReason.THROTTLED, retry_at=charge.retry_at)
            credential: Credential | None = yield ("get_credential", (user_id,))
            if credential is None or not credential.confirmed:
                raise NotEnrolledError("two-factor authentication is not enabled")
            used = yield ("consume_recovery_hash", (user_id, digest))
        except StoreUnavailableError:
            self._reject(now, key, VerifyReason.UNAVAILABLE, user_id=user_id)
            return VerifyResult(VerifyReason.UNAVAILABLE)
        if not used:
            self._reject(now, key, VerifyReason.INVALID, charge.retry_at, user_id=user_id)
            return VerifyResult(VerifyReason.INVALID, retry_at=charge.retry_at)
        # The code is spent: the decision is made. What follows tidies up after it, and
        # a store failing there is logged, never turned into a refusal (a retry would
        # find the code gone and be told it is wrong).
        yield from self._after_recovery(user_id, key, charge, credential, now)
        remaining = yield from self._recovery_codes_left(user_id, credential)
        self.events.emit(RecoveryCodeUsed(at=now, user_id=user_id, remaining=remaining))
        return VerifyResult(VerifyReason.OK)

    def _after_recovery(
        self, user_id: str, key: str, charge: Attempt, credential: Credential, now: float
    ) -> Flow[None]:
        """After a recovery code was spent, best effort: refund this attempt's charge
        only, then burn every TOTP code valid right now (the whole window), so none of
        them can follow the recovery code.

        The TOTP failures stay, as after any success (docs/totp.md, "Guessing and the
        throttle"): clearing them whenever the owner used a recovery code would hand
        whoever is guessing the free guesses and short waits again, and an owner whose
        codes that guessing blocks is the one told to use a recovery code. A credential
        blocked right now is not burned: the block keeps every code out, and a code of
        the window that outlives it is an ordinary code under the same throttle."""
        yield from _best_effort(user_id, "throttle_refund", (key, charge, now))
        devices = credential.totp_devices
        period = devices[0].period if devices else credential.period
        # Kept as long as a verification's step: no burned code comes back either.
        ledger = ledger_policy(self.throttle, self.window, period)
        burn = (credential.credential_id, int(now // period) + self.window, now, ledger)
        burned: Attempt | None = yield from _best_effort(user_id, "totp_attempt", burn)
        if burned is not None and burned.outcome is AttemptOutcome.REPLAYED:
            # The window was claimed already (a code of its last step signed in): the
            # burn counted a failure to the owner, which is theirs alone to take back.
            refund = (credential.credential_id, _as_charge(burned), now)
            yield from _best_effort(user_id, "throttle_refund", refund)

    @staticmethod
    def _recovery_codes_left(user_id: str, before: Credential) -> Flow[int]:
        """How many codes the store holds now: read again, as another sign-in may have
        spent one meanwhile; if that read fails, the count read before, less this one."""
        try:
            credential: Credential | None = yield ("get_credential", (user_id,))
        except StoreUnavailableError as exc:
            _log_best_effort(user_id, "get_credential", exc)
            return max(len(before.recovery_hashes) - 1, 0)
        return 0 if credential is None else len(credential.recovery_hashes)

    def _regenerate(self, user_id: str) -> Flow[tuple[str, ...]]:
        checked_id(user_id, "user_id")
        self._refuse_in_config_mode()
        credential: Credential | None = yield ("get_credential", (user_id,))
        if credential is None or not credential.confirmed:
            raise NotEnrolledError("two-factor authentication is not enabled")
        codes, hashes = issue_recovery_codes()
        yield from self._update(user_id, lambda c: _with_codes(c, hashes))
        self.events.emit(RecoveryCodesRegenerated(at=self.clock(), user_id=user_id))
        yield from self._factors_changed(user_id)
        return codes

    def _legacy_recovery_codes(self, user_id: str) -> Flow[int]:
        checked_id(user_id, "user_id")
        self._refuse_in_config_mode()
        credential: Credential | None = yield ("get_credential", (user_id,))
        if credential is None or not credential.confirmed:
            return 0
        return sum(1 for d in credential.recovery_hashes if is_legacy_recovery_digest(d))

    def _reseal(self, user_id: str) -> Flow[bool]:
        checked_id(user_id, "user_id")
        self._refuse_in_config_mode()
        # A compare-and-set on the credential's version: writing back what was read
        # after a sign-in spent a recovery code meanwhile would bring that code back.
        return (yield from self._update(user_id, self._resealed)) is not None

    def _resealed(self, credential: Credential | None) -> Credential | None:
        if credential is None:
            return None
        if not credential.devices:  # the legacy shape: one secret, kept in that shape
            if not self.box.needs_reseal(credential.secret):
                return None
            secret = self.box.reseal(credential.secret, context=credential.credential_id)
            return replace(credential, secret=secret)
        if not any(self.box.needs_reseal(d.secret) for d in credential.devices):
            return None
        devices = tuple(
            replace(d, secret=self.box.reseal(d.secret, context=d.device_id))
            if self.box.needs_reseal(d.secret)
            else d
            for d in credential.devices
        )
        return replace(credential, devices=devices)

    def _remove(
        self,
        user_id: str,
        actor_id: str,
        actor_has_full_access: bool,
        with_passkeys: bool | None = None,
    ) -> Flow[RemovedFactors]:
        self._refuse_in_config_mode()
        if actor_id != user_id and actor_has_full_access is not True:  # only True is yes
            raise PermissionDeniedError("only the user or an admin with full access may remove 2FA")
        if not is_well_formed_id(user_id):
            # An admin's URL path: an id no store can hold (NUL, a lone surrogate) is no
            # one's, so the unknown user's answer, not a store failure's "unavailable".
            raise NotEnrolledError("two-factor authentication is not enabled")
        # Only a confirmed credential is two-factor: an enrolment begun and never
        # confirmed stays (the next begin_enrolment replaces it), nothing is revoked and
        # no TwoFactorRemoved is emitted. (A removal racing this read may still find the
        # credential gone: delete_credential's answer below.)
        credential: Credential | None = yield ("get_credential", (user_id,))
        enrolled = credential is not None and credential.confirmed
        # An admin's removal (or an operator's) is the reset for a user who lost their
        # factors: a passkey asks for itself at sign-in as a second factor, so it goes
        # too. The user's own removal turns off the authenticator apps and recovery
        # codes; their passkeys are theirs to remove on the passkeys page.
        if with_passkeys is None:
            with_passkeys = actor_id != user_id
        elif with_passkeys and actor_has_full_access is not True:
            # The reset is an admin's: a user removes their passkeys on the passkeys page.
            raise PermissionDeniedError("only an admin with full access may reset all factors")
        passkeys: tuple[Passkey, ...] = ()
        if with_passkeys:
            passkeys = yield ("list_passkeys", (user_id,))
        if not enrolled and not passkeys:
            raise NotEnrolledError("two-factor authentication is not enabled")
        removed = _Removed()
        outage: StoreUnavailableError | None = None
        try:
            if enrolled:
                assert credential is not None  # enrolled says so
                removed.totp = yield from _delete_credential(user_id, credential.credential_id)
            for passkey in passkeys:
                if (yield from _remove_passkey(user_id, passkey.credential_id)):
                    removed.passkeys.append(passkey.credential_id)
        except StoreUnavailableError as exc:
            # What was removed before the failure stays removed: it is announced and
            # revoked below all the same, and the outage is the answer.
            outage = exc
        if not removed.totp and not removed.passkeys:  # removed meanwhile by another
            if outage is not None:
                raise outage
            raise NotEnrolledError("two-factor authentication is not enabled")
        self._announce_removal(user_id, actor_id, removed, complete=outage is None)
        if outage is not None:
            with suppress(StoreUnavailableError):  # the store is down: the outage says so
                yield from self._factors_changed(user_id)
            raise outage
        yield from self._factors_changed(user_id)
        return RemovedFactors(removed.totp, len(removed.passkeys))

    def _announce_removal(
        self, user_id: str, actor_id: str, removed: _Removed, *, complete: bool
    ) -> None:
        """The events of a removal, before the revocation (a failing revocation leaves
        them in the audit). Cut short by an outage with only passkeys removed, the
        removal of two-factor did not happen (the retry's event will say so)."""
        now = self.clock()
        for credential_id in removed.passkeys:
            self.events.emit(
                PasskeyRemoved(
                    at=now, user_id=user_id, credential_id=credential_id, removed_by=actor_id
                )
            )
        if removed.totp or complete:
            self.events.emit(TwoFactorRemoved(at=now, user_id=user_id, removed_by=actor_id))

    # devices ----------------------------------------------------------------

    def _devices(self, user_id: str) -> Flow[DeviceList]:
        checked_id(user_id, "user_id")
        self._refuse_in_config_mode()
        credential: Credential | None = yield ("get_credential", (user_id,))
        if credential is None or not credential.confirmed:
            return DeviceList()
        confirmed = (d for d in credential.totp_devices if d.confirmed)
        oldest_first = sorted(confirmed, key=lambda d: d.created_at)  # stable: then as added
        # The secret was shown once, at enrolment: a listing never hands it out again.
        infos = (device.info() for device in oldest_first)
        return DeviceList(infos, len(credential.recovery_hashes))

    def _begin_device(self, user_id: str, account: str, name: str) -> Flow[Enrolment]:
        checked_id(user_id, "user_id")
        self._refuse_in_config_mode()
        name = clean_device_name(name)
        check_key_uri_label(account, self.issuer)  # before the write, not after it
        secret = generate_secret()
        now = self.clock()
        made: list[Enrolment] = []

        def add_pending(credential: Credential | None) -> Credential:
            confirmed = _confirmed_devices(credential)
            if len(confirmed) >= self.max_devices:
                raise DeviceLimitError(f"at most {self.max_devices} devices; remove one first")
            # One replay ledger counts the user's steps: every device steps alike.
            device = self._new_device(secret, name, now, confirmed[0].period)
            # The Key URI (its QR code) is made, and so checked, before the write.
            made[:] = [self._enrolment(user_id, account, device)]
            assert credential is not None  # _confirmed_devices refused None
            return _with_devices(credential, (*confirmed, device))  # replaces any pending

        updated = yield from self._update(user_id, add_pending)
        assert updated is not None
        return made[0]

    def _pending_device(
        self, user_id: str, account: str, max_age: float, device_id: str | None
    ) -> Flow[Enrolment | None]:
        """The device being added, begun less than ``max_age`` seconds ago, or ``None``
        (also when it is not the device ``device_id``: another session's)."""
        checked_id(user_id, "user_id")
        _checked_device_id(device_id)
        if self.config_users is not None:
            return None
        credential: Credential | None = yield ("get_credential", (user_id,))
        pending = _pending_device(credential, self.clock(), max_age)
        if pending is None or not _is_device(pending, device_id):
            return None
        return self._enrolment(user_id, account, pending)

    def _confirm_device(self, user_id: str, code: object, max_age: float) -> Flow[VerifyResult]:
        checked_id(user_id, "user_id")
        self._refuse_in_config_mode()
        credential: Credential | None = yield ("get_credential", (user_id,))
        now = self.clock()
        pending = _pending_device(credential, now, max_age)
        if credential is None or pending is None:
            raise NotEnrolledError("no device is being added (or it was begun too long ago)")
        # The user's one ledger and throttle: the confirming code is spent like any other.
        readable = self._readable(user_id, [pending])
        if not readable:
            return VerifyResult(VerifyReason.UNAVAILABLE)
        result = yield from self._verify_with(
            credential.credential_id, readable[0][1], code, now, user_id, pending.device_id
        )
        if not result.ok:
            return result
        device_id, limit = pending.device_id, self.max_devices
        yield from self._update(user_id, lambda c: _device_confirmed(c, device_id, limit))
        self.events.emit(TwoFactorDeviceAdded(at=now, user_id=user_id, device_id=device_id))
        yield from self._factors_changed(user_id)
        return result

    def _rename_device(
        self, user_id: str, device_id: str, name: str, actor_id: str | None
    ) -> Flow[None]:
        checked_id(user_id, "user_id")
        self._refuse_in_config_mode()
        name = clean_device_name(name)

        def renamed(credential: Credential | None) -> Credential | None:
            confirmed = _confirmed_devices(credential)
            if not any(d.device_id == device_id for d in confirmed):
                raise UnknownDeviceError("the user has no such device")
            assert credential is not None
            if all(d.name == name for d in confirmed if d.device_id == device_id):
                return None  # nothing to write
            devices = credential.totp_devices
            return _with_devices(
                credential,
                tuple(replace(d, name=name) if d.device_id == device_id else d for d in devices),
            )

        if (yield from self._update(user_id, renamed)) is not None:  # a name was written
            self.events.emit(
                TwoFactorDeviceRenamed(
                    at=self.clock(),
                    user_id=user_id,
                    device_id=device_id,
                    renamed_by=user_id if actor_id is None else actor_id,
                )
            )

    def _remove_device(
        self, user_id: str, device_id: str, actor_id: str, actor_has_full_access: bool
    ) -> Flow[None]:
        self._refuse_in_config_mode()
        if actor_id != user_id and actor_has_full_access is not True:  # only True is yes
            raise PermissionDeniedError("only the user or an admin with full access may remove 2FA")
        if not is_well_formed_id(user_id):  # an admin's URL path: no one's, as in _remove
            raise UnknownDeviceError("the user has no such device")
        removed: list[TotpDevice] = []

        def without(credential: Credential | None) -> Credential:
            devices = credential.totp_devices if credential is not None else ()
            gone = [d for d in devices if d.device_id == device_id]
            if credential is None or not gone:
                raise UnknownDeviceError("the user has no such device")
            remaining = tuple(d for d in devices if d.device_id != device_id)
            if not any(d.confirmed for d in remaining):
                raise _LastDeviceError
            removed[:] = gone
            return _with_devices(credential, remaining)

        try:
            yield from self._update(user_id, without)
        except _LastDeviceError:
            # The last device: removing it is removing TOTP two-factor, as the user's own
            # remove() does: the credential and its recovery codes (they live in it; a
            # confirmed credential left with no device would read as enrolled and refuse
            # every code). Never the passkeys: removing a device, by an admin too, is not
            # the reset (remove(with_passkeys=True) is).
            yield from self._remove(user_id, actor_id, actor_has_full_access, with_passkeys=False)
            return
        if removed and removed[0].confirmed:  # a pending one going changes no factor
            self.events.emit(
                TwoFactorDeviceRemoved(
                    at=self.clock(), user_id=user_id, device_id=device_id, removed_by=actor_id
                )
            )
            yield from self._factors_changed(user_id)


class TwoFactor(_TwoFactorFlows[Store]):
    """Two-factor lifecycle over a sync store."""

    def is_enrolled(self, user_id: str) -> bool:
        return run(self._enrolled(user_id), self.store)

    def begin_enrolment(
        self, user_id: str, account: str, *, name: str = DEFAULT_DEVICE_NAME
    ) -> Enrolment:
        return run(self._begin(user_id, account, name), self.store)

    def confirm_enrolment(
        self, user_id: str, code: object, *, max_age: float = 600.0
    ) -> Confirmation:
        """Confirm the enrolment with a code from the app: the recovery codes on success.
        An enrolment begun ``max_age`` seconds ago or more (what :meth:`pending_enrolment`
        no longer shows) is :class:`NotEnrolledError`, nothing spent: begin again."""
        return run(self._confirm(user_id, code, max_age), self.store)

    def pending_enrolment(
        self,
        user_id: str,
        account: str,
        *,
        max_age: float = 600.0,
        device_id: str | None = None,
    ) -> Enrolment | None:
        """The enrolment begun less than ``max_age`` seconds ago, to show again (a reload,
        a wrong code), or ``None``. An app that shows it again must pass ``device_id``,
        the :attr:`Enrolment.device_id` its session kept from :meth:`begin_enrolment`
        (or ``""`` when it kept none): then only that enrolment is returned, and another
        session of the user (a stolen cookie) never sees the secret being enrolled."""
        return run(self._pending(user_id, account, max_age, device_id), self.store)

    def verify(self, user_id: str, code: object) -> VerifyResult:
        return run(self._verify(user_id, code), self.store)

    def use_recovery_code(self, user_id: str, code: object) -> VerifyResult:
        return run(self._use_recovery_code(user_id, code), self.store)

    def regenerate_recovery_codes(self, user_id: str) -> tuple[str, ...]:
        return run(self._regenerate(user_id), self.store)

    def legacy_recovery_codes(self, user_id: str) -> int:
        """How many of the user's unused codes are of the old 50-bit kind (ask them to
        make new codes while this is above 0)."""
        return run(self._legacy_recovery_codes(user_id), self.store)

    def reseal(self, user_id: str) -> bool:
        """Re-encrypt the user's secret under the current key; ``True`` if it changed."""
        return run(self._reseal(user_id), self.store)

    def remove(
        self,
        user_id: str,
        *,
        actor_id: str,
        actor_has_full_access: bool = False,
        with_passkeys: bool | None = None,
    ) -> RemovedFactors:
        """Remove the user's 2FA (the user, or an admin with full access): the
        authenticator apps and recovery codes, and, when an admin removes it, the user's
        passkeys too (they are second factors at sign-in: the reset for a user who lost
        their devices). ``with_passkeys`` says so explicitly (``True`` needs
        ``actor_has_full_access``; the operator command passes it); ``None``: when the
        actor is not the user. A user without any (an enrolment begun and not confirmed
        included: it stays), or an id that is not well formed
        (:func:`stepup.ids.is_well_formed_id`), is :class:`NotEnrolledError`, and
        nothing changes."""
        flow = self._remove(user_id, actor_id, actor_has_full_access, with_passkeys)
        return run(flow, self.store)

    def devices(self, user_id: str) -> DeviceList:
        """The user's confirmed devices, oldest first (``()`` when 2FA is off), without
        their secrets, and how many recovery codes they have left
        (:attr:`DeviceList.recovery_codes_left`)."""
        return run(self._devices(user_id), self.store)

    def begin_device(
        self, user_id: str, account: str, *, name: str = DEFAULT_DEVICE_NAME
    ) -> Enrolment:
        """Start adding another device (2FA must be on); replaces a device being added."""
        return run(self._begin_device(user_id, account, name), self.store)

    def pending_device(
        self,
        user_id: str,
        account: str,
        *,
        max_age: float = 600.0,
        device_id: str | None = None,
    ) -> Enrolment | None:
        """The device being added, to show again, or ``None``; pass ``device_id`` as for
        :meth:`pending_enrolment` (the id the session kept from :meth:`begin_device`)."""
        return run(self._pending_device(user_id, account, max_age, device_id), self.store)

    def confirm_device(self, user_id: str, code: object, *, max_age: float = 600.0) -> VerifyResult:
        """Confirm the device being added with a code from it (no new recovery codes)."""
        return run(self._confirm_device(user_id, code, max_age), self.store)

    def rename_device(
        self, user_id: str, device_id: str, name: str, *, actor_id: str | None = None
    ) -> None:
        """Rename one confirmed device; :class:`~stepup.events.TwoFactorDeviceRenamed`
        when the name changed (``renamed_by``: ``actor_id``, else the user)."""
        run(self._rename_device(user_id, device_id, name, actor_id), self.store)

    def remove_device(
        self,
        user_id: str,
        device_id: str,
        *,
        actor_id: str,
        actor_has_full_access: bool = False,
    ) -> None:
        """Remove one device; the last one takes TOTP two-factor with it (the credential
        and recovery codes, as the user's own :meth:`remove`), never the passkeys, whoever
        removes it."""
        flow = self._remove_device(user_id, device_id, actor_id, actor_has_full_access)
        run(flow, self.store)


class AsyncTwoFactor(_TwoFactorFlows[AsyncStore | Store]):
    """Two-factor lifecycle over an async store."""

    async def is_enrolled(self, user_id: str) -> bool:
        return await run_async(self._enrolled(user_id), self.store)

    async def begin_enrolment(
        self, user_id: str, account: str, *, name: str = DEFAULT_DEVICE_NAME
    ) -> Enrolment:
        return await run_async(self._begin(user_id, account, name), self.store)

    async def confirm_enrolment(
        self, user_id: str, code: object, *, max_age: float = 600.0
    ) -> Confirmation:
        """See :meth:`TwoFactor.confirm_enrolment`: older than ``max_age``, begin again."""
        return await run_async(self._confirm(user_id, code, max_age), self.store)

    async def pending_enrolment(
        self,
        user_id: str,
        account: str,
        *,
        max_age: float = 600.0,
        device_id: str | None = None,
    ) -> Enrolment | None:
        """See :meth:`TwoFactor.pending_enrolment`: pass the session's ``device_id``."""
        flow = self._pending(user_id, account, max_age, device_id)
        return await run_async(flow, self.store)

    async def verify(self, user_id: str, code: object) -> VerifyResult:
        return await run_async(self._verify(user_id, code), self.store)

    async def use_recovery_code(self, user_id: str, code: object) -> VerifyResult:
        return await run_async(self._use_recovery_code(user_id, code), self.store)

    async def regenerate_recovery_codes(self, user_id: str) -> tuple[str, ...]:
        return await run_async(self._regenerate(user_id), self.store)

    async def legacy_recovery_codes(self, user_id: str) -> int:
        return await run_async(self._legacy_recovery_codes(user_id), self.store)

    async def reseal(self, user_id: str) -> bool:
        return await run_async(self._reseal(user_id), self.store)

    async def remove(
        self,
        user_id: str,
        *,
        actor_id: str,
        actor_has_full_access: bool = False,
        with_passkeys: bool | None = None,
    ) -> RemovedFactors:
        flow = self._remove(user_id, actor_id, actor_has_full_access, with_passkeys)
        return await run_async(flow, self.store)

    async def devices(self, user_id: str) -> DeviceList:
        return await run_async(self._devices(user_id), self.store)

    async def begin_device(
        self, user_id: str, account: str, *, name: str = DEFAULT_DEVICE_NAME
    ) -> Enrolment:
        return await run_async(self._begin_device(user_id, account, name), self.store)

    async def pending_device(
        self,
        user_id: str,
        account: str,
        *,
        max_age: float = 600.0,
        device_id: str | None = None,
    ) -> Enrolment | None:
        """See :meth:`TwoFactor.pending_device`: pass the session's ``device_id``."""
        flow = self._pending_device(user_id, account, max_age, device_id)
        return await run_async(flow, self.store)

    async def confirm_device(
        self, user_id: str, code: object, *, max_age: float = 600.0
    ) -> VerifyResult:
        return await run_async(self._confirm_device(user_id, code, max_age), self.store)

    async def rename_device(
        self, user_id: str, device_id: str, name: str, *, actor_id: str | None = None
    ) -> None:
        await run_async(self._rename_device(user_id, device_id, name, actor_id), self.store)

    async def remove_device(
        self,
        user_id: str,
        device_id: str,
        *,
        actor_id: str,
        actor_has_full_access: bool = False,
    ) -> None:
        flow = self._remove_device(user_id, device_id, actor_id, actor_has_full_access)
        await run_async(flow, self.store)


def _check_totp_settings(issuer: object, digits: object, period: object, algorithm: object) -> None:
    """:class:`ConfigurationError` naming the setting and its rule, at construction, for
    any value with which every enrolment would fail (each with a message about the
    user's account name or a malformed input, which it is not)."""
    if isinstance(digits, bool) or not isinstance(digits, int) or digits not in (6, 8):
        raise ConfigurationError("digits must be 6 or 8")
    if isinstance(period, bool) or not isinstance(period, int) or not 1 <= period <= 300:
        raise ConfigurationError("period must be a whole number of seconds from 1 to 300")
    if not isinstance(algorithm, str) or algorithm not in ALGORITHMS:
        raise ConfigurationError("algorithm must be 'SHA1', 'SHA256' or 'SHA512' (upper case)")
    try:
        check_key_uri_label("a", issuer)
    except InvalidAccountNameError:
        raise ConfigurationError(
            "issuer must be non-empty text of at most 1024 characters, without ':' (the"
            " Key URI's label separator), control characters or lone surrogates"
        ) from None
    # The shortest account there is, with a secret as long as every generated one: if
    # even this Key URI is too long for a QR code, every enrolment's is.
    shortest = TOTP.from_key(
        bytes(20), digits=digits, period=period, algorithm=cast(Algorithm, algorithm)
    )
    try:
        shortest.provisioning_uri("a", cast(str, issuer))
    except InvalidAccountNameError:
        raise ConfigurationError(
            "issuer is too long: percent-encoded, it is written twice in every Key URI,"
            f" which a QR code holds only up to {MAX_KEY_URI_LENGTH} characters"
        ) from None


def _confirmed(
    credential: Credential | None, enrolment: str, hashes: tuple[str, ...]
) -> Credential:
    """The enrolment ``enrolment`` confirmed with these recovery digests; refuses if
    another enrolment replaced it or it was confirmed meanwhile."""
    if credential is None or credential.credential_id != enrolment:
        raise NotEnrolledError("the enrolment was restarted; confirm the new one")
    if credential.confirmed:
        raise AlreadyEnrolledError("two-factor authentication is already enabled")
    devices = tuple(replace(d, confirmed=True) for d in credential.totp_devices)
    return replace(_with_devices(credential, devices), recovery_hashes=hashes)


class _LastDeviceError(Exception):
    """Inside :meth:`_TwoFactorFlows._remove_device`: no confirmed device would remain."""


def _with_devices(credential: Credential, devices: tuple[TotpDevice, ...]) -> Credential:
    """``credential`` holding ``devices``, in the shape with devices (the legacy secret
    cleared: each secret is stored once); ``confirmed`` while any device is."""
    return replace(
        credential,
        devices=devices,
        secret="",
        confirmed=any(d.confirmed for d in devices),
    )


def _confirmed_devices(credential: Credential | None) -> tuple[TotpDevice, ...]:
    """The confirmed devices (at least one), or NotEnrolledError."""
    confirmed = (
        () if credential is None else tuple(d for d in credential.totp_devices if d.confirmed)
    )
    if credential is None or not credential.confirmed or not confirmed:
        raise NotEnrolledError("two-factor authentication is not enabled")
    return confirmed


def _pending_device(credential: Credential | None, now: float, max_age: float) -> TotpDevice | None:
    """The device being added to an enabled credential, begun less than ``max_age`` ago."""
    if credential is None or not credential.confirmed:
        return None
    for device in credential.totp_devices:
        if not device.confirmed and 0 <= now - device.created_at < max_age:
            return device
    return None


def _checked_device_id(device_id: object) -> None:
    """A session's kept device id is text (or ``None``: not asked), else a typed error."""
    if device_id is not None and not isinstance(device_id, str):
        raise MalformedInputError("device_id must be text")


def _is_device(device: TotpDevice, device_id: str | None) -> bool:
    """``device`` is the one asked for (any, when ``None``); ``""`` is none: a session
    that kept no id sees no pending secret."""
    return device_id is None or (device_id != "" and device.device_id == device_id)


def _device_confirmed(credential: Credential | None, device_id: str, limit: int) -> Credential:
    confirmed = _confirmed_devices(credential)
    assert credential is not None
    if not any(d.device_id == device_id and not d.confirmed for d in credential.totp_devices):
        raise NotEnrolledError("the device being added was replaced; confirm the new one")
    if len(confirmed) >= limit:
        raise DeviceLimitError(f"at most {limit} devices; remove one first")
    devices = tuple(
        replace(d, confirmed=True) if d.device_id == device_id else d
        for d in credential.totp_devices
    )
    return _with_devices(credential, devices)


def _as_charge(attempt: Attempt) -> Attempt:
    """A failure ``totp_attempt`` counted, as the charge ``throttle_refund`` takes back
    (a replay writes what a rejected charge writes)."""
    return replace(attempt, outcome=AttemptOutcome.REJECTED)


def _best_effort(user_id: str, method: str, args: tuple[object, ...]) -> Flow[Any]:
    """One store call whose failure is logged and let go (``None``): a step after a
    decision that is already made."""
    try:
        return (yield (method, args))
    except StoreUnavailableError as exc:
        _log_best_effort(user_id, method, exc)
        return None


def _log_best_effort(user_id: str, step: str, exc: StoreUnavailableError) -> None:
    """A WARNING naming the step and the error's type (never a code, never a driver's
    message: it can hold a URL)."""
    logger.warning(
        "after a recovery code of user %r was accepted, %s failed (%s); the sign-in stands",
        user_id,
        step,
        type(exc.__cause__ or exc).__name__,
    )


def _touch(credential: Credential, device: TotpDevice, now: float) -> Flow[None]:
    """Record that ``device`` was used now (the caller checked that its stored time is
    at least :data:`LAST_USED_GRANULARITY` old): one compare-and-set, one try, and a
    failure or a lost race is let go (the verification stands; the time is a hint for
    the user)."""
    devices = credential.totp_devices
    # By id: a credential from before devices makes its one device anew on each read.
    used = tuple(
        replace(d, last_used_at=now) if d.device_id == device.device_id else d for d in devices
    )
    with suppress(StoreUnavailableError):
        yield ("replace_credential", (_with_devices(credential, used), credential.version))


def _with_codes(credential: Credential | None, hashes: tuple[str, ...]) -> Credential:
    if credential is None or not credential.confirmed:
        raise NotEnrolledError("two-factor authentication is not enabled")
    return replace(credential, recovery_hashes=hashes)
