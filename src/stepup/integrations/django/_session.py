"""What stepup keeps in the Django session besides the session id and identity it
shares with Flask (:mod:`stepup.integrations.views`): a sign-in that waits for its
second factor, and a code proved before an SSO trip."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any, Final

from ...redirects import safe_return_path_or_default
from ...subject import Identity
from ..transaction import PENDING_TRANSACTIONS
from ..views import (
    EARLIER_IDS,
    ENROLLING,
    OTP_PROOF,
    SESSION_ID,
    SIGNED_IN_WITH,
    FirstStep,
    is_fresh,
)

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
    """A sign-in that passed the password (or OIDC, SAML) and waits for the second factor."""

    user_id: str
    next: str
    at: float
    proved: tuple[str, ...] = ("pwd",)
    authenticated_at: float | None = None
    #: This sign-in's random id: a passkey's challenge is bound to it (and the user).
    nonce: str = field(default="", repr=False)
    #: How the user signed in (``None``: a password), as the app gave it to
    #: ``begin_sign_in``: noted for the session once the second step passed.
    identity: Identity | None = None
    #: A sign-in that came in another way than ``begin_sign_in`` (Django admin's login,
    #: another app's view) and was held for the second step: what its first step proved
    #: is unknown, so it is never recorded as a re-authentication.
    held: bool = False
    #: The authentication backend a held sign-in was made with (``None``: unknown), so
    #: the second step signs the user in with it (several ``AUTHENTICATION_BACKENDS``).
    backend: str | None = None


#: The user this session's sign-in was let stand for (see ``_request.hold_sign_in``):
#: Django keeps a session's data when ``login()`` signs the same user in again.
SIGNED_IN_AS: Final = "_stepup_signed_in_as"


def forget(session: Any) -> None:
    for key in (SESSION_ID, EARLIER_IDS, SIGNED_IN_WITH, PENDING, OTP_PROOF, ENROLLING):
        session.pop(key, None)
    session.pop(SIGNED_IN_AS, None)
    session.pop(PENDING_TRANSACTIONS, None)


def start_pending_sign_in(
    session: Any,
    user_id: str,
    next_path: object,
    now: float,
    first: FirstStep,
    *,
    held: bool = False,
    backend: str | None = None,
) -> None:
    session[PENDING] = {
        "user_id": user_id,
        "nonce": secrets.token_urlsafe(24),
        "next": safe_return_path_or_default(next_path),
        "at": now,
        "held": held,
        "backend": backend,
        **first.record(),
    }


def held_sign_in(session: Any, user_id: str, now: float, ttl: float) -> dict[str, Any] | None:
    """The session's held sign-in of ``user_id`` (see ``_request.hold_sign_in``), as it is
    kept, while it still waits; ``None`` otherwise."""
    waiting = pending_sign_in(session, now, ttl)
    if waiting is None or not waiting.held or waiting.user_id != user_id:
        return None
    saved: dict[str, Any] = session[PENDING]
    return saved


def keep_held_sign_in(session: Any, saved: dict[str, Any]) -> None:
    """Put back a held sign-in a sign-out just cleared (the same one: same nonce, next)."""
    session[PENDING] = saved


def pending_sign_in(session: Any, now: float, ttl: float) -> PendingSignIn | None:
    """The waiting sign-in, unless it is ``ttl`` seconds old or more (or from the future)."""
    saved = session.get(PENDING)
    if not isinstance(saved, dict):
        return None
    first = FirstStep.kept(saved)  # from the session only, never the request
    user_id, nonce = saved.get("user_id"), saved.get("nonce")
    if isinstance(user_id, int) and not isinstance(user_id, bool):
        user_id = str(user_id)  # a primary key an app gave begin_sign_in as it is
    if (
        first is None
        or not is_fresh(saved.get("at"), now, ttl)
        or not isinstance(user_id, str)
        or not user_id
    ):
        # Expired, or not of the shape stepup writes (another version's, or damaged):
        # a sign-in that cannot finish is gone, never a 500 at the second step.
        session.pop(PENDING, None)
        return None
    return PendingSignIn(
        user_id,
        safe_return_path_or_default(saved.get("next")),
        saved["at"],
        first.proved,
        first.authenticated_at,
        nonce if isinstance(nonce, str) else "",
        first.identity,
        saved.get("held") is not False,  # one kept before the key: held, never recorded
        backend if isinstance(backend := saved.get("backend"), str) else None,
    )


def end_pending_sign_in(session: Any) -> None:
    session.pop(PENDING, None)
