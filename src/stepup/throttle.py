"""How long a credential must wait after failures: a pure schedule shared by every store."""

from __future__ import annotations

from dataclasses import dataclass

from ._slots import slot_setters
from .records import Attempt, AttemptOutcome, ThrottleState

__all__ = ["ThrottlePolicy", "apply_attempt", "apply_charge"]

_ACCEPTED = Attempt(AttemptOutcome.ACCEPTED)  # immutable, so shared: the hot path
_failures, _blocked_until, _last_step = slot_setters(
    ThrottleState, "failures blocked_until last_step"
)


def _claimed(step: int) -> ThrottleState:
    """``ThrottleState(0, 0.0, step)``, built by its slots (see :mod:`stepup._slots`):
    every accepted code makes one."""
    state: ThrottleState = object.__new__(ThrottleState)
    _failures(state, 0), _blocked_until(state, 0.0), _last_step(state, step)
    return state


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """Bounded exponential delay per credential, across all sessions.

    The first ``free_failures`` failures cost nothing (typos happen). Each later one
    doubles the wait, from ``base_delay`` up to ``max_delay``, so the owner is never
    locked out for good. A success clears the count; so does ``forget_after`` seconds
    without any attempt. With the defaults an online attacker gets at most 30 guesses
    in 30 days: below a 1 in 10,000 chance against a 6-digit code with window 1
    (see ``docs/totp.md`` and ``tests/core/test_guessing.py``).
    """

    free_failures: int = 3
    base_delay: float = 30.0
    max_delay: float = 48 * 3600.0
    forget_after: float = 7 * 24 * 3600.0

    def __post_init__(self) -> None:
        if self.free_failures < 0 or self.base_delay <= 0 or self.max_delay < self.base_delay:
            raise ValueError("throttle needs free_failures >= 0 and 0 < base_delay <= max_delay")
        if self.forget_after <= self.max_delay:
            raise ValueError("forget_after must be longer than max_delay")

    def delay_after(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th consecutive failure."""
        excess = failures - self.free_failures
        if excess <= 0:
            return 0.0
        if excess > 62:  # 2**62 * base overflows any sane cap: skip the arithmetic
            return self.max_delay
        return float(min(self.base_delay * (1 << (excess - 1)), self.max_delay))


def apply_attempt(
    state: ThrottleState, step: int | None, now: float, throttle: ThrottlePolicy
) -> tuple[ThrottleState, Attempt]:
    """The state transition behind :meth:`AttemptStore.totp_attempt`, as a pure function.

    Stores that can run Python inside their atomic section (memory, SQL with a row
    lock or a compare-and-set) call this; others (Redis Lua) mirror it, and the
    contract suite checks every store against it.
    """
    if now < state.blocked_until:
        return state, Attempt(AttemptOutcome.THROTTLED, state.failures, state.blocked_until)
    if step is not None and (state.last_step is None or step > state.last_step):
        return _claimed(step), _ACCEPTED
    return _fail(
        state, now, throttle, AttemptOutcome.REJECTED if step is None else AttemptOutcome.REPLAYED
    )


def apply_charge(
    state: ThrottleState, now: float, throttle: ThrottlePolicy
) -> tuple[ThrottleState, Attempt]:
    """The state transition behind :meth:`AttemptStore.throttle_charge`."""
    if now < state.blocked_until:
        return state, Attempt(AttemptOutcome.THROTTLED, state.failures, state.blocked_until)
    return _fail(state, now, throttle, AttemptOutcome.REJECTED)


def _fail(
    state: ThrottleState, now: float, throttle: ThrottlePolicy, outcome: AttemptOutcome
) -> tuple[ThrottleState, Attempt]:
    failures = state.failures + 1
    delay = throttle.delay_after(failures)
    blocked_until = now + delay if delay > 0 else 0.0
    retry_at = blocked_until if delay > 0 else None
    return ThrottleState(failures, blocked_until, state.last_step), Attempt(
        outcome, failures, retry_at
    )
