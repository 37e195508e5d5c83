"""What the SQL store does, written once for the sync and the async engine.

Each store operation is a generator that yields ``(statement, parameters)`` and
receives the buffered result; :class:`~.sql.SQLStore` and
:class:`~.sql.AsyncSQLStore` run the whole generator inside one transaction.
Statements are built once per store (with bind parameters), so SQLAlchemy's
compiled cache serves every call.

The common case of ``totp_attempt``, a later step from a credential that is not
blocked, or the first step a key ever claims, is one insert-or-conditional-update
(:attr:`Statements.claim_step`) whose returned row (SQLite: its changed-row count)
says whether the claim won; it accepts exactly when
:func:`stepup.throttle.apply_attempt` would. A wrong code from a credential that is not
blocked is one statement too (:func:`count_failure`). Anything else (a replay, a code
from a blocked credential) takes the locked path below.

Atomicity of the read-decide-write operations (``totp_attempt``,
``throttle_charge``): the first statement is an insert-on-conflict-update that
creates the row if needed and, either way, locks it for the rest of the
transaction and returns its current values (PostgreSQL takes the row lock, as
``SELECT ... FOR UPDATE`` would; SQLite is already inside ``BEGIN IMMEDIATE``).
The decision is the pure :func:`stepup.throttle.apply_attempt`, the same one
every store uses; the second statement writes its result. Consuming operations
are one conditional ``DELETE`` whose affected rows say who won.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Generator, Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeAlias, TypeVar

from sqlalchemy import (
    BigInteger,
    BindParameter,
    CursorResult,
    Double,
    Executable,
    Integer,
    Row,
    Text,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal_column,
    or_,
    text,
)
from sqlalchemy import delete as sql_delete
from sqlalchemy import insert as sql_insert
from sqlalchemy import select as sql_select
from sqlalchemy import update as sql_update
from sqlalchemy.dialects import postgresql, sqlite

from ...errors import ConfigurationError
from ...records import (
    Attempt,
    AttemptOutcome,
    Challenge,
    Credential,
    Grant,
    Passkey,
    Tenant,
    ThrottleState,
)
from ...throttle import ThrottlePolicy, apply_attempt, apply_charge, apply_refund, keep_until
from .base import BATCHABLE_READS, new_credential_version
from .sql_schema import Tables
from .stored_json import grant_text, loads, tenant_for_decision
from .stored_json import tenant as stored_tenant

__all__ = ["ACCEPTED", "BATCHABLE", "Op", "Statements", "claim_params"]

R = TypeVar("R")
T = TypeVar("T")
Params: TypeAlias = Mapping[str, Any] | Sequence[Mapping[str, Any]]
Op: TypeAlias = Generator[tuple[Executable, Params], CursorResult[Any], R]

_EMPTY = ThrottleState()
#: The reads the SQL stores' ``batch`` answers (get_tenant with get_grant in one statement).
BATCHABLE = BATCHABLE_READS
#: The answer to a claim that won (immutable, so shared).
ACCEPTED = Attempt(AttemptOutcome.ACCEPTED)


#: How :attr:`Statements.read_tenant_and_grant` joins two records in one column, and
#: what stands for a missing one: control characters, which no JSON text contains.
RECORD_SEPARATOR = "\x01"
ABSENT = "\x02"


class Statements:
    """Every statement of one prefix and one dialect (``sqlite`` or ``postgresql``)."""

    def __init__(self, tables: Tables, dialect: str) -> None:
        if dialect == "postgresql":
            upsert = postgresql.insert
        elif dialect == "sqlite":
            upsert = sqlite.insert  # type: ignore[assignment]
        else:
            raise ConfigurationError(
                f"the SQL store supports sqlite and postgresql, not {dialect!r}"
            )
        self.tables = t = tables

        a = t.attempts.c
        lock = upsert(t.attempts).values(
            key=bindparam("key", type_=Text),
            failures=0,
            blocked_until=0.0,
            last_step=None,
            expires_at=0.0,
        )
        # A no-op update: it exists to lock the row and return its current values.
        self.lock_attempt = lock.on_conflict_do_update(
            index_elements=[a.key], set_={"failures": a.failures}
        ).returning(a.failures, a.blocked_until, a.last_step, a.expires_at)
        self.write_attempt = (
            sql_update(t.attempts)
            .where(a.key == bindparam("k", type_=Text))
            .values(
                failures=bindparam("f", type_=Integer),
                blocked_until=bindparam("b", type_=Double),
                last_step=bindparam("s", type_=BigInteger),
                expires_at=bindparam("e", type_=Double),
            )
        )
        # The optimistic read-decide-write (asyncpg, which cannot pipeline a locked
        # transaction): read without a lock, then write only if the row is still
        # exactly what was read (or still absent); the loser reads again.
        self.read_attempt_row = sql_select(
            a.failures, a.blocked_until, a.last_step, a.expires_at
        ).where(a.key == bindparam("k", type_=Text))
        self.swap_attempt = self.write_attempt.where(
            a.failures == bindparam("f0", type_=Integer),
            a.blocked_until == bindparam("b0", type_=Double),
            a.last_step.is_not_distinct_from(bindparam("s0", type_=BigInteger)),
            a.expires_at == bindparam("e0", type_=Double),
        )
        self.insert_attempt = (
            upsert(t.attempts)
            .values(
                key=bindparam("k", type_=Text),
                failures=bindparam("f", type_=Integer),
                blocked_until=bindparam("b", type_=Double),
                last_step=bindparam("s", type_=BigInteger),
                expires_at=bindparam("e", type_=Double),
            )
            .on_conflict_do_nothing(index_elements=[a.key])
        )
        # Accept ``s`` exactly when apply_attempt would: the row is forgotten (past
        # expires_at), or not blocked at ``now`` and its last step is earlier or none.
        # Like apply_attempt, a success keeps the failures and their block reference
        # unless every failure is forgiven (blocked_until + failures * max_delay <= now,
        # ``p`` being max_delay), and never shortens the row's life. Literal constants
        # keep the bind names to k, now, s, e and p.
        now, step = bindparam("now", type_=Double), bindparam("s", type_=BigInteger)
        keep, cap = bindparam("e", type_=Double), bindparam("p", type_=Double)
        # A key never seen is inserted as claimed (what apply_attempt makes of no state),
        # so a first-ever claim is this one statement too.
        counted = and_(a.expires_at > now, a.blocked_until + a.failures * cap > now)
        claim = upsert(t.attempts).values(
            key=bindparam("k", type_=Text),
            failures=literal_column("0"),
            blocked_until=literal_column("0.0"),
            last_step=step,
            expires_at=keep,
        )
        claim_step = claim.on_conflict_do_update(
            index_elements=[a.key],
            set_={
                "failures": case((counted, a.failures), else_=literal_column("0")),
                "blocked_until": case((counted, a.blocked_until), else_=literal_column("0.0")),
                "last_step": step,
                "expires_at": case((a.expires_at > keep, a.expires_at), else_=keep),
            },
            where=or_(
                a.expires_at <= now,
                and_(a.blocked_until <= now, or_(a.last_step.is_(None), a.last_step < step)),
            ),
        )
        # PostgreSQL: a row back says it claimed (as ever; nothing measurable against the
        # round trip). SQLite: the changed-row count says it, as RETURNING would cost an
        # ephemeral table per call (a quarter of the statement's time here).
        self.claim_returns = dialect == "postgresql"
        self.claim_step = claim_step.returning(a.last_step) if self.claim_returns else claim_step
        self.count_failure = _count_failure(t, dialect)
        # The row of a refund, locked if it exists (SQLite: already inside BEGIN IMMEDIATE).
        self.lock_existing_attempt = (
            sql_select(a.failures, a.blocked_until, a.last_step, a.expires_at)
            .where(a.key == bindparam("k", type_=Text))
            .with_for_update()
        )
        self.clear_attempt = (
            sql_update(t.attempts)
            .where(a.key == bindparam("k", type_=Text))
            .values(failures=0, blocked_until=0.0)
        )
        self.read_attempt = sql_select(a.failures, a.blocked_until, a.last_step).where(
            a.key == bindparam("k", type_=Text)
        )

        # Every write of a credential first writes its credentials row (taking that
        # row's lock on PostgreSQL) and only then its recovery_hashes rows: one lock
        # order, so a reseal and a recovery-code use cannot deadlock.
        c, r = t.credentials.c, t.recovery_hashes.c
        user = bindparam("u", type_=Text)
        self.read_credential = (
            sql_select(c.data, c.version, r.digest)
            .select_from(t.credentials.outerjoin(t.recovery_hashes, r.user_id == c.user_id))
            .where(c.user_id == user)
            .order_by(r.position)
        )
        # A new row starts at a fresh random version (bound, drawn in Python), never
        # at one a deleted credential had: no compare-and-set read from that one
        # matches it (an ABA). An existing row's version moves one up.
        put = upsert(t.credentials).values(
            user_id=bindparam("user_id", type_=Text),
            data=bindparam("data", type_=Text),
            version=bindparam("fresh", type_=BigInteger),
        )
        self.put_credential = put.on_conflict_do_update(
            index_elements=[c.user_id], set_={"data": put.excluded.data, "version": c.version + 1}
        )
        # Insert-if-absent: of concurrent first writes for one user exactly one inserts
        # (the others wait on the primary key, then insert nothing); a row back says
        # it inserted (psycopg answers a rowcount of -1 here).
        self.add_credential = put.on_conflict_do_nothing(index_elements=[c.user_id]).returning(
            c.user_id
        )
        # The compare-and-set: only the writer that finds the version it read wins.
        self.replace_credential = (
            sql_update(t.credentials)
            .where(c.user_id == user, c.version == bindparam("v", type_=BigInteger))
            .values(data=bindparam("data", type_=Text), version=c.version + 1)
        )
        self.delete_credential = sql_delete(t.credentials).where(c.user_id == user)
        self.delete_hashes = sql_delete(t.recovery_hashes).where(r.user_id == user)
        self.insert_hash = sql_insert(t.recovery_hashes)
        digest = bindparam("d", type_=Text)
        # Bump the version (locking the row) only while the digest is there to consume.
        self.bump_for_hash = (
            sql_update(t.credentials)
            .where(
                c.user_id == user,
                sql_select(r.digest).where(r.user_id == user, r.digest == digest).exists(),
            )
            .values(version=c.version + 1)
        )
        self.consume_hash = sql_delete(t.recovery_hashes).where(
            r.user_id == user, r.digest == digest
        )

        tn = t.tenants.c
        self.read_tenant = sql_select(tn.data).where(tn.tenant_id == bindparam("t", type_=Text))
        # The row lock a patch holds from its read to its write (SQLite: the whole
        # transaction is BEGIN IMMEDIATE, and SQLAlchemy leaves FOR UPDATE out there).
        self.lock_tenant = self.read_tenant.with_for_update()
        self.write_tenant = (
            sql_update(t.tenants)
            .where(tn.tenant_id == bindparam("t", type_=Text))
            .values(data=bindparam("data", type_=Text))
        )
        put = upsert(t.tenants).values(
            tenant_id=bindparam("tenant_id", type_=Text), data=bindparam("data", type_=Text)
        )
        self.put_tenant = put.on_conflict_do_update(
            index_elements=[tn.tenant_id], set_={"data": put.excluded.data}
        )
        # A concurrent insert of the same id makes this one wait, then do nothing.
        self.add_tenant = put.on_conflict_do_nothing(index_elements=[tn.tenant_id])

        g = t.grants.c
        put = upsert(t.grants).values(
            user_id=bindparam("user_id", type_=Text),
            session_id=bindparam("session_id", type_=Text),
            data=bindparam("data", type_=Text),
            expires_at=bindparam("expires_at", type_=Double),
        )
        self.put_grant = put.on_conflict_do_update(
            index_elements=[g.user_id, g.session_id],
            set_={"data": put.excluded.data, "expires_at": put.excluded.expires_at},
        )
        self.read_grant = sql_select(g.data).where(
            g.user_id == bindparam("u", type_=Text), g.session_id == bindparam("s", type_=Text)
        )
        # The two reads of a re-authentication check: one statement (Store.batch) and
        # one column, the tenant's JSON and the grant's joined by RECORD_SEPARATOR, each
        # ABSENT when there is no row. ``sqlite3`` releases the GIL to read each column's
        # type, and under a threaded server every release hands the GIL to another
        # thread (docs/architecture.md, "The SQL store's hot path"): one column makes
        # the read release it 8 times, as a bare SELECT of one column does, not 9.
        # The two markers are constants of the statement's text, not parameters: three
        # binds fewer for the driver, and no merging of constants into every call's.
        separator = literal_column(f"'{RECORD_SEPARATOR}'", Text)
        absent = literal_column(f"'{ABSENT}'", Text)
        self.read_tenant_and_grant = sql_select(
            (
                func.coalesce(self.read_tenant.scalar_subquery(), absent)
                + separator
                + func.coalesce(self.read_grant.scalar_subquery(), absent)
            ).label("records")
        )
        # replace_grant: the grant read is still there exactly as it was stored (its
        # canonical JSON text, see stored_json.grant_text) or nothing is written. The
        # grant's row is updated in place, its key too when it moves to a renewed
        # session id: never deleted and inserted anew. A concurrent revoke_grants(user)
        # that waited on the row's lock then re-reads the row's new version
        # (PostgreSQL follows the update chain) and deletes it; a row inserted anew is
        # not in the revoke's snapshot, and the revoked proofs would stay under the new
        # id. A move first locks the row it moves (FOR UPDATE; SQLite: the whole
        # transaction is BEGIN IMMEDIATE), then removes a grant already stored under
        # the new id (the unique key), then moves the row. That grant is locked with
        # NOWAIT: a revoke_grants(user) that already deleted it waits for the row
        # being moved, and the move gives way (fails, rolled back) at once instead of
        # deadlocking with it, so the revocation is never the one that fails.
        expected = and_(
            g.user_id == bindparam("u", type_=Text),
            g.session_id == bindparam("f", type_=Text),
            g.data == bindparam("x", type_=Text),
        )
        self.lock_expected_grant = sql_select(g.session_id).where(expected).with_for_update()
        moved_to = and_(
            g.user_id == bindparam("u", type_=Text), g.session_id == bindparam("s", type_=Text)
        )
        self.lock_moved_to = sql_select(g.session_id).where(moved_to).with_for_update(nowait=True)
        self.clear_moved_to = sql_delete(t.grants).where(moved_to)
        self.move_grant = (
            sql_update(t.grants)
            .where(expected)
            .values(
                session_id=bindparam("s", type_=Text),
                data=bindparam("data", type_=Text),
                expires_at=bindparam("e", type_=Double),
            )
        )
        self.revoke_user = sql_delete(t.grants).where(g.user_id == bindparam("u", type_=Text))
        self.revoke_session = self.revoke_user.where(g.session_id == bindparam("s", type_=Text))

        ch = t.challenges.c
        put = upsert(t.challenges).values(
            challenge_id=bindparam("challenge_id", type_=Text),
            data=bindparam("data", type_=Text),
            expires_at=bindparam("expires_at", type_=Double),
        )
        self.put_challenge = put.on_conflict_do_update(
            index_elements=[ch.challenge_id],
            set_={"data": put.excluded.data, "expires_at": put.excluded.expires_at},
        )
        self.take_challenge = (
            sql_delete(t.challenges)
            .where(ch.challenge_id == bindparam("c", type_=Text))
            .returning(ch.data, ch.expires_at)
        )

        # Passkeys. Adding is one INSERT ... SELECT that inserts nothing when the user is
        # at the limit (the count is a subquery of the same statement) or when the
        # credential id is taken (ON CONFLICT DO NOTHING on the primary key: a concurrent
        # insert of the same id waits for the first, then inserts nothing). SQLite runs
        # it inside BEGIN IMMEDIATE, so the count cannot change under it; PostgreSQL
        # first takes a transaction-scoped advisory lock on the user (:attr:`lock_user`,
        # a second statement): two READ COMMITTED inserts of different ids would each
        # count without the other's row, and both pass the limit. (A statement's
        # snapshot is taken when it starts, so the lock cannot be part of the INSERT.)
        pk = t.passkeys.c
        self.list_passkeys = (
            sql_select(
                pk.credential_id,
                pk.name,
                pk.sign_count,
                pk.backup_state,
                pk.created_at,
                pk.last_used_at,
                pk.data,
            )
            .where(pk.user_id == user)
            # Ties by the id's code points, as every store orders them (PostgreSQL's
            # default collation would order by the locale's rules instead).
            .order_by(
                pk.created_at,
                pk.credential_id.collate("C") if dialect == "postgresql" else pk.credential_id,
            )
        )
        values: dict[str, BindParameter[Any]] = {
            "credential_id": bindparam("c", type_=Text),
            "user_id": user,
            "name": bindparam("name", type_=Text),
            "sign_count": bindparam("n", type_=BigInteger),
            "backup_state": bindparam("bs", type_=t.passkeys.c.backup_state.type),
            "created_at": bindparam("at", type_=Double),
            "last_used_at": bindparam("used", type_=Double),
            "data": bindparam("data", type_=Text),
        }
        mine = sql_select(func.count()).select_from(t.passkeys).where(pk.user_id == user)
        # Each value CAST to its column's type: PostgreSQL cannot infer a bare
        # parameter's type in a SELECT list.
        rows = sql_select(*(cast(v, v.type).label(k) for k, v in values.items())).where(
            mine.scalar_subquery() < bindparam("max", type_=BigInteger)
        )
        self.add_passkey = (
            upsert(t.passkeys)
            .from_select(list(values), rows)
            .on_conflict_do_nothing(index_elements=[pk.credential_id])
            .returning(pk.credential_id)  # a row back: added (rowcount is -1 on psycopg)
        )
        self.lock_user = (
            sql_select(func.pg_advisory_xact_lock(bindparam("lock", type_=BigInteger)))
            if dialect == "postgresql"
            else None
        )
        one = and_(pk.credential_id == bindparam("c", type_=Text), pk.user_id == user)
        self.remove_passkey = sql_delete(t.passkeys).where(one)
        # The compare-and-set on the sign count: only the use that read the stored count wins.
        self.record_passkey_use = (
            sql_update(t.passkeys)
            .where(one, pk.sign_count == bindparam("expected", type_=BigInteger))
            .values(
                sign_count=bindparam("n", type_=BigInteger),
                backup_state=bindparam("bs", type_=t.passkeys.c.backup_state.type),
                last_used_at=bindparam("used", type_=Double),
            )
        )
        self.rename_passkey = (
            sql_update(t.passkeys).where(one).values(name=bindparam("name", type_=Text))
        )

        now = bindparam("now", type_=Double)
        self.prune = (
            sql_delete(t.attempts).where(a.expires_at <= now),
            sql_delete(t.grants).where(g.expires_at <= now),
            sql_delete(t.challenges).where(ch.expires_at <= now),
        )


#: :attr:`Statements.count_failure`: :func:`apply_attempt`'s failure for a row that is not
#: blocked at ``now``, its arithmetic in SQL as the Redis script has it in Lua. Each
#: layer names what the next one reads (SQL evaluates ``SET`` against the row as it
#: was, so without layers every later value would repeat the earlier ones):
#: ``fa`` ThrottlePolicy.failures_at of the live row (past ``expires_at`` it is
#: forgotten: no state), ``nf`` the failures after this one (capped at most_failures),
#: ``nb`` the new blocked_until (now + delay_after(nf), or now for a free failure;
#: ``1 << n`` is exact in a double, as in Python, and a BIGINT, since PostgreSQL shifts
#: an INTEGER modulo 32), then keep_until for expires_at.
_COUNT_FAILURE = """\
INSERT INTO {t} (key, failures, blocked_until, last_step, expires_at)
VALUES (:k, :f1, :b1, NULL, :e1)
ON CONFLICT (key) DO UPDATE SET (failures, blocked_until, last_step, expires_at) = (
  SELECT nf, nb, ls, CASE WHEN nb + nf * :p > :e THEN nb + nf * :p ELSE :e END FROM (
    SELECT nf, ls, CASE
      WHEN nf - :ff <= 0 THEN :now
      WHEN nf - :ff > 62 THEN :now + :p
      WHEN :p < :bd * (CAST(1 AS BIGINT) << CAST(nf - :ff - 1 AS INTEGER)) THEN :now + :p
      ELSE :now + :bd * (CAST(1 AS BIGINT) << CAST(nf - :ff - 1 AS INTEGER))
    END AS nb FROM (
      SELECT CASE WHEN :mf < fa + 1 THEN :mf ELSE fa + 1 END AS nf, ls FROM (
        SELECT CASE
          WHEN {t}.expires_at > :now AND {t}.failures > 0
            AND {t}.blocked_until + {t}.failures * :p > :now THEN CASE
              WHEN :now <= {t}.blocked_until THEN {t}.failures
              WHEN {t}.failures - {periods} > 0 THEN {t}.failures - {periods}
              ELSE 0 END
          ELSE 0 END AS fa,
          CASE WHEN {t}.expires_at > :now THEN {t}.last_step END AS ls{fence}
      ) AS counted{fence}) AS capped{fence}) AS blocked)
WHERE {t}.expires_at <= :now OR {t}.blocked_until <= :now
RETURNING failures, blocked_until"""


def _count_failure(t: Tables, dialect: str) -> Any:
    """The statement of :data:`_COUNT_FAILURE` for this prefix and dialect. A key never
    seen is inserted with the state ``apply_attempt`` makes of no state (worked out in
    Python: ``f1``, ``b1``, ``e1``). No row back: the row was blocked and nothing was
    written. Binds: ``now``, ``e`` (now + forget_after) and the policy's ``p``
    (max_delay), ``ff`` (free_failures), ``bd`` (base_delay), ``mf`` (most_failures)."""
    name = t.attempts.name  # a-z, 0-9 and _ only (Tables.build checks the prefix)
    # floor((now - blocked_until) / max_delay), read only when now > blocked_until:
    # SQLite's CAST truncates, which is the floor of a positive number (and SQLite may
    # be built without floor()).
    whole = f"(:now - {name}.blocked_until) / :p"
    periods = (
        f"CAST(floor({whole}) AS BIGINT)"
        if dialect == "postgresql"
        else (f"CAST({whole} AS INTEGER)")
    )
    # PostgreSQL would pull the layers up into one expression, each name inlined where
    # it is read (0.8 ms to plan, 0.2 ms to start the executor); OFFSET 0 keeps each
    # layer a subquery of its own (0.14 ms and 0.09 ms). SQLite evaluates them as written.
    fence = " OFFSET 0" if dialect == "postgresql" else ""
    sql = _COUNT_FAILURE.format(t=name, periods=periods, fence=fence)
    return (
        text(sql)
        .bindparams(
            bindparam("k", type_=Text),
            bindparam("f1", type_=Integer),
            bindparam("b1", type_=Double),
            bindparam("e1", type_=Double),
            bindparam("now", type_=Double),
            bindparam("e", type_=Double),
            bindparam("p", type_=Double),
            bindparam("ff", type_=Integer),
            bindparam("bd", type_=Double),
            bindparam("mf", type_=Integer),
        )
        .columns(failures=Integer, blocked_until=Double)
    )


# attempts ---------------------------------------------------------------------


def _live_state(row: Row[Any], now: float) -> ThrottleState:
    """The locked row as state; past ``expires_at`` it is forgotten, as if never written."""
    if row.expires_at <= now:
        return _EMPTY
    return ThrottleState(row.failures, row.blocked_until, row.last_step)


def _write(key: str, state: ThrottleState, expires_at: float) -> dict[str, Any]:
    return {
        "k": key,
        "f": state.failures,
        "b": float(state.blocked_until),
        "s": state.last_step,
        "e": float(expires_at),
    }


def claim_params(key: str, step: int, now: float, throttle: ThrottlePolicy) -> dict[str, Any]:
    """The parameters of :attr:`Statements.claim_step`."""
    return {
        "k": key,
        "now": float(now),
        "s": int(step),
        "e": float(now + throttle.forget_after),
        "p": float(throttle.max_delay),
    }


def claim_step(
    s: Statements, key: str, step: int, now: float, throttle: ThrottlePolicy
) -> Op[bool]:
    """The one-statement claim alone: whether it won."""
    claimed = yield s.claim_step, claim_params(key, step, now, throttle)
    return _won(s, claimed)


def _won(s: Statements, claimed: CursorResult[Any]) -> bool:
    """Whether :attr:`Statements.claim_step` claimed: a row back, or one row changed."""
    return claimed.first() is not None if s.claim_returns else claimed.rowcount == 1


#: :attr:`Statements.count_failure`'s policy parameters, per policy (few exist; a policy
#: is frozen, and ``most_failures`` is worked out by a loop).
_POLICIES: dict[ThrottlePolicy, dict[str, Any]] = {}


def _policy_params(throttle: ThrottlePolicy) -> dict[str, Any]:
    params = _POLICIES.get(throttle)
    if params is None:
        params = {
            "p": float(throttle.max_delay),
            "ff": int(throttle.free_failures),
            "bd": float(throttle.base_delay),
            "mf": int(throttle.most_failures),
        }
        if len(_POLICIES) < 64:
            _POLICIES[throttle] = params
    return params


def count_failure(
    s: Statements, key: str, now: float, throttle: ThrottlePolicy
) -> Op[Attempt | None]:
    """A wrong code (no step matched) in one statement: the ``REJECTED`` attempt, or
    ``None`` when the row is blocked (nothing was written: take the locked path)."""
    first, attempt = apply_attempt(_EMPTY, None, now, throttle)  # a key never seen
    params = {
        **_policy_params(throttle),
        "k": key,
        "now": float(now),
        "e": float(now + throttle.forget_after),
        "f1": first.failures,
        "b1": float(first.blocked_until),
        "e1": float(keep_until(first, now, throttle)),
    }
    row = (yield s.count_failure, params).first()
    if row is None:
        return None
    failures = int(row.failures)
    if failures == first.failures and row.blocked_until == first.blocked_until:
        return attempt  # the same answer (the common case: the first failures are free)
    retry_at = float(row.blocked_until) if failures > throttle.free_failures else None
    return Attempt(AttemptOutcome.REJECTED, failures, retry_at)


def totp_attempt(
    s: Statements,
    key: str,
    step: int | None,
    now: float,
    throttle: ThrottlePolicy,
    *,
    claim: bool = True,
) -> Op[Attempt]:
    """``claim=False`` skips the one-statement claim or failure (the caller already
    tried it)."""
    if claim and step is not None:
        claimed = yield s.claim_step, claim_params(key, step, now, throttle)
        if _won(s, claimed):
            return ACCEPTED
    elif claim:
        counted = yield from count_failure(s, key, now, throttle)
        if counted is not None:
            return counted
    row = (yield s.lock_attempt, {"key": key}).one()
    state, attempt = apply_attempt(_live_state(row, now), step, now, throttle)
    yield s.write_attempt, _write(key, state, keep_until(state, now, throttle))
    return attempt


def totp_attempt_swap(
    s: Statements, key: str, step: int | None, now: float, throttle: ThrottlePolicy
) -> Op[Attempt | None]:
    """:func:`totp_attempt` without a lock and without the claim: read the row, decide
    with :func:`apply_attempt`, and write only if the row is still what was read (a
    compare-and-set; an absent row: insert only if still absent). ``None``: another
    writer came between the read and the write; nothing was written, try again. Each
    statement is its own transaction: two round trips, one commit."""
    row = (yield s.read_attempt_row, {"k": key}).one_or_none()
    state, attempt = apply_attempt(
        _EMPTY if row is None else _live_state(row, now), step, now, throttle
    )
    params = _write(key, state, keep_until(state, now, throttle))
    if row is None:
        written = (yield s.insert_attempt, params).rowcount
    else:
        params.update(f0=row.failures, b0=row.blocked_until, s0=row.last_step, e0=row.expires_at)
        written = (yield s.swap_attempt, params).rowcount
    return attempt if written == 1 else None


def throttle_charge(s: Statements, key: str, now: float, throttle: ThrottlePolicy) -> Op[Attempt]:
    row = (yield s.lock_attempt, {"key": key}).one()
    state, attempt = apply_charge(_live_state(row, now), now, throttle)
    yield s.write_attempt, _write(key, state, keep_until(state, now, throttle))
    return attempt


def throttle_refund(s: Statements, key: str, charge: Attempt, at: float) -> Op[None]:
    row = (yield s.lock_existing_attempt, {"k": key}).one_or_none()
    if row is None or row.expires_at <= at:
        return
    state = ThrottleState(row.failures, row.blocked_until, row.last_step)
    refunded = apply_refund(state, charge, at)
    if refunded != state:
        yield s.write_attempt, _write(key, refunded, row.expires_at)


def throttle_clear(s: Statements, key: str) -> Op[None]:
    yield s.clear_attempt, {"k": key}


def throttle_state(s: Statements, key: str) -> Op[ThrottleState]:
    row = (yield s.read_attempt, {"k": key}).one_or_none()
    if row is None:
        return _EMPTY
    return ThrottleState(row.failures, row.blocked_until, row.last_step)


# credentials --------------------------------------------------------------------


def get_credential(s: Statements, user_id: str) -> Op[Credential | None]:
    rows = (yield s.read_credential, {"u": user_id}).all()
    if not rows:
        return None
    data = loads(rows[0].data)
    data["recovery_hashes"] = [row.digest for row in rows if row.digest is not None]
    data["version"] = int(rows[0].version)
    return Credential.from_dict(data)


def _record(credential: Credential) -> tuple[str, tuple[str, ...]]:
    """The credentials row's JSON (without the hashes, which have rows of their own, and
    the version, which has a column) and the hashes."""
    data = credential.to_dict()
    del data["recovery_hashes"], data["version"]
    return json.dumps(data), credential.recovery_hashes


def _replace_hashes(s: Statements, user_id: str, hashes: tuple[str, ...]) -> Op[None]:
    yield s.delete_hashes, {"u": user_id}
    if hashes:
        rows = [
            {"user_id": user_id, "position": i, "digest": digest} for i, digest in enumerate(hashes)
        ]
        yield s.insert_hash, rows


def put_credential(s: Statements, credential: Credential) -> Op[None]:
    data, hashes = _record(credential)
    fresh = new_credential_version()
    yield s.put_credential, {"user_id": credential.user_id, "data": data, "fresh": fresh}
    yield from _replace_hashes(s, credential.user_id, hashes)


def add_credential(s: Statements, credential: Credential) -> Op[bool]:
    data, hashes = _record(credential)
    fresh = new_credential_version()
    added = yield s.add_credential, {"user_id": credential.user_id, "data": data, "fresh": fresh}
    if added.first() is None:
        return False
    yield from _replace_hashes(s, credential.user_id, hashes)
    return True


def replace_credential(s: Statements, credential: Credential, expected_version: int) -> Op[bool]:
    data, hashes = _record(credential)
    params = {"u": credential.user_id, "v": int(expected_version), "data": data}
    if (yield s.replace_credential, params).rowcount != 1:
        return False
    yield from _replace_hashes(s, credential.user_id, hashes)
    return True


def delete_credential(s: Statements, user_id: str) -> Op[bool]:
    result = yield s.delete_credential, {"u": user_id}
    yield s.delete_hashes, {"u": user_id}
    return bool(result.rowcount > 0)


def consume_recovery_hash(s: Statements, user_id: str, digest: str) -> Op[bool]:
    params = {"u": user_id, "d": digest}
    if (yield s.bump_for_hash, params).rowcount == 0:
        return False  # no such digest (nothing changed)
    # Concurrent deletes of one row: exactly one sees it (the others wait, then find
    # none; their version bump is harmless: it only sends a reseal round again).
    result = yield s.consume_hash, params
    return bool(result.rowcount > 0)


# tenants ------------------------------------------------------------------------


def get_tenant(s: Statements, tenant_id: str) -> Op[Tenant | None]:
    data = (yield s.read_tenant, {"t": tenant_id}).scalar_one_or_none()
    return None if data is None else stored_tenant(loads(data))


#: Records decoded from their stored JSON, by that exact text: the same text always
#: decodes to the same record, so nothing here can be stale. Bounded (emptied when full).
_DECODED: dict[tuple[type[Any], str], Any] = {}
_MOST_DECODED = 4096


def _decoded(kind: type[T], text: str) -> T:
    """``kind.from_dict(json.loads(text))``, decoded once per distinct text. Only for
    immutable records (a Grant); never a Tenant, whose attributes are a mutable dict that
    no two callers may share (the Redis store decodes it anew for the same reason)."""
    key = (kind, text)
    record: T | None = _DECODED.get(key)
    if record is None:
        record = kind.from_dict(loads(text))  # type: ignore[attr-defined]
        if len(_DECODED) >= _MOST_DECODED:
            _DECODED.clear()
        _DECODED[key] = record
    return record


def get_tenant_and_grant(
    s: Statements, tenant_id: str, user_id: str, session_id: str
) -> Op[tuple[Tenant | None, Grant | None]]:
    """``get_tenant`` and ``get_grant`` in one statement (two scalar subqueries)."""
    params = {"t": tenant_id, "u": user_id, "s": session_id}
    records: str = (yield s.read_tenant_and_grant, params).one().records
    # Neither marker can be part of a JSON text (control characters are escaped in its
    # strings and are not whitespace), so the split is exact for any stored record.
    tenant_data, _, grant_data = records.partition(RECORD_SEPARATOR)
    # Shared by the checks that read the same stored text: only decision code asks this.
    tenant = None if tenant_data == ABSENT else tenant_for_decision(tenant_data)
    grant = None if grant_data == ABSENT else _decoded(Grant, grant_data)
    return tenant, grant


def put_tenant(s: Statements, tenant: Tenant) -> Op[None]:
    yield s.put_tenant, {"tenant_id": tenant.tenant_id, "data": json.dumps(tenant.to_dict())}


def add_tenant(s: Statements, tenant: Tenant) -> Op[Tenant]:
    params = {"tenant_id": tenant.tenant_id, "data": json.dumps(tenant.to_dict())}
    if (yield s.add_tenant, params).rowcount == 1:
        return tenant
    stored = yield from get_tenant(s, tenant.tenant_id)
    if stored is None:  # deleted between the two statements: nothing stepup does
        raise LookupError("the tenant was deleted while it was being added")
    return stored


def patch_tenant(
    s: Statements, tenant_id: str, attributes: Mapping[str, Any], flags: Mapping[str, Any]
) -> Op[tuple[Tenant, Tenant] | None]:
    # Read under the row lock (FOR UPDATE; SQLite: BEGIN IMMEDIATE), merge, write: no
    # other patch can come between the read and the write.
    data = (yield s.lock_tenant, {"t": tenant_id}).scalar_one_or_none()
    if data is None:
        return None
    before = Tenant.from_dict(json.loads(data))
    after = before.patched(attributes, flags)
    yield s.write_tenant, {"t": tenant_id, "data": json.dumps(after.to_dict())}
    return before, after


# grants -------------------------------------------------------------------------


def put_grant(s: Statements, grant: Grant, expires_at: float) -> Op[None]:
    params = {
        "user_id": grant.user_id,
        "session_id": grant.session_id,
        "data": grant_text(grant, json.dumps),
        "expires_at": float(expires_at),
    }
    yield s.put_grant, params


def get_grant(s: Statements, user_id: str, session_id: str) -> Op[Grant | None]:
    data = (yield s.read_grant, {"u": user_id, "s": session_id}).scalar_one_or_none()
    return None if data is None else _decoded(Grant, data)


def replace_grant(
    s: Statements, grant: Grant, expires_at: float, expected: Grant, from_session: str
) -> Op[bool]:
    """The row of the grant expected is updated (moved to ``grant.session_id`` if that is
    another id), never deleted and written anew: see :attr:`Statements.move_grant`."""
    # The text put_grant wrote for ``expected`` where it is stored: equal grants have
    # one text (grant_text), so the texts compare as the grants do.
    stored = replace(expected, user_id=grant.user_id, session_id=from_session)
    params = {
        "u": grant.user_id,
        "s": grant.session_id,
        "f": from_session,
        "x": grant_text(stored, json.dumps),
        "data": grant_text(grant, json.dumps),
        "e": float(expires_at),
    }
    if from_session != grant.session_id:
        if (yield s.lock_expected_grant, params).first() is None:
            return False  # revoked or replaced meanwhile: nothing changes
        if (yield s.lock_moved_to, params).first() is not None:
            yield s.clear_moved_to, params
    return bool((yield s.move_grant, params).rowcount == 1)


def revoke_grants(s: Statements, user_id: str, session_id: str | None) -> Op[int]:
    if session_id is None:
        result = yield s.revoke_user, {"u": user_id}
    else:
        result = yield s.revoke_session, {"u": user_id, "s": session_id}
    return int(result.rowcount)


# challenges ---------------------------------------------------------------------


def put_challenge(s: Statements, challenge: Challenge) -> Op[None]:
    params = {
        "challenge_id": challenge.challenge_id,
        "data": json.dumps(challenge.to_dict()),
        "expires_at": float(challenge.expires_at),
    }
    yield s.put_challenge, params


def take_challenge(s: Statements, challenge_id: str, now: float) -> Op[Challenge | None]:
    # DELETE ... RETURNING: only the transaction that deleted the row gets it back.
    row = (yield s.take_challenge, {"c": challenge_id}).one_or_none()
    if row is None or row.expires_at <= now:
        return None
    return Challenge.from_dict(json.loads(row.data))


# housekeeping -------------------------------------------------------------------


def prune(s: Statements, now: float) -> Op[int]:
    removed = 0
    for statement in s.prune:
        result = yield statement, {"now": float(now)}
        removed += int(result.rowcount)
    return removed


# passkeys -----------------------------------------------------------------------

#: The columns of a passkey that never change, kept together as JSON.
_PASSKEY_DATA = ("credential_data", "backup_eligible", "user_verified", "transports")


def _passkey_lock(s: Statements, user_id: str) -> int:
    """The advisory lock id of one user's passkeys (PostgreSQL), per table prefix."""
    digest = hashlib.sha256(f"stepup-passkeys:{s.tables.prefix}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def list_passkeys(s: Statements, user_id: str) -> Op[tuple[Passkey, ...]]:
    rows = (yield s.list_passkeys, {"u": user_id}).all()
    return tuple(
        Passkey(
            user_id=user_id,
            credential_id=row.credential_id,
            name=row.name,
            sign_count=int(row.sign_count),
            backup_state=bool(row.backup_state),
            created_at=float(row.created_at),
            last_used_at=None if row.last_used_at is None else float(row.last_used_at),
            **_passkey_data(json.loads(row.data)),
        )
        for row in rows
    )


def _passkey_data(data: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "credential_data": str(data["credential_data"]),
        "backup_eligible": bool(data["backup_eligible"]),
        "user_verified": bool(data["user_verified"]),
        "transports": tuple(data.get("transports", ())),
    }


def add_passkey(s: Statements, passkey: Passkey, max_per_user: int) -> Op[bool]:
    if s.lock_user is not None:
        yield s.lock_user, {"lock": _passkey_lock(s, passkey.user_id)}
    record = passkey.to_dict()
    params = {
        "c": passkey.credential_id,
        "u": passkey.user_id,
        "name": passkey.name,
        "n": int(passkey.sign_count),
        "bs": bool(passkey.backup_state),
        "at": float(passkey.created_at),
        "used": None if passkey.last_used_at is None else float(passkey.last_used_at),
        "data": json.dumps({name: record[name] for name in _PASSKEY_DATA}),
        "max": int(max_per_user),
    }
    return (yield s.add_passkey, params).first() is not None


def remove_passkey(s: Statements, user_id: str, credential_id: str) -> Op[bool]:
    return bool((yield s.remove_passkey, {"u": user_id, "c": credential_id}).rowcount == 1)


def record_passkey_use(s: Statements, passkey: Passkey, expected_count: int) -> Op[bool]:
    params = {
        "u": passkey.user_id,
        "c": passkey.credential_id,
        "expected": int(expected_count),
        "n": int(passkey.sign_count),
        "bs": bool(passkey.backup_state),
        "used": None if passkey.last_used_at is None else float(passkey.last_used_at),
    }
    return bool((yield s.record_passkey_use, params).rowcount == 1)


def rename_passkey(s: Statements, user_id: str, credential_id: str, name: str) -> Op[bool]:
    params = {"u": user_id, "c": credential_id, "name": name}
    return bool((yield s.rename_passkey, params).rowcount == 1)


# batches ------------------------------------------------------------------------


def batch(s: Statements, calls: Sequence[tuple[str, tuple[Any, ...]]]) -> Op[tuple[Any, ...]]:
    """Several independent reads (``(method, args)``, methods from :data:`BATCHABLE`),
    answered in order; ``get_tenant`` followed by ``get_grant`` (a re-authentication
    check) is one statement, and its operation is returned as it is (no generator
    around it)."""
    if len(calls) == 2 and calls[0][0] == "get_tenant" and calls[1][0] == "get_grant":
        tenant_id, user_id, session_id = (*calls[0][1], *calls[1][1])
        return get_tenant_and_grant(s, tenant_id, user_id, session_id)
    unknown = [method for method, _ in calls if method not in BATCHABLE]
    if unknown:
        raise ValueError(f"{unknown[0]} cannot be batched")
    return _reads(s, calls)


def _reads(s: Statements, calls: Sequence[tuple[str, tuple[Any, ...]]]) -> Op[tuple[Any, ...]]:
    reads = {
        "get_tenant": get_tenant,
        "get_grant": get_grant,
        "get_credential": get_credential,
        "throttle_state": throttle_state,
    }
    answers: list[Any] = []
    for method, args in calls:
        answers.append((yield from reads[method](s, *args)))  # type: ignore[operator]
    return tuple(answers)
