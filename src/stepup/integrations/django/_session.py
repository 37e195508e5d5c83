"""What stepup keeps in the Django session: a session id for grants, how the user
signed in, and a sign-in that waits for its second factor."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any, Final

from ...redirects import safe_return_path_or_default
from ...subject import Identity, LoginMethod

__all__ = [
    "PendingSignIn",
    "forget",
    "identity",
    "note_sign_in",
    "pending_sign_in",
    "session_id",
    "start_pending_sign_in",
]

SID: Final = "_stepup_sid"
IDENTITY: Final = "_stepup_identity"
PENDING: Final = "_stepup_pending_sign_in"
OTP_PROOF: Final = "_stepup_otp_proof"


@dataclass(frozen=True, slots=True)
class PendingSignIn:
    """A sign-in that passed the password and waits for the second factor."""

    user_id: str
    next: str
    at: float


def session_id(session: Any) -> str:
    """A random id for this browser session, renewed at every sign-in: grants are bound
    to it, so another session never benefits from this one's re-authentication. (Not
    the session key: that is a bearer secret, and stores should not hold it.)"""
    sid = session.get(SID)
    if not isinstance(sid, str):
        sid = secrets.token_urlsafe(18)
        session[SID] = sid
    return sid


def identity(session: Any) -> Identity:
    saved = session.get(IDENTITY)
    if not isinstance(saved, dict):
        return Identity(LoginMethod.PASSWORD)
    return Identity(
        LoginMethod(saved["method"]),
        issuer=str(saved.get("issuer", "")),
        subject=str(saved.get("subject", "")),
        provider=str(saved.get("provider", "")),
    )


def note_sign_in(session: Any, signed_in_with: Identity | None) -> None:
    """A new session id (no earlier grant carries over) and how the user signed in."""
    session[SID] = secrets.token_urlsafe(18)
    session.pop(IDENTITY, None)
    if signed_in_with is not None:
        session[IDENTITY] = {
            "method": signed_in_with.method.value,
            "issuer": signed_in_with.issuer,
            "subject": signed_in_with.subject,
            "provider": signed_in_with.provider,
        }


def forget(session: Any) -> None:
    for key in (SID, IDENTITY, PENDING, OTP_PROOF):
        session.pop(key, None)


def start_pending_sign_in(session: Any, user_id: str, next_path: object, now: float) -> None:
    session[PENDING] = {
        "user_id": user_id,
        "next": safe_return_path_or_default(next_path),
        "at": now,
    }


def pending_sign_in(session: Any, now: float, ttl: float) -> PendingSignIn | None:
    """The waiting sign-in, unless it is older than ``ttl`` (or from the future)."""
    saved = session.get(PENDING)
    if not isinstance(saved, dict) or not isinstance(saved.get("at"), int | float):
        return None
    if not 0 <= now - saved["at"] <= ttl:
        session.pop(PENDING, None)
        return None
    return PendingSignIn(
        str(saved["user_id"]), safe_return_path_or_default(saved["next"]), saved["at"]
    )


def end_pending_sign_in(session: Any) -> None:
    session.pop(PENDING, None)


def note_otp_proof(session: Any, session_id: str, now: float) -> None:
    """A code proved at an SSO start view, to add ``otp`` to the grant on the way back."""
    session[OTP_PROOF] = {"session": session_id, "at": now}


def take_otp_proof(session: Any, session_id: str, now: float, ttl: float) -> bool:
    """Was a code proved by this stepup session within ``ttl``? (Used once.)"""
    proof = session.pop(OTP_PROOF, None)
    return (
        isinstance(proof, dict)
        and proof.get("session") == session_id
        and isinstance(proof.get("at"), int | float)
        and 0 <= now - proof["at"] <= ttl
    )
