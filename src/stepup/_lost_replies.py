"""Telling a factor removal whose store answer was lost from one that did not happen.

A removal can land and its answer be lost (a reply that never came, a store's later
step that failed; Redis removes a passkey in two round trips). The factor is then gone,
and what follows a removal must follow it too: the event, and every earlier
re-authentication revoked (OWASP ASVS 5.0 section 7.4.3); a retry would find nothing
left to remove, so it would never come. Each helper reads back: gone is removed; still
stored is the outage; when the store cannot say either, earlier re-authentications are
revoked as far as the store takes it (a factor may be gone) and the outage stands.
Shared by :mod:`stepup.passkeys` and :mod:`stepup.twofactor`.
"""

from __future__ import annotations

from contextlib import suppress

from ._flow import Flow
from .errors import StoreUnavailableError
from .records import Credential, Passkey

__all__ = ["credential_deleted_after_outage", "has_passkey", "passkey_removed_after_outage"]


def has_passkey(user_id: str, credential_id: str) -> Flow[bool]:
    mine: tuple[Passkey, ...] = yield ("list_passkeys", (user_id,))
    return any(passkey.credential_id == credential_id for passkey in mine)


def passkey_removed_after_outage(user_id: str, credential_id: str) -> Flow[bool]:
    """``True`` when the passkey, listed before ``remove_passkey`` failed, is gone: its
    answer was lost, not its write. Otherwise the outage is raised (see the module)."""
    try:
        still_there = yield from has_passkey(user_id, credential_id)
    except StoreUnavailableError:
        yield from _revoke_what_the_store_takes(user_id)
    else:
        if not still_there:
            return True
    raise StoreUnavailableError("remove_passkey: no answer, and the passkey is not known gone")


def credential_deleted_after_outage(user_id: str, credential_id: str) -> Flow[bool]:
    """``True`` when the TOTP credential ``credential_id``, stored before
    ``delete_credential`` failed, is gone: its answer was lost, not its write. A
    credential of another id is an enrolment begun since, so this one is gone too.
    Otherwise the outage is raised (see the module)."""
    try:
        stored: Credential | None = yield ("get_credential", (user_id,))
    except StoreUnavailableError:
        yield from _revoke_what_the_store_takes(user_id)
    else:
        if stored is None or stored.credential_id != credential_id:
            return True
    raise StoreUnavailableError(
        "delete_credential: no answer, and the credential is not known gone"
    )


def _revoke_what_the_store_takes(user_id: str) -> Flow[None]:
    with suppress(StoreUnavailableError):  # the store is down: the outage raised says so
        yield ("revoke_grants", (user_id, None))
