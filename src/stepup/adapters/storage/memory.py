"""The in-memory store: one process, thread-safe, nothing survives a restart.

Good for tests and single-process development. Every method holds one lock for
its whole read-decide-write, which is what makes each operation atomic.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar

from ...frozen import frozen, thawed
from ...records import Attempt, Challenge, Credential, Grant, Passkey, Tenant, ThrottleState
from ...throttle import ThrottlePolicy, apply_attempt, apply_charge, apply_refund, keep_until
from . import boundary
from .base import BATCHABLE_READS, new_credential_version

__all__ = ["MemoryStore"]

_EMPTY = ThrottleState()


def _kept(tenant: Tenant) -> Tenant:
    """The store's own copy of ``tenant``: read-only, so the checks that read it (through
    :meth:`MemoryStore.batch`) can share it and no reader can change a stored flag
    around the protected PATCH."""
    return Tenant(tenant.tenant_id, frozen(tenant.attributes))


def _own(tenant: Tenant) -> Tenant:
    """A changeable copy nobody else holds, for a caller (as the SQL and Redis stores
    decode one per read)."""
    return Tenant(tenant.tenant_id, thawed(tenant.attributes))


def _same_grant(stored: Grant, expected: Grant) -> bool:
    """What identifies a session's grant for ``replace_grant`` (its keys are the lookup)."""
    return (stored.methods, stored.authenticated_at, stored.level) == (
        expected.methods,
        expected.authenticated_at,
        expected.level,
    )


class MemoryStore:
    """Implements :class:`stepup.adapters.storage.base.Store`; also usable by async code."""

    #: Each operation is one atomic step (the contract's forced race cases have no
    #: read of this store's own to interleave; its thread cases test it).
    atomic_operations: ClassVar[bool] = True

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._attempts: dict[str, tuple[ThrottleState, float]] = {}
        self._credentials: dict[str, Credential] = {}
        self._tenants: dict[str, Tenant] = {}
        self._grants: dict[tuple[str, str], tuple[Grant, float]] = {}
        self._challenges: dict[str, Challenge] = {}
        self._passkeys: dict[str, dict[str, Passkey]] = {}  # by user id, then credential id

    def __repr__(self) -> str:
        return f"MemoryStore(credentials={len(self._credentials)})"

    # attempts ---------------------------------------------------------------

    def _state(self, key: str, now: float) -> ThrottleState:
        entry = self._attempts.get(key)
        if entry is None or entry[1] <= now:
            return _EMPTY
        return entry[0]

    def totp_attempt(
        self, key: str, step: int | None, now: float, throttle: ThrottlePolicy
    ) -> Attempt:
        boundary.check_totp_attempt(key, step, now)
        with self._lock:
            entry = self._attempts.get(key)
            current = entry[0] if entry is not None and entry[1] > now else _EMPTY
            state, attempt = apply_attempt(current, step, now, throttle)
            if state.failures:
                self._attempts[key] = (state, keep_until(state, now, throttle))
            else:  # keep_until's answer when nothing is counted, inlined: the hot path
                self._attempts[key] = (state, now + throttle.forget_after)
        return attempt

    def throttle_charge(self, key: str, now: float, throttle: ThrottlePolicy) -> Attempt:
        boundary.check_throttle_charge(key, now)
        with self._lock:
            state, attempt = apply_charge(self._state(key, now), now, throttle)
            self._attempts[key] = (state, keep_until(state, now, throttle))
        return attempt

    def throttle_refund(self, key: str, charge: Attempt, at: float) -> None:
        boundary.check_throttle_refund(key, charge, at)
        with self._lock:
            entry = self._attempts.get(key)
            if entry is not None:
                self._attempts[key] = (apply_refund(entry[0], charge, at), entry[1])

    def throttle_clear(self, key: str) -> None:
        boundary.check_throttle_clear(key)
        with self._lock:
            entry = self._attempts.get(key)
            if entry is not None:
                self._attempts[key] = (ThrottleState(last_step=entry[0].last_step), entry[1])

    def throttle_state(self, key: str) -> ThrottleState:
        boundary.check_throttle_state(key)
        with self._lock:
            entry = self._attempts.get(key)
            return entry[0] if entry is not None else _EMPTY

    # credentials --------------------------------------------------------------

    def get_credential(self, user_id: str) -> Credential | None:
        boundary.check_user_read(user_id)
        return self._credentials.get(user_id)

    def _next_version(self, user_id: str) -> int:
        stored = self._credentials.get(user_id)
        return new_credential_version() if stored is None else stored.version + 1

    def put_credential(self, credential: Credential) -> None:
        boundary.check_credential_write(credential)
        with self._lock:
            version = self._next_version(credential.user_id)
            self._credentials[credential.user_id] = replace(credential, version=version)

    def add_credential(self, credential: Credential) -> bool:
        boundary.check_credential_write(credential)
        with self._lock:
            if credential.user_id in self._credentials:
                return False
            version = new_credential_version()  # never one a deleted credential had
            self._credentials[credential.user_id] = replace(credential, version=version)
            return True

    def replace_credential(self, credential: Credential, expected_version: int) -> bool:
        boundary.check_replace_credential(credential, expected_version)
        with self._lock:
            stored = self._credentials.get(credential.user_id)
            if stored is None or stored.version != expected_version:
                return False
            self._credentials[credential.user_id] = replace(
                credential, version=expected_version + 1
            )
            return True

    def delete_credential(self, user_id: str) -> bool:
        boundary.check_delete_credential(user_id)
        with self._lock:
            return self._credentials.pop(user_id, None) is not None

    def consume_recovery_hash(self, user_id: str, digest: str) -> bool:
        boundary.check_consume_recovery_hash(user_id, digest)
        with self._lock:
            credential = self._credentials.get(user_id)
            if credential is None or digest not in credential.recovery_hashes:
                return False
            remaining = tuple(h for h in credential.recovery_hashes if h != digest)
            self._credentials[user_id] = replace(
                credential, recovery_hashes=remaining, version=credential.version + 1
            )
            return True

    # tenants ------------------------------------------------------------------

    def get_tenant(self, tenant_id: str) -> Tenant | None:
        stored = self._tenants.get(tenant_id)
        return None if stored is None else _own(stored)

    def put_tenant(self, tenant: Tenant) -> None:
        boundary.check_tenant_write(tenant)
        kept = _kept(tenant)
        with self._lock:
            self._tenants[tenant.tenant_id] = kept

    def add_tenant(self, tenant: Tenant) -> Tenant:
        boundary.check_tenant_write(tenant)
        kept = _kept(tenant)
        with self._lock:
            return _own(self._tenants.setdefault(tenant.tenant_id, kept))

    def patch_tenant(
        self, tenant_id: str, attributes: Mapping[str, Any], flags: Mapping[str, Any]
    ) -> tuple[Tenant, Tenant] | None:
        boundary.check_patch_tenant(tenant_id)
        with self._lock:
            before = self._tenants.get(tenant_id)
            if before is None:
                return None
            after = self._tenants[tenant_id] = _kept(before.patched(attributes, flags))
        return _own(before), _own(after)

    #: The methods :meth:`batch` answers (flows read it as ``store.batchable``).
    batchable: frozenset[str] = BATCHABLE_READS

    def batch(self, calls: Sequence[tuple[str, tuple[Any, ...]]]) -> tuple[Any, ...]:
        """Several reads for decision code (``(method, args)`` pairs, methods from
        :attr:`batchable`), answered in order: a re-authentication check asks for the
        tenant and the grant together. The tenant comes back as the store keeps it,
        read-only, not copied as :meth:`get_tenant` copies it: this is the read of every
        guarded request, and decision code only reads the flag."""
        answers: list[Any] = []
        for method, args in calls:
            if method == "get_tenant":
                answers.append(self._tenants.get(*args))
            elif method in BATCHABLE_READS:
                answers.append(getattr(self, method)(*args))
            else:
                raise ValueError(f"{method} cannot be batched")
        return tuple(answers)

    # grants -------------------------------------------------------------------

    def put_grant(self, grant: Grant, expires_at: float) -> None:
        boundary.check_put_grant(grant, expires_at)
        with self._lock:
            self._grants[(grant.user_id, grant.session_id)] = (grant, expires_at)

    def get_grant(self, user_id: str, session_id: str) -> Grant | None:
        entry = self._grants.get((user_id, session_id))
        return entry[0] if entry is not None else None

    def replace_grant(
        self, grant: Grant, expires_at: float, expected: Grant, from_session: str
    ) -> bool:
        boundary.check_replace_grant(grant, expires_at, expected, from_session)
        with self._lock:
            entry = self._grants.get((grant.user_id, from_session))
            if entry is None or not _same_grant(entry[0], expected):
                return False
            del self._grants[(grant.user_id, from_session)]
            self._grants[(grant.user_id, grant.session_id)] = (grant, expires_at)
            return True

    def revoke_grants(self, user_id: str, session_id: str | None = None) -> int:
        boundary.check_revoke_grants(user_id, session_id)
        with self._lock:
            keys = [k for k in self._grants if k[0] == user_id and session_id in (None, k[1])]
            for key in keys:
                del self._grants[key]
            return len(keys)

    # challenges ---------------------------------------------------------------

    def put_challenge(self, challenge: Challenge) -> None:
        boundary.check_put_challenge(challenge)
        with self._lock:
            self._challenges[challenge.challenge_id] = challenge

    def take_challenge(self, challenge_id: str, now: float) -> Challenge | None:
        boundary.check_take_challenge(challenge_id)
        with self._lock:
            challenge = self._challenges.pop(challenge_id, None)
        if challenge is None or challenge.expires_at <= now:
            return None
        return challenge

    # passkeys -----------------------------------------------------------------

    def list_passkeys(self, user_id: str) -> tuple[Passkey, ...]:
        boundary.check_user_read(user_id)
        with self._lock:
            mine = self._passkeys.get(user_id, {}).values()
            return tuple(sorted(mine, key=lambda p: (p.created_at, p.credential_id)))

    def add_passkey(self, passkey: Passkey, max_per_user: int) -> bool:
        boundary.check_add_passkey(passkey, max_per_user)
        with self._lock:
            taken = any(passkey.credential_id in p for p in self._passkeys.values())
            mine = self._passkeys.setdefault(passkey.user_id, {})
            if taken or len(mine) >= max_per_user:
                return False
            mine[passkey.credential_id] = passkey
            return True

    def remove_passkey(self, user_id: str, credential_id: str) -> bool:
        boundary.check_remove_passkey(user_id, credential_id)
        with self._lock:
            return self._passkeys.get(user_id, {}).pop(credential_id, None) is not None

    def record_passkey_use(self, passkey: Passkey, expected_count: int) -> bool:
        boundary.check_record_passkey_use(passkey, expected_count)
        with self._lock:
            mine = self._passkeys.get(passkey.user_id, {})
            stored = mine.get(passkey.credential_id)
            if stored is None or stored.sign_count != expected_count:
                return False
            mine[passkey.credential_id] = replace(
                stored,
                sign_count=passkey.sign_count,
                backup_state=passkey.backup_state,
                last_used_at=passkey.last_used_at,
            )
            return True

    def rename_passkey(self, user_id: str, credential_id: str, name: str) -> bool:
        boundary.check_rename_passkey(user_id, credential_id, name)
        with self._lock:
            mine = self._passkeys.get(user_id, {})
            stored = mine.get(credential_id)
            if stored is None:
                return False
            mine[credential_id] = replace(stored, name=name)
            return True
