"""The shipped store contract suite, unchanged, against the ORM store on SQLite (a
file, with deferred transactions: the store's own lock queues the writers) and on
PostgreSQL (row locks)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from stepup.integrations.django.models import CredentialRecord
from stepup.integrations.django.store import DjangoStore
from stepup.records import Credential
from stepup.testing.contract import StoreContract


class TestDjangoStoreOnSQLite(StoreContract):
    @pytest.fixture
    def store(self) -> DjangoStore:
        return DjangoStore(using="default")


@pytest.mark.postgres
class TestDjangoStoreOnPostgreSQL(StoreContract):
    @pytest.fixture
    def store(self, postgres_database: str) -> DjangoStore:
        return DjangoStore(using=postgres_database)


def test_credentials_stored_before_migration_0002_start_at_version_0() -> None:
    """An existing project's credentials get version 0 from migration 0002, and the
    first compare-and-set moves them on."""
    from django.core.management import call_command
    from django.db import connections

    store = DjangoStore(using="default")
    table = connections["default"].ops.quote_name(CredentialRecord._meta.db_table)
    call_command("migrate", "stepup", "0001", verbosity=0)
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (user_id, credential_id, secret, digits, period,"  # noqa: S608
                " algorithm, confirmed, created_at) VALUES (%s, %s, %s, 6, 30, 'SHA1', %s, 0)",
                ["before-0002", "totp:old", "plain:S", True],
            )
    finally:
        call_command("migrate", "stepup", verbosity=0)
    try:
        stored = store.get_credential("before-0002")
        assert stored == Credential("before-0002", "totp:old", "plain:S", confirmed=True)
        assert stored is not None
        assert stored.version == 0
        assert store.replace_credential(replace(stored, secret="plain:T"), 1) is False
        assert store.replace_credential(replace(stored, secret="plain:T"), 0) is True
        assert store.get_credential("before-0002") == replace(stored, secret="plain:T", version=1)
    finally:
        store.delete_credential("before-0002")
