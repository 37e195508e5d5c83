"""What the banner on every page says about the session's re-authentication.

The answer comes from the core: one ``check`` of a sensitive action per request. This
module only turns the decision into words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ..reauth import AllowReason, Decision, ReauthRequired, ReauthUnavailable

__all__ = ["STATUS_ACTION", "GrantStatus", "grant_status", "human_duration"]

#: A sensitive action with the installation lifetime, asked about for the banner.
STATUS_ACTION: Final = "user.update"


def human_duration(seconds: float) -> str:
    """``"5 h 59 min"``, ``"4 min"``, ``"less than a minute"``."""
    minutes = int(seconds // 60)
    if minutes < 1:
        return "less than a minute"
    hours, minutes = divmod(minutes, 60)
    if hours and minutes:
        return f"{hours} h {minutes} min"
    return f"{hours} h" if hours else f"{minutes} min"


@dataclass(frozen=True, slots=True)
class GrantStatus:
    """``state`` is ``off``, ``fresh``, ``stale`` or ``unavailable``."""

    state: str
    text: str
    seconds_left: float | None = None


def grant_status(decision: Decision, now: float) -> GrantStatus:
    if isinstance(decision, ReauthUnavailable):
        return GrantStatus("unavailable", "Re-authentication cannot be checked right now.")
    if isinstance(decision, ReauthRequired):
        text = "No recent re-authentication: sensitive actions will ask you to confirm it is you."
        if decision.last_reauth_at is not None:
            ago = human_duration(max(0.0, now - decision.last_reauth_at))
            text = f"Last re-authenticated {ago} ago: sensitive actions will ask again."
        return GrantStatus("stale", text)
    if decision.reason is AllowReason.FRESH_GRANT and decision.valid_until is not None:
        left = max(0.0, decision.valid_until - now)
        text = f"Re-authenticated: sensitive actions allowed for {human_duration(left)} more."
        return GrantStatus("fresh", text, left)
    return GrantStatus("off", "Re-authentication for sensitive actions is off for this tenant.")
