"""What only the Redis store's passkeys have: the key layout, and the claim-first
``add_passkey`` (the credential id's index entry is claimed, the passkey added to the
user's hash, then the claim made permanent), step by step, with the interruptions
that a crash or a slow process would cause forced by driving the steps by hand."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import redis

from stepup.adapters.storage.redis import AsyncRedisStore, RedisStore
from stepup.adapters.storage.redis_ops import CLAIM_MS
from stepup.records import Passkey
from storage.redis_cluster import delete_prefix, need_shared_redis, unique_prefix
from support import REDIS_URL

pytestmark = pytest.mark.redis

T0 = 1_700_000_000.0


@pytest.fixture(scope="module")
def raw() -> Iterator[redis.Redis]:
    need_shared_redis()
    with redis.Redis.from_url(REDIS_URL, decode_responses=True) as client:
        yield client


@pytest.fixture(scope="module")
def prefix(raw: redis.Redis) -> Iterator[str]:
    prefix = unique_prefix()
    yield prefix
    delete_prefix(raw, prefix)


@pytest.fixture(scope="module")
def store(prefix: str) -> Iterator[RedisStore]:
    with RedisStore(REDIS_URL, prefix=prefix) as store:
        yield store


_counter = iter(range(10**9))


def _passkey(user: str = "", **fields: Any) -> Passkey:
    n = next(_counter)
    values: dict[str, Any] = {
        "user_id": user or f"user-{n}",
        "credential_id": f"cred-{n}",
        "credential_data": "pQECAyYgASFYIA",
        "name": "Laptop",
        "sign_count": 3,
        "created_at": T0,
        "transports": ("usb",),
    }
    return Passkey(**{**values, **fields})


def _step(store: RedisStore, steps: Any, reply: Any = None) -> Any:
    """Send the step's reply (None for the first) and run the next op; its answer."""
    op = next(steps) if reply is None else steps.send(reply)
    return store._run(op)


def test_passkey_keys_follow_the_documented_layout(store: RedisStore, raw: redis.Redis) -> None:
    passkey = _passkey(backup_state=True, last_used_at=T0 + 1.5)
    assert store.add_passkey(passkey, 10) is True
    key = store.keys.passkeys(passkey.user_id)
    fields = raw.hgetall(key)
    cid = passkey.credential_id
    assert sorted(fields) == [f"c:{cid}", f"k:{cid}", f"n:{cid}"]
    assert fields[f"n:{cid}"] == "Laptop"
    assert fields[f"c:{cid}"] == f"3 1 {T0 + 1.5!r}"
    assert "Laptop" not in fields[f"k:{cid}"]  # the name is a field of its own
    index = store.keys.passkey_id(cid)
    assert raw.get(index) == passkey.user_id
    assert raw.pttl(index) == -1  # permanent once the add is confirmed
    assert raw.pttl(key) == -1


def test_a_claim_left_by_a_process_that_died_refuses_the_id_until_it_expires(
    store: RedisStore, raw: redis.Redis
) -> None:
    passkey = _passkey()
    steps = store._ops.add_passkey(passkey, 10)
    assert _step(store, steps) is True  # claimed ... and then the process dies
    steps.close()
    index = store.keys.passkey_id(passkey.credential_id)
    assert str(raw.get(index)).startswith("pending ")
    assert 0 < raw.pttl(index) <= CLAIM_MS
    other = replace(passkey, user_id="someone-else")
    assert store.add_passkey(other, 10) is False
    assert store.add_passkey(passkey, 10) is False
    assert store.list_passkeys(other.user_id) == ()
    raw.delete(index)  # what the expiry does
    assert store.add_passkey(other, 10) is True
    assert store.list_passkeys(other.user_id) == (other,)


def test_an_add_refused_at_the_limit_releases_its_claim(
    store: RedisStore, raw: redis.Redis
) -> None:
    first = _passkey()
    second = _passkey(first.user_id)
    assert store.add_passkey(first, 1) is True
    assert store.add_passkey(second, 1) is False
    assert raw.exists(store.keys.passkey_id(second.credential_id)) == 0
    assert store.list_passkeys(first.user_id) == (first,)


def test_a_claim_lost_before_its_confirmation_adds_nothing(
    store: RedisStore, raw: redis.Redis
) -> None:
    """The claim expired while this add was stalled between its steps, and another
    registration claimed the id: this add takes its passkey back out and answers False."""
    passkey = _passkey()
    index = store.keys.passkey_id(passkey.credential_id)
    steps = store._ops.add_passkey(passkey, 10)
    claimed = _step(store, steps)
    added = _step(store, steps, claimed)
    assert added is True
    raw.set(index, "pending 0000 the-other-registration", px=CLAIM_MS)
    confirmed = _step(store, steps, added)
    assert confirmed is False
    taken_out = _step(store, steps, confirmed)  # HDEL of the passkey's three fields
    assert taken_out == 3
    with pytest.raises(StopIteration) as stop:
        steps.send(taken_out)
    assert stop.value.value is False
    assert store.list_passkeys(passkey.user_id) == ()
    assert raw.get(index) == "pending 0000 the-other-registration"


def test_remove_releases_only_the_owners_index_entry(store: RedisStore, raw: redis.Redis) -> None:
    passkey = _passkey()
    index = store.keys.passkey_id(passkey.credential_id)
    store.add_passkey(passkey, 10)
    assert store.remove_passkey("not-the-owner", passkey.credential_id) is False
    assert raw.get(index) == passkey.user_id
    assert store.remove_passkey(passkey.user_id, passkey.credential_id) is True
    assert raw.exists(index, store.keys.passkeys(passkey.user_id)) == 0


def test_a_client_that_decodes_responses_reads_passkeys_too(prefix: str) -> None:
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        store = RedisStore(client, prefix=prefix)
        passkey = _passkey(name="Ünïcode ✓", transports=())
        assert store.add_passkey(passkey, 10) is True
        assert store.list_passkeys(passkey.user_id) == (passkey,)
        used = replace(passkey, sign_count=4, last_used_at=T0 + 2)
        assert store.record_passkey_use(used, 3) is True
        assert store.list_passkeys(passkey.user_id) == (used,)
    finally:
        client.close()


def test_passkeys_are_read_in_a_batch_with_the_credential(store: RedisStore, prefix: str) -> None:
    """A re-authentication offer reads a user's passkeys and TOTP credential together."""
    assert "list_passkeys" in store.batchable
    passkey = _passkey()
    store.add_passkey(passkey, 10)
    user = passkey.user_id
    reads = (("list_passkeys", (user,)), ("get_credential", (user,)))
    assert store.batch(reads) == ((passkey,), None)

    async def read_async() -> tuple[Any, ...]:
        async with AsyncRedisStore(REDIS_URL, prefix=prefix) as async_store:
            return await async_store.batch(reads)

    assert asyncio.run(read_async()) == ((passkey,), None)
