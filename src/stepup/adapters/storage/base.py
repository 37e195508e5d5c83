"""The storage port: small protocols every store implements, sync or async.

An async store has the same method names as coroutines. Each method is one
atomic operation; the contract suite in :mod:`stepup.testing.contract` says
exactly what each must do, and every bundled store passes it unchanged.

Integer arguments (``step``, ``expected_version``, ``max_per_user``,
``expected_count``, a passkey's ``sign_count``) are signed 64-bit: a store raises
:class:`~stepup.errors.MalformedInputError` for any other and changes nothing
(:func:`check_int64`).

Every id a store keeps, and every time it keeps, is checked at the store's boundary the
same way on every bundled store (:func:`check_id`, :func:`check_grant` and the other
``check_*`` functions below): a write with an id no store could hold alike, a time that
is not finite or an expiry not after its start is refused with
:class:`~stepup.errors.MalformedInputError` before anything is sent or changed. A read's
ids get only the cheap part (:func:`check_read_id`: text, and not too long); one with an
id no write accepts finds nothing, or fails closed.
"""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Mapping
from typing import Any, Final, Protocol, runtime_checkable

from ...errors import MalformedInputError
from ...ids import MAX_ID_LENGTH
from ...records import Attempt, Challenge, Credential, Grant, Passkey, Tenant, ThrottleState
from ...throttle import ThrottlePolicy

__all__ = [
    "BATCHABLE_READS",
    "INT64_MAX",
    "INT64_MIN",
    "MAX_KEY_LENGTH",
    "AsyncStore",
    "AttemptStore",
    "ChallengeStore",
    "CredentialStore",
    "GrantStore",
    "PasskeyStore",
    "Store",
    "TenantStore",
    "check_challenge",
    "check_credential",
    "check_grant",
    "check_id",
    "check_passkey",
    "check_read_id",
    "check_tenant",
    "check_time",
    "new_credential_version",
]

#: The reads every bundled store's optional ``batch`` answers together (a store may
#: answer more, and says so in its ``batchable``); decision code assumes these of a
#: store with ``batch`` that says nothing.
BATCHABLE_READS: frozenset[str] = frozenset(
    {"get_tenant", "get_grant", "get_credential", "throttle_state"}
)


#: Every integer a store keeps or compares (a TOTP time step, a credential's expected
#: version, a passkey's sign count and expected count, the passkey limit) is a signed
#: 64-bit integer, what SQL's ``BIGINT`` holds. Every bundled store refuses one outside
#: this range the same way, before anything is sent or changed (:func:`check_int64`).
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def check_int64(name: str, value: int | None) -> None:
    """:class:`~stepup.errors.MalformedInputError` naming ``name`` if ``value`` (an
    ``int``, or ``None`` where the argument is optional) is outside
    ``INT64_MIN..INT64_MAX``: no store could keep it, and none may answer as if it had."""
    if value is not None and not INT64_MIN <= value <= INT64_MAX:
        raise MalformedInputError(f"{name} is out of range (a store keeps signed 64-bit integers)")


def check_count(name: str, value: int) -> None:
    """:class:`~stepup.errors.MalformedInputError` naming ``name`` unless ``value`` is a
    count a store keeps: ``0..INT64_MAX`` (a passkey's signature counter is unsigned)."""
    if not 0 <= value <= INT64_MAX:
        raise MalformedInputError(f"{name} is out of range (a count from 0 to 2**63 - 1)")


#: The longest key a store accepts that is not a user, session or tenant id (those are
#: :data:`stepup.ids.MAX_ID_LENGTH` at most): a throttle key (a prefix before a user id),
#: a credential id (a passkey's is up to 1364 characters of base64url), a challenge id, a
#: recovery code's digest, a passkey's name.
MAX_KEY_LENGTH: Final = 2 * MAX_ID_LENGTH

#: What one store keeps and another refuses: NUL (PostgreSQL refuses it in text) and
#: surrogates (a lone one is not UTF-8; a ``str`` holds no paired ones).
_UNSTORABLE: Final = re.compile("[\x00\ud800-\udfff]")


def check_id(name: str, value: object, limit: int = MAX_ID_LENGTH) -> None:
    """:class:`~stepup.errors.MalformedInputError` naming ``name`` (never the value) unless
    ``value`` is text every store keeps and gives back as it is: a ``str`` (not an int a
    SQL column would read back as text, not ``None``), at most ``limit`` characters,
    without NUL or a lone surrogate. For every id a write sends."""
    if not isinstance(value, str) or len(value) > limit or _UNSTORABLE.search(value):
        raise MalformedInputError(
            f"{name} must be text of at most {limit} characters, without NUL or lone surrogates"
        )


def check_read_id(name: str, value: object, limit: int = MAX_ID_LENGTH) -> None:
    """The cheap part of :func:`check_id` (a type and a length), for the ids a read sends:
    an id that holds NUL or a lone surrogate was never written, so a read of it finds
    nothing (or fails closed on a store that cannot send it). The reads of every
    decision (``get_tenant``, ``get_grant`` and their ``batch``) check nothing: they run
    on every guarded request, and decision code sends them ids it checked itself
    (:func:`stepup.ids.checked_subject`, the tenant id's check)."""
    if not isinstance(value, str) or len(value) > limit:
        raise MalformedInputError(f"{name} must be text of at most {limit} characters")


def check_time(name: str, value: object) -> None:
    """:class:`~stepup.errors.MalformedInputError` naming ``name`` unless ``value`` is a
    finite number of seconds: a NaN never compares as expired, and stores disagree on
    what an infinity is."""
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise MalformedInputError(f"{name} must be a finite number of seconds")


def _check_expiry(name: str, expires_at: float, start: float) -> None:
    check_time(name, expires_at)
    if not expires_at > start:
        raise MalformedInputError(f"{name} must be after the record's start")


def check_grant(grant: Grant, expires_at: float) -> None:
    """Everything ``put_grant`` keeps: the ids, finite times, and an ``expires_at`` after
    the grant's ``authenticated_at`` (a grant that is over before it starts is a caller's
    mistake, refused, never a reason to drop the session's grant). A grant's session id
    may be a key: the core keeps a session's sliding window and transaction epoch under
    the session id with a suffix (``#slide@...``, ``#tx-anchor``)."""
    check_id("grant.user_id", grant.user_id)
    check_id("grant.session_id", grant.session_id, MAX_KEY_LENGTH)
    check_time("grant.authenticated_at", grant.authenticated_at)
    _check_expiry("expires_at", expires_at, grant.authenticated_at)


def check_challenge(challenge: Challenge) -> None:
    """Everything ``put_challenge`` keeps: the ids, finite times, and an ``expires_at``
    after ``issued_at``."""
    check_id("challenge.challenge_id", challenge.challenge_id, MAX_KEY_LENGTH)
    check_id("challenge.user_id", challenge.user_id)
    check_id("challenge.session_id", challenge.session_id)
    check_time("challenge.issued_at", challenge.issued_at)
    _check_expiry("challenge.expires_at", challenge.expires_at, challenge.issued_at)


def check_credential(credential: Credential) -> None:
    """The ids and recovery-code digests a credential write keeps (its other fields are
    kept as JSON, which escapes what a column could not hold)."""
    check_id("credential.user_id", credential.user_id)
    check_id("credential.credential_id", credential.credential_id, MAX_KEY_LENGTH)
    for digest in credential.recovery_hashes:
        check_id("credential.recovery_hashes", digest, MAX_KEY_LENGTH)


def check_tenant(tenant: Tenant) -> None:
    """A tenant write's id (its attributes are kept as JSON)."""
    check_id("tenant.tenant_id", tenant.tenant_id)


def check_passkey(passkey: Passkey) -> None:
    """The ids, name and times a passkey write keeps (the sign count is
    :func:`check_count`'s)."""
    check_id("passkey.user_id", passkey.user_id)
    check_id("passkey.credential_id", passkey.credential_id, MAX_KEY_LENGTH)
    check_id("passkey.name", passkey.name, MAX_KEY_LENGTH)
    check_time("passkey.created_at", passkey.created_at)
    if passkey.last_used_at is not None:
        check_time("passkey.last_used_at", passkey.last_used_at)


#: A new credential's first version is drawn from ``FIRST_VERSION_LOW`` up to (not
#: including) ``FIRST_VERSION_LOW + FIRST_VERSION_SPAN``: above the small versions of
#: credentials stored by earlier releases (which counted up from 1), below 2**53 (exact
#: as a Redis Lua number), and far from 2**63.
FIRST_VERSION_LOW, FIRST_VERSION_SPAN = 2**20, 2**52


def new_credential_version() -> int:
    """The version a new credential starts at (``add_credential``, or ``put_credential``
    when none is stored): random, so a version read from a credential that was deleted
    meanwhile matches a new one's with probability 2**-52, whatever its writes since.
    Restarting at 1 would let a compare-and-set prepared against the removed credential
    land on the new one (an ABA) and write the removed one back."""
    return FIRST_VERSION_LOW + secrets.randbelow(FIRST_VERSION_SPAN)


class AttemptStore(Protocol):
    """Replay ledger and throttle state, keyed by credential (or any throttle key)."""

    def totp_attempt(
        self, key: str, step: int | None, now: float, throttle: ThrottlePolicy
    ) -> Attempt:
        """Atomically, exactly as :func:`stepup.throttle.apply_attempt`, in this order:

        1. If ``now`` is before the key's ``blocked_until``: ``THROTTLED`` (retry_at), no change.
        2. If ``step`` is not None and later than the stored last step (or none is stored):
           store it as the last step and answer ``ACCEPTED``. A success does **not**
           clear the failures or the block reference (so an attacker gains nothing by
           guessing between the owner's sign-ins); only a state whose failures are all
           forgiven (see 3) is stored as ``(0 failures, blocked_until 0.0)``.
        3. Otherwise count a failure. The failures still counted are the stored ones less
           one per full ``throttle.max_delay`` since ``blocked_until``
           (:meth:`ThrottlePolicy.failures_at`); add one, capped at
           ``throttle.most_failures``; ``blocked_until = now + delay_after(failures)``
           (just ``now`` for a free failure: forgiveness counts from there). The outcome
           is ``REPLAYED`` if ``step`` was given, else ``REJECTED``.

        A store may forget the key's whole state once ``now`` passes
        :func:`stepup.throttle.keep_until` of the state it last wrote (``forget_after``
        after the write, and never while a failure is still counted).
        """
        ...

    def throttle_charge(self, key: str, now: float, throttle: ThrottlePolicy) -> Attempt:
        """Atomically: ``THROTTLED`` if blocked; else count a failure as in
        :meth:`totp_attempt` step 3 and answer ``REJECTED`` (the attempt may go ahead,
        the failure already paid: concurrent guesses cannot outrun the throttle). If the
        attempt then succeeds, the caller takes that one failure back with
        :meth:`throttle_refund`, never with :meth:`throttle_clear`."""
        ...

    def throttle_refund(self, key: str, charge: Attempt, at: float) -> None:
        """Atomically take back the failure a ``REJECTED`` ``charge`` made at ``at``
        counted, as :func:`stepup.throttle.apply_refund`: undone block and all if the
        state is still what that charge wrote, else only the count drops by one. Any
        other ``charge`` (``THROTTLED``) changes nothing. The expiry is kept."""
        ...

    def throttle_clear(self, key: str) -> None:
        """Clear failures and block for ``key`` (the last step is kept). For an admin or
        operator lifting a lockout, and for the owner proving themselves with a recovery
        code: never called because a guess succeeded."""
        ...

    def throttle_state(self, key: str) -> ThrottleState:
        """Read-only view of the stored state (failures not yet reduced by forgiveness:
        use :meth:`ThrottlePolicy.failures_at`), for display and tests."""
        ...


class CredentialStore(Protocol):
    """A user's credential, with a version the store keeps: every write adds one, so a
    read-then-write flow can make its write a compare-and-set. A new credential starts
    at a fresh random version (:func:`new_credential_version`), never at one an earlier
    credential of the user had: a compare-and-set must never match a different
    incarnation of the record (a credential deleted, then enrolled again)."""

    def get_credential(self, user_id: str) -> Credential | None:
        """The stored credential, ``version`` included (0 for one stored before versions)."""
        ...

    def put_credential(self, credential: Credential) -> None:
        """Create or replace it; the stored version becomes the previous one plus one (a
        fresh :func:`new_credential_version` when none is stored), whatever
        ``credential.version`` says."""
        ...

    def add_credential(self, credential: Credential) -> bool:
        """Atomically: if the user has no credential stored, store ``credential`` at a
        fresh :func:`new_credential_version` and answer ``True``; otherwise (one is
        there, pending or confirmed, whatever its version) change nothing and answer
        ``False``. Of concurrent adds for one user exactly one succeeds. A first
        enrolment writes with this, so it never overwrites a credential another
        request stored meanwhile."""
        ...

    def delete_credential(self, user_id: str) -> bool:
        """Remove it; ``True`` if there was one."""
        ...

    def consume_recovery_hash(self, user_id: str, digest: str) -> bool:
        """Atomically remove ``digest`` from the user's recovery hashes and add one to the
        version; ``True`` once only (a digest that is not there changes nothing)."""
        ...

    def replace_credential(self, credential: Credential, expected_version: int) -> bool:
        """Atomically: if the user's stored credential is at ``expected_version``, replace
        it with ``credential`` (recovery hashes included) at the next version and answer
        ``True``; otherwise (changed meanwhile, or gone) change nothing, answer ``False``."""
        ...


class TenantStore(Protocol):
    def get_tenant(self, tenant_id: str) -> Tenant | None: ...

    def put_tenant(self, tenant: Tenant) -> None: ...

    def add_tenant(self, tenant: Tenant) -> Tenant:
        """Atomically store ``tenant`` unless a tenant with its id exists; answer the
        stored one (``tenant``, or the one that was there, untouched)."""
        ...

    def patch_tenant(
        self, tenant_id: str, attributes: Mapping[str, Any], flags: Mapping[str, Any]
    ) -> tuple[Tenant, Tenant] | None:
        """Atomically apply :meth:`Tenant.patched` to the stored tenant: each attribute
        replaced, each flag set inside ``feature_flags``, everything else as stored at
        that moment (a concurrent patch of another attribute or flag survives). Answers
        ``(before, after)``, what was stored and what now is, or ``None`` (and creates
        nothing) if there is no such tenant."""
        ...


class GrantStore(Protocol):
    def put_grant(self, grant: Grant, expires_at: float) -> None:
        """Record ``grant`` (replacing the session's previous one); it may be forgotten
        after ``expires_at``."""
        ...

    def get_grant(self, user_id: str, session_id: str) -> Grant | None: ...

    def replace_grant(
        self, grant: Grant, expires_at: float, expected: Grant, from_session: str
    ) -> bool:
        """Atomically: if the grant stored for ``(grant.user_id, from_session)`` is still
        ``expected`` (the same methods, ``authenticated_at`` and level), remove it and
        record ``grant`` under its own session id (which may be ``from_session``) as
        :meth:`put_grant` would, and answer ``True``; otherwise (revoked meanwhile, or
        replaced by another grant) change nothing and answer ``False``. A
        re-authentication that merges the session's earlier proofs writes with this, so
        a revocation made after its read (a password change, a removed device) is never
        undone by its write."""
        ...

    def revoke_grants(self, user_id: str, session_id: str | None = None) -> int:
        """Revoke one session's grant, or every grant of the user; returns how many
        records it removed. A grant past its ``expires_at`` may or may not still be
        there (Redis forgets it by itself, the others when a later write prunes), so
        the count is for logs and events, never for a decision."""
        ...


class ChallengeStore(Protocol):
    def put_challenge(self, challenge: Challenge) -> None: ...

    def take_challenge(self, challenge_id: str, now: float) -> Challenge | None:
        """Atomically remove and return it, or ``None`` if unknown, already taken or
        expired at ``now``. A challenge is consumed exactly once."""
        ...


class PasskeyStore(Protocol):
    """A user's registered passkeys (:mod:`stepup.passkeys`). Each method is atomic."""

    def list_passkeys(self, user_id: str) -> tuple[Passkey, ...]:
        """The user's passkeys, oldest first (by ``created_at``, then credential id)."""
        ...

    def add_passkey(self, passkey: Passkey, max_per_user: int) -> bool:
        """Atomically: add it unless its credential id is registered already (to anyone)
        or the user has ``max_per_user`` passkeys; ``True`` if added, and then the
        credential id is the user's until :meth:`remove_passkey`. Of concurrent adds of
        one credential id exactly one succeeds, and concurrent adds of one user's
        passkeys never pass the limit together."""
        ...

    def remove_passkey(self, user_id: str, credential_id: str) -> bool:
        """Remove one of the user's passkeys; ``True`` if it was there."""
        ...

    def record_passkey_use(self, passkey: Passkey, expected_count: int) -> bool:
        """Compare-and-set: store ``passkey``'s sign count, backup state and last use
        only if the stored sign count is still ``expected_count``; ``True`` if stored."""
        ...

    def rename_passkey(self, user_id: str, credential_id: str, name: str) -> bool:
        """Set the name of one of the user's passkeys (nothing else); ``True`` if it is
        there."""
        ...


@runtime_checkable
class Store(
    AttemptStore, CredentialStore, TenantStore, GrantStore, ChallengeStore, PasskeyStore, Protocol
):
    """Everything stepup keeps. The bundled stores implement all of it."""


class AsyncStore(Protocol):
    """The async flavour: the same methods as coroutines (see :class:`Store`)."""

    async def totp_attempt(
        self, key: str, step: int | None, now: float, throttle: ThrottlePolicy
    ) -> Attempt: ...

    async def throttle_charge(self, key: str, now: float, throttle: ThrottlePolicy) -> Attempt: ...

    async def throttle_refund(self, key: str, charge: Attempt, at: float) -> None: ...

    async def throttle_clear(self, key: str) -> None: ...

    async def throttle_state(self, key: str) -> ThrottleState: ...

    async def get_credential(self, user_id: str) -> Credential | None: ...

    async def put_credential(self, credential: Credential) -> None: ...

    async def add_credential(self, credential: Credential) -> bool: ...

    async def delete_credential(self, user_id: str) -> bool: ...

    async def consume_recovery_hash(self, user_id: str, digest: str) -> bool: ...

    async def replace_credential(self, credential: Credential, expected_version: int) -> bool: ...

    async def get_tenant(self, tenant_id: str) -> Tenant | None: ...

    async def put_tenant(self, tenant: Tenant) -> None: ...

    async def add_tenant(self, tenant: Tenant) -> Tenant: ...

    async def patch_tenant(
        self, tenant_id: str, attributes: Mapping[str, Any], flags: Mapping[str, Any]
    ) -> tuple[Tenant, Tenant] | None: ...

    async def put_grant(self, grant: Grant, expires_at: float) -> None: ...

    async def get_grant(self, user_id: str, session_id: str) -> Grant | None: ...

    async def replace_grant(
        self, grant: Grant, expires_at: float, expected: Grant, from_session: str
    ) -> bool: ...

    async def revoke_grants(self, user_id: str, session_id: str | None = None) -> int: ...

    async def put_challenge(self, challenge: Challenge) -> None: ...

    async def take_challenge(self, challenge_id: str, now: float) -> Challenge | None: ...

    async def list_passkeys(self, user_id: str) -> tuple[Passkey, ...]: ...

    async def add_passkey(self, passkey: Passkey, max_per_user: int) -> bool: ...

    async def remove_passkey(self, user_id: str, credential_id: str) -> bool: ...

    async def record_passkey_use(self, passkey: Passkey, expected_count: int) -> bool: ...

    async def rename_passkey(self, user_id: str, credential_id: str, name: str) -> bool: ...
