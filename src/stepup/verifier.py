"""Verify a TOTP code: one pure decision around one atomic store call, sync or async.

The decision is two pure functions: :func:`_match` (normalise, match the window)
before the store, and :func:`_settle` (turn the store's answer into a result and
events) after it. Between them is a single ``totp_attempt`` call, which settles
throttle and replay atomically. :func:`verify_flow` is the pair as a flow: the sync
and async verifiers drive it (``run`` / ``run_async``), and larger flows such as
confirming an enrolment compose it. Any store failure is ``unavailable``: fail closed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

from ._flow import Flow, run, run_async
from .adapters.storage.base import AsyncStore, AttemptStore
from .clock import Clock, system_clock
from .errors import StoreUnavailableError
from .events import EventBus, ReplayDetected, Throttled, TwoFactorRejected, TwoFactorVerified
from .records import Attempt, AttemptOutcome
from .throttle import ThrottlePolicy, ledger_policy
from .totp import TOTP, normalize_code

__all__ = [
    "AsyncTOTPVerifier",
    "TOTPVerifier",
    "VerifyReason",
    "VerifyResult",
    "verify_devices_flow",
    "verify_flow",
]


class VerifyReason(StrEnum):
    OK = "ok"
    INVALID = "invalid"
    REPLAYED = "replayed"
    MALFORMED = "malformed"
    THROTTLED = "throttled"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The outcome of one verification. Only ``reason == OK`` lets anyone in.

    ``step`` is the matched time step when one matched; ``retry_at`` is the Unix time
    from which the credential may try again, when it is throttled.
    """

    reason: VerifyReason
    step: int | None = None
    retry_at: float | None = None

    @property
    def ok(self) -> bool:
        return self.reason is VerifyReason.OK

    def __bool__(self) -> bool:
        return self.ok


_REASONS = {
    AttemptOutcome.ACCEPTED: VerifyReason.OK,
    AttemptOutcome.REJECTED: VerifyReason.INVALID,
    AttemptOutcome.REPLAYED: VerifyReason.REPLAYED,
    AttemptOutcome.THROTTLED: VerifyReason.THROTTLED,
}


def verify_flow(
    credential_id: str,
    totp: TOTP,
    code: object,
    *,
    now: float,
    window: int,
    throttle: ThrottlePolicy,
    events: EventBus,
    user_id: str = "",
    device_id: str = "",
) -> Flow[VerifyResult]:
    """The whole verification as a flow (see :mod:`stepup._flow`), for composing into
    larger flows such as confirming an enrolment. The store is asked to keep the ledger
    at least as long as the code's step can still be accepted
    (:func:`~stepup.throttle.ledger_policy`), however short ``throttle.forget_after``."""
    step = _match(credential_id, totp, code, now, window, events, user_id)
    if isinstance(step, VerifyResult):
        return step
    # The ledger outlives every code it could be asked about, whatever forget_after says.
    ledger = ledger_policy(throttle, window, totp.period)
    attempt: Attempt | None
    try:
        attempt = yield ("totp_attempt", (credential_id, step, now, ledger))
    except StoreUnavailableError:
        attempt = None
    return _settle(credential_id, step, attempt, now, events, user_id, device_id)


def verify_devices_flow(
    credential_id: str,
    devices: Sequence[tuple[str, TOTP]],
    code: object,
    *,
    now: float,
    window: int,
    throttle: ThrottlePolicy,
    events: EventBus,
    user_id: str = "",
) -> Flow[tuple[VerifyResult, str]]:
    """:func:`verify_flow` for a user with several devices ``(device_id, totp)``: the
    code is matched against every device (each in constant time, all of them always),
    and the one ledger ``credential_id`` settles it in ONE ``totp_attempt``, so a step
    accepted from any device makes that step and every earlier one a replay from all
    of them, and the throttle counts the user's guesses, not each device's. The ledger
    is kept as long as the longest period's codes stay acceptable. Answers the result
    and the matched device's id (``""`` when none matched)."""
    matched = _match_devices(devices, code, now, window)
    if matched is None:
        _rejected(events, now, credential_id, VerifyReason.MALFORMED, user_id)
        return _MALFORMED, ""
    step, device_id = matched
    ledger = ledger_policy(throttle, window, max(totp.period for _, totp in devices))
    attempt: Attempt | None
    try:
        attempt = yield ("totp_attempt", (credential_id, step, now, ledger))
    except StoreUnavailableError:
        attempt = None
    result = _settle(credential_id, step, attempt, now, events, user_id, device_id)
    return result, device_id if result.ok else ""


def _match_devices(
    devices: Sequence[tuple[str, TOTP]], code: object, now: float, window: int
) -> tuple[int | None, str] | None:
    """The matched step and device (``(None, "")`` if none matched), or ``None`` when
    the code is malformed for every device. No device is skipped once one matched:
    the work done does not depend on which device (if any) the code came from.
    Two devices matching at once (about once in a million per pair) is settled as
    :meth:`TOTP.match` settles two steps: the step nearest to now, the past first."""
    best: int | None = None
    best_rank = 0
    which = ""
    well_formed = False
    for device_id, totp in devices:
        normalized = normalize_code(code, totp.digits)
        if normalized is None:
            continue
        well_formed = True
        step = totp.match(normalized, now, window)
        if step is None:
            continue
        offset = step - totp.step(now)
        rank = 2 * offset if offset >= 0 else -2 * offset - 1
        if best is None or rank < best_rank:
            best, best_rank, which = step, rank, device_id
    return (best, which) if well_formed else None


def _match(
    credential_id: str,
    totp: TOTP,
    code: object,
    now: float,
    window: int,
    events: EventBus,
    user_id: str = "",
) -> VerifyResult | int | None:
    """First half of the decision, before the store: the matched step (``None`` if no
    step matched), or the final result when the code is malformed.

    A malformed code can never be right, so it is answered here without touching the
    store, and it costs the owner nothing.
    """
    normalized = normalize_code(code, totp.digits)
    if normalized is None:
        _rejected(events, now, credential_id, VerifyReason.MALFORMED, user_id)
        return _MALFORMED
    return totp.match(normalized, now, window)


def _settle(
    credential_id: str,
    step: int | None,
    attempt: Attempt | None,
    now: float,
    events: EventBus,
    user_id: str = "",
    device_id: str = "",
) -> VerifyResult:
    """Second half: turn the store's atomic answer to ``totp_attempt`` into the result,
    and report it. ``attempt`` is ``None`` when the store failed: fail closed."""
    if attempt is None:
        _rejected(events, now, credential_id, VerifyReason.UNAVAILABLE, user_id)
        return _UNAVAILABLE
    outcome = attempt.outcome
    if outcome is AttemptOutcome.ACCEPTED:
        if step is None:  # a store that accepts without a step is broken: fail closed
            _rejected(events, now, credential_id, VerifyReason.UNAVAILABLE, user_id)
            return _UNAVAILABLE
        if events.listening:
            events.emit(
                TwoFactorVerified(
                    at=now,
                    credential_id=credential_id,
                    step=step,
                    user_id=user_id,
                    device_id=device_id,
                )
            )
        return _verified(step)
    reason = _REASONS[outcome]
    # Only a replay names its step: a throttled answer must not reveal whether the
    # (unevaluated) guess was right, and an invalid code matched no step.
    result = VerifyResult(
        reason, step if outcome is AttemptOutcome.REPLAYED else None, attempt.retry_at
    )
    _rejected(events, now, credential_id, reason, user_id)
    if events.listening:
        if outcome is AttemptOutcome.REPLAYED:
            events.emit(ReplayDetected(at=now, credential_id=credential_id, user_id=user_id))
        if attempt.retry_at is not None:
            events.emit(
                Throttled(at=now, key=credential_id, retry_at=attempt.retry_at, user_id=user_id)
            )
    return result


def _rejected(
    events: EventBus, now: float, credential_id: str, reason: VerifyReason, user_id: str = ""
) -> None:
    if events.listening:
        events.emit(
            TwoFactorRejected(at=now, credential_id=credential_id, reason=reason, user_id=user_id)
        )


_MALFORMED = VerifyResult(VerifyReason.MALFORMED)


def _verified(step: int) -> VerifyResult:
    return VerifyResult(VerifyReason.OK, step)


_UNAVAILABLE = VerifyResult(VerifyReason.UNAVAILABLE)


S = TypeVar("S")


class _Verifier(Generic[S]):
    def __init__(
        self,
        store: S,
        *,
        window: int = 1,
        clock: Clock = system_clock,
        throttle: ThrottlePolicy | None = None,
        events: EventBus | None = None,
    ) -> None:
        if isinstance(window, bool) or not isinstance(window, int) or not 0 <= window <= 10:
            raise ValueError("window must be a whole number of steps from 0 to 10")
        self.store = store
        self.window = window
        self.clock = clock
        self.throttle = throttle if throttle is not None else ThrottlePolicy()
        self.events = events if events is not None else EventBus()

    def _flow(self, credential_id: str, totp: TOTP, code: object) -> Flow[VerifyResult]:
        return verify_flow(
            credential_id,
            totp,
            code,
            now=self.clock(),
            window=self.window,
            throttle=self.throttle,
            events=self.events,
        )


class TOTPVerifier(_Verifier[AttemptStore]):
    """Verify codes against a sync store (replay claim and throttle included)."""

    def verify(self, credential_id: str, totp: TOTP, code: object) -> VerifyResult:
        return run(self._flow(credential_id, totp, code), self.store)


class AsyncTOTPVerifier(_Verifier[AsyncStore | AttemptStore]):
    """Verify codes against an async store, without blocking the event loop."""

    async def verify(self, credential_id: str, totp: TOTP, code: object) -> VerifyResult:
        return await run_async(self._flow(credential_id, totp, code), self.store)
