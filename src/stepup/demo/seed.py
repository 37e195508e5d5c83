"""First start: the tables, the keys, and the demo data (idempotent).

This runs once, synchronously, before the server starts serving (so nothing here
blocks a request). Passwords are hashed with stepup's default argon2id parameters.
"""

from __future__ import annotations

import base64
import secrets
import sqlite3
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

from argon2 import PasswordHasher
from sqlalchemy import Connection, Insert, insert, select

from ..adapters.idp.password import hash_password
from ..adapters.storage.sql import SQLStore
from ..adapters.storage.urls import sqlite_file_problem
from ..clock import Clock
from ..errors import ConfigurationError
from ..sealing import SecretBox
from ..tenants import TenantSettings
from . import tables as t
from .keys import new_api_key, new_demo_ssh_key

__all__ = [
    "DEMO_USERS",
    "TENANT",
    "TENANT_NAME",
    "DemoUser",
    "NotADemoDatabaseError",
    "Prepared",
    "prepare",
    "remove_database",
]

TENANT: Final = "acme"
TENANT_NAME: Final = "Acme"
SEALING_KEY_ID: Final = "demo-1"


@dataclass(frozen=True, slots=True)
class DemoUser:
    id: str
    email: str
    name: str
    role: str
    password: str = field(repr=False)


#: The demo's password users. The passwords are printed at start: this is a demo.
DEMO_USERS: Final = (
    DemoUser("admin", "admin@acme.test", "Ada Admin", "admin", "acme-admin-demo"),
    DemoUser("member", "member@acme.test", "Max Member", "member", "acme-member-demo"),
)


@dataclass(frozen=True, slots=True)
class Prepared:
    """What the app needs from the database before it starts."""

    secret_key: str = field(repr=False)
    box: SecretBox
    seeded_now: bool


class NotADemoDatabaseError(ConfigurationError):
    """``--db`` names a file that is not the demo's: the demo neither deletes it
    (``--reset``) nor writes its tables and its tenant into it."""


#: The demo's own tables, which every demo database has from its first start (the marker
#: that tells it from an app's database, which the demo never deletes or writes into).
_MARKER_TABLES: Final = frozenset({t.settings.name, t.users.name})

_Kind = Literal["absent", "empty", "demo", "other", "unknown"]


def _database_kind(path: Path) -> tuple[_Kind, str]:
    """What is at ``path``: nothing, an empty database (no tables), the demo's, another
    SQLite database (with tables of its own), or something that is not a readable SQLite
    database; with the reason for the last two."""
    if not path.exists() and not path.is_symlink():
        return "absent", ""
    problem = sqlite_file_problem(path)
    if problem is not None and problem != "is not writable by this user":
        return "unknown", problem
    if path.stat().st_size == 0:
        return "empty", ""
    try:  # read-only: looking never changes the file
        uri = f"{path.resolve().as_uri()}?mode=ro"
        with closing(sqlite3.connect(uri, uri=True)) as conn:
            rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            tables = {str(name) for (name,) in rows}
    except (sqlite3.Error, OSError, ValueError) as exc:
        return "unknown", f"cannot be read as a SQLite database ({type(exc).__name__})"
    if not tables:
        return "empty", ""
    if tables >= _MARKER_TABLES:
        return "demo", ""
    return "other", "has tables of its own, without the demo's"


def remove_database(path: Path) -> None:
    """Delete the demo's SQLite file and its WAL companions (``stepup demo --reset``);
    only a demo database (:data:`_MARKER_TABLES`): any other file is refused with
    :class:`NotADemoDatabaseError`, deleting nothing. Nothing there, or an empty
    database, is left as it is (the start seeds it)."""
    kind, reason = _database_kind(path)
    if kind in ("absent", "empty"):
        return
    if kind != "demo":
        raise NotADemoDatabaseError(
            f"{path} is not a stepup demo database: it {reason}; --reset deletes only the"
            " demo's own database, so nothing was deleted (choose another --db)"
        )
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def prepare(path: Path, *, clock: Clock, hasher: PasswordHasher | None = None) -> Prepared:
    """Create stepup's and the demo's tables, the keys, and the demo data once: in a new
    or empty database, or the demo's own; another SQLite database (an app's, with tables
    of its own) is refused with :class:`NotADemoDatabaseError`, untouched."""
    kind, reason = _database_kind(path)
    if kind == "other":
        raise NotADemoDatabaseError(
            f"{path} is not a stepup demo database: it {reason}; the demo does not add its"
            " tables and its tenant to another database (choose another --db)"
        )
    store = SQLStore.sqlite(path)  # creates (or upgrades) stepup's tables
    try:
        t.metadata.create_all(store.engine)
        with store.engine.begin() as conn:
            secret_key = _setting(conn, "secret_key", lambda: secrets.token_urlsafe(32))
            sealing = _setting(
                conn, "sealing_key", lambda: base64.b64encode(SecretBox.generate_key()).decode()
            )
            seeded = _setting(conn, "seeded", lambda: "")
            seeded_now = seeded == ""
            if seeded_now:
                _seed(conn, clock, hasher)
                conn.execute(
                    t.settings.update().where(t.settings.c.name == "seeded"), {"value": "1"}
                )
        TenantSettings(store, clock=clock).ensure(TENANT, {"name": TENANT_NAME})
    finally:
        store.close()
    box = SecretBox({SEALING_KEY_ID: base64.b64decode(sealing)}, current=SEALING_KEY_ID)
    return Prepared(secret_key=secret_key, box=box, seeded_now=seeded_now)


def _setting(conn: Connection, name: str, make: Callable[[], str]) -> str:
    row = conn.execute(select(t.settings.c.value).where(t.settings.c.name == name)).first()
    if row is not None:
        return str(row.value)
    value = make()
    conn.execute(insert(t.settings).values(name=name, value=value))
    return value


def _seed(conn: Connection, clock: Clock, hasher: PasswordHasher | None) -> None:
    now = clock()
    for user in DEMO_USERS:
        conn.execute(
            insert(t.users).values(
                id=user.id,
                email=user.email,
                name=user.name,
                role=user.role,
                tenant_id=TENANT,
                password_hash=hash_password(user.password, hasher=hasher),
                login="password",
                issuer="",
                subject="",
            )
        )
    keys = [("admin", "Deploy bot"), ("admin", "CI pipeline"), ("member", "Personal scripts")]
    for user_id, label in keys:
        values = {"user_id": user_id, "label": label, "secret": new_api_key(), "created_at": now}
        conn.execute(insert(t.api_keys).values(**values))
    public_key, fingerprint = new_demo_ssh_key("ada@laptop")
    conn.execute(
        insert(t.ssh_keys).values(
            user_id="admin",
            title="Laptop",
            public_key=public_key,
            fingerprint=fingerprint,
            added_at=now,
        )
    )
    contract = _new_id(
        conn, insert(t.contracts).values(tenant_id=TENANT, name="Acme platform contract")
    )
    production = _new_id(
        conn, insert(t.workspaces).values(contract_id=contract, name="Production", type="full")
    )
    sandbox = _new_id(
        conn, insert(t.workspaces).values(contract_id=contract, name="Sandbox", type="sandbox")
    )
    memberships = [
        ("contract", contract, "admin@acme.test", "owner"),
        ("contract", contract, "member@acme.test", "member"),
        ("workspace", production, "admin@acme.test", "admin"),
        ("workspace", production, "member@acme.test", "viewer"),
        ("workspace", sandbox, "member@acme.test", "editor"),
    ]
    for scope, scope_id, email, role in memberships:
        conn.execute(
            insert(t.members).values(
                scope=scope, scope_id=scope_id, email=email, role=role, status="active"
            )
        )


def _new_id(conn: Connection, statement: Insert) -> int:
    key = conn.execute(statement).inserted_primary_key
    assert key is not None
    return int(key[0])
