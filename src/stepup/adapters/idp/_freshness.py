"""When a provider's login counts as fresh: after the challenge, at the provider's resolution.

OIDC ``auth_time`` is a whole number of seconds (a NumericDate) and SAML ``AuthnInstant``
is in practice whole seconds too, while the challenge's start time carries fractions.
A login that happened in the same second as the challenge, just after it, is stamped
with that second, which is earlier than the fractional start. So the start is rounded
down to its whole second before the comparison: the provider cannot say more, and
refusing it would refuse an honest, fresh login whenever ``max_skew`` is 0.
"""

from __future__ import annotations

import math

__all__ = ["earliest_fresh_login"]


def earliest_fresh_login(challenge_issued_at: float, max_skew: float) -> float:
    """The earliest provider login time that counts as made for this challenge.

    A login time below this value is stale; one at or above it is fresh.
    """
    return math.floor(challenge_issued_at) - max_skew
