"""The freshness bound both SSO adapters share: the challenge's start, rounded down to
the whole second the provider's timestamps are made of, less the skew."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from stepup.adapters.idp._freshness import earliest_fresh_login

seconds = st.integers(min_value=0, max_value=4_000_000_000)
fractions = st.floats(min_value=0.0, max_value=1.0, exclude_max=True)
skews = st.integers(min_value=0, max_value=600)


@given(seconds, fractions, skews)
def test_a_login_in_the_challenge_second_is_fresh(second: int, fraction: float, skew: int) -> None:
    issued_at = second + fraction
    if math.floor(issued_at) != second:  # float rounding carried into the next second
        return
    bound = earliest_fresh_login(issued_at, skew)
    assert second >= bound  # the provider stamps a login just after the challenge so
    assert second - skew >= bound  # and one up to the skew earlier still counts
    assert second - skew - 1 < bound  # one more second earlier is before the request


@given(seconds, fractions)
def test_at_skew_0_the_second_before_is_stale(second: int, fraction: float) -> None:
    issued_at = second + fraction
    if math.floor(issued_at) != second:
        return
    assert earliest_fresh_login(issued_at, 0) == second
    assert second - 1 < earliest_fresh_login(issued_at, 0)


def test_a_fractional_skew_is_kept() -> None:
    assert earliest_fresh_login(100.75, 0.5) == 99.5
