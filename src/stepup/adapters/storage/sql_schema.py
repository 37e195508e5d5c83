"""The SQL store's tables, their name prefix, and the schema version.

Migration story: ``stepup_schema_version`` holds one row with the version the
tables are at. :func:`create_schema` runs under a lock (an advisory lock on
PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), applies :data:`MIGRATIONS` from the
stored version up to :data:`SCHEMA_VERSION`, creates whatever table is missing
and records the new version, all in one transaction. A later release that
changes a table adds ``MIGRATIONS[n]`` (bringing version ``n`` to ``n + 1``) and
bumps :data:`SCHEMA_VERSION`; running ``create_schema()`` again upgrades.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Double,
    Integer,
    MetaData,
    Table,
    Text,
    func,
    inspect,
    select,
    text,
    update,
)

from ...errors import ConfigurationError, StoreConfigurationError
from .urls import safe_url

__all__ = [
    "DEFAULT_PREFIX",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Tables",
    "create_schema",
    "drop_schema",
]

DEFAULT_PREFIX = "stepup_"
SCHEMA_VERSION = 4

# Short enough that every table and index name stays within PostgreSQL's 63 bytes.
_PREFIX = re.compile(r"[a-z][a-z0-9_]{0,31}\Z")


@dataclass(frozen=True, slots=True)
class Tables:
    """Every table of one prefix, bound to its own :class:`MetaData`."""

    prefix: str
    metadata: MetaData
    attempts: Table
    credentials: Table
    recovery_hashes: Table
    tenants: Table
    grants: Table
    challenges: Table
    passkeys: Table
    schema_version: Table

    @classmethod
    def build(cls, prefix: str = DEFAULT_PREFIX) -> Tables:
        if not isinstance(prefix, str) or not _PREFIX.match(prefix):
            raise ConfigurationError(
                "table prefix must be 1-32 characters of a-z, 0-9 and _, starting with a letter"
            )
        md = MetaData()
        p = prefix
        return cls(
            prefix=prefix,
            metadata=md,
            # Replay ledger and throttle state. BIGINT steps: 8-digit, 1-second codes
            # and far-future clocks overflow 32 bits.
            attempts=Table(
                f"{p}attempts",
                md,
                Column("key", Text, primary_key=True),
                Column("failures", Integer, nullable=False),
                Column("blocked_until", Double, nullable=False),
                Column("last_step", BigInteger, nullable=True),
                # Not indexed (since version 2): every accepted claim moves expires_at,
                # and keeping an index in step doubled the cost of a claim, while
                # pruning, which would use it, runs rarely and can scan.
                Column("expires_at", Double, nullable=False),
            ),
            # Credential.to_dict() as JSON, without the recovery hashes: those are
            # rows of their own so that using one is a single conditional DELETE.
            credentials=Table(
                f"{p}credentials",
                md,
                Column("user_id", Text, primary_key=True),
                Column("data", Text, nullable=False),
                # Credential.version (since schema version 3): every write adds one, so
                # that a read-then-write (reseal) can be a compare-and-set.
                Column("version", BigInteger, nullable=False, server_default=text("0")),
            ),
            recovery_hashes=Table(
                f"{p}recovery_hashes",
                md,
                Column("user_id", Text, primary_key=True),
                Column("position", Integer, primary_key=True),
                Column("digest", Text, nullable=False),
            ),
            tenants=Table(
                f"{p}tenants",
                md,
                Column("tenant_id", Text, primary_key=True),
                Column("data", Text, nullable=False),
            ),
            grants=Table(
                f"{p}grants",
                md,
                Column("user_id", Text, primary_key=True),
                Column("session_id", Text, primary_key=True),
                Column("data", Text, nullable=False),
                Column("expires_at", Double, nullable=False, index=True),
            ),
            challenges=Table(
                f"{p}challenges",
                md,
                Column("challenge_id", Text, primary_key=True),
                Column("data", Text, nullable=False),
                Column("expires_at", Double, nullable=False, index=True),
            ),
            # Passkeys (since schema version 4): one row per WebAuthn credential. The
            # credential id is the primary key, so it is registered to one user only;
            # ``data`` is the part that never changes (key, flags, transports) as JSON,
            # the columns are what the operations compare or update in place.
            passkeys=Table(
                f"{p}passkeys",
                md,
                Column("credential_id", Text, primary_key=True),
                Column("user_id", Text, nullable=False, index=True),
                Column("name", Text, nullable=False),
                Column("sign_count", BigInteger, nullable=False),
                Column("backup_state", Boolean, nullable=False),
                Column("created_at", Double, nullable=False),
                Column("last_used_at", Double, nullable=True),
                Column("data", Text, nullable=False),
            ),
            schema_version=Table(
                f"{p}schema_version",
                md,
                Column("id", Integer, primary_key=True, autoincrement=False),
                Column("version", Integer, nullable=False),
            ),
        )


def _drop_attempts_expiry_index(conn: Connection, tables: Tables) -> None:
    """Version 1 -> 2: the attempts table's ``expires_at`` index goes (see above)."""
    name = f"ix_{tables.attempts.name}_expires_at"
    conn.exec_driver_sql(f'DROP INDEX IF EXISTS "{name}"')


def _add_credential_version(conn: Connection, tables: Tables) -> None:
    """Version 2 -> 3: credentials get their ``version`` column; stored ones start at 0.
    A table that has the column already (added by hand, or by Alembic) is left as it is."""
    name = tables.credentials.name
    if not inspect(conn).has_table(name):
        return  # created whole, column included, right after
    if any(column["name"] == "version" for column in inspect(conn).get_columns(name)):
        return
    conn.exec_driver_sql(f'ALTER TABLE "{name}" ADD COLUMN "version" BIGINT NOT NULL DEFAULT 0')


def _add_passkeys(conn: Connection, tables: Tables) -> None:
    """Version 3 -> 4: the passkeys table is new. Nothing to change in place: it is
    created (empty) with the other missing tables right after the migrations run."""


#: ``MIGRATIONS[n]`` upgrades tables at version ``n`` to ``n + 1``; it runs before
#: missing tables are created.
MIGRATIONS: dict[int, Callable[[Connection, Tables], None]] = {
    1: _drop_attempts_expiry_index,
    2: _add_credential_version,
    3: _add_passkeys,
}


def _lock_id(prefix: str) -> int:
    digest = hashlib.sha256(f"stepup-schema:{prefix}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _check_upgradable(conn: Connection, tables: Tables, stored: object) -> None:
    """Refuse a stored version no release wrote (0, negative, not a number, one with no
    migration from it), before anything changes: there is no telling what the tables
    hold. A newer version than this stepup's is refused by the caller."""
    if isinstance(stored, int) and not isinstance(stored, bool):
        steps = range(stored, SCHEMA_VERSION)  # empty for this version and newer ones
        if all(step in MIGRATIONS for step in steps):
            return
    oldest = min(MIGRATIONS, default=SCHEMA_VERSION)
    raise StoreConfigurationError(
        safe_url(conn.engine.url),
        "upgrade the tables",
        f"{tables.schema_version.name} records schema version {repr(stored)[:40]}, which no"
        f" stepup release wrote (this one upgrades {oldest} to {SCHEMA_VERSION}): nothing was"
        " changed; set it to the version the tables are at",
    )


def create_schema(conn: Connection, tables: Tables) -> int:
    """Create or upgrade the tables inside the caller's transaction; returns the version.

    Idempotent, and safe when several processes start at once: PostgreSQL takes a
    transaction-scoped advisory lock, SQLite is already inside ``BEGIN IMMEDIATE``.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(_lock_id(tables.prefix))))
    version_table = tables.schema_version
    stored: int | None = None
    if inspect(conn).has_table(version_table.name):
        stored = conn.execute(
            select(version_table.c.version).where(version_table.c.id == 1)
        ).scalar_one_or_none()
    if stored is not None:
        _check_upgradable(conn, tables, stored)
    if stored is not None and stored > SCHEMA_VERSION:
        raise ConfigurationError(
            f"the {tables.prefix}* tables are at schema version {stored}, newer than this "
            f"stepup ({SCHEMA_VERSION}): upgrade stepup"
        )
    if stored is not None:
        for version in range(stored, SCHEMA_VERSION):
            MIGRATIONS[version](conn, tables)
    tables.metadata.create_all(conn, checkfirst=True)
    if stored is None:
        conn.execute(version_table.insert().values(id=1, version=SCHEMA_VERSION))
    elif stored != SCHEMA_VERSION:
        conn.execute(
            update(version_table).where(version_table.c.id == 1).values(version=SCHEMA_VERSION)
        )
    return SCHEMA_VERSION


def drop_schema(conn: Connection, tables: Tables) -> None:
    """Drop every table of this prefix (tests, uninstall). Irreversible."""
    tables.metadata.drop_all(conn, checkfirst=True)
