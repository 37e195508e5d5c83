"""What stepup keeps in the Django session besides the session id and identity it
shares with Flask (:mod:`stepup.integrations.views`): a sign-in that waits for its
second factor, and a code proved before an SSO trip.

A waiting sign-in is kept in the store too (:func:`~stepup.integrations.views.
hold_waiting_sign_in`), so that it completes once: with
``SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"`` the session is
the cookie, and a copy kept while the sign-in waited would finish it again."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from ..._flow import run
from ...clock import Clock
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
    abandon_waiting_sign_in,
    hold_waiting_sign_in,
    is_fresh,
    kept_user_id,
    take_waiting_sign_in,
)


class WaitingSignInStore(Protocol):
    """What keeping and spending a waiting sign-in reads of the services (the services
    module sits above this one: it is not imported here)."""

    @property
    def store(self) -> Any: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def sign_in_ttl(self) -> float: ...


__all__ = [
    "KEEPS_WAITING",
    "PendingSignIn",
    "drop_waiting_sign_in",
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
#: Set on the request while ``_request.hold_sign_in`` signs out a sign-in it holds
#: again: its ``user_logged_out`` keeps the waiting sign-in's record in the store.
KEEPS_WAITING: Final = "_stepup_keeps_waiting_sign_in"


def forget(session: Any) -> None:
    for key in (SESSION_ID, EARLIER_IDS, SIGNED_IN_WITH, PENDING, OTP_PROOF, ENROLLING):
        session.pop(key, None)
    session.pop(SIGNED_IN_AS, None)
    session.pop(PENDING_TRANSACTIONS, None)


def start_pending_sign_in(
    session: Any,
    services: WaitingSignInStore,
    user_id: str,
    next_path: object,
    now: float,
    first: FirstStep,
    *,
    held: bool = False,
    backend: str | None = None,
) -> None:
    """Let the sign-in of ``user_id`` wait for its second factor: in the store first
    (single use: the session can be a cookie, and a cookie can be copied), then in the
    session. It replaces the session's waiting sign-in, which is spent. A store outage
    raises and nothing waits (fail closed)."""
    drop_waiting_sign_in(session, services)  # a new sign-in replaces it
    nonce = secrets.token_urlsafe(24)
    run(hold_waiting_sign_in(str(user_id), nonce, now, services.sign_in_ttl), services.store)
    session[PENDING] = {
        "user_id": user_id,
        "nonce": nonce,
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
    user_id, nonce = kept_user_id(saved), saved.get("nonce")
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


def end_pending_sign_in(session: Any, services: WaitingSignInStore, pending: PendingSignIn) -> bool:
    """Spend the waiting sign-in ``pending`` once its second factor passed, and take it
    off the session. ``False``: the store no longer holds it (completed already, from a
    copy of the session cookie; expired; abandoned), answered as an expired sign-in. A
    store outage raises and the sign-in still waits (fail closed)."""
    spend = take_waiting_sign_in(pending.user_id, pending.nonce, services.clock())
    taken = run(spend, services.store)
    session.pop(PENDING, None)
    return taken


def drop_waiting_sign_in(session: Any, services: WaitingSignInStore) -> None:
    """Spend the session's waiting sign-in in the store, if it has one, and take it off
    the session: signed out, or replaced by a new sign-in (of any user, with or without
    a second step), it is abandoned, and a copy of the session cookie must not finish
    it later. A store outage never stops the sign-out or the new sign-in (the record
    ends at its lifetime; the outage is logged)."""
    run(abandon_waiting_sign_in(session.pop(PENDING, None), services.clock()), services.store)
