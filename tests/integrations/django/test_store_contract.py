"""The shipped store contract suite, unchanged, against the ORM store on SQLite (a
file, with deferred transactions: the store's own lock queues the writers) and on
PostgreSQL (row locks)."""

from __future__ import annotations

import pytest

from stepup.integrations.django.store import DjangoStore
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
