"""First start: the tables, the keys, and the demo data (idempotent).

This runs once, synchronously, before the server starts serving (so nothing here
blocks a request). Passwords are hashed with stepup's default argon2id parameters.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from argon2 import PasswordHasher
from sqlalchemy import Connection, Insert, insert, select

from ..adapters.idp.password import hash_password
from ..adapters.storage.sql import SQLStore
from ..clock import Clock
from ..sealing import SecretBox
from ..tenants import TenantSettings
from . import tables as t
from .keys import new_api_key, new_demo_ssh_key

__all__ = [
    "DEMO_USERS",
    "TENANT",
    "TENANT_NAME",
    "DemoUser",
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


def remove_database(path: Path) -> None:
    """Delete the SQLite file and its WAL companions (``stepup demo --reset``)."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def prepare(path: Path, *, clock: Clock, hasher: PasswordHasher | None = None) -> Prepared:
    """Create stepup's and the demo's tables, the keys, and the demo data once."""
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
