"""A store built from a Redis Cluster URL sends each command once.

redis-py's cluster clients retry a command ten times on a timeout or a dropped
connection; for the store's scripts that is a second run of a decision whose reply was
lost (one failure counted twice, a valid recovery code spent by the lost run and refused
to the retry). A node of a real three-master cluster is stalled with ``DEBUG SLEEP``
for longer than the store's timeout: the call fails closed, and when the node wakes,
the command it had received runs exactly once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest
import redis

from stepup.adapters.storage.memory import MemoryStore
from stepup.adapters.storage.redis import AsyncRedisStore, RedisStore
from stepup.errors import StoreUnavailableError
from stepup.records import AttemptOutcome, Credential, ThrottleState
from stepup.throttle import ThrottlePolicy
from storage.redis_cluster import (
    RedisServer,
    debug_command,
    delete_prefix,
    redis_cluster,
    stall,
    unique_prefix,
)

pytestmark = [pytest.mark.redis, pytest.mark.cluster]

T = TypeVar("T")

T0 = 1_700_000_000.0
POLICY = ThrottlePolicy()
#: The store gives up after TIMEOUT seconds; the node stays asleep STALL seconds, long
#: enough for redis-py's retries (a backoff of at most 1 s each) to be sent meanwhile.
TIMEOUT, STALL = 0.3, 3


def two_charges() -> ThrottleState:
    """The state two charges at T0 and T0 + 1 leave (the second one run once)."""
    reference = MemoryStore()
    for now in (T0, T0 + 1):
        reference.throttle_charge("k", now, POLICY)
    return reference.throttle_state("k")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RedisServer]]:
    directory = tmp_path_factory.mktemp("redis-cluster-stall")
    with redis_cluster(directory, 3, *debug_command()) as nodes:
        yield nodes


@pytest.fixture
def prefix(cluster: list[RedisServer]) -> Iterator[str]:
    prefix = unique_prefix()
    yield prefix
    for node in cluster:
        with redis.Redis(port=node.port) as client:
            delete_prefix(client, prefix)


@pytest.fixture
def store(cluster: list[RedisServer], prefix: str) -> Iterator[RedisStore]:
    with RedisStore(cluster[0].url, prefix=prefix, cluster=True, timeout=TIMEOUT) as store:
        yield store


def test_a_cluster_store_built_from_a_url_has_no_command_retries(
    cluster: list[RedisServer], prefix: str, store: RedisStore
) -> None:
    assert store.client.retry.get_retries() == 0
    async_store = AsyncRedisStore(cluster[0].url, prefix=prefix, cluster=True)
    assert async_store.client.retry.get_retries() == 0


def while_stalled(port: int, call: Callable[[], T]) -> T | StoreUnavailableError:
    """What ``call`` answers, or the error it raises, while the node on ``port`` sleeps;
    returns once the node is awake again."""
    sleeper = stall(port, STALL)
    try:
        return call()
    except StoreUnavailableError as exc:
        return exc
    finally:
        sleeper.join()


def test_a_charge_whose_reply_is_lost_counts_one_failure(store: RedisStore) -> None:
    assert store.throttle_charge("k", T0, POLICY).outcome is AttemptOutcome.REJECTED
    node = store.client.get_node_from_key(store.keys.attempt("k"))
    outcome = while_stalled(node.port, lambda: store.throttle_charge("k", T0 + 1, POLICY))
    assert store.throttle_state("k") == two_charges()
    assert isinstance(outcome, StoreUnavailableError)  # failed closed, not sent again
    assert "throttle_charge" in str(outcome)


def test_a_recovery_code_whose_reply_is_lost_is_spent_once(store: RedisStore) -> None:
    store.put_credential(Credential("alice", "totp:1", "sealed", recovery_hashes=("h1", "h2")))
    put = store.get_credential("alice")
    assert put is not None
    assert store.consume_recovery_hash("alice", "h0") is False  # loads the script on the node
    node = store.client.get_node_from_key(store.keys.credential("alice"))
    outcome = while_stalled(node.port, lambda: store.consume_recovery_hash("alice", "h1"))
    credential = store.get_credential("alice")
    assert credential is not None
    assert credential.version - put.version in {0, 1}  # put, then at most one consume
    spent = credential.version == put.version + 1
    assert credential.recovery_hashes == (("h2",) if spent else ("h1", "h2"))
    assert isinstance(outcome, StoreUnavailableError)


def test_an_async_charge_whose_reply_is_lost_counts_one_failure(
    cluster: list[RedisServer], prefix: str
) -> None:
    async def scenario() -> tuple[object, ThrottleState]:
        async with AsyncRedisStore(
            cluster[0].url, prefix=prefix, cluster=True, timeout=TIMEOUT
        ) as store:
            await store.throttle_charge("k", T0, POLICY)
            node = store.client.get_node_from_key(store.keys.attempt("k"))
            sleeper = await asyncio.to_thread(stall, node.port, STALL)
            try:
                outcome: object = await store.throttle_charge("k", T0 + 1, POLICY)
            except StoreUnavailableError as exc:
                outcome = exc
            finally:
                await asyncio.to_thread(sleeper.join)
            return outcome, await store.throttle_state("k")

    outcome, state = asyncio.run(scenario())
    assert state == two_charges()
    assert isinstance(outcome, StoreUnavailableError)
