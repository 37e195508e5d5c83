"""What only the Redis store has: the Lua mirror of the throttle, exact big steps, key
layout and TTLs, failure handling, the ways a client can be handed in, the direct path
commands take on a pooled connection, and how replies are decoded."""

from __future__ import annotations

import asyncio
import json
import math
import os
import socket
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stepup.adapters.storage import redis_ops, stored_json
from stepup.adapters.storage.base import Store
from stepup.adapters.storage.redis import (
    AsyncRedisStore,
    RedisStore,
    _on_one_connection,
    _on_one_connection_async,
    _packed,
)
from stepup.adapters.storage.redis_keys import RedisKeys
from stepup.adapters.storage.redis_scripts import PUT_GRANT
from stepup.errors import (
    ConcurrentUpdateError,
    ConfigurationError,
    MalformedInputError,
    StoreUnavailableError,
)
from stepup.records import (
    Attempt,
    AttemptOutcome,
    Challenge,
    Credential,
    Grant,
    Tenant,
    ThrottleState,
)
from stepup.throttle import ThrottlePolicy, apply_attempt, apply_charge, apply_refund
from storage.redis_cluster import (
    assert_loops_left_behind_nothing,
    delete_prefix,
    need_shared_redis,
    unique_prefix,
)
from support import REDIS_URL

pytestmark = pytest.mark.redis

T0 = 1_700_000_000.0
POLICY = ThrottlePolicy()
WEEK_MS = 7 * 24 * 3600 * 1000


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


def _id(name: str) -> str:
    return f"{name}-{unique_prefix()}"


# the Lua transition is the Python one --------------------------------------------

policies = st.builds(
    lambda free, base, cap_factor, forget_extra: ThrottlePolicy(
        free_failures=free,
        base_delay=base,
        max_delay=base * cap_factor,
        forget_after=base * cap_factor + forget_extra,
    ),
    free=st.integers(0, 4),
    base=st.floats(0.001, 1000.0),
    cap_factor=st.floats(1.0, 1e6),
    forget_extra=st.floats(1.0, 1e6),
)
steps = st.one_of(
    st.none(),
    st.integers(0, 12),
    st.integers(2**53 - 3, 2**53 + 3),
    st.integers(-(2**63), 2**63 - 1),  # every step a store keeps (see check_int64)
)
moves = st.lists(
    st.tuples(st.sampled_from(["attempt", "charge", "clear", "refund"]), steps, st.floats(0, 5000)),
    max_size=30,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(policy=policies, moves=moves, start=st.floats(-1e9, 1e10))
def test_lua_mirrors_the_python_transition_exactly(
    store: RedisStore,
    policy: ThrottlePolicy,
    moves: list[tuple[str, int | None, float]],
    start: float,
) -> None:
    """Outcome, counters, retry times and state equal the pure functions bit for bit."""
    key, now, model = _id("mirror"), start, ThrottleState()
    charged: tuple[Attempt, float] | None = None
    for action, step, wait in moves:
        now += wait
        if action == "clear":
            store.throttle_clear(key)
            model = ThrottleState(last_step=model.last_step)
        elif action == "refund":  # of the last charge, whenever it was (the Lua must agree)
            if charged is not None:
                store.throttle_refund(key, *charged)
                model = apply_refund(model, *charged)
        else:
            if action == "attempt":
                model, expected = apply_attempt(model, step, now, policy)
                actual = store.totp_attempt(key, step, now, policy)
            else:
                model, expected = apply_charge(model, now, policy)
                actual = store.throttle_charge(key, now, policy)
                charged = (actual, now)
            assert actual == expected
        assert store.throttle_state(key) == model


def test_steps_stay_exact_beyond_double_precision(store: RedisStore) -> None:
    """2**53 + 1 is the same double as 2**53; as decimal strings they stay apart."""
    key = _id("big")
    for step in (2**40, 2**53, 2**53 + 1, 2**63 - 2, 2**63 - 1):
        assert store.totp_attempt(key, step, T0, POLICY).outcome is AttemptOutcome.ACCEPTED
        assert store.throttle_state(key).last_step == step
        store.throttle_clear(key)
        assert store.totp_attempt(key, step, T0, POLICY).outcome is AttemptOutcome.REPLAYED
        store.throttle_clear(key)
    assert store.totp_attempt(key, 2**53, T0, POLICY).outcome is AttemptOutcome.REPLAYED


def test_negative_and_zero_steps_are_ordered(store: RedisStore) -> None:
    key = _id("neg")
    for step in (-(2**60), -12, -3, 0, 7):
        assert store.totp_attempt(key, step, T0, POLICY).outcome is AttemptOutcome.ACCEPTED
        store.throttle_clear(key)
    assert store.totp_attempt(key, -1, T0, POLICY).outcome is AttemptOutcome.REPLAYED


# key layout and TTLs ---------------------------------------------------------------


def test_keys_follow_the_documented_layout() -> None:
    keys = RedisKeys()
    assert keys.attempt("totp:abc") == "stepup:ledger:{totp:abc}"
    assert keys.credential("alice") == "stepup:cred:{alice}"
    assert keys.grants("alice") == "stepup:grants:{alice}"
    assert keys.tenant("t1") == "stepup:tenant:{t1}"
    assert keys.challenge("st") == "stepup:challenge:{st}"
    # braces cannot end the tag early, and escaping cannot make two ids collide
    assert keys.credential("a}b{c%") == "stepup:cred:{a%7Db%7Bc%25}"
    assert keys.credential("%7D") != keys.credential("}")


@pytest.mark.parametrize("bad", ["st{", "}x", "{a}:"])
def test_prefix_with_braces_is_refused(bad: str) -> None:
    with pytest.raises(ConfigurationError):
        RedisKeys(bad)


def test_attempt_state_lives_forget_after_past_the_last_write(
    store: RedisStore, raw: redis.Redis
) -> None:
    key = _id("ttl")
    name = store.keys.attempt(key)
    store.totp_attempt(key, None, T0, POLICY)
    assert WEEK_MS - 5000 < raw.pttl(name) <= WEEK_MS
    short = ThrottlePolicy(base_delay=1, max_delay=2, forget_after=60)
    store.throttle_charge(key, T0, short)
    assert 55_000 < raw.pttl(name) <= 60_000
    store.totp_attempt(key, 3, T0, POLICY)
    assert WEEK_MS - 5000 < raw.pttl(name) <= WEEK_MS
    raw.pexpire(name, 123_456)
    store.throttle_clear(key)  # clearing is not an attempt: the TTL stays
    assert 118_000 < raw.pttl(name) <= 123_456
    assert raw.get(name) == "3 0 0"


def test_records_without_a_lifetime_do_not_expire(store: RedisStore, raw: redis.Redis) -> None:
    user, tenant = _id("user"), _id("tenant")
    store.put_credential(Credential(user, "totp:x", "sealed", recovery_hashes=("h",)))
    store.put_tenant(Tenant(tenant, {"name": "Acme"}))
    assert raw.pttl(store.keys.credential(user)) == -1
    assert raw.pttl(store.keys.tenant(tenant)) == -1


def test_grants_hash_lives_until_the_latest_grant_expires(
    store: RedisStore, raw: redis.Redis
) -> None:
    user = _id("user")
    name = store.keys.grants(user)
    store.put_grant(Grant(user, "s1", frozenset({"pwd"}), T0), T0 + 600)
    assert 595_000 < raw.pttl(name) <= 600_000
    store.put_grant(Grant(user, "s2", frozenset({"pwd"}), T0), T0 + 3600)
    assert 3_595_000 < raw.pttl(name) <= 3_600_000
    store.put_grant(Grant(user, "s3", frozenset({"pwd"}), T0), T0 + 60)  # never shortens
    assert 3_595_000 < raw.pttl(name) <= 3_600_000
    # A grant written at T0 + 700 drops s1 and s3 (expired by then) and recounts the TTL.
    store.put_grant(Grant(user, "s4", frozenset({"otp"}), T0 + 700), T0 + 900)
    assert sorted(raw.hkeys(name)) == ["s2", "s4"]
    assert 2_895_000 < raw.pttl(name) <= 2_900_000
    # Replacing the only long-lived grant with a short one shortens the hash.
    store.put_grant(Grant(user, "s2", frozenset({"otp"}), T0 + 700), T0 + 800)
    assert 195_000 < raw.pttl(name) <= 200_000
    # A grant that is over before it starts is refused, and costs s4 nothing.
    with pytest.raises(MalformedInputError, match="expires_at"):
        store.put_grant(Grant(user, "s4", frozenset({"pwd"}), T0 + 700), T0 + 700)
    assert sorted(raw.hkeys(name)) == ["s2", "s4"]
    assert store.get_grant(user, "s4") == Grant(user, "s4", frozenset({"otp"}), T0 + 700)


@pytest.mark.parametrize("expires_at", [T0 + 700, T0 + 699, "nan", "inf"])
def test_put_grant_script_refusing_a_grant_keeps_the_sessions_grant(
    store: RedisStore, raw: redis.Redis, expires_at: float | str
) -> None:
    """The script itself, sent a grant over before it starts (or a time that is not a
    number), changes nothing: the session's stored grant stays, and so do the others."""
    user = _id("user")
    name = store.keys.grants(user)
    kept = Grant(user, "s", frozenset({"otp"}), T0 + 100)
    store.put_grant(kept, T0 + 3600)
    store.put_grant(Grant(user, "other", frozenset({"pwd"}), T0), T0 + 10)
    ttl = raw.pttl(name)
    args = ("s", f"{expires_at} {{}}", str(expires_at), str(T0 + 700))
    assert raw.eval(PUT_GRANT.source, 1, name, *args) == 0
    assert store.get_grant(user, "s") == kept
    assert sorted(raw.hkeys(name)) == ["other", "s"]
    assert ttl - 1000 < raw.pttl(name) <= ttl


def test_challenge_lives_until_it_expires(store: RedisStore, raw: redis.Redis) -> None:
    challenge = Challenge(_id("state"), "u", "s", T0, T0 + 300, {"nonce": "n"})
    store.put_challenge(challenge)
    assert 295_000 < raw.pttl(store.keys.challenge(challenge.challenge_id)) <= 300_000


def test_recovery_hashes_keep_their_order(store: RedisStore) -> None:
    user = _id("user")
    hashes = tuple(f"h{i:02}" for i in (9, 3, 11, 0, 5, 10, 1, 2, 8, 4, 6, 7))
    store.put_credential(Credential(user, "totp:x", "sealed", recovery_hashes=hashes))
    assert store.consume_recovery_hash(user, "h11") is True
    got = store.get_credential(user)
    assert got is not None
    assert got.recovery_hashes == tuple(h for h in hashes if h != "h11")


# clients, failures, secrets --------------------------------------------------------


def test_the_stores_satisfy_the_protocols(store: RedisStore) -> None:
    assert isinstance(store, Store)
    for name in (n for n in dir(Store) if not n.startswith("_")):
        assert asyncio.iscoroutinefunction(getattr(AsyncRedisStore, name)), name


def test_a_client_that_decodes_responses_works_too(prefix: str) -> None:
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True, protocol=3)
    store = RedisStore(client, prefix=prefix)
    user = _id("user")
    credential = Credential(user, "totp:x", "sealed", confirmed=True, recovery_hashes=("a", "b"))
    store.put_credential(credential)
    first = store.get_credential(user)
    assert first is not None
    assert first == replace(credential, version=first.version)
    assert store.consume_recovery_hash(user, "a") is True
    assert store.replace_credential(credential, first.version + 1) is True
    assert store.get_credential(user) == replace(credential, version=first.version + 2)
    tenant = _id("tenant")
    store.put_tenant(Tenant(tenant, {"feature_flags": {}}))
    assert store.patch_tenant(tenant, {"name": "x"}, {"beta": True}) is not None
    assert store.get_tenant(tenant) == Tenant(
        tenant, {"name": "x", "feature_flags": {"beta": True}}
    )
    assert store.totp_attempt(user, 5, T0, POLICY).outcome is AttemptOutcome.ACCEPTED
    assert store.throttle_state(user) == ThrottleState(0, 0.0, 5)
    store.close()  # not ours: the client stays open
    assert client.ping()
    client.close()


def test_unreachable_redis_is_unavailable_without_leaking_the_url() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens here
    url = f"redis://:hunter2-secret@127.0.0.1:{port}/0"
    store = RedisStore(url, timeout=0.5)
    assert "hunter2" not in repr(store)
    with pytest.raises(StoreUnavailableError) as caught:
        store.totp_attempt("k", 1, T0, POLICY)
    assert "hunter2" not in str(caught.value)
    assert str(port) not in str(caught.value)
    store.close()


def test_a_stuck_server_times_out_as_unavailable() -> None:
    with socket.socket() as listener:  # accepts connections, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        store = RedisStore(f"redis://127.0.0.1:{listener.getsockname()[1]}/0", timeout=0.2)
        with pytest.raises(StoreUnavailableError, match="totp_attempt failed"):
            store.totp_attempt("k", 1, T0, POLICY)
        store.close()


def test_async_unreachable_redis_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    async def attempt() -> None:
        async with AsyncRedisStore(f"redis://:pw-secret@127.0.0.1:{port}/0", timeout=0.5) as store:
            assert "pw-secret" not in repr(store)
            await store.get_grant("u", "s")

    with pytest.raises(StoreUnavailableError) as caught:
        asyncio.run(attempt())
    assert "pw-secret" not in str(caught.value)


@pytest.mark.parametrize(
    "url", ["http://user:hunter2@example/0", "redis://:hunter2@host:notaport/0"]
)
def test_a_bad_url_is_a_configuration_error_that_does_not_quote_it(url: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        RedisStore(url)
    assert "hunter2" not in str(caught.value)
    assert caught.value.__cause__ is None


def test_foreign_data_under_a_key_fails_closed(store: RedisStore, raw: redis.Redis) -> None:
    key, tenant = _id("foreign"), _id("tenant")
    raw.set(store.keys.attempt(key), "not a state")
    for method, args in (
        ("totp_attempt", (key, 1, T0, POLICY)),
        ("throttle_charge", (key, T0, POLICY)),
        ("throttle_clear", (key,)),
        ("throttle_state", (key,)),
    ):
        with pytest.raises(StoreUnavailableError, match=method):
            getattr(store, method)(*args)
    # the accepted state the attempt script writes first was taken back
    assert raw.get(store.keys.attempt(key)) == "not a state"
    hashed = _id("hashed")
    raw.hset(store.keys.attempt(hashed), mapping={"f": "0", "s": "1"})
    with pytest.raises(StoreUnavailableError, match="totp_attempt"):
        store.totp_attempt(hashed, 2, T0, POLICY)
    assert raw.hgetall(store.keys.attempt(hashed)) == {"f": "0", "s": "1"}
    raw.set(store.keys.tenant(tenant), "{not json")
    with pytest.raises(StoreUnavailableError, match="get_tenant"):
        store.get_tenant(tenant)


def test_an_old_attempt_hash_is_ignored(store: RedisStore, raw: redis.Redis) -> None:
    """Versions before the one-string state kept a hash under ``attempt:``: never read."""
    key = _id("upgraded")
    old = f"{store.keys.prefix}attempt:{{{key}}}"
    raw.hset(old, mapping={"f": "5", "b": str(T0 + 3600), "s": "9"})
    assert store.throttle_state(key) == ThrottleState()
    assert store.totp_attempt(key, 9, T0, POLICY).outcome is AttemptOutcome.ACCEPTED
    assert raw.hgetall(old) == {"f": "5", "b": str(T0 + 3600), "s": "9"}


def test_refused_attempts_undo_the_optimistic_write(store: RedisStore, raw: redis.Redis) -> None:
    """The script writes the accepted state first; a refusal leaves the model's state."""
    key = _id("undo")
    name = store.keys.attempt(key)
    strict = ThrottlePolicy(free_failures=0, base_delay=60, max_delay=60, forget_after=600)
    assert store.totp_attempt(key, 7, T0, strict).outcome is AttemptOutcome.ACCEPTED
    replay = store.totp_attempt(key, 7, T0, strict)
    assert (replay.outcome, replay.failures, replay.retry_at) == (
        AttemptOutcome.REPLAYED,
        1,
        T0 + 60,
    )
    assert raw.get(name) == f"7 1 {T0 + 60:.17g}"
    raw.pexpire(name, 5000)
    throttled = store.totp_attempt(key, 8, T0 + 1, strict)
    assert (throttled.outcome, throttled.retry_at) == (AttemptOutcome.THROTTLED, T0 + 60)
    assert raw.get(name) == f"7 1 {T0 + 60:.17g}"
    assert 595_000 < raw.pttl(name) <= 600_000  # a throttled attempt still counts as one
    assert store.totp_attempt(key, 8, T0 + 60, strict).outcome is AttemptOutcome.ACCEPTED
    # A success keeps the counted failure (forgiven only at T0 + 60 + max_delay).
    assert raw.get(name) == f"8 1 {T0 + 60:.17g}"
    assert store.totp_attempt(key, 9, T0 + 120, strict).outcome is AttemptOutcome.ACCEPTED
    assert raw.get(name) == "9 0 0"


def test_a_first_attempt_before_time_zero_is_throttled_like_the_model(
    store: RedisStore, raw: redis.Redis
) -> None:
    """With no state, ``blocked_until`` is 0: the model refuses any earlier time, and so
    must the script's shortcut for a first attempt."""
    key = _id("early")
    expected = apply_attempt(ThrottleState(), 5, -1.0, POLICY)[1]
    assert store.totp_attempt(key, 5, -1.0, POLICY) == expected
    assert expected.outcome is AttemptOutcome.THROTTLED
    assert raw.exists(store.keys.attempt(key)) == 0


def test_clearing_nothing_writes_nothing(store: RedisStore, raw: redis.Redis) -> None:
    key = _id("clear")
    name = store.keys.attempt(key)
    store.throttle_clear(key)
    assert raw.exists(name) == 0
    store.throttle_charge(key, T0, POLICY)  # a failure with no step: clearing leaves nothing
    store.throttle_clear(key)
    assert raw.exists(name) == 0
    store.totp_attempt(key, 4, T0, POLICY)
    raw.pexpire(name, 50_000)
    store.throttle_clear(key)
    assert raw.get(name) == "4 0 0"
    assert 45_000 < raw.pttl(name) <= 50_000


def test_an_unreachable_cluster_is_unavailable_when_the_store_is_built() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(StoreUnavailableError) as caught:
        RedisStore(f"redis://:hunter2@127.0.0.1:{port}/0", cluster=True, timeout=0.2)
    assert "hunter2" not in str(caught.value)


# the direct path: packing, error replies, failures half-way ------------------------


class _Connection:
    """A connection double: records what is sent, answers from a script of replies."""

    def __init__(self, replies: list[object]) -> None:
        self.encoder = redis.Connection().encoder
        self.replies = replies
        self.sent: list[bytes] = []
        self.disconnected = False

    def send_packed_command(self, packed: list[bytes]) -> None:
        self.sent.extend(packed)

    def read_response(self) -> object:
        reply = self.replies.pop(0)
        if isinstance(reply, BaseException):
            raise reply
        return reply

    def disconnect(self) -> None:
        self.disconnected = True


class _Pool:
    def __init__(self, connection: _Connection) -> None:
        self.connection = connection
        self.released = 0

    def get_connection(self) -> _Connection:
        return self.connection

    def release(self, connection: _Connection) -> None:
        assert connection is self.connection
        self.released += 1


def test_an_error_reply_keeps_the_connection_in_step() -> None:
    """An error reply is a whole reply: the rest are read, then the first error raised."""
    connection = _Connection([redis.ResponseError("WRONGTYPE"), b"ok", b"late"])
    pool = _Pool(connection)
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        _on_one_connection(pool, [("HGET", "k", "f"), ("GET", "t")])
    assert connection.replies == [b"late"]  # both replies of this batch were read
    assert not connection.disconnected
    assert pool.released == 1


@pytest.mark.parametrize(
    "failure", [redis.TimeoutError("slow"), redis.ConnectionError("gone"), KeyboardInterrupt()]
)
def test_a_failure_half_way_closes_the_connection(failure: BaseException) -> None:
    """A reply may still be on its way: the connection must never serve another caller."""
    connection = _Connection([b"first", failure, b"second"])
    pool = _Pool(connection)
    with pytest.raises(type(failure)):
        _on_one_connection(pool, [("GET", "a"), ("GET", "b")])
    assert connection.disconnected
    assert pool.released == 1


class _AsyncConnection(_Connection):
    """The same double with redis.asyncio's coroutine methods."""

    async def send_packed_command(self, packed: list[bytes]) -> None:  # type: ignore[override]
        super().send_packed_command(packed)

    socket_timeout: float | None = None

    async def read_response(self, timeout: float | None = None) -> object:
        assert timeout == math.inf  # the batch's one deadline, not redis-py's per reply
        await asyncio.sleep(0)  # a real read yields to the loop: a cancellation lands here
        reply = self.replies[0] if self.replies else None
        if isinstance(reply, _Stuck):
            await asyncio.sleep(3600)
        return super().read_response()

    async def disconnect(self, nowait: bool = False) -> None:  # type: ignore[override]
        super().disconnect()


class _AsyncPool(_Pool):
    async def get_connection(self) -> _Connection:  # type: ignore[override]
        return self.connection

    async def release(self, connection: _Connection) -> None:  # type: ignore[override]
        super().release(connection)


def test_async_an_error_reply_keeps_the_connection_in_step() -> None:
    connection = _AsyncConnection([redis.ResponseError("WRONGTYPE"), b"ok", b"late"])
    pool = _AsyncPool(connection)
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        asyncio.run(_on_one_connection_async(pool, [("HGET", "k", "f"), ("GET", "t")]))
    assert connection.replies == [b"late"]
    assert not connection.disconnected
    assert pool.released == 1


@pytest.mark.parametrize("failure", [redis.TimeoutError("slow"), redis.ConnectionError("gone")])
def test_async_a_failure_half_way_closes_the_connection(failure: BaseException) -> None:
    connection = _AsyncConnection([b"first", failure, b"second"])
    pool = _AsyncPool(connection)
    with pytest.raises(type(failure)):
        asyncio.run(_on_one_connection_async(pool, [("GET", "a"), ("GET", "b")]))
    assert connection.disconnected
    assert pool.released == 1


class _Stuck:
    """A reply that never arrives (the double waits for it)."""


def test_async_replies_share_one_deadline_and_a_missed_one_closes_the_connection() -> None:
    """The first reply came, the second never does: the batch's deadline (the socket
    timeout) passes, the caller gets a TimeoutError, and the connection is closed."""
    connection = _AsyncConnection([b"first", _Stuck(), b"second"])
    connection.socket_timeout = 0.05
    pool = _AsyncPool(connection)
    with pytest.raises(TimeoutError):
        asyncio.run(_on_one_connection_async(pool, [("GET", "a"), ("GET", "b")]))
    assert connection.disconnected
    assert pool.released == 1


def test_async_a_cancelled_call_closes_the_connection() -> None:
    """Cancelled between two replies: the second may still arrive, so nobody else may
    read from that connection."""
    connection = _AsyncConnection([b"first", b"second"])
    pool = _AsyncPool(connection)

    async def cancel_half_way() -> None:
        task = asyncio.ensure_future(_on_one_connection_async(pool, [("GET", "a"), ("GET", "b")]))
        await asyncio.sleep(0)  # the task sent both and waits on the first read
        await asyncio.sleep(0)  # ... read the first, waits on the second
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_half_way())
    assert connection.disconnected
    assert pool.released == 1
    assert connection.replies == [b"second"]  # never read: the connection is gone


def test_async_single_commands_take_the_direct_path_only_on_a_client_the_store_built(
    prefix: str, raw: redis.Redis
) -> None:
    """As for the sync store: an error reply leaves the pooled connection usable, and a
    client passed in keeps redis-py's execute_command."""
    key = _id("adirect")
    raw.set(RedisKeys(prefix).grants(key), "not a hash")

    async def run() -> list[object]:
        async with AsyncRedisStore(REDIS_URL, prefix=prefix) as built:
            pool = built.client.connection_pool
            for _ in range(3):
                with pytest.raises(StoreUnavailableError, match="get_grant"):
                    await built.get_grant(key, "s1")
                attempt = await built.totp_attempt(_id("anext"), 1, T0, POLICY)
                assert attempt.outcome is AttemptOutcome.ACCEPTED
            # never closed, never a second one
            assert len(pool._available_connections) + len(pool._in_use_connections) == 1
        client = redis.asyncio.Redis.from_url(REDIS_URL)
        calls: list[object] = []
        original = client.execute_command

        async def counted(*args: object, **options: object) -> object:
            calls.append(args[0])
            return await original(*args, **options)

        client.execute_command = counted  # type: ignore[method-assign]
        passed = AsyncRedisStore(client, prefix=prefix)
        assert await passed.throttle_state(_id("apassed")) == ThrottleState()
        await client.aclose()
        return calls

    assert asyncio.run(run()) == ["GET"]


def test_async_store_built_from_a_url_works_from_one_event_loop_after_another(
    prefix: str,
) -> None:
    """``asyncio.run(store.check())`` at start-up, then the server's own loop: the
    connections of the first loop are dropped with it, the next loop gets its own."""
    store = AsyncRedisStore(REDIS_URL, prefix=prefix)
    key = _id("loops")
    asyncio.run(store.check())

    async def serve(step: int) -> tuple[Attempt, tuple[Any, ...]]:
        attempt = await store.totp_attempt(key, step, T0, POLICY)
        both = await store.batch([("throttle_state", (key,)), ("get_grant", (key, "s"))])
        return attempt, both

    accepted, (state, grant) = asyncio.run(serve(7))
    assert accepted.outcome is AttemptOutcome.ACCEPTED
    assert (state.last_step, grant) == (7, None)
    replayed, _ = asyncio.run(serve(7))  # a third loop, the same stored state
    assert replayed.outcome is AttemptOutcome.REPLAYED

    async def close() -> None:
        await store.check()
        await store.aclose()

    asyncio.run(close())


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts sockets in /proc")
def test_async_store_keeps_nothing_of_closed_event_loops(prefix: str) -> None:
    """Every ``asyncio.run`` the store is used on leaves nothing behind: once another
    loop uses the store, the closed loops are gone (collectable) and their connections
    closed, without a ResourceWarning; ``aclose`` on the last loop closes its own."""
    store = AsyncRedisStore(REDIS_URL, prefix=prefix)
    key = _id("loops")

    async def use(step: int) -> None:
        assert (await store.totp_attempt(key, step, T0, POLICY)).outcome is AttemptOutcome.ACCEPTED
        state, _ = await store.batch([("throttle_state", (key,)), ("get_grant", (key, "s"))])
        assert state.last_step == step  # one stored state, whichever loop asks

    assert_loops_left_behind_nothing(store, use, runs=20, held_sockets=1)


def test_async_store_given_a_client_of_another_loop_fails_closed(prefix: str) -> None:
    """A client passed in is the caller's: used from a loop its connections do not
    belong to, a call fails closed instead of raising redis.asyncio's RuntimeError."""
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    store = AsyncRedisStore(client, prefix=prefix)
    key = _id("given")
    asyncio.run(store.check())  # its connection now belongs to a closed loop

    async def serve() -> None:
        with pytest.raises(StoreUnavailableError, match="totp_attempt"):
            await store.totp_attempt(key, 7, T0, POLICY)
        await client.aclose()

    asyncio.run(serve())


names = st.sampled_from(["GET", "HGET", "EVALSHA", "SET", "hgetall"])
arguments = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8")),
    st.binary(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
)


@settings(max_examples=200)
@given(
    commands=st.lists(
        st.tuples(names, st.lists(arguments, max_size=4)).map(lambda c: (c[0], *c[1])),
        min_size=1,
        max_size=4,
    ),
    encoding=st.sampled_from(["utf-8", "utf-16", "latin-1"]),
)
def test_the_store_packs_exactly_what_redis_py_would_send(
    commands: list[tuple[object, ...]], encoding: str
) -> None:
    connection = redis.Connection(encoding=encoding, encoding_errors="replace")
    expected = b"".join(bytes(chunk) for chunk in connection.pack_commands(commands))
    assert b"".join(_packed(connection, commands)) == expected


def test_single_commands_take_the_direct_path_only_on_a_client_the_store_built(
    prefix: str, raw: redis.Redis
) -> None:
    """An error reply on the direct path leaves the pooled connection usable."""
    key = _id("direct")
    with RedisStore(REDIS_URL, prefix=prefix) as built:
        raw.set(built.keys.grants(key), "not a hash")
        pool = built.client.connection_pool
        for _ in range(3):
            with pytest.raises(StoreUnavailableError, match="get_grant"):
                built.get_grant(key, "s1")
            assert built.totp_attempt(_id("next"), 1, T0, POLICY).outcome is (
                AttemptOutcome.ACCEPTED
            )
        assert pool._created_connections == 1  # never closed, never a second one
    client = redis.Redis.from_url(REDIS_URL)
    calls: list[object] = []
    original = client.execute_command

    def counted(*args: object, **options: object) -> object:
        calls.append(args[0])
        return original(*args, **options)

    client.execute_command = counted  # type: ignore[method-assign]
    passed = RedisStore(client, prefix=prefix)
    assert passed.throttle_state(_id("passed")) == ThrottleState()
    assert calls == ["GET"]
    client.close()


# decoding: grants may be shared, tenants never ------------------------------------


def test_each_read_of_a_tenant_gets_its_own_attributes(store: RedisStore) -> None:
    tenant = _id("tenant")
    store.put_tenant(Tenant(tenant, {"feature_flags": {"a": True}, "names": ["x"]}))
    first, second = store.get_tenant(tenant), store.get_tenant(tenant)
    assert first is not None
    assert second is not None
    first.attributes["feature_flags"]["a"] = False
    first.attributes["names"].append("y")
    assert second.attributes == {"feature_flags": {"a": True}, "names": ["x"]}
    assert store.get_tenant(tenant) == Tenant(
        tenant, {"feature_flags": {"a": True}, "names": ["x"]}
    )


def test_grants_decode_right_beyond_the_memo(store: RedisStore) -> None:
    """More distinct grants than the memo holds: every read still answers its own."""
    user = _id("user")
    for index in range(redis_ops._GRANTS_MAX + 50):
        grant = Grant(user, f"s{index}", frozenset({"pwd"}), T0 + index)
        store.put_grant(grant, T0 + 10**6)
        assert store.get_grant(user, f"s{index}") == grant
        assert len(redis_ops._GRANTS) <= redis_ops._GRANTS_MAX
    later = Grant(user, "s0", frozenset({"pwd", "otp"}), T0 + 5)
    store.put_grant(later, T0 + 10**6)
    assert store.get_grant(user, "s0") == later


@pytest.mark.parametrize("text", [' {"a":1}', '{"a":1} ', '{"a":1}x', "", "[1,2]"])
def test_stored_json_is_read_as_json_loads_reads_it(text: str) -> None:
    try:
        expected: object = json.loads(text)
    except json.JSONDecodeError:
        with pytest.raises(json.JSONDecodeError):
            stored_json.loads(text)
    else:
        assert stored_json.loads(text) == expected


# Compare-and-set: tenant patches and credential versions ---------------------------


def _rounds_against(store: RedisStore, tenant: str, rivals: int) -> tuple[Any, int]:
    """Drive one patch_tenant of ``name`` by hand, letting a rival patch of another flag
    land before each of its first ``rivals`` compare-and-set rounds; returns what the
    patch answered and how many rounds it sent."""
    steps = store._ops.patch_tenant(tenant, {"name": "mine"}, {})
    op, rounds = next(steps), 0
    try:
        while True:
            if op.name == "patch_tenant" and op.script is not None:
                rounds += 1
                if rounds <= rivals:
                    store.patch_tenant(tenant, {}, {f"rival{rounds}": True})
            op = steps.send(store._run(op))
    except StopIteration as stop:
        return stop.value, rounds


def test_a_patch_that_loses_a_round_merges_into_what_won(store: RedisStore) -> None:
    tenant = _id("tenant")
    store.put_tenant(Tenant(tenant, {"name": "Acme", "feature_flags": {}}))
    (before, after), rounds = _rounds_against(store, tenant, rivals=2)
    assert rounds == 3  # two lost to the rivals, the third won
    flags = {"rival1": True, "rival2": True}
    assert before == Tenant(tenant, {"name": "Acme", "feature_flags": flags})
    assert after == Tenant(tenant, {"name": "mine", "feature_flags": flags})
    assert store.get_tenant(tenant) == after


def test_a_patch_that_keeps_losing_gives_up_without_writing(store: RedisStore) -> None:
    tenant = _id("tenant")
    store.put_tenant(Tenant(tenant, {"name": "Acme", "feature_flags": {}}))
    with pytest.raises(ConcurrentUpdateError):
        _rounds_against(store, tenant, rivals=redis_ops.PATCH_TRIES)
    stored = store.get_tenant(tenant)
    assert stored is not None
    assert stored.attributes["name"] == "Acme"
    assert len(stored.feature_flags) == redis_ops.PATCH_TRIES  # every rival's flag kept


def test_a_tenant_deleted_during_a_patch_is_not_recreated(
    store: RedisStore, raw: redis.Redis
) -> None:
    tenant = _id("tenant")
    store.put_tenant(Tenant(tenant, {"feature_flags": {}}))
    steps = store._ops.patch_tenant(tenant, {"name": "x"}, {})
    cas = steps.send(store._run(next(steps)))
    raw.delete(store.keys.tenant(tenant))
    with pytest.raises(StopIteration) as stop:
        steps.send(store._run(cas))
    assert stop.value.value is None
    assert store.get_tenant(tenant) is None


def test_credentials_stored_before_versions_read_as_version_0(
    store: RedisStore, raw: redis.Redis
) -> None:
    """A hash written by an earlier stepup (no "v" field) is version 0, and its first
    write or compare-and-set moves it on."""
    user = _id("user")
    record = {"user_id": user, "credential_id": "totp:x", "secret": "sealed", "confirmed": True}
    raw.hset(
        store.keys.credential(user),
        mapping={"record": json.dumps(record), "r:a": "0", "r:b": "1"},
    )
    stored = store.get_credential(user)
    assert stored == Credential(
        user, "totp:x", "sealed", confirmed=True, recovery_hashes=("a", "b")
    )
    assert store.replace_credential(replace(stored, secret="resealed"), 1) is False
    assert store.replace_credential(replace(stored, secret="resealed"), 0) is True
    assert store.consume_recovery_hash(user, "a") is True
    assert store.get_credential(user) == replace(
        stored, secret="resealed", recovery_hashes=("b",), version=2
    )
