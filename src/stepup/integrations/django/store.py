"""The Django ORM store: everything stepup keeps, in the project's own database.

Implements :class:`stepup.adapters.storage.base.Store`; the shipped contract suite runs
unchanged against it on SQLite and PostgreSQL.

How each operation is atomic:

- ``totp_attempt`` / ``throttle_charge`` / ``throttle_refund`` lock the key's row with
  ``select_for_update()`` inside ``transaction.atomic()`` and apply the pure
  :func:`stepup.throttle.apply_attempt` (or ``apply_charge``, ``apply_refund``), the same
  transition every store uses. A missing row is inserted in a savepoint; a concurrent
  insert of the same key loses on the primary key and retries through the row lock.
- Consuming (a recovery code, a challenge) and revoking are one conditional
  ``DELETE``; its row count says who won. Using a recovery code first locks the
  credential's row (as every credential write does, so they queue in one order) and
  adds one to its version.
- ``replace_grant`` is one conditional ``UPDATE`` (or ``DELETE`` and write, to a
  renewed session id) matching the grant read: its methods, time and level.
- ``replace_credential`` is one conditional ``UPDATE ... WHERE version = expected``
  (a compare-and-set); ``add_credential`` an ``INSERT`` in a savepoint that the
  primary key refuses when the user has a credential (stored before or meanwhile). A
  new row starts at a fresh random version, so no compare-and-set read from a deleted
  credential matches the user's next one;
  ``patch_tenant`` merges under the tenant row's ``select_for_update()`` lock.
- Passkeys: the credential id is the primary key, so a second insert of one id fails
  on it (``IntegrityError``: refused). ``add_passkey`` counts the user's passkeys
  under a transaction-scoped advisory lock on the user (PostgreSQL; SQLite holds the
  write lock), so concurrent adds cannot pass the limit together;
  ``record_passkey_use`` is one ``UPDATE ... WHERE sign_count = expected``.
- SQLite has no row locks: each write transaction starts with a write statement that
  changes nothing, so it takes the database's write lock before it reads (waiting with
  the busy timeout, where a read-then-write transaction would fail with "database is
  locked"), whatever the project's ``transaction_mode``. Threads of one process also
  queue on an in-process lock, which is cheaper than SQLite's sleeping busy handler.

Connections: Django opens one per thread. Threads Django does not manage (a pool, the
contract suite's 32 workers) would keep theirs open until garbage collection, so the
store closes a thread's connection when that thread ends.

Failures: every method turns a database error into
:class:`~stepup.errors.StoreUnavailableError` naming the call and the error's type
only (a driver's message can carry a URL), and drops the thread's connection if it no
longer works, so the next call opens a fresh one, as the SQL store does; outside
Django's request cycle (``manage.py`` commands, workers, threads) nothing else would.
An id that is not a ``str``, or not UTF-8 (a lone surrogate), is refused before any
query with :class:`~stepup.errors.MalformedInputError`. A call from a running event loop
(an ``async def`` view calling the sync API), which Django's ORM refuses, is
:class:`~stepup.errors.ConfigurationError` naming the fix: a mistake in the code, never
reported as an outage.

Documents (tenant attributes, challenge data, passkey transports) are kept as compact
ASCII JSON text and read with the SQL store's decoder, so every database keeps what
every other store keeps: NUL and lone surrogates are escapes, and numbers read back as
they were written (``jsonb`` would refuse the one and rewrite the other).
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext, suppress
from typing import Any, ClassVar, Concatenate, Final, ParamSpec, TypeVar

from django.core.exceptions import SynchronousOnlyOperation
from django.db import DatabaseError, IntegrityError, InterfaceError, connections, transaction
from django.db.models import F
from django.db.models.functions import Collate

from ...adapters.storage.base import new_credential_version
from ...adapters.storage.boundary import INPUT_CHECKS
from ...adapters.storage.stored_json import loads
from ...errors import ConfigurationError, MalformedInputError, StoreUnavailableError
from ...records import (
    Attempt,
    Challenge,
    Credential,
    Grant,
    Passkey,
    Tenant,
    ThrottleState,
    TotpDevice,
)
from ...throttle import ThrottlePolicy, apply_attempt, apply_charge, apply_refund, keep_until
from .models import (
    ID_LENGTH,
    AttemptState,
    ChallengeRecord,
    CredentialRecord,
    GrantRecord,
    PasskeyRecord,
    RecoveryHash,
    TenantRecord,
)

__all__ = ["DjangoStore"]

_EMPTY: Final = ThrottleState()
_STATE_FIELDS: Final = ("failures", "blocked_until", "last_step", "expires_at")
_CREDENTIAL_FIELDS: Final = (
    "credential_id",
    "secret",
    "digits",
    "period",
    "algorithm",
    "confirmed",
    "created_at",
)
_READ_FIELDS: Final = (*_CREDENTIAL_FIELDS, "version", "devices")
_sqlite_locks: dict[str, threading.Lock] = {}
_sqlite_locks_guard = threading.Lock()

Transition = Callable[[ThrottleState], tuple[ThrottleState, Attempt]]
P = ParamSpec("P")
R = TypeVar("R")

#: What "the database could not answer" looks like through the ORM (a value the driver
#: cannot encode fails there too, as in the SQL store).
_DATABASE_ERRORS: Final = (DatabaseError, InterfaceError, UnicodeError)


#: How a hashed id starts. An id that itself starts so is hashed too, so no id can be
#: stored as another's hashed form (``sha256:<hash of a long id>`` is an accepted id).
_HASHED: Final = "sha256:"


def _fit(value: object, name: str) -> str:
    """Ids longer than the columns are stored as their SHA-256 (fixed size), and so is
    any id that starts like a hashed one: two different ids never share a row.

    An id that is not a ``str``, or one stored as it is that the driver cannot encode
    (a lone surrogate), is :class:`MalformedInputError` naming ``name``, before any
    query (never the value: it may be anything)."""
    if not isinstance(value, str):
        raise MalformedInputError(f"{name} must be a string")
    if len(value) <= ID_LENGTH and not value.startswith(_HASHED):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise MalformedInputError(f"{name} is not UTF-8 text (a lone surrogate)") from None
        return value
    return _HASHED + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def _guarded(
    method: Callable[Concatenate[DjangoStore, P], R],
) -> Callable[Concatenate[DjangoStore, P], R]:
    """The store's one failure path: malformed input is refused before anything is
    sent (the checks every bundled store makes,
    :data:`~stepup.adapters.storage.boundary.INPUT_CHECKS`), and a database error is
    :class:`StoreUnavailableError` naming the call and the error's type (never the
    driver's message, which can carry a URL), after dropping a broken connection.
    Django's ``SynchronousOnlyOperation`` (the store called from a running event loop)
    is :class:`~stepup.errors.ConfigurationError` saying how to call it instead."""
    operation = method.__name__
    check = INPUT_CHECKS.get(operation)

    @functools.wraps(method)
    def guarded(store: DjangoStore, /, *args: P.args, **kwargs: P.kwargs) -> R:
        if check is not None:
            check(*args, **kwargs)
        try:
            return method(store, *args, **kwargs)
        except SynchronousOnlyOperation:
            # A programming error, not an outage: retrying never helps.
            raise ConfigurationError(
                f"DjangoStore.{operation} was called from async code (a running event"
                " loop), where Django's ORM refuses to run: call stepup's sync API from"
                " sync code or through asgiref's sync_to_async, or use its async API"
                " (request.stepup.arequire, aguard, acheck)"
            ) from None
        except _DATABASE_ERRORS as exc:
            store._drop_broken_connection()
            raise StoreUnavailableError(
                f"DjangoStore.{operation}: database {store.using!r} unavailable"
                f" ({type(exc).__name__})"
            ) from exc

    return guarded


def _sqlite_lock(alias: str) -> threading.Lock:
    with _sqlite_locks_guard:
        return _sqlite_locks.setdefault(alias, threading.Lock())


class _CloseAtThreadExit:
    """Held in a thread-local: dropped when its thread ends, closing that thread's
    connection (without Django's thread check: the thread is already going)."""

    def __init__(self, wrapper: Any) -> None:
        self.wrapper = wrapper

    def __del__(self) -> None:
        raw = getattr(self.wrapper, "connection", None)
        if raw is not None:
            with suppress(Exception):
                raw.close()


_thread_state = threading.local()


class DjangoStore:
    """A sync store on the Django ORM, in the database ``using`` (an alias of DATABASES)."""

    #: Each operation is one atomic step (the contract's forced race cases have no
    #: read of this store's own to interleave; its thread cases test it).
    atomic_operations: ClassVar[bool] = True

    def __init__(self, using: str = "default") -> None:
        self.using = using
        self._sqlite = connections[using].vendor == "sqlite"
        self._lock: Any = _sqlite_lock(using) if self._sqlite else nullcontext()
        table = connections[using].ops.quote_name(AttemptState._meta.db_table)
        key = connections[using].ops.quote_name("key")
        self._take_write_lock = f"UPDATE {table} SET {key} = {key} WHERE 0"  # noqa: S608

    def __repr__(self) -> str:
        return f"DjangoStore(using={self.using!r})"

    def _drop_broken_connection(self) -> None:
        """Close this thread's connection if it no longer works (a terminated backend, a
        restarted server), so the next call opens a fresh one. Inside the app's own
        ``atomic`` block it stays: Django closes it when that block ends."""
        connection = connections[self.using]
        if connection.in_atomic_block:
            return
        with suppress(*_DATABASE_ERRORS):
            connection.close_if_unusable_or_obsolete()

    def _watch_thread(self) -> None:
        if threading.current_thread() is threading.main_thread():
            return
        watched: dict[str, _CloseAtThreadExit] | None = getattr(_thread_state, "watched", None)
        if watched is None:
            watched = _thread_state.watched = {}
        if self.using not in watched:
            watched[self.using] = _CloseAtThreadExit(connections[self.using])

    @contextmanager
    def _write(self) -> Iterator[None]:
        self._watch_thread()
        with self._lock, transaction.atomic(using=self.using):
            if self._sqlite:
                with connections[self.using].cursor() as cursor:
                    cursor.execute(self._take_write_lock)
            yield

    def _insert_or_update(self, model: Any, lookup: dict[str, Any], values: dict[str, Any]) -> None:
        """Replace-or-create by ``lookup``, safe against a concurrent create (call inside
        :meth:`_write`)."""
        objects = model.objects.using(self.using)
        if objects.filter(**lookup).update(**values):
            return
        try:
            with transaction.atomic(using=self.using):
                objects.create(**lookup, **values)
        except IntegrityError:  # created meanwhile, or refused: then it is not there
            if not objects.filter(**lookup).update(**values):
                raise

    # attempts -------------------------------------------------------------------------

    def _transition(
        self, key: str, now: float, throttle: ThrottlePolicy, apply: Transition
    ) -> Attempt:
        objects = AttemptState.objects.using(self.using)
        fitted = _fit(key, "key")
        with self._write():
            locked = objects.select_for_update().filter(key=fitted)
            row = locked.values_list(*_STATE_FIELDS).first()
            if row is None:
                state, attempt = apply(_EMPTY)
                try:
                    with transaction.atomic(using=self.using):
                        expires_at = keep_until(state, now, throttle)
                        objects.create(key=fitted, expires_at=expires_at, **_columns(state))
                    return attempt
                except IntegrityError:  # created meanwhile: now it is there to lock
                    row = locked.values_list(*_STATE_FIELDS).first()
                    if row is None:  # not a concurrent insert: the row was refused
                        raise
            current = ThrottleState(row[0], row[1], row[2]) if row[3] > now else _EMPTY
            state, attempt = apply(current)
            expires_at = keep_until(state, now, throttle)
            objects.filter(key=fitted).update(expires_at=expires_at, **_columns(state))
        return attempt

    @_guarded
    def totp_attempt(
        self, key: str, step: int | None, now: float, throttle: ThrottlePolicy
    ) -> Attempt:
        return self._transition(
            key, now, throttle, lambda state: apply_attempt(state, step, now, throttle)
        )

    @_guarded
    def throttle_charge(self, key: str, now: float, throttle: ThrottlePolicy) -> Attempt:
        return self._transition(
            key, now, throttle, lambda state: apply_charge(state, now, throttle)
        )

    @_guarded
    def throttle_refund(self, key: str, charge: Attempt, at: float) -> None:
        objects = AttemptState.objects.using(self.using)
        fitted = _fit(key, "key")
        with self._write():
            locked = objects.select_for_update().filter(key=fitted)
            row = locked.values_list(*_STATE_FIELDS).first()
            if row is None or row[3] <= at:
                return
            state = ThrottleState(row[0], row[1], row[2])
            refunded = apply_refund(state, charge, at)
            if refunded != state:
                objects.filter(key=fitted).update(**_columns(refunded))

    @_guarded
    def throttle_clear(self, key: str) -> None:
        with self._write():
            AttemptState.objects.using(self.using).filter(key=_fit(key, "key")).update(
                failures=0, blocked_until=0.0
            )

    @_guarded
    def throttle_state(self, key: str) -> ThrottleState:
        self._watch_thread()
        objects = AttemptState.objects.using(self.using)
        row = objects.filter(key=_fit(key, "key")).values_list(*_STATE_FIELDS[:3]).first()
        return _EMPTY if row is None else ThrottleState(*row)

    # credentials ----------------------------------------------------------------------

    @_guarded
    def get_credential(self, user_id: str) -> Credential | None:
        self._watch_thread()
        fitted = _fit(user_id, "user_id")
        row = (
            CredentialRecord.objects.using(self.using)
            .filter(pk=fitted)
            .values_list(*_READ_FIELDS)
            .first()
        )
        if row is None:
            return None
        digests = (
            RecoveryHash.objects.using(self.using)
            .filter(credential_id=fitted)
            .order_by("position")
            .values_list("digest", flat=True)
        )
        values = dict(zip(_READ_FIELDS, row, strict=True))
        devices = tuple(TotpDevice.from_dict(d) for d in json.loads(values.pop("devices") or "[]"))
        return Credential(
            user_id=user_id, recovery_hashes=tuple(digests), devices=devices, **values
        )

    @_guarded
    def credential_user_ids(self) -> list[str]:
        """Every user id with a TOTP credential (for ``manage.py stepup_operator reseal``;
        an id longer than the column is its stored SHA-256 form, which reads it back)."""
        self._watch_thread()
        rows = CredentialRecord.objects.using(self.using).order_by("pk")
        return [str(pk) for pk in rows.values_list("pk", flat=True)]

    def _replace_hashes(self, fitted: str, credential: Credential) -> None:
        hashes = RecoveryHash.objects.using(self.using)
        hashes.filter(credential_id=fitted).delete()
        hashes.bulk_create(
            RecoveryHash(credential_id=fitted, position=position, digest=digest)
            for position, digest in enumerate(credential.recovery_hashes)
        )

    def _lock_credential(self, fitted: str) -> bool:
        """Lock the credential's row (inside :meth:`_write`); ``False`` if there is none."""
        objects = CredentialRecord.objects.using(self.using)
        return objects.select_for_update().filter(pk=fitted).values_list("pk").first() is not None

    @_guarded
    def put_credential(self, credential: Credential) -> None:
        fitted = _fit(credential.user_id, "user_id")
        values = _credential_columns(credential)
        objects = CredentialRecord.objects.using(self.using)
        with self._write():
            if not objects.filter(pk=fitted).update(version=F("version") + 1, **values):
                fresh = new_credential_version()  # never a deleted credential's version
                try:
                    with transaction.atomic(using=self.using):
                        objects.create(user_id=fitted, version=fresh, **values)
                except IntegrityError:  # created meanwhile, or refused: then it is not there
                    if not objects.filter(pk=fitted).update(version=F("version") + 1, **values):
                        raise
            self._replace_hashes(fitted, credential)

    @_guarded
    def add_credential(self, credential: Credential) -> bool:
        fitted = _fit(credential.user_id, "user_id")
        values = _credential_columns(credential)
        with self._write():
            try:
                with transaction.atomic(using=self.using):
                    CredentialRecord.objects.using(self.using).create(
                        user_id=fitted, version=new_credential_version(), **values
                    )
            except IntegrityError:  # the user has one (stored before, or meanwhile)
                return False
            self._replace_hashes(fitted, credential)
        return True

    @_guarded
    def replace_credential(self, credential: Credential, expected_version: int) -> bool:
        fitted = _fit(credential.user_id, "user_id")
        values = _credential_columns(credential)
        with self._write():
            replaced = (
                CredentialRecord.objects.using(self.using)
                .filter(pk=fitted, version=expected_version)
                .update(version=F("version") + 1, **values)
            )
            if replaced:
                self._replace_hashes(fitted, credential)
        return bool(replaced)

    @_guarded
    def delete_credential(self, user_id: str) -> bool:
        fitted = _fit(user_id, "user_id")
        with self._write():
            if not self._lock_credential(fitted):  # the row first, then its hashes
                return False
            _, counts = CredentialRecord.objects.using(self.using).filter(pk=fitted).delete()
        return bool(counts.get(CredentialRecord._meta.label, 0))

    @_guarded
    def consume_recovery_hash(self, user_id: str, digest: str) -> bool:
        fitted = _fit(user_id, "user_id")
        with self._write():
            if not self._lock_credential(fitted):
                return False
            deleted, _ = (
                RecoveryHash.objects.using(self.using)
                .filter(credential_id=fitted, digest=digest)
                .delete()
            )
            if deleted:
                CredentialRecord.objects.using(self.using).filter(pk=fitted).update(
                    version=F("version") + 1
                )
        return bool(deleted)

    # tenants --------------------------------------------------------------------------

    @_guarded
    def get_tenant(self, tenant_id: str) -> Tenant | None:
        self._watch_thread()
        objects = TenantRecord.objects.using(self.using)
        text = (
            objects.filter(pk=_fit(tenant_id, "tenant_id"))
            .values_list("attributes", flat=True)
            .first()
        )
        return None if text is None else Tenant(tenant_id, loads(text))

    @_guarded
    def put_tenant(self, tenant: Tenant) -> None:
        text = _json_text(tenant.attributes, "tenant.attributes")
        with self._write():
            self._insert_or_update(
                TenantRecord,
                {"tenant_id": _fit(tenant.tenant_id, "tenant_id")},
                {"attributes": text},
            )

    @_guarded
    def add_tenant(self, tenant: Tenant) -> Tenant:
        objects = TenantRecord.objects.using(self.using)
        fitted = _fit(tenant.tenant_id, "tenant_id")
        text = _json_text(tenant.attributes, "tenant.attributes")
        with self._write():
            stored = objects.filter(pk=fitted).values_list("attributes", flat=True).first()
            if stored is None:
                try:
                    with transaction.atomic(using=self.using):
                        objects.create(tenant_id=fitted, attributes=text)
                    return tenant
                except IntegrityError:  # created meanwhile (PostgreSQL): read it
                    stored = objects.filter(pk=fitted).values_list("attributes", flat=True).first()
                    if stored is None:  # not a concurrent insert: the row was refused
                        raise
        return Tenant(tenant.tenant_id, loads(stored))

    @_guarded
    def patch_tenant(
        self, tenant_id: str, attributes: Mapping[str, Any], flags: Mapping[str, Any]
    ) -> tuple[Tenant, Tenant] | None:
        objects = TenantRecord.objects.using(self.using)
        fitted = _fit(tenant_id, "tenant_id")
        with self._write():
            stored = (
                objects.select_for_update()
                .filter(pk=fitted)
                .values_list("attributes", flat=True)
                .first()
            )
            if stored is None:
                return None
            before = Tenant(tenant_id, loads(stored))
            after = before.patched(attributes, flags)
            text = _json_text(after.attributes, "tenant.attributes")
            objects.filter(pk=fitted).update(attributes=text)
        return before, after

    # grants ---------------------------------------------------------------------------

    @_guarded
    def put_grant(self, grant: Grant, expires_at: float) -> None:
        lookup = {
            "user_id": _fit(grant.user_id, "user_id"),
            "session_id": _fit(grant.session_id, "session_id"),
        }
        values = {
            "methods": ",".join(sorted(grant.methods)),
            "level": grant.level or "",
            "authenticated_at": grant.authenticated_at,
            "expires_at": expires_at,
        }
        with self._write():
            self._insert_or_update(GrantRecord, lookup, values)

    @_guarded
    def get_grant(self, user_id: str, session_id: str) -> Grant | None:
        self._watch_thread()
        row = (
            GrantRecord.objects.using(self.using)
            .filter(user_id=_fit(user_id, "user_id"), session_id=_fit(session_id, "session_id"))
            .values_list("methods", "authenticated_at", "level")
            .first()
        )
        if row is None:
            return None
        methods = frozenset(m for m in row[0].split(",") if m)  # "": a grant of none
        return Grant(user_id, session_id, methods, row[1], row[2] or None)

    @_guarded
    def replace_grant(
        self, grant: Grant, expires_at: float, expected: Grant, from_session: str
    ) -> bool:
        """A conditional ``UPDATE`` of the grant read (its methods, time and level as
        stored), of its key too when it moves to a renewed session id: a revocation
        committed first leaves nothing to match, and nothing is written. The row is
        never deleted and inserted anew: a concurrent ``revoke_grants`` of the user
        that waited on the row's lock then deletes the row as moved (PostgreSQL
        re-reads a row updated under it; a row inserted anew is not in its snapshot).
        A move locks the row first (``select_for_update``), then removes a grant
        already stored under the new id (the unique key; locked with ``nowait`` where
        the database has it: a revocation that already deleted it waits for the row
        being moved, and the move fails at once instead of deadlocking with it), then
        moves the row."""
        grants = GrantRecord.objects.using(self.using)
        user = _fit(grant.user_id, "user_id")
        to_session = _fit(grant.session_id, "session_id")
        read = grants.filter(
            user_id=user,
            session_id=_fit(from_session, "session_id"),
            methods=",".join(sorted(expected.methods)),
            level=expected.level or "",
            authenticated_at=expected.authenticated_at,
        )
        values = {
            "session_id": to_session,
            "methods": ",".join(sorted(grant.methods)),
            "level": grant.level or "",
            "authenticated_at": grant.authenticated_at,
            "expires_at": expires_at,
        }
        with self._write():
            if from_session != grant.session_id:
                row = read.select_for_update().values_list("pk", flat=True).first()
                if row is None:
                    return False  # revoked or replaced meanwhile: nothing changes
                self._clear_moved_to(user, to_session)
                read = grants.filter(pk=row)
            return bool(read.update(**values))

    def _clear_moved_to(self, user_id: str, session_id: str) -> None:
        """Remove the grant stored under the id a grant moves to (inside :meth:`_write`)."""
        nowait = connections[self.using].features.has_select_for_update_nowait
        there = GrantRecord.objects.using(self.using).filter(user_id=user_id, session_id=session_id)
        found = list(there.select_for_update(nowait=nowait).values_list("pk", flat=True))
        if found:
            GrantRecord.objects.using(self.using).filter(pk__in=found).delete()

    @_guarded
    def revoke_grants(self, user_id: str, session_id: str | None = None) -> int:
        grants = GrantRecord.objects.using(self.using).filter(user_id=_fit(user_id, "user_id"))
        if session_id is not None:
            grants = grants.filter(session_id=_fit(session_id, "session_id"))
        with self._write():
            deleted, _ = grants.delete()
        return int(deleted)

    # challenges -----------------------------------------------------------------------

    @_guarded
    def put_challenge(self, challenge: Challenge) -> None:
        values = {
            "user_id": challenge.user_id,
            "session_id": challenge.session_id,
            "issued_at": challenge.issued_at,
            "expires_at": challenge.expires_at,
            "data": _json_text(challenge.data, "challenge.data"),
        }
        with self._write():
            self._insert_or_update(
                ChallengeRecord,
                {"challenge_id": _fit(challenge.challenge_id, "challenge_id")},
                values,
            )

    @_guarded
    def take_challenge(self, challenge_id: str, now: float) -> Challenge | None:
        """Read it, then delete it: only the caller whose ``DELETE`` removed the row wins.
        An expired challenge is removed too, and refused."""
        challenges = ChallengeRecord.objects.using(self.using).filter(
            pk=_fit(challenge_id, "challenge_id")
        )
        with self._write():
            row = challenges.values_list(
                "user_id", "session_id", "issued_at", "expires_at", "data"
            ).first()
            if row is None:
                return None
            deleted, _ = challenges.delete()
        if not deleted or row[3] <= now:
            return None
        return Challenge(challenge_id, row[0], row[1], row[2], row[3], loads(row[4]))

    # passkeys -------------------------------------------------------------------------

    @_guarded
    def list_passkeys(self, user_id: str) -> tuple[Passkey, ...]:
        self._watch_thread()
        rows = (
            PasskeyRecord.objects.using(self.using)
            .filter(user_id=_fit(user_id, "user_id"))
            .order_by("created_at", self._by_code_point("credential_id"))
            .values_list(*_PASSKEY_FIELDS)
        )
        return tuple(
            Passkey(
                user_id=user_id,
                **{
                    **dict(zip(_PASSKEY_FIELDS, row, strict=True)),
                    "transports": tuple(loads(row[-1])),
                },
            )
            for row in rows
        )

    def _by_code_point(self, field: str) -> Any:
        """Order ``field`` by code point on every database, as the other stores do
        (PostgreSQL's default collation follows the locale; SQLite's is binary)."""
        if connections[self.using].vendor == "postgresql":
            return Collate(field, "C")
        return field

    @_guarded
    def add_passkey(self, passkey: Passkey, max_per_user: int) -> bool:
        fitted = _fit(passkey.user_id, "user_id")
        objects = PasskeyRecord.objects.using(self.using)
        values = {name: getattr(passkey, name) for name in _PASSKEY_FIELDS}
        values["transports"] = _json_text(list(passkey.transports), "passkey.transports")
        with self._write():
            if connections[self.using].vendor == "postgresql":  # SQLite: the write lock
                with connections[self.using].cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_user_lock(fitted)])
            if objects.filter(user_id=fitted).count() >= max_per_user:
                return False
            try:
                with transaction.atomic(using=self.using):
                    objects.create(
                        key=_fit(passkey.credential_id, "credential_id"), user_id=fitted, **values
                    )
            except IntegrityError:  # the id is registered (to this user or another)
                return False
        return True

    @_guarded
    def remove_passkey(self, user_id: str, credential_id: str) -> bool:
        mine = PasskeyRecord.objects.using(self.using).filter(
            key=_fit(credential_id, "credential_id"), user_id=_fit(user_id, "user_id")
        )
        with self._write():
            deleted, _ = mine.delete()
        return bool(deleted)

    @_guarded
    def record_passkey_use(self, passkey: Passkey, expected_count: int) -> bool:
        with self._write():
            updated = (
                PasskeyRecord.objects.using(self.using)
                .filter(
                    key=_fit(passkey.credential_id, "credential_id"),
                    user_id=_fit(passkey.user_id, "user_id"),
                    sign_count=expected_count,
                )
                .update(
                    sign_count=passkey.sign_count,
                    backup_state=passkey.backup_state,
                    last_used_at=passkey.last_used_at,
                )
            )
        return bool(updated)

    @_guarded
    def rename_passkey(self, user_id: str, credential_id: str, name: str) -> bool:
        with self._write():
            updated = (
                PasskeyRecord.objects.using(self.using)
                .filter(key=_fit(credential_id, "credential_id"), user_id=_fit(user_id, "user_id"))
                .update(name=name)
            )
        return bool(updated)

    # housekeeping ---------------------------------------------------------------------

    @_guarded
    def purge_expired(self, now: float) -> int:
        """Delete throttle state, grants and challenges past their ``expires_at``
        (``manage.py stepup_purge`` runs this); returns how many rows went."""
        total = 0
        with self._write():
            for model in (AttemptState, GrantRecord, ChallengeRecord):
                deleted, _ = model.objects.using(self.using).filter(expires_at__lte=now).delete()
                total += deleted
        return total


_PASSKEY_FIELDS: Final = (
    "credential_id",
    "credential_data",
    "name",
    "sign_count",
    "backup_eligible",
    "backup_state",
    "user_verified",
    "created_at",
    "last_used_at",
    "transports",  # last: list_passkeys decodes it into a tuple
)


def _json_text(value: object, name: str) -> str:
    """``value`` as the JSON text the store keeps: compact and ASCII-only, so NUL and
    lone surrogates are escapes any text column holds. What JSON cannot hold (NaN,
    infinity, an object that is not JSON data) is :class:`MalformedInputError` naming
    ``name``, before anything is written."""
    try:
        return json.dumps(value, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError):
        raise MalformedInputError(f"{name} is not JSON data (NaN, infinity, ...)") from None


def _user_lock(fitted_user_id: str) -> int:
    """The PostgreSQL advisory lock id of one user's passkeys."""
    digest = hashlib.sha256(f"stepup-passkeys:{fitted_user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _credential_columns(credential: Credential) -> dict[str, Any]:
    values = {name: getattr(credential, name) for name in _CREDENTIAL_FIELDS}
    devices = [device.to_dict() for device in credential.devices]
    values["devices"] = json.dumps(devices) if devices else ""
    return values


def _columns(state: ThrottleState) -> dict[str, Any]:
    return {
        "failures": state.failures,
        "blocked_until": state.blocked_until,
        "last_step": state.last_step,
    }
