"""Password re-authentication: argon2id hashes, throttled, one generic message.

The decision is split around its one CPU-heavy step, so both twins share it and the
async one can run argon2 in a worker thread without blocking the event loop:

1. ``_before`` (a flow): check the input, then charge the throttle *first*, so
   concurrent guesses cannot outrun it;
2. ``_check`` (pure): argon2 verify, and a new hash when the parameters are outdated;
3. ``_after`` (a flow): clear the throttle on success, emit events, build the result.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Generic, TypeVar

from argon2 import Parameters, PasswordHasher, Type, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from ..._flow import Flow, run, run_async
from ...clock import Clock, system_clock
from ...errors import MalformedInputError, StoreUnavailableError
from ...events import EventBus, ReauthFailed, ReauthSucceeded, Throttled
from ...records import Attempt, AttemptOutcome
from ...subject import Subject
from ...throttle import ThrottlePolicy
from ..storage.base import AsyncStore, AttemptStore

__all__ = [
    "CHEAPEST",
    "MAX_PASSWORD_LENGTH",
    "METHOD",
    "PASSWORD_PARAMETERS",
    "PUBLIC_FAILURE_MESSAGE",
    "AsyncPasswordReauth",
    "PasswordReason",
    "PasswordReauth",
    "PasswordResult",
    "hash_password",
    "throttle_key",
]

#: argon2id, 64 MiB, 3 passes, 4 lanes: RFC 9106's second recommended option and
#: argon2-cffi's default profile (``RFC_9106_LOW_MEMORY``), pinned here so an upgrade of
#: argon2-cffi never changes it silently. It exceeds OWASP's minimum (19 MiB, t=2, p=1)
#: on both memory and passes; see ``docs/passwords.md``.
PASSWORD_PARAMETERS = Parameters(
    type=Type.ID,
    version=19,
    salt_len=16,
    hash_len=32,
    time_cost=3,
    memory_cost=65536,
    parallelism=4,
)

#: The cheapest argon2id there is. Only for testing: it protects nothing.
CHEAPEST = Parameters(
    type=Type.ID,
    version=19,
    salt_len=8,
    hash_len=4,
    time_cost=1,
    memory_cost=8,
    parallelism=1,
)

#: Longer input is malformed: no one types more, and argon2 would hash it all.
MAX_PASSWORD_LENGTH = 1024
#: Stored hashes longer than this are malformed (ours are about 100 characters).
MAX_HASH_LENGTH = 512
#: The only failure text an end user ever sees, whatever went wrong.
PUBLIC_FAILURE_MESSAGE = "Re-authentication failed."
#: The amr-style method name recorded in grants and events.
METHOD = "pwd"

_DEFAULT_HASHER = PasswordHasher.from_parameters(PASSWORD_PARAMETERS)


class PasswordReason(StrEnum):
    OK = "ok"
    WRONG_PASSWORD = "wrong_password"  # noqa: S105 (a reason, not a password)
    THROTTLED = "throttled"
    UNKNOWN_USER = "unknown_user"
    MALFORMED = "malformed"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True, slots=True)
class PasswordResult:
    """The outcome of one password re-authentication. Only ``reason == OK`` lets anyone in.

    ``retry_at`` is the Unix time from which this user may try again, when blocked.
    ``new_hash`` is set on success when the stored hash used outdated parameters:
    store it in place of the old one.
    """

    reason: PasswordReason
    retry_at: float | None = None
    new_hash: str | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.reason is PasswordReason.OK

    def __bool__(self) -> bool:
        return self.ok

    @property
    def needs_rehash(self) -> bool:
        return self.new_hash is not None

    @property
    def public_message(self) -> str:
        """What to show the end user: one text for every failure, so it reveals nothing."""
        return "" if self.ok else PUBLIC_FAILURE_MESSAGE


def throttle_key(user_id: str) -> str:
    """The throttle key of a user's password attempts (shared by all their sessions)."""
    return f"pwd:{user_id}"


def _valid_password(password: object) -> str | None:
    if not isinstance(password, str) or not 0 < len(password) <= MAX_PASSWORD_LENGTH:
        return None
    if "\x00" in password:
        return None
    try:
        password.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates
        return None
    return password


def _valid_hash(stored_hash: object) -> bool:
    if not isinstance(stored_hash, str) or not 0 < len(stored_hash) <= MAX_HASH_LENGTH:
        return False
    if not stored_hash.isascii() or "\x00" in stored_hash:
        return False
    try:
        extract_parameters(stored_hash)
    except InvalidHashError:
        return False
    return True


def hash_password(password: object, *, hasher: PasswordHasher | None = None) -> str:
    """Hash a new password with :data:`PASSWORD_PARAMETERS` (or ``hasher``'s).

    Raises :class:`MalformedInputError` for input :meth:`PasswordReauth.verify` would
    call malformed (the message never repeats the password).
    """
    valid = _valid_password(password)
    if valid is None:
        raise MalformedInputError(
            f"a password must be a non-empty string of at most {MAX_PASSWORD_LENGTH}"
            " characters, without NUL"
        )
    return (hasher or _DEFAULT_HASHER).hash(valid)


@dataclass(frozen=True, slots=True)
class _Pending:
    """An attempt that passed the throttle and awaits argon2."""

    user_id: str
    session_id: str
    now: float
    retry_at: float | None
    password: str = field(repr=False)
    stored_hash: str | None = field(repr=False)


@dataclass(frozen=True, slots=True)
class _Checked:
    reason: PasswordReason
    new_hash: str | None = field(default=None, repr=False)


def _who(subject_or_user_id: Subject | str) -> tuple[str, str]:
    if isinstance(subject_or_user_id, Subject):
        return subject_or_user_id.user_id, subject_or_user_id.session_id
    if isinstance(subject_or_user_id, str) and subject_or_user_id:
        return subject_or_user_id, ""
    raise MalformedInputError("expected a Subject or a non-empty user id")


S = TypeVar("S")


class _PasswordFlows(Generic[S]):
    def __init__(
        self,
        store: S,
        *,
        hasher: PasswordHasher | None = None,
        clock: Clock = system_clock,
        throttle: ThrottlePolicy | None = None,
        events: EventBus | None = None,
    ) -> None:
        self.store = store
        self.hasher = hasher or _DEFAULT_HASHER
        self.clock = clock
        self.throttle = throttle or ThrottlePolicy()
        self.events = events or EventBus()
        self._dummy_hash: str | None = None

    def __repr__(self) -> str:
        h = self.hasher
        return (
            f"{type(self).__name__}(argon2{h.type.name.lower()}: m={h.memory_cost},"
            f" t={h.time_cost}, p={h.parallelism})"
        )

    def _fail(
        self, now: float, user_id: str, reason: PasswordReason, retry_at: float | None = None
    ) -> PasswordResult:
        self.events.emit(ReauthFailed(at=now, user_id=user_id, method=METHOD, reason=reason))
        if retry_at is not None:
            self.events.emit(Throttled(at=now, key=throttle_key(user_id), retry_at=retry_at))
        return PasswordResult(reason, retry_at)

    def _before(
        self, subject_or_user_id: Subject | str, password: object, stored_hash: object
    ) -> Flow[PasswordResult | _Pending]:
        user_id, session_id = _who(subject_or_user_id)
        now = self.clock()
        valid = _valid_password(password)
        if valid is None or (stored_hash is not None and not _valid_hash(stored_hash)):
            return self._fail(now, user_id, PasswordReason.MALFORMED)
        try:
            charge: Attempt = yield ("throttle_charge", (throttle_key(user_id), now, self.throttle))
        except StoreUnavailableError:
            return self._fail(now, user_id, PasswordReason.UNAVAILABLE)
        if charge.outcome is AttemptOutcome.THROTTLED:
            return self._fail(now, user_id, PasswordReason.THROTTLED, charge.retry_at)
        hash_or_none = stored_hash if isinstance(stored_hash, str) else None
        return _Pending(user_id, session_id, now, charge.retry_at, valid, hash_or_none)

    def _check(self, pending: _Pending) -> _Checked:
        """The argon2 work: the same cost whether or not the user exists."""
        if pending.stored_hash is None:
            with contextlib.suppress(VerificationError):
                self.hasher.verify(self._dummy(), pending.password)
            return _Checked(PasswordReason.UNKNOWN_USER)
        try:
            self.hasher.verify(pending.stored_hash, pending.password)
        except VerifyMismatchError:
            return _Checked(PasswordReason.WRONG_PASSWORD)
        except (VerificationError, InvalidHashError):
            return _Checked(PasswordReason.MALFORMED)
        if self.hasher.check_needs_rehash(pending.stored_hash):
            return _Checked(PasswordReason.OK, self.hasher.hash(pending.password))
        return _Checked(PasswordReason.OK)

    def _dummy(self) -> str:
        # Made once per instance, with this hasher's parameters, from a random password.
        if self._dummy_hash is None:
            self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(32))
        return self._dummy_hash

    def _after(self, pending: _Pending, checked: _Checked) -> Flow[PasswordResult]:
        if checked.reason is not PasswordReason.OK:
            return self._fail(pending.now, pending.user_id, checked.reason, pending.retry_at)
        try:
            yield ("throttle_clear", (throttle_key(pending.user_id),))
        except StoreUnavailableError:
            return self._fail(pending.now, pending.user_id, PasswordReason.UNAVAILABLE)
        self.events.emit(
            ReauthSucceeded(
                at=pending.now,
                user_id=pending.user_id,
                session_id=pending.session_id,
                method=METHOD,
            )
        )
        return PasswordResult(PasswordReason.OK, new_hash=checked.new_hash)


class PasswordReauth(_PasswordFlows[AttemptStore]):
    """Verify a re-entered password against a sync store's throttle."""

    def verify(
        self, subject_or_user_id: Subject | str, password: object, stored_hash: str | None
    ) -> PasswordResult:
        """Check ``password`` against the user's ``stored_hash`` (``None``: no such user,
        or no password). A bad password or hash is ``MALFORMED``, never an exception."""
        step = run(self._before(subject_or_user_id, password, stored_hash), self.store)
        if isinstance(step, PasswordResult):
            return step
        return run(self._after(step, self._check(step)), self.store)


class AsyncPasswordReauth(_PasswordFlows[AsyncStore | AttemptStore]):
    """Verify a re-entered password against an async store; argon2 runs in a worker
    thread so the event loop keeps serving other requests."""

    async def verify(
        self, subject_or_user_id: Subject | str, password: object, stored_hash: str | None
    ) -> PasswordResult:
        """See :meth:`PasswordReauth.verify`."""
        step = await run_async(self._before(subject_or_user_id, password, stored_hash), self.store)
        if isinstance(step, PasswordResult):
            return step
        checked = await asyncio.to_thread(self._check, step)
        return await run_async(self._after(step, checked), self.store)
