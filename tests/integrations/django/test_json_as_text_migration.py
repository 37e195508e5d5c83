"""Migration 0006 on an existing project: tenant attributes, challenge data and passkey
transports stored by the ``JSONField`` schema (``jsonb`` on PostgreSQL) read back the
same through :class:`DjangoStore` after it, and go back to that schema when it is
reversed. Each case runs in a database of its own (a fresh SQLite file, or a fresh
PostgreSQL database), migrated with Django's ``MigrationExecutor``."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.db import connections
from django.db.migrations.executor import MigrationExecutor

from integrations.django.conftest import PG_ADMIN
from stepup.integrations.django.store import DjangoStore
from stepup.records import Challenge, Passkey, Tenant

BEFORE = ("stepup", "0005_credentialrecord_devices")
AFTER = ("stepup", "0006_json_as_text")
T0 = 1_700_000_000.0

#: What the old schema held, ``jsonb`` included: nested values, big ints, floats,
#: text beyond ASCII (an emoji is a surrogate pair in ``json.dumps``' escapes).
ATTRIBUTES: dict[str, Any] = {
    "name": 'Ünïcode ✓ "quoted" \U0001f600',
    "big": 2**60 + 1,
    "ratio": 0.1,
    "limits": {"seats": 10, "zz": [1, 2.5, None, True]},
    "feature_flags": {"sensitive_actions_reauth": True},
}
DATA: dict[str, Any] = {"nonce": "n", "fields": [["title", "é"], ["n", "1"]], "csrf": True}
TRANSPORTS = ["usb", "internal"]


def _migrate(alias: str, target: tuple[str, str]) -> Any:
    """Migrate ``alias`` to ``target``; the apps (models) as of that migration."""
    executor = MigrationExecutor(connections[alias])
    executor.migrate([target])
    executor.loader.build_graph()
    return executor.loader.project_state([target]).apps


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def alias(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database alias of this test's own, empty (no table yet)."""
    if request.param == "postgresql":
        with _own_postgres() as name:
            yield name
        return
    settings = {**connections.settings["default"], "NAME": str(tmp_path / "db.sqlite3")}
    with _registered({**settings, "OPTIONS": {"timeout": 30}}) as name:
        yield name


@contextmanager
def _own_postgres() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards, under an alias of its own."""
    from support import need, port_open

    need(port_open(PG_ADMIN["host"], PG_ADMIN["port"]), "PostgreSQL at 127.0.0.1:5432")
    import psycopg

    database = f"fix_djjson_{os.getpid()}_{uuid.uuid4().hex[:6]}"

    def admin(statement: str) -> None:
        with psycopg.connect(**PG_ADMIN, autocommit=True) as conn:
            conn.execute(statement)

    admin(f'CREATE DATABASE "{database}"')
    try:
        with _registered({**connections.settings["postgres"], "NAME": database}) as name:
            yield name
    finally:
        admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


@contextmanager
def _registered(settings: dict[str, Any]) -> Iterator[str]:
    name = f"djjson_{uuid.uuid4().hex[:8]}"
    connections.settings[name] = settings
    try:
        yield name
    finally:
        connections[name].close()
        del connections[name]
        del connections.settings[name]


def _store_old_rows(apps: Any, alias: str) -> None:
    """One tenant, one challenge and one passkey, written through the 0005 models."""
    apps.get_model("stepup", "TenantRecord").objects.using(alias).create(
        tenant_id="acme", attributes=ATTRIBUTES
    )
    apps.get_model("stepup", "ChallengeRecord").objects.using(alias).create(
        challenge_id="state-1",
        user_id="alice",
        session_id="s1",
        issued_at=T0,
        expires_at=T0 + 600,
        data=DATA,
    )
    apps.get_model("stepup", "PasskeyRecord").objects.using(alias).create(
        key="cred-1",
        credential_id="cred-1",
        user_id="alice",
        credential_data="AAAA",
        name="Laptop",
        sign_count=3,
        created_at=T0,
        transports=TRANSPORTS,
    )


def _raw(alias: str, table: str, column: str) -> list[Any]:
    connection = connections[alias]
    quoted_table, quoted_column = (connection.ops.quote_name(n) for n in (table, column))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {quoted_column} FROM {quoted_table}")  # noqa: S608
        return [row[0] for row in cursor.fetchall()]


def test_rows_stored_before_0006_read_back_the_same(alias: str) -> None:
    _store_old_rows(_migrate(alias, BEFORE), alias)
    _migrate(alias, AFTER)
    store = DjangoStore(using=alias)
    assert store.get_tenant("acme") == Tenant("acme", ATTRIBUTES)
    passkey = Passkey(
        "alice",
        "cred-1",
        "AAAA",
        "Laptop",
        sign_count=3,
        created_at=T0,
        transports=("usb", "internal"),
    )
    assert store.list_passkeys("alice") == (passkey,)
    challenge = Challenge("state-1", "alice", "s1", T0, T0 + 600, DATA)
    assert store.take_challenge("state-1", T0 + 1) == challenge
    # Rewritten as the store writes them (jsonb's own text has spaces and raw UTF-8).
    for table, column in (("tenantrecord", "attributes"), ("passkeyrecord", "transports")):
        (text,) = _raw(alias, f"stepup_{table}", column)
        assert text == json.dumps(json.loads(text), ensure_ascii=True, separators=(",", ":"))
    # And the store keeps what jsonb would not, on the migrated table.
    odd = Tenant("odd", {"ratio": 1e16, "zero": -0.0, "name": "a\x00b\ud800"})
    store.put_tenant(odd)
    stored = store.get_tenant("odd")
    assert stored == odd
    assert stored is not None
    assert repr(stored.attributes) == repr(odd.attributes)  # 1e16 a float, -0.0 negative


def test_reversing_0006_gives_the_old_schema_back_its_rows(alias: str) -> None:
    _migrate(alias, AFTER)
    store = DjangoStore(using=alias)
    store.put_tenant(Tenant("acme", ATTRIBUTES))
    store.put_challenge(Challenge("state-1", "alice", "s1", T0, T0 + 600, DATA))
    passkey = Passkey("alice", "cred-1", "AAAA", "Laptop", created_at=T0, transports=("usb",))
    assert store.add_passkey(passkey, 10) is True
    old = _migrate(alias, BEFORE)
    tenant = old.get_model("stepup", "TenantRecord").objects.using(alias).get(pk="acme")
    assert tenant.attributes == ATTRIBUTES
    challenge = old.get_model("stepup", "ChallengeRecord").objects.using(alias).get()
    assert challenge.data == DATA
    key = old.get_model("stepup", "PasskeyRecord").objects.using(alias).get()
    assert key.transports == ["usb"]
    _migrate(alias, AFTER)  # and forward again
    assert store.get_tenant("acme") == Tenant("acme", ATTRIBUTES)
    assert store.list_passkeys("alice") == (passkey,)


@pytest.mark.postgres
@pytest.mark.parametrize("text", ["a\x00b", "a\ud800b"])
def test_reversing_0006_stops_at_text_jsonb_refuses(text: str) -> None:
    """A value ``jsonb`` cannot hold stops the reverse before anything changes."""
    with _own_postgres() as alias:
        _migrate(alias, AFTER)
        store = DjangoStore(using=alias)
        kept = Tenant("acme", {"name": text})
        store.put_tenant(kept)
        with pytest.raises(RuntimeError, match=r"stepup_tenantrecord back to jsonb: 1 row"):
            _migrate(alias, BEFORE)
        assert store.get_tenant("acme") == kept
        assert AFTER in MigrationExecutor(connections[alias]).loader.applied_migrations
