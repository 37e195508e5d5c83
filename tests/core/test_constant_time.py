"""The window comparison does the same work whether and wherever the code matches."""

from __future__ import annotations

import hmac

import pytest

from stepup.totp import TOTP

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
AT = 1_699_999_980.0 + 7


class Counting:
    """Counts code computations and constant-time comparisons during ``match``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.steps: list[int] = []
        self.compared: list[tuple[bytes, bytes]] = []
        real_codes, real_compare = TOTP._codes, hmac.compare_digest

        def codes(totp: TOTP, first: int, stop: int) -> list[bytes]:
            made = real_codes(totp, first, stop)
            assert len(made) == stop - first
            self.steps.extend(range(first, stop))
            return made

        def compare(a: bytes, b: bytes) -> bool:
            self.compared.append((a, b))
            return real_compare(a, b)

        monkeypatch.setattr(TOTP, "_codes", codes)
        monkeypatch.setattr(hmac, "compare_digest", compare)


@pytest.mark.parametrize("window", [0, 1, 2, 5])
def test_every_step_is_computed_and_compared_wherever_the_code_is(
    monkeypatch: pytest.MonkeyPatch, window: int
) -> None:
    totp = TOTP(SECRET)
    current = totp.step(AT)
    window_steps = list(range(current - window, current + window + 1))
    candidates = {f"step {s - current:+d}": totp.code_for_step(s) for s in window_steps}
    candidates["no match"] = next(
        c for c in (f"{n:06d}" for n in range(10**6)) if c not in candidates.values()
    )
    counting = Counting(monkeypatch)
    for label, code in candidates.items():
        counting.steps.clear()
        counting.compared.clear()
        matched = totp.match(code, AT, window)
        expected = None if label == "no match" else window_steps[list(candidates).index(label)]
        assert matched == expected, label
        assert counting.steps == window_steps, f"{label}: computed {counting.steps}"
        assert len(counting.compared) == len(window_steps), label
        assert all(b == code.encode() for _, b in counting.compared)


def test_first_step_match_still_computes_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    """An early exit would stop after the first step; the count shows it does not."""
    totp = TOTP(SECRET)
    earliest = totp.code_for_step(totp.step(AT) - 1)
    counting = Counting(monkeypatch)
    assert totp.match(earliest, AT, 3) == totp.step(AT) - 1
    assert len(counting.steps) == 7
    assert len(counting.compared) == 7


def test_window_is_clipped_at_the_epoch() -> None:
    totp = TOTP(SECRET)
    assert totp.match(totp.code_for_step(0), 5.0, 1) == 0
    assert totp.match(totp.code_for_step(1), 5.0, 1) == 1
    assert totp.match(totp.code_for_step(2), 5.0, 1) is None


# A key whose codes for two consecutive steps collide (found by search; about 1 in 10**6).
COLLIDING_KEY = b"stepup collision search key!"
COLLIDING_STEP = 57_089_459  # code(COLLIDING_STEP) == code(COLLIDING_STEP + 1) == "617275"


def test_colliding_codes_match_the_step_nearest_now() -> None:
    totp = TOTP.from_key(COLLIDING_KEY)
    first, second = COLLIDING_STEP, COLLIDING_STEP + 1
    assert totp.code_for_step(first) == totp.code_for_step(second) == "617275"
    assert totp.match("617275", first * 30, 1) == first  # T beats T+1
    assert totp.match("617275", second * 30, 1) == second  # T beats T-1
    assert totp.match("617275", (first - 1) * 30, 1) == first  # only T+1 is in the window
    assert totp.match("617275", (second + 1) * 30, 1) == second  # T-1 beats T-2 (outside)
    assert totp.match("617275", (second + 1) * 30, 2) == second  # T-1 beats T-2
