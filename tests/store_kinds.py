"""One real store of each kind for tests that hold a behaviour to every store: memory,
SQLite, PostgreSQL (its own table prefix) and Redis (its own key prefix), each cleaned
up after the test. PostgreSQL and Redis skip with a reason when absent (never in CI)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis

from stepup.adapters.storage.memory import MemoryStore
from stepup.adapters.storage.redis import RedisStore
from stepup.adapters.storage.sql import SQLStore
from storage.redis_cluster import delete_prefix, need_shared_redis
from storage.redis_cluster import unique_prefix as redis_prefix
from support import POSTGRES_URL, REDIS_URL, need, port_open

#: The fixture params: ``@pytest.fixture(params=STORE_KINDS)``.
STORE_KINDS = [
    "memory",
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.postgres),
    pytest.param("redis", marks=pytest.mark.redis),
]
#: The same without the memory store (what only a persistent store shows).
PERSISTENT_KINDS = STORE_KINDS[1:]


@contextmanager
def open_store(kind: str, directory: Path) -> Iterator[Any]:
    """A fresh store of ``kind`` (SQLite's file in ``directory``), dropped afterwards."""
    if kind == "memory":
        yield MemoryStore()
    elif kind == "sqlite":
        sqlite = SQLStore.sqlite(directory / "stepup.sqlite3")
        try:
            yield sqlite
        finally:
            sqlite.close()
    elif kind == "postgresql":
        need(port_open("127.0.0.1", 5432), "PostgreSQL on 127.0.0.1:5432")
        postgres = SQLStore(POSTGRES_URL, prefix=f"t{uuid.uuid4().hex[:12]}_")
        postgres.create_schema()
        try:
            yield postgres
        finally:
            postgres.drop_schema()
            postgres.close()
    elif kind == "redis":
        need_shared_redis()
        prefix = redis_prefix()
        try:
            with RedisStore(REDIS_URL, prefix=prefix) as redis_store:
                yield redis_store
        finally:
            with redis.Redis.from_url(REDIS_URL) as client:
                delete_prefix(client, prefix)
    else:
        raise ValueError(f"no store kind {kind!r}")
