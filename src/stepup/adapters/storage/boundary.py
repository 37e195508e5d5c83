"""What each store operation checks at the boundary, stated once for every bundled store.

Each function takes its operation's own parameters, by the same names, and raises
:class:`~stepup.errors.MalformedInputError` (naming the argument, never its value)
before anything is sent or changed: malformed ids, times and integers are refused the
same way on every store. The memory, SQL and Redis stores call the one for each of their
methods; the Django store looks them up by name (:data:`INPUT_CHECKS`). The reads of
every decision (``get_tenant``, ``get_grant``, ``batch``) check nothing: decision code
sends them ids it checked itself, and they run on every guarded request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from ...records import Challenge, Credential, Grant, Passkey, Tenant
from .base import (
    MAX_KEY_LENGTH,
    check_challenge,
    check_count,
    check_credential,
    check_grant,
    check_id,
    check_int64,
    check_passkey,
    check_read_id,
    check_tenant,
    check_time,
)

__all__ = ["INPUT_CHECKS"]


# throttles and TOTP steps ---------------------------------------------------------


def check_totp_attempt(key: str, step: int | None, now: float, throttle: Any = None) -> None:
    check_id("key", key, MAX_KEY_LENGTH)
    check_int64("step", step)
    check_time("now", now)


def check_throttle_charge(key: str, now: float, throttle: Any = None) -> None:
    check_id("key", key, MAX_KEY_LENGTH)
    check_time("now", now)


def check_throttle_refund(key: str, charge: Any, at: float) -> None:
    check_id("key", key, MAX_KEY_LENGTH)
    check_time("at", at)


def check_throttle_clear(key: str) -> None:
    check_id("key", key, MAX_KEY_LENGTH)


def check_throttle_state(key: str) -> None:
    check_read_id("key", key, MAX_KEY_LENGTH)


# credentials ----------------------------------------------------------------------


def check_user_read(user_id: str) -> None:
    """A read by user (``get_credential``, ``list_passkeys``)."""
    check_read_id("user_id", user_id)


def check_credential_write(credential: Credential) -> None:
    """``put_credential`` and ``add_credential``."""
    check_credential(credential)


def check_replace_credential(credential: Credential, expected_version: int) -> None:
    check_credential(credential)
    check_int64("expected_version", expected_version)


def check_delete_credential(user_id: str) -> None:
    check_id("user_id", user_id)


def check_consume_recovery_hash(user_id: str, digest: str) -> None:
    check_id("user_id", user_id)
    check_id("digest", digest, MAX_KEY_LENGTH)


# tenants, grants, challenges ------------------------------------------------------


def check_tenant_write(tenant: Tenant) -> None:
    """``put_tenant`` and ``add_tenant``."""
    check_tenant(tenant)


def check_patch_tenant(tenant_id: str, attributes: Any = None, flags: Any = None) -> None:
    check_id("tenant_id", tenant_id)


def check_put_grant(grant: Grant, expires_at: float) -> None:
    check_grant(grant, expires_at)


def check_replace_grant(
    grant: Grant, expires_at: float, expected: Grant, from_session: str
) -> None:
    """The grant as ``put_grant`` checks it, the session it moves from, and the time of
    the grant expected there (a NaN could never have been stored: no store compares it)."""
    check_grant(grant, expires_at)
    check_id("from_session", from_session, MAX_KEY_LENGTH)
    check_time("expected.authenticated_at", expected.authenticated_at)


def check_revoke_grants(user_id: str, session_id: str | None = None) -> None:
    check_id("user_id", user_id)
    if session_id is not None:
        check_id("session_id", session_id, MAX_KEY_LENGTH)  # a suffixed one too


def check_put_challenge(challenge: Challenge) -> None:
    check_challenge(challenge)


def check_take_challenge(challenge_id: str, now: Any = None) -> None:
    check_read_id("challenge_id", challenge_id, MAX_KEY_LENGTH)


# passkeys -------------------------------------------------------------------------


def check_add_passkey(passkey: Passkey, max_per_user: int) -> None:
    check_passkey(passkey)
    check_int64("max_per_user", max_per_user)
    check_count("sign_count", passkey.sign_count)


def check_record_passkey_use(passkey: Passkey, expected_count: int) -> None:
    check_passkey(passkey)
    check_int64("expected_count", expected_count)
    check_count("sign_count", passkey.sign_count)


def check_remove_passkey(user_id: str, credential_id: str) -> None:
    check_id("user_id", user_id)
    check_id("credential_id", credential_id, MAX_KEY_LENGTH)


def check_rename_passkey(user_id: str, credential_id: str, name: str) -> None:
    check_remove_passkey(user_id, credential_id)
    check_id("name", name, MAX_KEY_LENGTH)


#: Every store operation that checks its input, by name, with its check (called with the
#: operation's own arguments). A test holds it to the store protocol: every operation but
#: the decision reads is here.
INPUT_CHECKS: Final[Mapping[str, Callable[..., None]]] = {
    "totp_attempt": check_totp_attempt,
    "throttle_charge": check_throttle_charge,
    "throttle_refund": check_throttle_refund,
    "throttle_clear": check_throttle_clear,
    "throttle_state": check_throttle_state,
    "get_credential": check_user_read,
    "put_credential": check_credential_write,
    "add_credential": check_credential_write,
    "replace_credential": check_replace_credential,
    "delete_credential": check_delete_credential,
    "consume_recovery_hash": check_consume_recovery_hash,
    "put_tenant": check_tenant_write,
    "add_tenant": check_tenant_write,
    "patch_tenant": check_patch_tenant,
    "put_grant": check_put_grant,
    "replace_grant": check_replace_grant,
    "revoke_grants": check_revoke_grants,
    "put_challenge": check_put_challenge,
    "take_challenge": check_take_challenge,
    "list_passkeys": check_user_read,
    "add_passkey": check_add_passkey,
    "record_passkey_use": check_record_passkey_use,
    "remove_passkey": check_remove_passkey,
    "rename_passkey": check_rename_passkey,
}
