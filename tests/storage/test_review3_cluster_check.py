"""A Redis Cluster store's start-up check names where it tried: the store's own URL as a
cluster URL (``redis+cluster://host:port``), without its password, sync and async,
whether the cluster went away after the store was built or the async client never
loaded the cluster's layout. It said "the store URL (not shown: it does not parse)"
(``redis://host:port (cluster)``) or "://a RedisCluster client"."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
import redis.asyncio.cluster
import redis.cluster

from stepup.adapters.storage.redis import AsyncRedisStore, RedisStore
from stepup.errors import StoreConfigurationError
from storage.redis_cluster import LOADED_MACHINE_TIMEOUT, redis_cluster, unique_prefix

pytestmark = [pytest.mark.redis, pytest.mark.cluster]

PASSWORD = "cluster-pass-not-real-9f2c"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def assert_names(error: StoreConfigurationError, where: str) -> None:
    message = str(error)
    assert message.startswith(f"cannot reach Redis at {where}: "), message
    assert error.url == where
    assert "not shown" not in message
    assert PASSWORD not in message


def test_a_cluster_that_went_away_is_named_by_its_url(tmp_path: Path) -> None:
    """Built on a live cluster (sync clients load the layout at once), sync and async,
    a URL store and a client passed in; then every node is killed."""
    with redis_cluster(tmp_path) as nodes:
        port = nodes[0].port
        url = f"redis+cluster://127.0.0.1:{port}"
        prefix = unique_prefix()
        built = RedisStore(url, prefix=prefix, timeout=LOADED_MACHINE_TIMEOUT)
        given_client = redis.cluster.RedisCluster(host="127.0.0.1", port=port)
        given = RedisStore(given_client, prefix=prefix)
        async_built = AsyncRedisStore(url, prefix=prefix, timeout=LOADED_MACHINE_TIMEOUT)

        async def loaded() -> None:
            await async_built.check()  # loads the layout: the default node is known

        asyncio.run(loaded())
        built.check()
        given.check()
        for node in nodes:
            node.kill()

        with pytest.raises(StoreConfigurationError) as sync_error:
            built.check()
        assert_names(sync_error.value, url)
        with pytest.raises(StoreConfigurationError) as given_error:
            given.check()
        assert_names(given_error.value, url)

        async def check_again() -> None:
            try:
                await async_built.check()
            finally:
                await async_built.aclose()

        with pytest.raises(StoreConfigurationError) as async_error:
            asyncio.run(check_again())
        assert_names(async_error.value, url)
        built.close()
        given_client.close()


@pytest.mark.parametrize("scheme", ["redis+cluster", "rediss+cluster"])
def test_an_async_cluster_store_that_never_connected_names_its_url(scheme: str) -> None:
    """Before redis.asyncio's cluster client has loaded the layout it knows no default
    node: the URL's node (its startup node) is named, as a cluster URL, with the user
    but never the password."""
    port = closed_port()
    store = AsyncRedisStore(f"{scheme}://app:{PASSWORD}@127.0.0.1:{port}", timeout=1.0)

    async def check() -> None:
        try:
            await store.check()
        finally:
            await store.aclose()

    with pytest.raises(StoreConfigurationError) as caught:
        asyncio.run(check())
    assert_names(caught.value, f"{scheme}://app@127.0.0.1:{port}")


def test_an_async_cluster_client_passed_in_names_its_startup_node() -> None:
    port = closed_port()
    client = redis.asyncio.cluster.RedisCluster(
        host="127.0.0.1", port=port, password=PASSWORD, socket_connect_timeout=1.0
    )
    store = AsyncRedisStore(client)

    async def check() -> None:
        try:
            await store.check()
        finally:
            await client.aclose()

    with pytest.raises(StoreConfigurationError) as caught:
        asyncio.run(check())
    assert_names(caught.value, f"redis+cluster://127.0.0.1:{port}")
