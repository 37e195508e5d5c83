"""An online attacker against TOTP while the owner signs in with recovery codes.

docs/totp.md, "Guessing and the throttle": the attacker's budget (30 guesses in 30 days
with the defaults) is set by the delay schedule alone, whatever the owner does. Someone
guessing as fast as the throttle allows keeps the owner's codes blocked, and the docs
tell that owner to use a recovery code: so a recovery code must not clear the TOTP
failures (it did, and each one handed the attacker the free guesses and short waits
again, as "a success resets" did before issue 12).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from stepup.sealing import SecretBox
from stepup.testing import SettableClock
from stepup.totp import TOTP
from stepup.twofactor import TwoFactor
from stepup.verifier import VerifyReason
from store_kinds import STORE_KINDS, open_store

START = 1_699_999_980.0
DAY = 86_400.0
DAYS = 30
#: What the defaults allow in 30 days, whatever anyone does (docs/totp.md).
EXPECTED_GUESSES = 30
KEY = bytes(range(32))


@pytest.fixture
def tf(make_two_factor: Callable[..., Any]) -> Any:
    return functools.partial(make_two_factor, issuer="Acme")(
        box=SecretBox({"k1": KEY}, current="k1")
    )


def wrong_code(totp: TOTP, at: float) -> str:
    step = totp.step(at)
    valid = {totp.code_for_step(step + d) for d in (-1, 0, 1)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in valid)


def test_the_owners_recovery_codes_give_a_guesser_no_more_guesses(
    tf: Any, clock: SettableClock
) -> None:
    """The attacker guesses whenever allowed for 30 days; the owner, blocked, signs in
    with a recovery code every morning (making new codes when the ten are used up)."""
    clock.set(START)
    enrolment = tf.begin_enrolment("alice", "alice@example.com")
    totp = TOTP(enrolment.secret)
    codes = list(tf.confirm_enrolment("alice", totp.at(clock())).recovery_codes)
    clock.advance(30)
    guesses = 0
    for day in range(DAYS):
        morning = START + day * DAY
        clock.set(max(clock(), morning))
        if not codes:
            codes = list(tf.regenerate_recovery_codes("alice"))
        assert tf.use_recovery_code("alice", codes.pop()).ok
        while clock() < morning + DAY:
            result = tf.verify("alice", wrong_code(totp, clock()))
            if result.reason is VerifyReason.INVALID:
                guesses += 1
            else:
                assert result.reason is VerifyReason.THROTTLED
            if result.retry_at is not None:
                clock.set(min(max(clock(), result.retry_at), morning + DAY))
    assert guesses <= EXPECTED_GUESSES


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_every_store_keeps_the_failures_and_refunds_only_the_burns_own(
    kind: str, tmp_path: Path
) -> None:
    """Through each real store: a recovery code keeps the failures counted before it,
    burns the window, and, when the window was claimed already (the burn a replay),
    takes back the one failure that burn counted."""
    clock = SettableClock(START)
    with open_store(kind, tmp_path) as store:
        tf = TwoFactor(store, clock=clock, box=SecretBox({"k1": KEY}, current="k1"))
        enrolment = tf.begin_enrolment("alice", "alice@example.com")
        totp = TOTP(enrolment.secret)
        codes = tf.confirm_enrolment("alice", totp.at(clock())).recovery_codes
        clock.advance(30)
        credential = store.get_credential("alice")
        assert credential is not None
        for _ in range(2):  # free failures: counted, not blocked
            assert tf.verify("alice", wrong_code(totp, clock())).reason is VerifyReason.INVALID
        step = totp.step(clock())
        assert tf.use_recovery_code("alice", codes[0]).ok
        state = store.throttle_state(credential.credential_id)
        assert (state.failures, state.last_step) == (2, step + 1)
        assert tf.use_recovery_code("alice", codes[1]).ok  # the same window: a replay
        state = store.throttle_state(credential.credential_id)
        assert (state.failures, state.last_step) == (2, step + 1)
