"""The Redis store on a real three-master Redis Cluster started on loopback ports.

The store contract suite runs unchanged, sync and async; the other tests prove on the
cluster itself that every key of one user lands in one slot.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import redis
import redis.cluster
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stepup.adapters.storage.redis import AsyncRedisStore, RedisStore
from stepup.records import AttemptOutcome, Credential, Grant, Passkey
from stepup.testing.contract import StoreContract
from stepup.throttle import ThrottlePolicy
from storage.redis_cluster import (
    LOADED_MACHINE_TIMEOUT,
    RedisServer,
    assert_loops_left_behind_nothing,
    delete_prefix,
    redis_cluster,
    unique_prefix,
)

pytestmark = [pytest.mark.redis, pytest.mark.cluster]

T0 = 1_700_000_000.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RedisServer]]:
    with redis_cluster(tmp_path_factory.mktemp("redis-cluster")) as nodes:
        yield nodes


@pytest.fixture(scope="module")
def cluster_url(cluster: list[RedisServer]) -> str:
    return cluster[0].url


@pytest.fixture(scope="module")
def prefix(cluster: list[RedisServer]) -> Iterator[str]:
    prefix = unique_prefix()
    yield prefix
    for node in cluster:
        with redis.Redis(port=node.port) as client:
            delete_prefix(client, prefix)


@pytest.fixture(scope="module")
def sync_store(cluster_url: str, prefix: str) -> Iterator[RedisStore]:
    with RedisStore(
        cluster_url, prefix=prefix, cluster=True, timeout=LOADED_MACHINE_TIMEOUT
    ) as store:
        yield store


class TestRedisClusterStore(StoreContract):
    @pytest.fixture
    def store(self, sync_store: RedisStore) -> RedisStore:
        return sync_store


class TestAsyncRedisClusterStore(StoreContract):
    @pytest.fixture
    def store(self, cluster_url: str, prefix: str) -> AsyncRedisStore:
        return AsyncRedisStore(
            cluster_url, prefix=prefix, cluster=True, timeout=LOADED_MACHINE_TIMEOUT
        )

    @pytest.fixture(autouse=True)
    def _close_on_the_suite_loop(self, call: Any) -> Iterator[None]:
        yield
        call("aclose")


def _slots(cluster: list[RedisServer], prefix: str) -> dict[str, int]:
    """Every key under ``prefix`` on any node, with the slot the cluster computes for it."""
    found: dict[str, int] = {}
    for node in cluster:
        with redis.Redis(port=node.port, decode_responses=True) as client:
            for key in client.scan_iter(match=f"{prefix}*"):
                found[key] = int(client.execute_command("CLUSTER", "KEYSLOT", key))
    return found


#: Ids a store keeps: any text without NUL (the boundary checks refuse it on every store).
ids = st.text(alphabet=st.sampled_from("ab{}%:x-é "), min_size=1, max_size=12) | st.text(
    st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=20
)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(user_id=ids)
def test_every_key_of_a_user_is_in_one_slot(
    cluster: list[RedisServer], sync_store: RedisStore, user_id: str
) -> None:
    prefix = unique_prefix()
    store = RedisStore(sync_store.client, prefix=prefix)
    store.put_credential(Credential(user_id, "totp:1", "sealed", recovery_hashes=("h1", "h2")))
    for session in ("s1", "s2", "s3"):
        store.put_grant(Grant(user_id, session, frozenset({"pwd"}), T0), T0 + 600)
    passkey = Passkey(user_id, "cred-1", "key", "Laptop", sign_count=1)
    assert store.add_passkey(passkey, 10) is True
    keys = _slots(cluster, prefix)
    # The credential id's index entry is the one key of a user's that is tagged by
    # something else (its slot is the credential id's): add_passkey works slot by slot.
    index = store.keys.passkey_id("cred-1")
    assert index in keys
    del keys[index]
    assert sorted(keys) == sorted(store.keys.of_user(user_id))
    assert len(set(keys.values())) == 1
    assert store.record_passkey_use(replace(passkey, sign_count=2), 1) is True
    assert store.revoke_grants(user_id) == 3
    assert store.consume_recovery_hash(user_id, "h1") is True
    assert store.delete_credential(user_id) is True
    assert store.remove_passkey(user_id, "cred-1") is True
    assert _slots(cluster, prefix) == {}


def test_a_users_keys_spread_over_the_cluster(
    cluster: list[RedisServer], sync_store: RedisStore
) -> None:
    """Different users do land on different nodes: the single slot above is the tag's doing."""
    prefix = unique_prefix()
    store = RedisStore(sync_store.client, prefix=prefix)
    for index in range(30):
        store.put_credential(Credential(f"user-{index}", "totp:1", "sealed"))
    owners = set()
    for node in cluster:
        with redis.Redis(port=node.port) as client:
            if any(True for _ in client.scan_iter(match=f"{prefix}*")):
                owners.add(node.port)
            delete_prefix(client, prefix)
    assert len(owners) == len(cluster)


def test_async_cluster_revokes_every_session_of_a_user(cluster_url: str) -> None:
    prefix = unique_prefix()

    async def scenario() -> tuple[int, Grant | None]:
        async with AsyncRedisStore(
            cluster_url, prefix=prefix, cluster=True, timeout=LOADED_MACHINE_TIMEOUT
        ) as store:
            for session in ("s1", "s2"):
                await store.put_grant(Grant("alice", session, frozenset({"otp"}), T0), T0 + 60)
            revoked = await store.revoke_grants("alice")
            return revoked, await store.get_grant("alice", "s1")

    assert asyncio.run(scenario()) == (2, None)


def test_async_cluster_store_works_from_one_event_loop_after_another(cluster_url: str) -> None:
    """A start-up check on its own loop, then the server's loop: each loop gets a
    cluster client of its own (see tests/storage/test_redis_store.py for one server)."""
    store = AsyncRedisStore(
        cluster_url, prefix=unique_prefix(), cluster=True, timeout=LOADED_MACHINE_TIMEOUT
    )
    asyncio.run(store.check())

    async def serve() -> tuple[AttemptOutcome, AttemptOutcome]:
        first = await store.totp_attempt("alice", 7, T0, ThrottlePolicy())
        again = await store.totp_attempt("alice", 7, T0, ThrottlePolicy())
        await store.aclose()
        return first.outcome, again.outcome

    assert asyncio.run(serve()) == (AttemptOutcome.ACCEPTED, AttemptOutcome.REPLAYED)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts sockets in /proc")
def test_async_cluster_store_keeps_nothing_of_closed_event_loops(cluster_url: str) -> None:
    """As for one server (tests/storage/test_redis_store.py): the cluster clients of
    closed loops are dropped, and every node's connections closed, once another loop
    uses the store; ``aclose`` on the last loop closes its own."""
    store = AsyncRedisStore(
        cluster_url, prefix=unique_prefix(), cluster=True, timeout=LOADED_MACHINE_TIMEOUT
    )

    async def use(step: int) -> None:
        for user in ("alice", "bob", "carol"):  # keys on several nodes
            await store.totp_attempt(user, step, T0, ThrottlePolicy())

    assert_loops_left_behind_nothing(store, use, runs=10, held_sockets=None)
