"""What stepup keeps in the Django session besides the session id and identity it
shares with Flask (:mod:`stepup.integrations.views`): a sign-in that waits for its
second factor, and a code proved before an SSO trip."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any, Final

from ...redirects import safe_return_path_or_default
from ..transaction import PENDING_TRANSACTIONS
from ..views import EARLIER_IDS, OTP_PROOF, SESSION_ID, SIGNED_IN_WITH, is_fresh

__all__ = [
    "PendingSignIn",
    "end_pending_sign_in",
    "forget",
    "pending_sign_in",
    "start_pending_sign_in",
]

PENDING: Final = "_stepup_pending_sign_in"


@dataclass(frozen=True, slots=True)
class PendingSignIn:
    """A sign-in that passed the password and waits for the second factor."""

    user_id: str
    next: str
    at: float
    proved: tuple[str, ...] = ("pwd",)
    authenticated_at: float | None = None
    #: This sign-in's random id: a passkey's challenge is bound to it (and the user).
    nonce: str = field(default="", repr=False)


def forget(session: Any) -> None:
    for key in (SESSION_ID, EARLIER_IDS, SIGNED_IN_WITH, PENDING, OTP_PROOF):
        session.pop(key, None)
    session.pop(PENDING_TRANSACTIONS, None)


def start_pending_sign_in(
    session: Any,
    user_id: str,
    next_path: object,
    now: float,
    proved: tuple[str, ...] = ("pwd",),
    authenticated_at: float | None = None,
) -> None:
    session[PENDING] = {
        "user_id": user_id,
        "nonce": secrets.token_urlsafe(24),
        "next": safe_return_path_or_default(next_path),
        "at": now,
        "proved": list(proved),
        "authenticated_at": authenticated_at,
    }


def pending_sign_in(session: Any, now: float, ttl: float) -> PendingSignIn | None:
    """The waiting sign-in, unless it is ``ttl`` seconds old or more (or from the future)."""
    saved = session.get(PENDING)
    if not isinstance(saved, dict):
        return None
    if not is_fresh(saved.get("at"), now, ttl):
        session.pop(PENDING, None)
        return None
    proved = saved.get("proved")
    at = saved.get("authenticated_at")
    nonce = saved.get("nonce")
    return PendingSignIn(
        str(saved["user_id"]),
        safe_return_path_or_default(saved["next"]),
        saved["at"],
        tuple(str(m) for m in proved) if isinstance(proved, list) and proved else ("pwd",),
        float(at) if isinstance(at, int | float) and not isinstance(at, bool) else None,
        nonce if isinstance(nonce, str) else "",
    )


def end_pending_sign_in(session: Any) -> None:
    session.pop(PENDING, None)
