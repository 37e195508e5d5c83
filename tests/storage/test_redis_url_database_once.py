"""A Redis URL names its database once: redis-py lets a ``?db=`` option override the
path's number (``redis://host/0?db=6`` is database 6), so a URL with both is refused
before anything connects, and the message never quotes the URL (it may hold a
password). Nothing listens on port 1: a URL that is taken is built, never connected."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from stepup.adapters.storage.redis import AsyncRedisStore, RedisStore
from stepup.errors import ConfigurationError
from stepup.integrations.stores import store_from_url

TWICE = "a Redis URL names its database twice, in its path and as ?db=: give only one"


def _close(store: Any) -> None:
    store.close() if isinstance(store, RedisStore) else asyncio.run(store.aclose())


@pytest.mark.parametrize(
    "rest",
    [
        "/0?db=6",
        "/6?db=6",
        "/3?socket_timeout=1&db=4",
        "/3?%64b=4",  # the key as redis-py reads it, decoded
        "/03?db=3&db=3",
    ],
)
@pytest.mark.parametrize("scheme", ["redis", "rediss", "REDIS", "redis+cluster"])
def test_a_url_naming_its_database_twice_is_refused(scheme: str, rest: str) -> None:
    url = f"{scheme}://:s3cret@127.0.0.1:1{rest}"
    for make in (RedisStore, AsyncRedisStore):
        with pytest.raises(ConfigurationError) as refused:
            make(url)
        assert str(refused.value) == TWICE
        assert "s3cret" not in repr(refused.value)
    with pytest.raises(ConfigurationError, match="database twice"):
        store_from_url(url, setting="STEPUP_STORE", create_schema=False)


@pytest.mark.parametrize(
    ("rest", "db"),
    [("/6", 6), ("?db=6", 6), ("/?db=6", 6), ("/6?db=", 6), ("/6?socket_timeout=1", 6)],
)
def test_a_url_naming_its_database_once_uses_it(rest: str, db: int) -> None:
    for make in (RedisStore, AsyncRedisStore):
        store = make(f"redis://127.0.0.1:1{rest}")
        try:
            assert int(store.client.connection_pool.connection_kwargs["db"]) == db
        finally:
            _close(store)
