"""Is a one-server Redis client talking to a node of a Redis Cluster?

A store built with a plain ``redis://`` URL (or a ``redis.Redis`` client) on a cluster
node sees that node's keys only: a user whose keys hash to another node's slots is an
outage for every call, and an operator command that walks the keys (``reseal``) would
change one node's users and report success. The start-up check
(:meth:`RedisStore.check <stepup.adapters.storage.redis.RedisStore.check>`) asks
``INFO cluster``; where INFO is refused (an ACL, a renamed command), it reads keys under
the store's prefix spread over all 16384 slots, and a cluster node answers ``MOVED`` for
one of them (it cannot serve every slot).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from redis.crc import key_slot
from redis.exceptions import AskError, ClusterDownError, ResponseError, TryAgainError

__all__ = ["acluster_enabled", "cluster_enabled"]

#: What a cluster node answers for a slot it does not serve (AskError: MOVED is one).
_ELSEWHERE = (AskError, ClusterDownError, TryAgainError)


@cache
def _probe_keys(prefix: str) -> tuple[str, ...]:
    """Keys under ``prefix`` whose slots are spread over all 16384, one in each
    sixteenth, in the stores' own form (``<prefix><kind>:{id}``)."""
    found: dict[int, str] = {}
    for number in range(10_000):  # about 50 suffice: the slot is the CRC16 of the number
        key = f"{prefix}cluster-probe:{{{number}}}"
        found.setdefault(key_slot(key.encode()) // 1024, key)
        if len(found) == 16:
            break
    return tuple(found[part] for part in sorted(found))


def cluster_enabled(client: Any, prefix: str) -> bool:
    """For a sync ``redis.Redis``; the client's own errors (the server away) propagate."""
    try:
        return bool(client.info("cluster").get("cluster_enabled"))
    except ResponseError:
        pass
    try:
        for key in _probe_keys(prefix):
            client.exists(key)
    except _ELSEWHERE:
        return True
    except ResponseError:  # the probe keys are refused too: nothing more to learn
        return False
    return False


async def acluster_enabled(client: Any, prefix: str) -> bool:
    """:func:`cluster_enabled` for a ``redis.asyncio.Redis``."""
    try:
        return bool((await client.info("cluster")).get("cluster_enabled"))
    except ResponseError:
        pass
    try:
        for key in _probe_keys(prefix):
            await client.exists(key)
    except _ELSEWHERE:
        return True
    except ResponseError:
        return False
    return False
