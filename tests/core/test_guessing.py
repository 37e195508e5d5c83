"""An online attacker against the default throttle, simulated on a settable clock.

The numbers asserted here are the ones ``docs/totp.md`` quotes; change both together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from stepup.adapters.storage.memory import MemoryStore
from stepup.testing import SettableClock
from stepup.throttle import ThrottlePolicy
from stepup.totp import TOTP, generate_secret
from stepup.verifier import TOTPVerifier, VerifyReason

START = 1_699_999_980.0
DAY = 86_400.0
DAYS = 30
WINDOW = 1
# A 6-digit HOTP value is (31-bit number) mod 10**6, so one value is hit by at most
# ceil(2**31 / 10**6) = 2148 of the 2**31 numbers: a hair above 1 in a million.
P_CODE = math.ceil(2**31 / 10**6) / 2**31
P_GUESS = (2 * WINDOW + 1) * P_CODE  # a guess matches if it equals any code in the window

# What the defaults allow in 30 days (see docs/totp.md for the arithmetic).
EXPECTED_GUESSES = 30
EXPECTED_GUESSES_WITH_DAILY_OWNER = 420


def wrong_code(totp: TOTP, at: float) -> str:
    """A code that is wrong at ``at``: the attacker's guesses all miss, so we can count them."""
    valid = {totp.code_for_step(totp.step(at) + d) for d in range(-WINDOW, WINDOW + 1)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in valid)


@dataclass
class Attack:
    evaluated: int = 0  # guesses the verifier actually checked (each a chance to win)
    throttled: int = 0  # guesses refused unseen
    longest_block: float = 0.0


def attack(verifier: TOTPVerifier, totp: TOTP, clock: SettableClock, until: float) -> Attack:
    """Guess as fast as the throttle allows; also knock during every block."""
    stats = Attack()
    while clock() < until:
        result = verifier.verify("victim", totp, wrong_code(totp, clock()))
        assert result.reason is VerifyReason.INVALID, result
        stats.evaluated += 1
        if result.retry_at is None:
            continue  # a free failure: guess again at once
        block = result.retry_at - clock()
        stats.longest_block = max(stats.longest_block, block)
        # Knocking while blocked (even with the right code) is refused and changes nothing.
        for fraction in (0.0, 0.5, 0.999):
            clock.set(result.retry_at - block * (1 - fraction))
            knock = verifier.verify("victim", totp, totp.at(clock()))
            assert knock.reason is VerifyReason.THROTTLED
            assert knock.retry_at == result.retry_at
            stats.throttled += 1
        clock.set(result.retry_at)
    return stats


def success_probability(guesses: int) -> tuple[float, float]:
    """(exact chance that at least one of ``guesses`` independent guesses hits, union bound)."""
    return 1 - (1 - P_GUESS) ** guesses, guesses * P_GUESS


def test_thirty_days_of_guessing_stay_below_one_in_ten_thousand() -> None:
    policy = ThrottlePolicy()
    clock = SettableClock(START)
    store = MemoryStore()
    verifier = TOTPVerifier(store, clock=clock, window=WINDOW, throttle=policy)
    totp = TOTP(generate_secret())

    stats = attack(verifier, totp, clock, until=START + DAYS * DAY)

    assert stats.evaluated == EXPECTED_GUESSES
    exact, union = success_probability(stats.evaluated)
    assert exact <= union < 1e-4
    assert round(union, 8) == 9.002e-05
    # The owner is never shut out for longer than max_delay, however long the attack.
    assert stats.longest_block == policy.max_delay
    assert stats.throttled == 3 * (EXPECTED_GUESSES - policy.free_failures)

    # The owner gets in as soon as the current block ends, and that success resets the count.
    assert verifier.verify("victim", totp, totp.at(clock())).ok
    assert store.throttle_state("victim").failures == 0
    for _ in range(policy.free_failures):
        assert verifier.verify("victim", totp, wrong_code(totp, clock())).retry_at is None
    assert verifier.verify("victim", totp, wrong_code(totp, clock())).retry_at == (
        clock() + policy.base_delay
    )


def test_guess_count_matches_the_schedule_in_closed_form() -> None:
    """Failures 1..free cost nothing; then 30 s doubling to the 48 h cap."""
    policy = ThrottlePolicy()
    elapsed, guesses = 0.0, 0
    while elapsed < DAYS * DAY:
        guesses += 1
        elapsed += policy.delay_after(guesses)
    # 3 free + 13 doubling delays (30 s .. 122,880 s, 245,730 s in all) + 14 at 48 h.
    assert sum(policy.delay_after(n) for n in range(1, 17)) == 30 * (2**13 - 1)
    assert guesses == EXPECTED_GUESSES


def test_a_daily_sign_in_by_the_owner_resets_the_count_known_limit() -> None:
    """Known limit (docs/totp.md): success resets the count, so an attacker who knows
    when the owner signs in gets a fresh schedule every day. This pins the number."""
    policy = ThrottlePolicy()
    clock = SettableClock(START)
    verifier = TOTPVerifier(MemoryStore(), clock=clock, window=WINDOW, throttle=policy)
    totp = TOTP(generate_secret())
    evaluated = 0
    for day in range(DAYS):
        sign_in = START + day * DAY
        clock.set(sign_in)
        assert verifier.verify("victim", totp, totp.at(clock())).ok  # never throttled
        failures = 0
        # Guess while the block each guess causes ends before tomorrow's sign-in.
        while clock() + policy.delay_after(failures + 1) < sign_in + DAY:
            result = verifier.verify("victim", totp, wrong_code(totp, clock()))
            assert result.reason is VerifyReason.INVALID
            failures += 1
            evaluated += 1
            if result.retry_at is not None:
                clock.set(result.retry_at)
    assert evaluated == EXPECTED_GUESSES_WITH_DAILY_OWNER
    exact, union = success_probability(evaluated)
    assert 1e-3 < exact < union < 1.3e-3


@given(failures=st.integers(0, 10**12))
def test_no_failure_count_locks_the_owner_out_beyond_max_delay(failures: int) -> None:
    policy = ThrottlePolicy()
    assert 0.0 <= policy.delay_after(failures) <= policy.max_delay


@given(
    free=st.integers(0, 10),
    base=st.floats(1.0, 3600.0),
    factor=st.floats(1.0, 10_000.0),
    failures=st.integers(0, 200),
)
def test_delays_never_shrink_and_are_capped(
    free: int, base: float, factor: float, failures: int
) -> None:
    policy = ThrottlePolicy(free, base, base * factor, forget_after=base * factor * 2 + 1)
    assert policy.delay_after(failures) <= policy.delay_after(failures + 1) <= policy.max_delay
