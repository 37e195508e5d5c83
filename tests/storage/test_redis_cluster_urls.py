"""Store URLs that name a Redis Cluster (``redis+cluster://``, ``rediss+cluster://``),
on a real three-master cluster: the stores, the frameworks' URL setting and the
operator CLI all get a cluster client from one, so ``stepup operator reseal`` and the
listing commands see every node's users; a plain ``redis://`` URL of a cluster node is
refused by the CLI (it would see, and change, one node's users only) before anything
changes."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio.cluster
import redis.cluster

from stepup.adapters.storage.redis import AsyncRedisStore, RedisStore
from stepup.adapters.storage.urls import split_redis_cluster_url
from stepup.cli import main
from stepup.cli._stores import credential_user_ids, open_store
from stepup.errors import ConfigurationError, StoreConfigurationError
from stepup.integrations.stores import store_from_url
from stepup.records import Credential, Tenant, TotpDevice
from stepup.sealing import SecretBox
from storage.redis_cluster import (
    LOADED_MACHINE_TIMEOUT,
    RedisServer,
    delete_prefix,
    redis_cluster,
    redis_server,
    unique_prefix,
)

pytestmark = [pytest.mark.redis, pytest.mark.cluster]

OLD_KEY, NEW_KEY = b"o" * 32, b"n" * 32
OLD_BOX = SecretBox({"old": OLD_KEY}, "old")
NEW_ONLY = SecretBox({"new": NEW_KEY}, "new")
USERS = [f"user{number}" for number in range(12)]
TENANTS = [f"tenant{number}" for number in range(9)]


def b64(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RedisServer]]:
    with redis_cluster(tmp_path_factory.mktemp("redis-cluster-urls")) as nodes:
        yield nodes


@pytest.fixture
def prefix(cluster: list[RedisServer]) -> Iterator[str]:
    prefix = unique_prefix()
    yield prefix
    for node in cluster:
        with redis.Redis(port=node.port) as client:
            delete_prefix(client, prefix)


@pytest.fixture
def seeded(cluster: list[RedisServer], prefix: str) -> Iterator[RedisStore]:
    """Twelve users, each with a TOTP secret sealed under the old key, and nine tenants,
    spread over every node of the cluster."""
    store = RedisStore(cluster[0].url, prefix=prefix, cluster=True, timeout=LOADED_MACHINE_TIMEOUT)
    for user_id in USERS:
        secret = OLD_BOX.seal("JBSWY3DPEHPK3PXP", context="d1")
        device = TotpDevice(device_id="d1", secret=secret, confirmed=True)
        credential = Credential(
            user_id=user_id, credential_id="c1", secret="", confirmed=True, devices=(device,)
        )
        store.put_credential(credential)
    for tenant_id in TENANTS:
        store.put_tenant(Tenant(tenant_id, {"feature_flags": {}}))
    client = store.client
    ports = {client.get_node_from_key(store.keys.credential(u)).port for u in USERS}
    assert len(ports) == len(cluster)  # every node holds some of the users
    try:
        yield store
    finally:
        store.close()


def cluster_url(node: RedisServer) -> str:
    return f"redis+cluster://127.0.0.1:{node.port}"


def under_old_key(store: RedisStore) -> list[str]:
    left = []
    for user_id in USERS:
        credential = store.get_credential(user_id)
        assert credential is not None
        if NEW_ONLY.needs_reseal(credential.devices[0].secret):
            left.append(user_id)
    return left


def keys_env(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = {"old": b64(OLD_KEY), "new": b64(NEW_KEY)}
    monkeypatch.setenv("STEPUP_ENCRYPTION_KEYS", json.dumps(keys))
    monkeypatch.setenv("STEPUP_ENCRYPTION_KEY_ID", "new")
    monkeypatch.delenv("STEPUP_STORE", raising=False)


# the URL ---------------------------------------------------------------------------


def test_the_cluster_schemes_split_into_the_url_redis_py_takes() -> None:
    assert split_redis_cluster_url("redis+cluster://h:7000") == ("redis://h:7000", True)
    assert split_redis_cluster_url("REDISS+Cluster://:pw@h:7000/0") == (
        "rediss://:pw@h:7000/0",
        True,
    )
    assert split_redis_cluster_url("redis://h:7000") == ("redis://h:7000", False)
    assert split_redis_cluster_url("unix:///run/redis.sock") == ("unix:///run/redis.sock", False)


def test_a_cluster_urls_database_part_is_checked_like_a_plain_ones() -> None:
    with pytest.raises(ConfigurationError, match="database part of a Redis URL"):
        RedisStore("redis+cluster://127.0.0.1:1/l3")


def test_every_place_that_takes_a_store_url_opens_a_cluster_from_one(
    cluster: list[RedisServer], seeded: RedisStore, prefix: str
) -> None:
    url = cluster_url(cluster[1])  # any node's address
    with RedisStore(url, prefix=prefix, timeout=LOADED_MACHINE_TIMEOUT) as direct:
        assert isinstance(direct.client, redis.cluster.RedisCluster)
        assert all(direct.get_credential(user_id) is not None for user_id in USERS)
    from_setting = store_from_url(url, setting="STEPUP_STORE", create_schema=True)
    try:
        assert isinstance(from_setting, RedisStore)
        assert isinstance(from_setting.client, redis.cluster.RedisCluster)
    finally:
        from_setting.close()
    cli_store = open_store(url, prefix=prefix)
    try:
        assert isinstance(cli_store, RedisStore)
        assert isinstance(cli_store.client, redis.cluster.RedisCluster)
        assert sorted(credential_user_ids(cli_store)) == sorted(USERS)
    finally:
        cli_store.close()

    async def read_all() -> list[Credential | None]:
        store = AsyncRedisStore(url, prefix=prefix, timeout=LOADED_MACHINE_TIMEOUT)
        try:
            assert isinstance(store.client, redis.asyncio.cluster.RedisCluster)
            return [await store.get_credential(user_id) for user_id in USERS]
        finally:
            await store.aclose()

    assert None not in asyncio.run(read_all())


# the operator CLI on a cluster URL ----------------------------------------------------


def test_reseal_on_a_cluster_url_reseals_every_nodes_users(
    cluster: list[RedisServer],
    seeded: RedisStore,
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    keys_env(monkeypatch)
    argv = ["operator", "reseal", "--store", cluster_url(cluster[0]), "--prefix", prefix]
    status = main([*argv, "--yes"])
    out, err = capsys.readouterr()
    assert (status, err) == (0, "")
    assert out.strip().splitlines()[-1] == (
        f"resealed: {len(USERS)} secret(s) under key 'new'; 0 already were; 0 failed"
    )
    assert under_old_key(seeded) == []


def test_the_listing_commands_see_every_nodes_users_on_a_cluster_url(
    cluster: list[RedisServer],
    seeded: RedisStore,
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("STEPUP_STORE", cluster_url(cluster[2]))
    for user_id in USERS:
        status = main(["operator", "totp-devices", user_id, "--prefix", prefix])
        out, err = capsys.readouterr()
        assert (status, err) == (0, ""), user_id
        assert out.startswith("d1  added ")
    for tenant_id in TENANTS:
        status = main(["operator", "tenant", "show", tenant_id, "--prefix", prefix])
        out, err = capsys.readouterr()
        assert (status, err) == (0, ""), tenant_id
        assert json.loads(out)["data"]["id"] == tenant_id


# a plain URL of a cluster node ---------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["reseal", "--yes"],
        ["remove-2fa", "user0", "--yes"],
        ["totp-devices", "user0"],
        ["tenant", "set-flag", "tenant0", "on", "--yes"],
    ],
    ids=["reseal", "remove-2fa", "totp-devices", "tenant-set-flag"],
)
def test_a_plain_url_of_a_cluster_node_is_refused_before_anything_changes(
    cluster: list[RedisServer],
    seeded: RedisStore,
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
) -> None:
    keys_env(monkeypatch)
    plain = f"redis://127.0.0.1:{cluster[0].port}/0"
    status = main(["operator", *command, "--store", plain, "--prefix", prefix])
    out, err = capsys.readouterr()
    assert (status, out) == (2, "")
    assert err.count("\n") == 1
    assert err.startswith(f"stepup: error: cannot use the Redis store at {plain}: ")
    assert "node of a Redis Cluster" in err
    assert "redis+cluster://HOST:PORT" in err
    assert under_old_key(seeded) == USERS
    assert all(seeded.get_credential(user_id) is not None for user_id in USERS)
    tenant = seeded.get_tenant("tenant0")
    assert tenant is not None
    assert tenant.attributes == {"feature_flags": {}}


def test_a_cluster_node_that_refuses_info_is_known_by_a_moved_answer(
    cluster: list[RedisServer], seeded: RedisStore, prefix: str
) -> None:
    user, password = "no-info", "probe-pw"
    for node in cluster:
        with redis.Redis(port=node.port) as client:
            client.execute_command(
                "ACL", "SETUSER", user, "reset", "on", f">{password}", "~*", "+@all", "-info"
            )
    try:
        url = f"redis://{user}:{password}@127.0.0.1:{cluster[0].port}/0"
        with RedisStore(url) as probe, pytest.raises(redis.exceptions.NoPermissionError):
            probe.client.info("cluster")
        with pytest.raises(StoreConfigurationError, match="redis\\+cluster://") as caught:
            open_store(url, prefix=prefix)
        assert password not in str(caught.value)
    finally:
        for node in cluster:
            with redis.Redis(port=node.port) as client:
                client.execute_command("ACL", "DELUSER", user)


def test_a_plain_url_of_a_single_server_is_not_refused(tmp_path: Path) -> None:
    with redis_server(tmp_path / "single") as server:
        store = open_store(server.url)
        try:
            assert isinstance(store.client, redis.Redis)
            assert list(credential_user_ids(store)) == []
        finally:
            store.close()
        # Where INFO is refused, a single server answers every key itself: no MOVED.
        with redis.Redis(port=server.port) as client:
            client.execute_command("ACL", "SETUSER", "no-info", "on", ">pw", "~*", "+@all", "-info")
        store = open_store(f"redis://no-info:pw@127.0.0.1:{server.port}/0")
        store.close()


def test_the_frameworks_url_setting_refuses_a_plain_url_of_a_cluster_node(
    cluster: list[RedisServer],
) -> None:
    """Flask's STEPUP_STORE and Django's STORE: at start-up (the Redis check), not as an
    outage for every user whose keys are on another node."""
    plain = f"redis://127.0.0.1:{cluster[0].port}/0"
    with pytest.raises(StoreConfigurationError, match="redis\\+cluster://HOST:PORT"):
        store_from_url(plain, setting="STEPUP_STORE", create_schema=True)


def test_the_async_stores_check_refuses_a_plain_url_of_a_cluster_node(
    cluster: list[RedisServer],
) -> None:
    async def check(url: str, **options: bool) -> None:
        store = AsyncRedisStore(url, **options)
        try:
            await store.check()
        finally:
            await store.aclose()

    plain = f"redis://127.0.0.1:{cluster[0].port}/0"
    with pytest.raises(StoreConfigurationError, match="node of a Redis Cluster"):
        asyncio.run(check(plain))
    asyncio.run(check(plain, cluster=True))  # the same node, as a cluster: fine
    asyncio.run(check(f"redis+cluster://127.0.0.1:{cluster[0].port}"))
