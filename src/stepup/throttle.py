"""How long a credential must wait after failures: a pure schedule shared by every store.

A success never clears the failure count (an attacker who knows when the owner signs in
would otherwise get a fresh schedule after every sign-in). Failures are forgiven only
by time: one per ``max_delay`` of quiet after the last block ends, so forgiveness can
never hand out guesses faster than the delay cap already allows. ``docs/totp.md`` has
the arithmetic and ``tests/core/test_guessing.py`` the simulated attacks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Final

from .errors import ConfigurationError
from .records import Attempt, AttemptOutcome, ThrottleState

__all__ = [
    "ThrottlePolicy",
    "apply_attempt",
    "apply_charge",
    "apply_refund",
    "code_lifetime",
    "keep_until",
    "ledger_policy",
]

_ACCEPTED = Attempt(AttemptOutcome.ACCEPTED)  # immutable, so shared: the hot path
#: ThrottlePolicy.most_failures by policy: a loop of delay_after, worked out once.
_MOST_FAILURES: dict[ThrottlePolicy, int] = {}
#: ledger_policy's stretched policies, per (policy, seconds): few exist, and the same
#: object each time keeps the stores' per-policy caches (Redis: by identity) warm.
_LEDGER_POLICIES: dict[tuple[ThrottlePolicy, float], ThrottlePolicy] = {}


def _claimed(failures: int, blocked_until: float, step: int) -> ThrottleState:
    return ThrottleState(failures, blocked_until, step)


#: The most free failures a policy may grant: far beyond any real need (a billion typos),
#: and far inside every store's signed 64-bit counters.
_MAX_FREE: Final = 2**31 - 1


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """Bounded exponential delay per credential, across all sessions.

    The first ``free_failures`` failures cost nothing (typos happen). Each later one
    doubles the wait, from ``base_delay`` up to ``max_delay``, so no single block ever
    lasts longer than ``max_delay``. A success does *not* clear the count: failures are
    forgiven one per ``max_delay`` of quiet after the last block ends, never faster
    than the cap lets an attacker guess. With the defaults an online attacker gets at
    most 30 guesses in 30 days however they time them around the owner's sign-ins:
    below a 1 in 10,000 chance (9.002e-5) against a 6-digit code with window 1 for a
    user with one authenticator app. A guess is tried against every confirmed device of
    the user, so with N devices the chance is up to N times that (with
    ``TwoFactor``'s default ``max_devices=10``, 9.002e-4, about 1 in 1,111): keep
    ``max_devices`` small where the one-device bound matters (see ``docs/totp.md``,
    ``tests/core/test_guessing.py`` and ``tests/core/test_guessing_devices.py``).

    ``forget_after`` is only how long a store keeps a key's last accepted step (replay
    protection) after its last write; a store may drop a key once that has passed and
    every failure is forgiven (:func:`keep_until`). A TOTP ledger is never kept for less
    than its codes stay acceptable, whatever ``forget_after`` says: the verifier stretches
    a shorter one to :func:`code_lifetime` (:func:`ledger_policy`).
    """

    free_failures: int = 3
    base_delay: float = 30.0
    max_delay: float = 48 * 3600.0
    forget_after: float = 7 * 24 * 3600.0

    def __post_init__(self) -> None:
        # Typed and bounded here, once: a count every store can hold (a signed 64-bit
        # column, with room for the failures on top) and delays that are real numbers.
        free = self.free_failures
        if isinstance(free, bool) or not isinstance(free, int) or not 0 <= free <= _MAX_FREE:
            raise ConfigurationError(f"free_failures must be a whole number from 0 to {_MAX_FREE}")
        for name in ("base_delay", "max_delay", "forget_after"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigurationError(f"{name} must be a number of seconds")
            if not math.isfinite(value):
                raise ConfigurationError(f"{name} must be finite")
        if self.base_delay <= 0 or self.max_delay < self.base_delay:
            raise ConfigurationError("throttle needs 0 < base_delay <= max_delay")
        if self.forget_after <= self.max_delay:
            raise ConfigurationError("forget_after must be longer than max_delay")

    def delay_after(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th counted failure."""
        excess = failures - self.free_failures
        if excess <= 0:
            return 0.0
        if excess > 62:  # 2**62 * base overflows any sane cap: skip the arithmetic
            return self.max_delay
        return float(min(self.base_delay * (1 << (excess - 1)), self.max_delay))

    @property
    def most_failures(self) -> int:
        """The count from which every failure waits ``max_delay``; stored counts stop
        there, so an owner recovers from any attack within ``most_failures * max_delay``
        of quiet (34 days with the defaults) instead of never."""
        count = _MOST_FAILURES.get(self)
        if count is None:
            count = self.free_failures + 1
            while self.delay_after(count) < self.max_delay:
                count += 1
            if len(_MOST_FAILURES) < 64:  # few policies exist; a frozen one never changes
                _MOST_FAILURES[self] = count
        return count

    def failures_at(self, state: ThrottleState, now: float) -> int:
        """The failures still counted at ``now``: the stored count less one for each full
        ``max_delay`` since ``blocked_until`` (the end of the last block, or the time of
        the last free failure)."""
        failures = state.failures
        if failures <= 0 or state.blocked_until + failures * self.max_delay <= now:
            return 0
        if now <= state.blocked_until:
            return failures
        # floor of a true division, as the Redis script computes it
        return max(0, failures - math.floor((now - state.blocked_until) / self.max_delay))


def keep_until(state: ThrottleState, now: float, throttle: ThrottlePolicy) -> float:
    """When a store may forget ``state`` written at ``now``: not before ``forget_after``
    (the last step guards against replays) nor before every failure is forgiven."""
    keep = now + throttle.forget_after
    if state.failures:
        forgiven = state.blocked_until + state.failures * throttle.max_delay
        if forgiven > keep:
            return forgiven
    return keep


def code_lifetime(window: int, period: int) -> float:
    """How long after a write a TOTP ledger must remember its last step: ``(2 * window
    + 2) * period`` seconds.

    The verifier accepts the steps ``T - window`` to ``T + window`` (``T`` the step of
    now), so the last step accepted (or burned) at ``now`` is at most ``T + window``, and
    a code of that step or an earlier one is accepted until ``(T + 2 * window + 1) *
    period``, at most ``(2 * window + 1) * period`` after ``now``. One period more leaves
    room for app servers whose clocks differ (by less than a period) and for a store's
    rounding: a ledger kept this long can never let a code be used twice.
    """
    return float((2 * window + 2) * period)


def ledger_policy(throttle: ThrottlePolicy, window: int, period: int) -> ThrottlePolicy:
    """``throttle`` as a TOTP ledger's ``totp_attempt`` needs it: the same schedule, with
    ``forget_after`` raised to :func:`code_lifetime` when it is shorter (the default, 7
    days, never is: then ``throttle`` itself). Every flow that writes a ledger's step
    (verification, sync and async alike, and a recovery code's burn) passes this, so no
    store may forget a step while a code at or before it could still be accepted."""
    keep = code_lifetime(window, period)
    if throttle.forget_after >= keep:
        return throttle
    key = (throttle, keep)
    stretched = _LEDGER_POLICIES.get(key)
    if stretched is None:
        # forget_after > max_delay held before and grows here: the policy stays valid.
        stretched = replace(throttle, forget_after=keep)
        if len(_LEDGER_POLICIES) < 64:  # few policies exist; a frozen one never changes
            _LEDGER_POLICIES[key] = stretched
    return stretched


def apply_attempt(
    state: ThrottleState, step: int | None, now: float, throttle: ThrottlePolicy
) -> tuple[ThrottleState, Attempt]:
    """The state transition behind :meth:`AttemptStore.totp_attempt`, as a pure function.

    Stores that can run Python inside their atomic section (memory, SQL with a row
    lock or a compare-and-set) call this; others (Redis Lua) mirror it, and the
    contract suite checks every store against it. An accepted step only records the
    step: the failures and the block reference stay (a state whose failures are all
    forgiven starts over as ``(0, 0.0)``).
    """
    if now < state.blocked_until:
        return state, Attempt(AttemptOutcome.THROTTLED, state.failures, state.blocked_until)
    if step is not None and (state.last_step is None or step > state.last_step):
        failures = state.failures
        if failures and state.blocked_until + failures * throttle.max_delay > now:
            return _claimed(failures, state.blocked_until, step), _ACCEPTED
        return _claimed(0, 0.0, step), _ACCEPTED
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


def apply_refund(state: ThrottleState, charge: Attempt, at: float) -> ThrottleState:
    """The state transition behind :meth:`AttemptStore.throttle_refund`: take back the
    failure that ``charge`` (a ``REJECTED`` charge made at ``at``) counted, because the
    attempt it paid for succeeded.

    If the state is still exactly what that charge wrote, the charge is undone, block
    included (``blocked_until`` becomes ``at``: the owner's own success never leaves
    them blocked). If anyone was counted since, only the count drops by one and their
    block stands, so a guess made while the owner signs in gains nothing.
    """
    if charge.outcome is not AttemptOutcome.REJECTED or state.failures <= 0:
        return state
    failures = state.failures - 1
    written = charge.retry_at if charge.retry_at is not None else at
    if failures == 0:
        return ThrottleState(0, 0.0, state.last_step)
    if state.failures == charge.failures and state.blocked_until == written:
        return ThrottleState(failures, at, state.last_step)
    return ThrottleState(failures, state.blocked_until, state.last_step)


def _fail(
    state: ThrottleState, now: float, throttle: ThrottlePolicy, outcome: AttemptOutcome
) -> tuple[ThrottleState, Attempt]:
    failures = min(throttle.failures_at(state, now) + 1, throttle.most_failures)
    delay = throttle.delay_after(failures)
    if delay > 0:
        retry_at = now + delay
        return ThrottleState(failures, retry_at, state.last_step), Attempt(
            outcome, failures, retry_at
        )
    # A free failure still marks when it happened: forgiveness counts from there.
    return ThrottleState(failures, now, state.last_step), Attempt(outcome, failures, None)
