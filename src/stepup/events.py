"""Typed events the app can subscribe to (audit logs, alerts, signals).

No event ever carries a secret, a code or a password.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "EventBus",
    "GrantsRevoked",
    "Listener",
    "PasskeyRemoved",
    "ReauthFailed",
    "ReauthSucceeded",
    "RecoveryCodeUsed",
    "RecoveryCodesRegenerated",
    "ReplayDetected",
    "SignInRecorded",
    "StepupEvent",
    "TenantAttributeChanged",
    "TenantFlagChanged",
    "Throttled",
    "TwoFactorDeviceAdded",
    "TwoFactorDeviceRemoved",
    "TwoFactorDeviceRenamed",
    "TwoFactorEnabled",
    "TwoFactorRejected",
    "TwoFactorRemoved",
    "TwoFactorVerified",
]

logger = logging.getLogger("stepup.events")


@dataclass(frozen=True, slots=True, kw_only=True)
class StepupEvent:
    at: float

    def __init_subclass__(cls) -> None:
        # ``name`` is the event's class name, which audit logs file it under: a field
        # of that name would hide it behind whatever the field holds. (No super() call:
        # slots=True makes the class anew, and object's hook does nothing.)
        if "name" in inspect.get_annotations(cls):
            raise TypeError(f"{cls.__name__}: an event field may not be called 'name'")

    @property
    def name(self) -> str:
        return type(self).__name__


@dataclass(frozen=True, slots=True, kw_only=True)
class TwoFactorVerified(StepupEvent):
    credential_id: str
    step: int
    #: Whose credential, when the caller knows (TwoFactor does; a bare TOTPVerifier does not).
    user_id: str = ""
    #: Which of the user's devices the code came from (TwoFactor names it; never the code).
    device_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class TwoFactorRejected(StepupEvent):
    credential_id: str
    reason: str
    #: Whose credential, when the caller knows (TwoFactor does; a bare TOTPVerifier does not).
    user_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplayDetected(StepupEvent):
    credential_id: str
    #: Whose credential, when the caller knows (TwoFactor does; a bare TOTPVerifier does not).
    user_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Throttled(StepupEvent):
    key: str
    retry_at: float
    #: Whose credential, when the caller knows (TwoFactor does; a bare TOTPVerifier does not).
    user_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class TwoFactorEnabled(StepupEvent):
    user_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PasskeyRemoved(StepupEvent):
    """A passkey was removed: by its user on the passkeys page, or with the rest of the
    user's second factors by an admin (:meth:`stepup.twofactor.TwoFactor.remove`).
    Here, not in :mod:`stepup.passkeys`, so the core emits it without python-fido2."""

    user_id: str
    credential_id: str
    removed_by: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TwoFactorRemoved(StepupEvent):
    user_id: str
    removed_by: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TwoFactorDeviceAdded(StepupEvent):
    """Another authenticator app was confirmed (the first one is :class:`TwoFactorEnabled`)."""

    user_id: str
    device_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TwoFactorDeviceRemoved(StepupEvent):
    """One device went and others remain (removing the last one is :class:`TwoFactorRemoved`)."""

    user_id: str
    device_id: str
    removed_by: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TwoFactorDeviceRenamed(StepupEvent):
    """A confirmed device got another name (emitted only when the name changed; the
    name itself is the user's text, so it is left out)."""

    user_id: str
    device_id: str
    #: Who renamed it: the user, unless the caller named someone else.
    renamed_by: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RecoveryCodeUsed(StepupEvent):
    user_id: str
    #: How many unused codes the store holds after this one was spent (read again).
    remaining: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RecoveryCodesRegenerated(StepupEvent):
    user_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ReauthSucceeded(StepupEvent):
    """A re-authentication was recorded. ``method`` is what the grant now holds (with
    a step moments before merged in); ``proved`` what this attempt proved."""

    user_id: str
    session_id: str
    #: The grant's methods, comma-separated and sorted (``otp,pwd``).
    method: str
    #: The grant's level of assurance, when the policy has levels and one was proved.
    level: str | None = None
    #: The digest of the one action this re-authentication confirmed (not secret), or
    #: ``None`` for a session grant.
    transaction: str | None = None
    #: This attempt's own methods, comma-separated and sorted like ``method``.
    proved: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SignInRecorded(StepupEvent):
    """A sign-in counted as the session's first re-authentication (the policy's
    ``sign_in_counts``); ``authenticated_at`` is when the user proved it (an SSO
    provider's time), ``at`` when it was recorded."""

    user_id: str
    session_id: str
    method: str
    authenticated_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class GrantsRevoked(StepupEvent):
    """Re-authentication grants were revoked: at sign-out (one session), after a
    password change or by an operator (every session of the user). Emitted even when
    there was none to revoke (``count`` 0) except by the operator command, which then
    changes nothing."""

    user_id: str
    #: The signed-out session; ``None``: every session of the user.
    session_id: str | None
    count: int
    #: ``sign_out``, ``password_changed`` or ``operator``.
    reason: str
    #: Who revoked them, when someone else than the user did (the operator's --actor).
    revoked_by: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReauthFailed(StepupEvent):
    user_id: str
    method: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TenantFlagChanged(StepupEvent):
    actor_id: str
    tenant_id: str
    flag: str
    old: Any
    new: Any


@dataclass(frozen=True, slots=True, kw_only=True)
class TenantAttributeChanged(StepupEvent):
    """A tenant attribute other than ``feature_flags`` changed in a ``PATCH`` (a flag's
    change is :class:`TenantFlagChanged`). ``old`` is the value the store replaced
    (``None`` when the tenant had no such attribute), ``new`` the one it stored: the
    app's tenant data, which the tenant document shows its admins anyway."""

    actor_id: str
    tenant_id: str
    attribute: str
    old: Any
    new: Any


Listener = Callable[[StepupEvent], None]


class EventBus:
    """Fan events out to listeners. A failing listener is logged, never allowed to
    change a security decision that was already made."""

    def __init__(self, *listeners: Listener) -> None:
        self._listeners: list[Listener] = list(listeners)

    @property
    def listening(self) -> bool:
        """Whether anyone listens: hot paths skip building events nobody receives."""
        return bool(self._listeners)

    def subscribe(self, listener: Listener) -> Listener:
        """Add ``listener``; returns it so this works as a decorator."""
        self._listeners.append(listener)
        return listener

    def unsubscribe(self, listener: Listener) -> None:
        self._listeners.remove(listener)

    def emit(self, event: StepupEvent) -> None:
        for listener in tuple(self._listeners):
            try:
                listener(event)
            except Exception:
                logger.exception("stepup event listener failed on %s", event.name)
