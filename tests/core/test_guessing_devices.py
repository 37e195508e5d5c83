"""An online attacker against a user with several authenticator apps.

``verify`` tries a guess against every confirmed device of the user (one throttle, one
ledger), so the throttle's 30 guesses in 30 days stay 30, but each guess is right if it
is any of 3 codes of any of the N devices: the chance is up to N times one device's.
The figures asserted here are the ones ``docs/totp.md`` ("An online attacker's chance
in 30 days"), ``docs/settings.md`` and :class:`~stepup.throttle.ThrottlePolicy` quote;
change them together. The one-device figures are in ``test_guessing.py``.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from stepup.adapters.storage.memory import MemoryStore
from stepup.testing import SettableClock
from stepup.throttle import ThrottlePolicy
from stepup.totp import TOTP
from stepup.twofactor import MAX_DEVICES, TwoFactor
from stepup.verifier import VerifyReason, _match_devices

START = 1_699_999_980.0
DAY = 86_400.0
DAYS = 30
ROOT = Path(__file__).parents[2]


def code_chance(digits: int) -> float:
    """The most probability one code value has: a 31-bit number modulo 10**digits."""
    return math.ceil(2**31 / 10**digits) / 2**31


def bound(devices: int, *, guesses: int = 30, window: int = 1, digits: int = 6) -> float:
    """The documented union bound, ``30 * (2w + 1) * N * ceil(2**31 / 10**d) / 2**31``."""
    return guesses * (2 * window + 1) * devices * code_chance(digits)


def short(p: float) -> str:
    """As the docs write a probability: 4 significant digits, ``9.002e-4``."""
    mantissa, exponent = f"{p:.3e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def test_the_documented_figures_follow_from_the_defaults() -> None:
    tf = TwoFactor(MemoryStore())
    assert tf.max_devices == MAX_DEVICES == 10
    assert tf.window == 1
    assert tf.digits == 6
    assert tf.throttle == ThrottlePolicy()
    one = bound(1)
    assert round(one, 8) == 9.002e-05
    table = {n: (short(bound(n)), round(1 / bound(n))) for n in (1, 2, 3, 5, 10)}
    assert table == {
        1: ("9.002e-5", 11108),
        2: ("1.800e-4", 5554),
        3: ("2.701e-4", 3703),
        5: ("4.501e-4", 2222),
        10: ("9.002e-4", 1111),
    }
    assert bound(MAX_DEVICES) == pytest.approx(MAX_DEVICES * one)
    # Only one device stays below 1 in 10,000; each device allowed adds 9.0e-5.
    assert [n for n in range(1, MAX_DEVICES + 1) if bound(n) < 1e-4] == [1]
    # 8 digits: a hundredth (10 devices: 9.2e-6); window 0: a third.
    assert round(bound(10, digits=8), 7) == 9.2e-06
    assert bound(10, window=0) == pytest.approx(bound(10) / 3)
    # The exact chance for independent guesses is just below the bound.
    exact = 1 - (1 - 3 * MAX_DEVICES * code_chance(6)) ** 30
    assert 8.99e-4 < exact < bound(MAX_DEVICES)


def user_with_devices(count: int) -> tuple[TwoFactor, SettableClock, list[TOTP]]:
    clock = SettableClock(START)
    tf = TwoFactor(MemoryStore(), clock=clock)
    enrolment = tf.begin_enrolment("victim", "victim")
    phones = [TOTP(enrolment.secret)]
    assert tf.confirm_enrolment("victim", phones[0].at(clock())).ok
    for i in range(count - 1):
        clock.advance(30)  # each confirming code is spent on the user's ledger
        added = tf.begin_device("victim", "victim", name=f"phone {i}")
        phones.append(TOTP(added.secret))
        assert tf.confirm_device("victim", phones[-1].at(clock())).ok
    assert len(tf.devices("victim")) == count
    clock.advance(30)
    return tf, clock, phones


def accepted_now(phones: list[TOTP], now: float, window: int = 1) -> set[str]:
    return {p.code_for_step(p.step(now) + k) for p in phones for k in range(-window, window + 1)}


def test_one_guess_is_tried_against_three_codes_of_every_device() -> None:
    """What one verify call accepts with the most devices a user may have: up to 3 * N
    codes (each matched by the real matcher), so the per-guess chance is N times."""
    tf, clock, phones = user_with_devices(MAX_DEVICES)
    now = clock()
    accepting = accepted_now(phones, now)
    assert len(accepting) <= 3 * MAX_DEVICES
    assert len(accepting) > 3 * MAX_DEVICES - 3  # independent secrets: collisions are rare
    devices = [(str(i), p) for i, p in enumerate(phones)]
    for code in accepting:
        step, _ = _match_devices(devices, code, now, tf.window) or (None, "")
        assert step is not None
    # verify itself: the last device's code is one guess, and it is right.
    assert tf.verify("victim", phones[-1].at(now)).ok


def test_the_throttle_still_allows_thirty_guesses_with_every_device() -> None:
    """One throttle per user: ten devices do not buy more guesses than one, so the bound
    is the one-device guesses times the codes per guess."""
    tf, clock, phones = user_with_devices(MAX_DEVICES)
    until = clock() + DAYS * DAY
    guesses = 0
    while clock() < until:
        wrong = next(
            c
            for c in (f"{n:06d}" for n in range(1_000_000))
            if c not in accepted_now(phones, clock())
        )
        result = tf.verify("victim", wrong)
        assert result.reason is VerifyReason.INVALID, result
        guesses += 1
        if result.retry_at is not None:
            clock.set(result.retry_at)
    assert guesses == 30
    assert bound(MAX_DEVICES, guesses=guesses) == pytest.approx(9.0022e-4, rel=1e-4)


def test_the_docs_quote_the_several_device_bound() -> None:
    totp = (ROOT / "docs" / "totp.md").read_text(encoding="utf-8")
    settings = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    policy = ThrottlePolicy.__doc__ or ""
    assert "Users\n  with more devices do not get more guesses." not in totp
    for text in (totp, settings, policy):
        assert "9.002e-4" in text
        assert "1 in 1,111" in text
        assert "max_devices" in text
    for n in (1, 2, 3, 5, MAX_DEVICES):
        label = f"{n} (the default `max_devices`)" if n == MAX_DEVICES else str(n)
        assert f"| {label} | {short(bound(n))} | 1 in {round(1 / bound(n)):,} |" in totp
    assert "30 × (2w + 1) × N × ⌈2^31 / 10^d⌉ / 2^31" in totp
