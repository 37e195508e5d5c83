"""The storage port: small protocols every store implements, sync or async.

An async store has the same method names as coroutines. Each method is one
atomic operation; the contract suite in :mod:`stepup.testing.contract` says
exactly what each must do, and every bundled store passes it unchanged.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ...records import Attempt, Challenge, Credential, Grant, Tenant, ThrottleState
from ...throttle import ThrottlePolicy

__all__ = [
    "AsyncStore",
    "AttemptStore",
    "ChallengeStore",
    "CredentialStore",
    "GrantStore",
    "Store",
    "TenantStore",
]


class AttemptStore(Protocol):
    """Replay ledger and throttle state, keyed by credential (or any throttle key)."""

    def totp_attempt(
        self, key: str, step: int | None, now: float, throttle: ThrottlePolicy
    ) -> Attempt:
        """Atomically, in this order:

        1. If ``now`` is before the key's ``blocked_until``: ``THROTTLED`` (retry_at), no change.
        2. If ``step`` is not None and later than the stored last step (or none is stored):
           store it as the last step, clear failures and block: ``ACCEPTED``.
        3. Otherwise count a failure: ``failures += 1`` and
           ``blocked_until = now + throttle.delay_after(failures)``; the outcome is
           ``REPLAYED`` if ``step`` was given, else ``REJECTED``.

        State may be forgotten ``throttle.forget_after`` seconds after the last write.
        """
        ...

    def throttle_charge(self, key: str, now: float, throttle: ThrottlePolicy) -> Attempt:
        """Atomically: ``THROTTLED`` if blocked; else count a failure as in
        :meth:`totp_attempt` step 3 and answer ``REJECTED`` (the attempt may go ahead; a
        success is then settled with :meth:`throttle_clear`)."""
        ...

    def throttle_clear(self, key: str) -> None:
        """Clear failures and block for ``key`` (the last step is kept)."""
        ...

    def throttle_state(self, key: str) -> ThrottleState:
        """Read-only view, for display and tests."""
        ...


class CredentialStore(Protocol):
    def get_credential(self, user_id: str) -> Credential | None: ...

    def put_credential(self, credential: Credential) -> None: ...

    def delete_credential(self, user_id: str) -> bool:
        """Remove it; ``True`` if there was one."""
        ...

    def consume_recovery_hash(self, user_id: str, digest: str) -> bool:
        """Atomically remove ``digest`` from the user's recovery hashes; ``True`` once only."""
        ...


class TenantStore(Protocol):
    def get_tenant(self, tenant_id: str) -> Tenant | None: ...

    def put_tenant(self, tenant: Tenant) -> None: ...


class GrantStore(Protocol):
    def put_grant(self, grant: Grant, expires_at: float) -> None:
        """Record ``grant`` (replacing the session's previous one); it may be forgotten
        after ``expires_at``."""
        ...

    def get_grant(self, user_id: str, session_id: str) -> Grant | None: ...

    def revoke_grants(self, user_id: str, session_id: str | None = None) -> int:
        """Revoke one session's grant, or every grant of the user; returns how many."""
        ...


class ChallengeStore(Protocol):
    def put_challenge(self, challenge: Challenge) -> None: ...

    def take_challenge(self, challenge_id: str, now: float) -> Challenge | None:
        """Atomically remove and return it, or ``None`` if unknown, already taken or
        expired at ``now``. A challenge is consumed exactly once."""
        ...


@runtime_checkable
class Store(AttemptStore, CredentialStore, TenantStore, GrantStore, ChallengeStore, Protocol):
    """Everything stepup keeps. The bundled stores implement all of it."""


class AsyncStore(Protocol):
    """The async flavour: the same methods as coroutines (see :class:`Store`)."""

    async def totp_attempt(
        self, key: str, step: int | None, now: float, throttle: ThrottlePolicy
    ) -> Attempt: ...

    async def throttle_charge(self, key: str, now: float, throttle: ThrottlePolicy) -> Attempt: ...

    async def throttle_clear(self, key: str) -> None: ...

    async def throttle_state(self, key: str) -> ThrottleState: ...

    async def get_credential(self, user_id: str) -> Credential | None: ...

    async def put_credential(self, credential: Credential) -> None: ...

    async def delete_credential(self, user_id: str) -> bool: ...

    async def consume_recovery_hash(self, user_id: str, digest: str) -> bool: ...

    async def get_tenant(self, tenant_id: str) -> Tenant | None: ...

    async def put_tenant(self, tenant: Tenant) -> None: ...

    async def put_grant(self, grant: Grant, expires_at: float) -> None: ...

    async def get_grant(self, user_id: str, session_id: str) -> Grant | None: ...

    async def revoke_grants(self, user_id: str, session_id: str | None = None) -> int: ...

    async def put_challenge(self, challenge: Challenge) -> None: ...

    async def take_challenge(self, challenge_id: str, now: float) -> Challenge | None: ...
