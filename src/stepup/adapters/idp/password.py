"""Password re-authentication: the hashes apps already have, throttled, one generic message.

Stored hashes are recognised by their format and verified by a well-kept library per
format (:mod:`.password_formats`: argon2, bcrypt, Werkzeug, Django); new hashes, and
upgrades of old ones, are always argon2id.

The decision is split around its one CPU-heavy step, so both twins share it and the
async one can run the hash in a worker thread without blocking the event loop:

1. ``_before`` (a flow): check the input and recognise the hash's format (cheap), then
   charge the throttle *first*, so concurrent guesses cannot outrun it;
2. ``_check`` (pure): verify, and a new argon2id hash when the format is another or
   its parameters are below the hasher's;
3. ``_after`` (a flow): on success take back this attempt's charge (a success never
   clears failures counted for other attempts), emit events, build the result.

Unicode (NIST SP 800-63B 5.1.1.2): :func:`hash_password` hashes the password's NFKC
form, and a check tries the password as typed, then its NFKC form when that differs
(:func:`password_matches`), so canonically or compatibly equivalent input is accepted
and every hash made from un-normalised input (by this module before, Django,
Werkzeug, bcrypt...) still verifies.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import logging
import secrets
import unicodedata
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Generic, TypeAlias, TypeVar

from argon2 import Parameters, PasswordHasher, Type

from ..._flow import Flow, run, run_async
from ...clock import Clock, system_clock
from ...errors import MalformedInputError, StoreUnavailableError
from ...events import EventBus, ReauthFailed, Throttled
from ...ids import is_well_formed_id
from ...records import Attempt, AttemptOutcome
from ...subject import Subject
from ...throttle import ThrottlePolicy
from ..storage.base import AsyncStore, AttemptStore
from .password_formats import (
    HashVerifier,
    MalformedHashError,
    UnsupportedHashError,
    default_verifiers,
    find_verifier,
)

__all__ = [
    "CHEAPEST",
    "MAX_PASSWORD_LENGTH",
    "METHOD",
    "PASSWORD_PARAMETERS",
    "PUBLIC_FAILURE_MESSAGE",
    "AsyncPasswordReauth",
    "HashVerifier",
    "PasswordReason",
    "PasswordReauth",
    "PasswordResult",
    "hash_password",
    "password_matches",
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

logger = logging.getLogger(__name__)

#: ``(user_id, new_argon2id_hash)``: the app stores the upgraded hash. The async
#: twin also takes a coroutine function.
UpgradeHook: TypeAlias = Callable[[str, str], Awaitable[None] | None]


class PasswordReason(StrEnum):
    OK = "ok"
    WRONG_PASSWORD = "wrong_password"  # noqa: S105 (a reason, not a password)
    THROTTLED = "throttled"
    UNKNOWN_USER = "unknown_user"
    MALFORMED = "malformed"
    #: The stored hash is in a format no verifier handles (or its library is missing).
    UNSUPPORTED_HASH = "unsupported_hash"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True, slots=True)
class PasswordResult:
    """The outcome of one password re-authentication. Only ``reason == OK`` lets anyone in.

    ``retry_at`` is the Unix time from which this user may try again, when blocked.
    ``new_hash`` is set on success when the stored hash was not argon2id at or above the
    current parameters in every one (bcrypt, Werkzeug, Django PBKDF2, an argon2 hash
    with less memory or fewer passes...): an argon2id hash of the same password, to
    store in place of the old one (the ``on_upgrade`` hook receives the same hash). A
    stronger argon2id hash (more memory, more passes) is kept as it is.
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
    """The throttle key of a user's password attempts (shared by all their sessions).

    An id no store can hold (a user name typed into a sign-in form with a control
    character, a lone surrogate, or too long: :func:`stepup.ids.is_well_formed_id`) is
    keyed by its digest, so it is throttled and answered as any unknown name is, rather
    than failing at the store. ``pwd#`` cannot begin another user's key (``pwd:``)."""
    if is_well_formed_id(user_id):
        return f"pwd:{user_id}"
    return "pwd#" + hashlib.sha256(user_id.encode("utf-8", "surrogatepass")).hexdigest()


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


def _plausible_hash(stored_hash: object) -> bool:
    if not isinstance(stored_hash, str) or not 0 < len(stored_hash) <= MAX_HASH_LENGTH:
        return False
    return stored_hash.isascii() and stored_hash.isprintable()


def hash_password(password: object, *, hasher: PasswordHasher | None = None) -> str:
    """Hash a new password's NFKC form with :data:`PASSWORD_PARAMETERS` (or ``hasher``'s),
    so any equivalent spelling of it verifies (NIST SP 800-63B 5.1.1.2).

    Raises :class:`MalformedInputError` for input :meth:`PasswordReauth.verify` would
    call malformed (the message never repeats the password).
    """
    valid = _valid_password(password)
    if valid is None:
        raise MalformedInputError(
            f"a password must be a non-empty string of at most {MAX_PASSWORD_LENGTH}"
            " characters, without NUL"
        )
    return (hasher or _DEFAULT_HASHER).hash(_nfkc(valid))


def _nfkc(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


def _forms_to_try(verifier: HashVerifier, password: str) -> tuple[str, ...]:
    """As typed first, so every hash made from un-normalised input still verifies; then
    the NFKC form, only when it differs, so a wrong password already in NFKC costs one
    hash. A verifier that normalises itself (``normalises_passwords = True``, as
    Flask-Security-Too's does with the app's own form) gets the password as typed only:
    it agrees with that app's sign-in exactly."""
    if getattr(verifier, "normalises_passwords", False) is True:
        return (password,)
    normalized = _nfkc(password)
    return (password,) if normalized == password else (password, normalized)


def _matching_form(verifier: HashVerifier, stored_hash: str, password: str) -> str | None:
    """The form of ``password`` that matches ``stored_hash``, or ``None``."""
    for form in _forms_to_try(verifier, password):
        if verifier.verify(stored_hash, form):
            return form
    return None


def password_matches(verifier: HashVerifier, stored_hash: str, password: str) -> bool:
    """Does ``password`` match ``stored_hash`` as :class:`PasswordReauth` checks it: as
    typed, then its NFKC form when that differs? For an app's own sign-in, so it accepts
    what re-authentication accepts (and reads :func:`hash_password`'s NFKC hashes).
    No throttle; raises what ``verifier.verify`` raises."""
    return _matching_form(verifier, stored_hash, password) is not None


@dataclass(frozen=True, slots=True)
class _Pending:
    """An attempt that passed the throttle and awaits the hash check."""

    user_id: str
    session_id: str
    now: float
    retry_at: float | None
    failures: int  # what the charge counted: a success refunds exactly that charge
    password: str = field(repr=False)
    stored_hash: str | None = field(repr=False)
    verifier: HashVerifier | None = None
    #: The stored hash was refused by ``_recognise`` (malformed, unsupported): the answer
    #: once the same work as an unknown user's is done.
    refused: PasswordReason | None = None


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
        verifiers: Sequence[HashVerifier] | None = None,
        dummy_hash: Callable[[], str] | None = None,
        on_upgrade: UpgradeHook | None = None,
        clock: Clock = system_clock,
        throttle: ThrottlePolicy | None = None,
        events: EventBus | None = None,
    ) -> None:
        """``hasher`` makes new (and upgraded) argon2id hashes; ``verifiers`` are the
        stored formats accepted, tried in order (default: :func:`default_verifiers`);
        ``dummy_hash`` makes, once, the hash an unknown user's password is checked
        against, so that costs what a known user's check costs (default: an argon2id
        hash from ``hasher``; use your default format's when most users have that)."""
        self.store = store
        self.hasher = hasher or _DEFAULT_HASHER
        self.verifiers: tuple[HashVerifier, ...] = (
            tuple(verifiers) if verifiers is not None else default_verifiers(self.hasher)
        )
        if not self.verifiers:
            raise ValueError("give at least one hash verifier")
        self._make_dummy = dummy_hash or self._argon2_dummy
        self.on_upgrade = on_upgrade
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

    def _recognise(self, user_id: str, stored_hash: object) -> HashVerifier | PasswordReason:
        if not _plausible_hash(stored_hash):
            logger.warning("password re-auth for %r: the stored hash is not a hash", user_id)
            return PasswordReason.MALFORMED
        assert isinstance(stored_hash, str)
        try:
            return find_verifier(self.verifiers, stored_hash)
        except MalformedHashError as exc:
            logger.warning("password re-auth for %r: %s", user_id, exc)
            return PasswordReason.MALFORMED
        except UnsupportedHashError as exc:
            logger.warning("password re-auth for %r: %s", user_id, exc)
            return PasswordReason.UNSUPPORTED_HASH
        except Exception as exc:  # a verifier's own bug: a refusal, never a 500
            _verifier_raised(user_id, "recognise", exc)
            return PasswordReason.MALFORMED

    def _before(
        self, subject_or_user_id: Subject | str, password: object, stored_hash: object
    ) -> Flow[PasswordResult | _Pending]:
        user_id, session_id = _who(subject_or_user_id)
        now = self.clock()
        valid = _valid_password(password)
        if valid is None:
            return self._fail(now, user_id, PasswordReason.MALFORMED)
        verifier, refused = None, None
        if stored_hash is not None:
            recognised = self._recognise(user_id, stored_hash)
            # A refused hash (an SSO-only user's "!...", a format nobody reads) is
            # answered after the charge and the dummy check, as an unknown user is:
            # answered at once, its timing would tell the two apart.
            if isinstance(recognised, PasswordReason):
                refused = recognised
            else:
                verifier = recognised
        try:
            charge: Attempt = yield ("throttle_charge", (throttle_key(user_id), now, self.throttle))
        except StoreUnavailableError:
            return self._fail(now, user_id, PasswordReason.UNAVAILABLE)
        if charge.outcome is AttemptOutcome.THROTTLED:
            return self._fail(now, user_id, PasswordReason.THROTTLED, charge.retry_at)
        hash_or_none = stored_hash if isinstance(stored_hash, str) else None
        retry_at, failures = charge.retry_at, charge.failures
        return _Pending(
            user_id, session_id, now, retry_at, failures, valid, hash_or_none, verifier, refused
        )

    def _check(self, pending: _Pending) -> _Checked:
        """The hash work: the same cost whether or not the user exists."""
        if self._dummy_hash is None:
            # Made by the first check, whoever it is for: made by the first unknown
            # name's, it would cost that one attempt a second hash (a one-time oracle).
            self._dummy_hash = self._make_dummy()
        if pending.stored_hash is None or pending.verifier is None:
            self._dummy_verify(pending.password)
            return _Checked(pending.refused or PasswordReason.UNKNOWN_USER)
        step = "verify"
        try:
            matched = _matching_form(pending.verifier, pending.stored_hash, pending.password)
            step = "needs_upgrade"
            upgrade = matched is not None and pending.verifier.needs_upgrade(pending.stored_hash)
        except MalformedHashError as exc:
            logger.warning("password re-auth for %r: %s", pending.user_id, exc)
            return _Checked(PasswordReason.MALFORMED)
        except UnsupportedHashError as exc:  # a library that went missing since recognise
            logger.warning("password re-auth for %r: %s", pending.user_id, exc)
            return _Checked(PasswordReason.UNSUPPORTED_HASH)
        except Exception as exc:  # a verifier's own bug: a refusal, never a 500
            _verifier_raised(pending.user_id, step, exc)
            return _Checked(PasswordReason.MALFORMED)
        if matched is None:
            return _Checked(PasswordReason.WRONG_PASSWORD)
        if upgrade:
            # The form that matched, not always the NFKC one: the old hash was of that
            # form, so whatever sign-in accepted it (Django's, which does not normalise,
            # reads a saved upgrade) accepts the new hash too.
            return _Checked(PasswordReason.OK, self.hasher.hash(matched))
        return _Checked(PasswordReason.OK)

    def _dummy_verify(self, password: str) -> None:
        # The dummy is made once per instance (by the first check), from a random
        # password, so no password can match it; it is verified through the same
        # registry as a real hash, in the same forms (one or two hashes, as a known
        # user's). Whatever that raises, the answer is already decided.
        assert self._dummy_hash is not None
        with contextlib.suppress(Exception):
            verifier = find_verifier(self.verifiers, self._dummy_hash)
            _matching_form(verifier, self._dummy_hash, password)

    def _argon2_dummy(self) -> str:
        return self.hasher.hash(secrets.token_urlsafe(32))

    def _after(self, pending: _Pending, checked: _Checked) -> Flow[PasswordResult]:
        if checked.reason is not PasswordReason.OK:
            return self._fail(pending.now, pending.user_id, checked.reason, pending.retry_at)
        charge = Attempt(AttemptOutcome.REJECTED, pending.failures, pending.retry_at)
        try:
            yield ("throttle_refund", (throttle_key(pending.user_id), charge, pending.now))
        except StoreUnavailableError:
            return self._fail(pending.now, pending.user_id, PasswordReason.UNAVAILABLE)
        # No ReauthSucceeded here: the re-authentication happens when the app records it
        # (Reauth.record emits it once, under the session's renewed id), as for OIDC and
        # SAML; a second one here would count every password re-auth twice.
        return PasswordResult(PasswordReason.OK, new_hash=checked.new_hash)


def _verifier_raised(user_id: str, step: str, exc: Exception) -> None:
    # Only the exception's type: its message could quote the hash or the password.
    logger.warning(
        "password re-auth for %r: a hash verifier's %s raised %s; treated as a malformed hash",
        user_id,
        step,
        type(exc).__name__,
    )


def _upgrade_failed(user_id: str, exc: BaseException) -> None:
    # The password was right: a failing hook must not turn that into a denial.
    logger.error(
        "password re-auth for %r: the on_upgrade hook raised %s; the old hash stays",
        user_id,
        type(exc).__name__,
    )


def _close(awaitable: Awaitable[None]) -> None:
    close = getattr(awaitable, "close", None)
    if callable(close):
        close()


class PasswordReauth(_PasswordFlows[AttemptStore]):
    """Verify a re-entered password against a sync store's throttle.

    ``on_upgrade(user_id, new_hash)`` (optional) is called after a successful check of
    a hash that was not argon2id at or above the current parameters, with an argon2id
    hash of the same password to store instead. If it raises, the error is logged (without the
    hash) and the result is still ``OK``; ``result.new_hash`` carries the same hash.
    """

    def verify(
        self, subject_or_user_id: Subject | str, password: object, stored_hash: str | None
    ) -> PasswordResult:
        """Check ``password`` against the user's ``stored_hash`` (``None``: no such user,
        or no password). A bad password or hash is a failed result, never an exception."""
        step = run(self._before(subject_or_user_id, password, stored_hash), self.store)
        if isinstance(step, PasswordResult):
            return step
        result = run(self._after(step, self._check(step)), self.store)
        if result.new_hash is not None and self.on_upgrade is not None:
            try:
                outcome = self.on_upgrade(step.user_id, result.new_hash)
                if inspect.isawaitable(outcome):  # a coroutine function on the sync twin
                    _close(outcome)
                    raise TypeError("on_upgrade of PasswordReauth must not be async")
            except Exception as exc:
                _upgrade_failed(step.user_id, exc)
        return result


class AsyncPasswordReauth(_PasswordFlows[AsyncStore | AttemptStore]):
    """Verify a re-entered password against an async store; the hash runs in a worker
    thread so the event loop keeps serving other requests. ``on_upgrade`` may be a
    plain function or a coroutine function (see :class:`PasswordReauth`)."""

    async def verify(
        self, subject_or_user_id: Subject | str, password: object, stored_hash: str | None
    ) -> PasswordResult:
        """See :meth:`PasswordReauth.verify`."""
        step = await run_async(self._before(subject_or_user_id, password, stored_hash), self.store)
        if isinstance(step, PasswordResult):
            return step
        checked = await asyncio.to_thread(self._check, step)
        result = await run_async(self._after(step, checked), self.store)
        if result.new_hash is not None and self.on_upgrade is not None:
            try:
                outcome = self.on_upgrade(step.user_id, result.new_hash)
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception as exc:
                _upgrade_failed(step.user_id, exc)
        return result
