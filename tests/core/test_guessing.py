"""Online attackers against the default throttle, simulated on a settable clock.

Issue 12 item 8: a success does not reset the failure count, so the attacker's budget is
set by the delay schedule alone, whenever the owner signs in. Three attacker models are
run against the real verifier (and password re-authentication) on a memory store:

- continuous: guess whenever the throttle allows;
- between the owner's daily sign-ins: the owner signs in every morning, the attacker
  guesses as often as allowed, or (the old exploit) only while the block a guess would
  cause ends before the next sign-in;
- any timing at all: an exhaustive search over the pure transition, which also covers
  waiting out quiet periods for forgiveness and guessing in bursts.

The numbers asserted here are the ones ``docs/totp.md`` quotes; change both together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from hypothesis import given
from hypothesis import strategies as st

from stepup.adapters.idp.password import (
    CHEAPEST,
    PasswordReason,
    PasswordReauth,
    hash_password,
    throttle_key,
)
from stepup.adapters.storage.memory import MemoryStore
from stepup.records import Attempt, ThrottleState
from stepup.testing import SettableClock
from stepup.throttle import ThrottlePolicy, apply_charge
from stepup.totp import TOTP, generate_secret
from stepup.verifier import TOTPVerifier, VerifyReason

START = 1_699_999_980.0
HOUR = 3_600.0
DAY = 86_400.0
DAYS = 30
WINDOW = 1
# A 6-digit HOTP value is (31-bit number) mod 10**6, so one value is hit by at most
# ceil(2**31 / 10**6) = 2148 of the 2**31 numbers: a hair above 1 in a million.
P_CODE = math.ceil(2**31 / 10**6) / 2**31
P_GUESS = (2 * WINDOW + 1) * P_CODE  # a guess matches if it equals any code in the window

# What the defaults allow in 30 days, whatever the attacker does (see docs/totp.md).
EXPECTED_GUESSES = 30


def wrong_code(totp: TOTP, at: float) -> str:
    """A code that is wrong at ``at``: the attacker's guesses all miss, so we can count them."""
    valid = {totp.code_for_step(totp.step(at) + d) for d in range(-WINDOW, WINDOW + 1)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in valid)


def success_probability(guesses: int) -> tuple[float, float]:
    """(exact chance that at least one of ``guesses`` independent guesses hits, union bound)."""
    return 1 - (1 - P_GUESS) ** guesses, guesses * P_GUESS


@dataclass
class Outcome:
    guesses: int = 0  # guesses the verifier actually checked (each a chance to win)
    throttled: int = 0  # guesses refused unseen
    longest_block: float = 0.0  # the longest single block any guess started
    owner_sign_ins: int = 0
    owner_waits: list[float] = field(default_factory=list)  # how long each sign-in waited


class Simulation:
    """One credential, its owner and an attacker, on one settable clock."""

    def __init__(self, policy: ThrottlePolicy) -> None:
        self.policy = policy
        self.clock = SettableClock(START)
        self.store = MemoryStore()
        self.verifier = TOTPVerifier(self.store, clock=self.clock, window=WINDOW, throttle=policy)
        self.totp = TOTP(generate_secret())
        self.outcome = Outcome()
        self.owner_step = -1

    def guess(self) -> float | None:
        """One wrong guess now; knocks (even with the right code) during the block it
        starts are refused unseen. Returns when the attacker may guess again."""
        result = self.verifier.verify("victim", self.totp, wrong_code(self.totp, self.clock()))
        assert result.reason is VerifyReason.INVALID, result
        self.outcome.guesses += 1
        if result.retry_at is None:
            return None
        block = result.retry_at - self.clock()
        self.outcome.longest_block = max(self.outcome.longest_block, block)
        for fraction in (0.5, 0.999):
            at = self.clock() + block * fraction
            knock = self.verifier.verify("victim", self.totp, self.totp.at(at))
            assert knock.reason is VerifyReason.THROTTLED
            assert knock.retry_at == result.retry_at
            self.outcome.throttled += 1
        return result.retry_at

    def sign_in(self) -> None:
        """The owner signs in now, or as soon as the block they meet ends (and, like a
        person, waits for a fresh code rather than typing the one they just used)."""
        wanted = self.clock()
        result = self.verifier.verify("victim", self.totp, self.totp.at(self._fresh()))
        if result.reason is VerifyReason.THROTTLED:
            assert result.retry_at is not None
            self.clock.set(result.retry_at)
            result = self.verifier.verify("victim", self.totp, self.totp.at(self._fresh()))
        assert result.ok, result
        self.owner_step = self.totp.step(self.clock())
        self.outcome.owner_sign_ins += 1
        self.outcome.owner_waits.append(self.clock() - wanted)

    def _fresh(self) -> float:
        if self.totp.step(self.clock()) <= self.owner_step:
            self.clock.set((self.owner_step + 1) * self.totp.period)
        return self.clock()


def continuous(sim: Simulation, until: float) -> Outcome:
    while sim.clock() < until:
        retry_at = sim.guess()
        if retry_at is not None:
            sim.clock.set(retry_at)
    return sim.outcome


def around_daily_sign_ins(sim: Simulation, until: float, *, stop_before_sign_in: bool) -> Outcome:
    """The owner signs in every day at START + k days; in between the attacker guesses
    whenever allowed, or (``stop_before_sign_in``, the exploit of a resetting throttle)
    only while the block a guess would cause ends before the next sign-in."""
    for day in range(DAYS):
        sign_in = START + day * DAY
        sim.clock.set(max(sim.clock(), sign_in))
        sim.sign_in()
        next_sign_in = min(sign_in + DAY, until)
        while sim.clock() < next_sign_in:
            if stop_before_sign_in:
                state = sim.store.throttle_state("victim")
                counted = sim.policy.failures_at(state, sim.clock()) + 1
                if sim.clock() + sim.policy.delay_after(counted) >= next_sign_in:
                    break
            retry_at = sim.guess()
            if retry_at is not None:
                if retry_at >= next_sign_in:
                    break  # the owner comes first tomorrow, and meets this block
                sim.clock.set(retry_at)
    return sim.outcome


def assert_below_one_in_ten_thousand(guesses: int) -> None:
    exact, union = success_probability(guesses)
    assert exact <= union < 1e-4


def test_continuous_guessing_for_thirty_days() -> None:
    policy = ThrottlePolicy()
    sim = Simulation(policy)
    outcome = continuous(sim, until=START + DAYS * DAY)
    assert outcome.guesses == EXPECTED_GUESSES
    assert_below_one_in_ten_thousand(outcome.guesses)
    assert round(success_probability(outcome.guesses)[1], 8) == 9.002e-05
    assert outcome.longest_block == policy.max_delay
    assert outcome.throttled == 2 * (EXPECTED_GUESSES - policy.free_failures)
    # The owner gets in as soon as the current block ends.
    sim.sign_in()
    assert sim.outcome.owner_waits == [0.0]


def test_guessing_between_the_owners_daily_sign_ins() -> None:
    """The owner's sign-ins no longer hand out fresh free guesses: 420 guesses in 30 days
    (a 1 in 794 chance) before issue 12, the schedule's 30 at most now."""
    for stop_before_sign_in in (False, True):
        policy = ThrottlePolicy()
        outcome = around_daily_sign_ins(
            Simulation(policy), START + DAYS * DAY, stop_before_sign_in=stop_before_sign_in
        )
        assert outcome.guesses <= EXPECTED_GUESSES
        assert_below_one_in_ten_thousand(outcome.guesses)
        assert outcome.owner_sign_ins == DAYS
        # Someone else's guessing never keeps the owner out longer than max_delay at a time.
        assert max(outcome.owner_waits) <= policy.max_delay
        assert outcome.longest_block <= policy.max_delay
    # Greedy guessing does make the owner wait (that is the trade-off, docs/totp.md).
    assert max(outcome.owner_waits) == 0.0  # the cautious attacker never blocks them
    greedy = around_daily_sign_ins(
        Simulation(ThrottlePolicy()), START + DAYS * DAY, stop_before_sign_in=False
    )
    assert greedy.guesses == EXPECTED_GUESSES
    assert 0 < max(greedy.owner_waits) <= ThrottlePolicy().max_delay


def most_guesses(policy: ThrottlePolicy, horizon: float) -> int:
    """The most guesses any attacker can have evaluated within ``horizon`` of a fresh
    state, by exhaustive search over the pure transition.

    After a guess the only choice that matters is how many whole ``max_delay`` periods
    of forgiveness to wait past the block's end: any other wait is later and forgives no
    more. For each (guesses made, failures counted) only the earliest block end is kept,
    as a later one can only do less within the horizon. The owner's sign-ins change
    nothing the attacker can use (they neither clear nor forgive)."""
    earliest: dict[tuple[int, int], float] = {(0, 0): 0.0}
    most = 0
    frontier = dict(earliest)
    while frontier:
        following: dict[tuple[int, int], float] = {}
        for (guesses, failures), blocked_until in frontier.items():
            state = ThrottleState(failures, blocked_until)
            for periods in range(failures + 1):
                at = blocked_until + periods * policy.max_delay
                if at >= horizon:
                    break
                after, _ = apply_charge(state, at, policy)
                key = (guesses + 1, after.failures)
                end = max(after.blocked_until, at)
                if end < following.get(key, math.inf):
                    following[key] = end
                most = max(most, guesses + 1)
        frontier = following
    return most


def test_no_timing_of_guesses_beats_the_schedule() -> None:
    """Bursts after waiting out forgiveness included: a failure is forgiven only per
    max_delay of quiet, so waiting buys no more than guessing at the cap would."""
    policy = ThrottlePolicy()
    assert most_guesses(policy, DAYS * DAY) == EXPECTED_GUESSES
    assert_below_one_in_ten_thousand(most_guesses(policy, DAYS * DAY))


def test_a_forgiveness_that_resets_after_a_quiet_week_would_not_do() -> None:
    """Why failures are forgiven one at a time: a whole reset after 7 quiet days (the
    simpler rule) lets an attacker burst, wait a week, and burst again."""
    policy = ThrottlePolicy()
    week = 7 * DAY

    def bursts(size: int) -> int:
        now, guesses = 0.0, 0
        while now < DAYS * DAY:
            for failures in range(1, size + 1):
                if now >= DAYS * DAY:
                    break
                guesses += 1
                now += policy.delay_after(failures)
            now += week
        return guesses

    best = max(bursts(size) for size in range(1, 40))
    assert best == 65  # docs/totp.md
    assert success_probability(best)[1] > 1e-4
    # A 24 h cap would not do either: the steady rate has to be about one guess in 48 h.
    assert most_guesses(ThrottlePolicy(max_delay=DAY), DAYS * DAY) == 44


def test_the_owner_recovers_from_any_attack_after_a_bounded_quiet() -> None:
    """Counts stop at most_failures, so after the longest attack the owner's own typo
    costs nothing again after most_failures * max_delay of quiet (34 days)."""
    policy = ThrottlePolicy()
    assert policy.most_failures == 17
    sim = Simulation(policy)
    continuous(sim, until=START + 90 * DAY)
    state = sim.store.throttle_state("victim")
    assert state.failures == policy.most_failures
    quiet = state.blocked_until + policy.most_failures * policy.max_delay
    assert quiet - state.blocked_until == 34 * DAY
    sim.clock.set(quiet)
    assert sim.verifier.verify("victim", sim.totp, wrong_code(sim.totp, quiet)).retry_at is None


# password re-authentication -----------------------------------------------------------

PASSWORD = "correct horse battery staple"


def password_simulation(policy: ThrottlePolicy, *, daily_owner: bool) -> tuple[int, float]:
    """(wrong passwords evaluated in 30 days, the owner's longest wait). The attacker
    guesses whenever allowed; the owner (if any) re-authenticates every day, first when
    both come at the same moment."""
    clock = SettableClock(START)
    hasher = PasswordHasher.from_parameters(CHEAPEST)
    reauth = PasswordReauth(MemoryStore(), hasher=hasher, clock=clock, throttle=policy)
    stored = hash_password(PASSWORD, hasher=hasher)
    until = START + DAYS * DAY
    guesses, longest_wait = 0, 0.0
    attacker_at, owner_at = START, START if daily_owner else math.inf
    while min(attacker_at, owner_at) < until:
        if owner_at <= attacker_at:
            clock.set(owner_at)
            result = reauth.verify("victim", PASSWORD, stored)
            if result.reason is PasswordReason.THROTTLED:
                assert result.retry_at is not None
                clock.set(result.retry_at)
                result = reauth.verify("victim", PASSWORD, stored)
            assert result.ok
            longest_wait = max(longest_wait, clock() - owner_at)
            owner_at += DAY
            continue
        clock.set(attacker_at)
        result = reauth.verify("victim", f"guess {guesses}", stored)
        assert result.reason is PasswordReason.WRONG_PASSWORD
        guesses += 1
        if result.retry_at is not None:
            assert result.retry_at - clock() <= policy.max_delay
            attacker_at = result.retry_at
    return guesses, longest_wait


def test_password_guessing_has_the_same_budget() -> None:
    """A password success refunds its own charge and nothing more: the owner's daily
    re-authentication leaves the attacker exactly the continuous budget."""
    policy = ThrottlePolicy()
    alone, _ = password_simulation(policy, daily_owner=False)
    with_owner, longest_wait = password_simulation(policy, daily_owner=True)
    assert alone == with_owner == EXPECTED_GUESSES
    assert 0 < longest_wait <= policy.max_delay


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
    assert policy.delay_after(policy.most_failures) == policy.max_delay


@given(
    failures=st.integers(0, 40),
    blocked_until=st.floats(0, 1e6),
    later=st.floats(0, 1e8),
)
def test_forgiveness_is_one_failure_per_max_delay(
    failures: int, blocked_until: float, later: float
) -> None:
    policy = ThrottlePolicy(free_failures=1, base_delay=1.0, max_delay=100.0, forget_after=101.0)
    state, now = ThrottleState(failures, blocked_until), blocked_until + later
    counted = policy.failures_at(state, now)
    assert 0 <= counted <= failures
    periods = (now - blocked_until) / policy.max_delay
    if abs(periods - round(periods)) > 1e-9:  # away from a boundary, where rounding decides
        assert counted == max(0, failures - math.floor(periods))
    # A success never changes what is counted; only time does.
    assert policy.failures_at(ThrottleState(failures, blocked_until, 5), now) == counted


def test_a_guess_made_while_the_owner_signs_in_gains_nothing() -> None:
    """Forced interleaving: an attacker's guess runs between the owner's charge and the
    refund of that charge. The refund takes back the owner's failure only; the block the
    guess earned stands, so the attacker is no better off than without the owner."""
    policy = ThrottlePolicy()
    clock = SettableClock(START)
    hasher = PasswordHasher.from_parameters(CHEAPEST)
    stored = hash_password(PASSWORD, hasher=hasher)
    answers = []

    class GuessDuringRefund(MemoryStore):
        def throttle_refund(self, key: str, charge: Attempt, at: float) -> None:
            if not answers:
                answers.append(attacker.verify("victim", "a guess", stored))
            super().throttle_refund(key, charge, at)

    store = GuessDuringRefund()
    owner = PasswordReauth(store, hasher=hasher, clock=clock, throttle=policy)
    attacker = PasswordReauth(store, hasher=hasher, clock=clock, throttle=policy)
    for _ in range(policy.free_failures - 1):  # two typos of the owner's
        assert owner.verify("victim", "typo", stored).retry_at is None
    assert owner.verify("victim", PASSWORD, stored).ok
    (guess,) = answers
    assert guess.reason is PasswordReason.WRONG_PASSWORD
    assert guess.retry_at == START + policy.base_delay  # the fourth failure counted
    state = store.throttle_state(throttle_key("victim"))
    assert (state.failures, state.blocked_until) == (policy.free_failures, guess.retry_at)
    clock.advance(1)
    assert attacker.verify("victim", "another", stored).reason is PasswordReason.THROTTLED
