"""A Django project for these tests: configured once per process, migrated on a
temporary SQLite file; PostgreSQL (its own database, created and dropped here) for
the store contract and the ORM journey."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import django
import pytest
from django.conf import settings

from integrations.django.django_support import Site, create_users, project_settings, running_site
from stepup.adapters.storage.memory import MemoryStore
from stepup.testing import SettableClock
from support import POSTGRES_URL

_PG = urlsplit(POSTGRES_URL.replace("+psycopg", ""))
PG_DATABASE = f"stepup_django_test_{os.getpid()}"
PG_ADMIN = {
    "host": _PG.hostname or "127.0.0.1",
    "port": _PG.port or 5432,
    "user": _PG.username or "postgres",
    "password": _PG.password or None,
    "dbname": _PG.path.lstrip("/") or "test",
}
_TMP = tempfile.mkdtemp(prefix="stepup-django-")

if not settings.configured:
    postgres = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": PG_DATABASE,
        "USER": PG_ADMIN["user"],
        "PASSWORD": PG_ADMIN["password"] or "",
        "HOST": PG_ADMIN["host"],
        "PORT": str(PG_ADMIN["port"]),
    }
    settings.configure(**project_settings(os.path.join(_TMP, "db.sqlite3"), postgres))
    django.setup()


@pytest.fixture(scope="session", autouse=True)
def django_database() -> Iterator[None]:
    from django.core.management import call_command
    from django.db import connections

    call_command("migrate", verbosity=0)
    create_users()
    yield
    connections.close_all()
    shutil.rmtree(_TMP, ignore_errors=True)


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock()


@pytest.fixture
def site(clock: SettableClock) -> Iterator[Site]:
    with running_site(MemoryStore(), clock) as running:
        from stepup.integrations.django.services import get_stepup

        get_stepup().tenant_settings.ensure("acme")
        yield running


@pytest.fixture
def alice(site: Site) -> Any:
    return site.browser("alice")


@pytest.fixture
def bob(site: Site) -> Any:
    return site.browser("bob")


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """This process's own PostgreSQL database, migrated; dropped at the end."""
    from support import need, port_open

    need(port_open(PG_ADMIN["host"], PG_ADMIN["port"]), "PostgreSQL at 127.0.0.1:5432")
    import psycopg
    from django.core.management import call_command
    from django.db import connections

    def admin(statement: str) -> None:
        with psycopg.connect(**PG_ADMIN, autocommit=True) as conn:
            conn.execute(statement)

    admin(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
    admin(f'CREATE DATABASE "{PG_DATABASE}"')
    call_command("migrate", database="postgres", verbosity=0)
    yield "postgres"
    connections["postgres"].close()
    admin(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
