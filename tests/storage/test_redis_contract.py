"""The shipped store contract suite, unchanged, against the machine's Redis, sync and async."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

from stepup.adapters.storage.redis import AsyncRedisStore, RedisStore
from stepup.testing.contract import StoreContract
from storage.redis_cluster import (
    LOADED_MACHINE_TIMEOUT,
    delete_prefix,
    need_shared_redis,
    unique_prefix,
)
from support import REDIS_URL

pytestmark = pytest.mark.redis


@pytest.fixture(scope="module")
def prefix() -> Iterator[str]:
    """One prefix for this module's keys; every one of them is deleted at the end."""
    need_shared_redis()
    prefix = unique_prefix()
    yield prefix
    with redis.Redis.from_url(REDIS_URL) as client:
        delete_prefix(client, prefix)


@pytest.fixture(scope="module")
def sync_store(prefix: str) -> Iterator[RedisStore]:
    with RedisStore(REDIS_URL, prefix=prefix, timeout=LOADED_MACHINE_TIMEOUT) as store:
        yield store


class TestRedisStore(StoreContract):
    @pytest.fixture
    def store(self, sync_store: RedisStore) -> RedisStore:
        return sync_store


class TestAsyncRedisStore(StoreContract):
    @pytest.fixture
    def store(self, prefix: str) -> AsyncRedisStore:
        # Built outside any loop; its connections open on the suite's private loop.
        return AsyncRedisStore(REDIS_URL, prefix=prefix, timeout=LOADED_MACHINE_TIMEOUT)

    @pytest.fixture(autouse=True)
    def _close_on_the_suite_loop(self, call: Any) -> Iterator[None]:
        # Torn down before `call`, so the suite's loop is still open to close on.
        yield
        call("aclose")
