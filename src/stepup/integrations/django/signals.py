"""Django signals mirroring stepup's events: one ``Signal`` per event class.

Connect as usual; every receiver gets ``sender`` (the event class) and ``event`` (the
frozen event: never a secret, a code or a password). A receiver that fails is logged
and, inside a transaction, rolled back to a savepoint (see :func:`forward_events`)::

    from stepup.integrations.django.signals import tenant_flag_changed

    @receiver(tenant_flag_changed)
    def audit(sender, event, **kwargs):
        AuditLog.objects.create(actor=event.actor_id, ...)
"""

from __future__ import annotations

import logging
from contextlib import ExitStack, suppress
from typing import Final

from django.db import DatabaseError, connections, transaction
from django.dispatch import Signal

from ...events import (
    GrantsRevoked,
    ReauthFailed,
    ReauthSucceeded,
    RecoveryCodesRegenerated,
    RecoveryCodeUsed,
    ReplayDetected,
    SignInRecorded,
    StepupEvent,
    TenantAttributeChanged,
    TenantFlagChanged,
    Throttled,
    TwoFactorDeviceAdded,
    TwoFactorDeviceRemoved,
    TwoFactorDeviceRenamed,
    TwoFactorEnabled,
    TwoFactorRejected,
    TwoFactorRemoved,
    TwoFactorVerified,
)
from ...passkeys import (
    PasskeyCounterRegressed,
    PasskeyRegistered,
    PasskeyRejected,
    PasskeyRemoved,
    PasskeyRenamed,
    PasskeySignInRejected,
    PasskeySignInVerified,
    PasskeyVerified,
)

__all__ = [
    "SIGNALS",
    "forward_events",
    "grants_revoked",
    "passkey_counter_regressed",
    "passkey_registered",
    "passkey_rejected",
    "passkey_removed",
    "passkey_renamed",
    "passkey_sign_in_rejected",
    "passkey_sign_in_verified",
    "passkey_verified",
    "reauth_failed",
    "reauth_succeeded",
    "recovery_code_used",
    "recovery_codes_regenerated",
    "replay_detected",
    "sign_in_recorded",
    "tenant_attribute_changed",
    "tenant_flag_changed",
    "throttled",
    "two_factor_device_added",
    "two_factor_device_removed",
    "two_factor_device_renamed",
    "two_factor_enabled",
    "two_factor_rejected",
    "two_factor_removed",
    "two_factor_verified",
]

logger = logging.getLogger("stepup.integrations.django")

two_factor_verified = Signal()
two_factor_rejected = Signal()
replay_detected = Signal()
throttled = Signal()
two_factor_enabled = Signal()
two_factor_removed = Signal()
two_factor_device_added = Signal()
two_factor_device_removed = Signal()
two_factor_device_renamed = Signal()
recovery_code_used = Signal()
recovery_codes_regenerated = Signal()
reauth_succeeded = Signal()
reauth_failed = Signal()
sign_in_recorded = Signal()
tenant_flag_changed = Signal()
tenant_attribute_changed = Signal()
passkey_registered = Signal()
passkey_verified = Signal()
passkey_rejected = Signal()
passkey_counter_regressed = Signal()
passkey_removed = Signal()
passkey_renamed = Signal()
grants_revoked = Signal()
passkey_sign_in_verified = Signal()
passkey_sign_in_rejected = Signal()

#: The signal sent for each event class.
SIGNALS: Final[dict[type[StepupEvent], Signal]] = {
    TwoFactorVerified: two_factor_verified,
    TwoFactorRejected: two_factor_rejected,
    ReplayDetected: replay_detected,
    Throttled: throttled,
    TwoFactorEnabled: two_factor_enabled,
    TwoFactorRemoved: two_factor_removed,
    TwoFactorDeviceAdded: two_factor_device_added,
    TwoFactorDeviceRemoved: two_factor_device_removed,
    TwoFactorDeviceRenamed: two_factor_device_renamed,
    RecoveryCodeUsed: recovery_code_used,
    RecoveryCodesRegenerated: recovery_codes_regenerated,
    ReauthSucceeded: reauth_succeeded,
    ReauthFailed: reauth_failed,
    SignInRecorded: sign_in_recorded,
    TenantFlagChanged: tenant_flag_changed,
    TenantAttributeChanged: tenant_attribute_changed,
    PasskeyRegistered: passkey_registered,
    PasskeyVerified: passkey_verified,
    PasskeyRejected: passkey_rejected,
    PasskeyCounterRegressed: passkey_counter_regressed,
    PasskeyRemoved: passkey_removed,
    PasskeyRenamed: passkey_renamed,
    GrantsRevoked: grants_revoked,
    PasskeySignInVerified: passkey_sign_in_verified,
    PasskeySignInRejected: passkey_sign_in_rejected,
}


class _ReceiverFailedError(Exception):
    """Raised inside the receivers' savepoints to roll them back."""


def forward_events(event: StepupEvent) -> None:
    """The EventBus listener: send the event's signal. A failing receiver is logged and
    never changes a decision already made (nor stops the other receivers), nor the
    request: on every database connection in a transaction (``ATOMIC_REQUESTS``, the
    app's ``atomic`` block), the receivers run inside a savepoint, rolled back when one
    of them failed. A query that failed there (PostgreSQL then aborts the whole
    transaction) leaves the request's transaction as it was, so what the request does
    next (the sign-out's ``session.flush()``, its commit) still works. When one fails,
    what the event's other receivers wrote in that transaction is rolled back too."""
    signal = SIGNALS.get(type(event))
    if signal is None or not signal.has_listeners(type(event)):
        return
    try:
        with ExitStack() as savepoints:
            for connection in connections.all(initialized_only=True):
                if connection.in_atomic_block:
                    with suppress(DatabaseError):  # not protected; the event still goes out
                        savepoints.enter_context(transaction.atomic(using=connection.alias))
            if not _send(signal, event):
                raise _ReceiverFailedError
    except _ReceiverFailedError:
        pass  # rolled back to the savepoints: the failure was logged by _send
    except DatabaseError:
        # A receiver swallowed its own failed query: the savepoint could not be released,
        # so it was rolled back (Django's atomic), and the request's transaction goes on.
        logger.error("stepup signal receivers left a failed query on %s: undone", event.name)


def _send(signal: Signal, event: StepupEvent) -> bool:
    """Send ``signal`` to every receiver, logging each failure; whether all succeeded."""
    ok = True
    for receiver, result in signal.send_robust(sender=type(event), event=event):
        if isinstance(result, Exception):
            ok = False
            logger.error(
                "stepup signal receiver %r failed on %s",
                receiver,
                event.name,
                exc_info=(type(result), result, result.__traceback__),
            )
    return ok
