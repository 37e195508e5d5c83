"""The fast paths added for the benchmarks' targets decide exactly as the slow ones.

The SQL store's one-statement claim accepts a later step without the locked
read-decide-write transaction. It must accept exactly when
:func:`stepup.throttle.apply_attempt` would, including on a row that is past its
``forget_after`` (forgotten, so any step is new) and never on a blocked row.

A re-authentication check on a store with ``batch`` (Redis) reads the tenant and the
grant in one round trip; its decisions must be the memory store's, sync and async, on
one server and on a cluster (the two keys live in different slots), and it must deny
when Redis is unreachable. Sync and async checks drive the same flow (``run`` /
``run_async``): they must decide alike, and a failed store read must deny.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stepup.adapters.storage.memory import MemoryStore
from stepup.adapters.storage.redis import AsyncRedisStore, RedisStore
from stepup.adapters.storage.sql import SQLStore
from stepup.adapters.storage.sql_schema import SCHEMA_VERSION
from stepup.errors import StoreUnavailableError
from stepup.policy import CRITICAL, SENSITIVE, Policy, Rule, Sensitivity
from stepup.reauth import Allowed, AllowReason, AsyncReauth, Reauth, ReauthUnavailable
from stepup.records import AttemptOutcome, Tenant, ThrottleState
from stepup.subject import Identity, LoginMethod, Subject
from stepup.testing import SettableClock
from stepup.throttle import ThrottlePolicy, apply_attempt, keep_until
from stepup.twofactor import Channel
from storage.redis_cluster import free_port, redis_cluster
from support import POSTGRES_URL, REDIS_URL, need, port_open

T0 = 1_700_000_000.0
#: Short enough that hypothesis' time jumps cross every boundary: free failures,
#: blocks, the cap, and forgetting.
POLICY = ThrottlePolicy(free_failures=1, base_delay=10.0, max_delay=40.0, forget_after=100.0)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SQLStore]:
    if request.param == "sqlite":
        folder: Path = tmp_path_factory.mktemp("claim")
        sql = SQLStore.sqlite(folder / "claim.sqlite3")
    else:
        need(port_open("127.0.0.1", 5432), "PostgreSQL at 127.0.0.1:5432")
        sql = SQLStore(POSTGRES_URL, prefix=f"claim_{uuid.uuid4().hex[:8]}_")
        sql.create_schema()
    yield sql
    if request.param == "postgresql":
        sql.drop_schema()
    sql.close()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    moves=st.lists(
        st.tuples(st.one_of(st.none(), st.integers(0, 12)), st.floats(0, 150)),
        min_size=1,
        max_size=25,
    )
)
def test_sql_attempts_follow_the_reference_model(
    store: SQLStore, moves: list[tuple[int | None, float]]
) -> None:
    key, now, model = f"k-{uuid.uuid4().hex}", T0, ThrottleState()
    expires = now
    for step, elapsed in moves:
        now += elapsed
        current = model if now < expires else ThrottleState()  # forgotten after forget_after
        model, expected = apply_attempt(current, step, now, POLICY)
        expires = keep_until(model, now, POLICY)  # every attempt, even a throttled one, writes
        actual = store.totp_attempt(key, step, now, POLICY)
        assert actual.outcome is expected.outcome
        assert actual.failures == expected.failures
        assert actual.retry_at == expected.retry_at
        assert store.throttle_state(key) == model  # the state written, to the last bit


def test_sql_failures_past_62_doublings_follow_the_reference_model(store: SQLStore) -> None:
    """A wrong code is one statement with the throttle arithmetic in SQL: its delay cap
    for more than 62 doublings, and each failure exactly as :func:`apply_attempt`."""
    policy = ThrottlePolicy(free_failures=0, base_delay=2.0**-70, max_delay=1.0, forget_after=2.0)
    key, now, model = f"k-{uuid.uuid4().hex}", T0, ThrottleState()
    for _ in range(policy.most_failures + 3):
        now = max(now, model.blocked_until)  # never blocked: every failure is counted
        model, expected = apply_attempt(model, None, now, policy)
        actual = store.totp_attempt(key, None, now, policy)
        assert (actual.outcome, actual.failures) == (expected.outcome, expected.failures)
        assert actual.retry_at == expected.retry_at
        assert store.throttle_state(key) == model
    assert model.failures == policy.most_failures > 62


def test_a_forgotten_row_accepts_an_older_step(store: SQLStore) -> None:
    key = f"k-{uuid.uuid4().hex}"
    assert store.totp_attempt(key, 50, T0, POLICY).outcome is AttemptOutcome.ACCEPTED
    later = T0 + POLICY.forget_after + 1
    assert store.totp_attempt(key, 10, later, POLICY).outcome is AttemptOutcome.ACCEPTED
    assert store.throttle_state(key).last_step == 10


def test_a_blocked_row_is_never_claimed(store: SQLStore) -> None:
    key = f"k-{uuid.uuid4().hex}"
    assert store.totp_attempt(key, 5, T0, POLICY).outcome is AttemptOutcome.ACCEPTED
    for _ in range(2):
        store.totp_attempt(key, None, T0, POLICY)  # the second failure blocks for 10 s
    blocked = store.totp_attempt(key, 6, T0 + 1, POLICY)
    assert blocked.outcome is AttemptOutcome.THROTTLED
    assert store.throttle_state(key).last_step == 5
    assert store.totp_attempt(key, 6, T0 + 10, POLICY).outcome is AttemptOutcome.ACCEPTED


# Re-authentication on Redis: the tenant and the grant in one round trip ----------------

SUBJECT = Subject("alice", "s1")
FLAGGED = {"feature_flags": {"sensitive_actions_reauth": True}}


def _scenarios(reauth: Any, store: Any, clock: SettableClock) -> Iterator[object]:
    """The decisions a re-auth check can give, in order: flag off, no grant, fresh
    grant, expired grant, another session, an ``always`` rule with the flag off."""
    yield reauth.check(SUBJECT, "api_key.read", "off")
    yield reauth.check(SUBJECT, "api_key.read", "on")
    reauth.record(SUBJECT, ["pwd"])
    yield reauth.check(SUBJECT, "api_key.read", "on")
    yield reauth.check(Subject("alice", "s2"), "api_key.read", "on")
    yield reauth.check(SUBJECT, "always.action", "off")
    clock.advance(6 * 3600 + 1)
    yield reauth.check(SUBJECT, "api_key.read", "on")
    yield reauth.check(SUBJECT, "missing-tenant.ok", "nobody")


POLICY_ALWAYS = Policy.default(environ={}).extend(
    {"always.action": Rule(Sensitivity.SENSITIVE, always=True), "missing-tenant.ok": SENSITIVE}
)


def _decisions(store: Any) -> list[object]:
    store.put_tenant(Tenant("off", {}))
    store.put_tenant(Tenant("on", FLAGGED))
    clock = SettableClock()
    reauth = Reauth(store, POLICY_ALWAYS, clock=clock)
    return list(_scenarios(reauth, store, clock))


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    need(port_open("127.0.0.1", 6379), "Redis at 127.0.0.1:6379")
    prefix = f"stepup-test-{uuid.uuid4().hex[:12]}:"
    yield prefix
    with redis.Redis.from_url(REDIS_URL) as client:
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)


@pytest.mark.redis
def test_reauth_on_redis_decides_as_on_memory(redis_prefix: str) -> None:
    expected = _decisions(MemoryStore())
    kinds = [type(d).__name__ for d in expected]
    assert kinds == [
        "Allowed",
        "ReauthRequired",
        "Allowed",
        "ReauthRequired",
        "Allowed",
        "ReauthRequired",
        "Allowed",
    ]
    with RedisStore(REDIS_URL, prefix=redis_prefix) as store:
        assert _decisions(store) == expected


@pytest.mark.redis
def test_async_reauth_on_redis_decides_as_on_memory(redis_prefix: str) -> None:
    expected = _decisions(MemoryStore())

    async def decide() -> list[object]:
        store = AsyncRedisStore(REDIS_URL, prefix=redis_prefix)
        try:
            await store.put_tenant(Tenant("off", {}))
            await store.put_tenant(Tenant("on", FLAGGED))
            clock = SettableClock()
            reauth = AsyncReauth(store, POLICY_ALWAYS, clock=clock)
            found = [
                await reauth.check(SUBJECT, "api_key.read", "off"),
                await reauth.check(SUBJECT, "api_key.read", "on"),
            ]
            await reauth.record(SUBJECT, ["pwd"])
            found += [
                await reauth.check(SUBJECT, "api_key.read", "on"),
                await reauth.check(Subject("alice", "s2"), "api_key.read", "on"),
                await reauth.check(SUBJECT, "always.action", "off"),
            ]
            clock.advance(6 * 3600 + 1)
            found += [
                await reauth.check(SUBJECT, "api_key.read", "on"),
                await reauth.check(SUBJECT, "missing-tenant.ok", "nobody"),
            ]
            return found
        finally:
            await store.aclose()

    assert asyncio.run(decide()) == expected


@pytest.mark.redis
def test_batch_answers_reads_only(redis_prefix: str) -> None:
    with RedisStore(REDIS_URL, prefix=redis_prefix) as store:
        store.put_tenant(Tenant("on", FLAGGED))
        assert store.batch([("get_tenant", ("on",)), ("get_grant", ("u", "s"))]) == (
            Tenant("on", FLAGGED),
            None,
        )
        with pytest.raises(ValueError, match="cannot be batched"):
            store.batch([("put_tenant", (Tenant("x", {}),))])
        assert store.get_tenant("x") is None


def test_an_unreachable_redis_denies_the_check() -> None:
    port = free_port()
    with RedisStore(f"redis://127.0.0.1:{port}/0", timeout=0.5) as store:
        decision = Reauth(store).check(SUBJECT, "api_key.read", "on")
    assert isinstance(decision, ReauthUnavailable)


@pytest.mark.redis
@pytest.mark.cluster
def test_batch_on_a_cluster_reads_across_slots(tmp_path: Path) -> None:
    with redis_cluster(tmp_path) as nodes:
        url = nodes[0].url
        with RedisStore(url, prefix="batch:", cluster=True) as store:
            store.put_tenant(Tenant("on", FLAGGED))
            reauth = Reauth(store)
            reauth.record(SUBJECT, ["pwd"])
            decision = reauth.check(SUBJECT, "api_key.read", "on")
            assert isinstance(decision, Allowed)
            assert decision.reason is AllowReason.FRESH_GRANT

        async def on_async() -> object:
            store = AsyncRedisStore(url, prefix="batch:", cluster=True)
            try:
                return await AsyncReauth(store).check(SUBJECT, "api_key.read", "on")
            finally:
                await store.aclose()

        decision = asyncio.run(on_async())
        assert isinstance(decision, Allowed)
        assert decision.reason is AllowReason.FRESH_GRANT


# Re-authentication on a sync store: check() calls the store directly ----------------

LOGINS = [
    Identity(LoginMethod.PASSWORD),
    Identity(LoginMethod.OIDC, "https://idp.example", "sub-1", "corp"),
    Identity(LoginMethod.SAML, "https://saml.example", "dave@corp", "corp-saml"),
]
RICH_POLICY = Policy.default(environ={}).extend(
    {
        "vault.open": Rule(Sensitivity.CRITICAL, lifetime=300.0, second_factor=True),
        "always.action": Rule(Sensitivity.SENSITIVE, always=True),
        "keys.api": Rule(Sensitivity.SENSITIVE, api_keys=True, methods=frozenset({"pwd"})),
    },
    patterns=[("billing.*", CRITICAL)],
)
ACTIONS = [
    "api_key.read",
    "workspace.delete",
    "vault.open",
    "always.action",
    "keys.api",
    "billing.refund",
]


@settings(max_examples=60, deadline=None)
@given(
    identity=st.sampled_from(LOGINS),
    channel=st.sampled_from(list(Channel)),
    action=st.sampled_from(ACTIONS),
    tenant=st.sampled_from(["on", "off", "absent"]),
    production=st.booleans(),
    grants=st.lists(st.sets(st.sampled_from(["pwd", "otp", "oidc", "saml"]), min_size=1)),
    ages=st.lists(st.floats(-10, 8 * 3600), min_size=1, max_size=4),
)
def test_sync_and_async_checks_decide_alike(
    identity: Identity,
    channel: Channel,
    action: str,
    tenant: str,
    production: bool,
    grants: list[set[str]],
    ages: list[float],
) -> None:
    store = MemoryStore()
    store.put_tenant(Tenant("on", FLAGGED))
    store.put_tenant(Tenant("off", {"feature_flags": {"sensitive_actions_reauth": False}}))
    clock = SettableClock()
    sync = Reauth(store, RICH_POLICY, clock=clock)
    on_async = AsyncReauth(store, RICH_POLICY, clock=clock)
    subject = Subject("u1", "s1", identity, channel)
    context = {"workspace_type": "full" if production else "trial"}
    for methods in grants:
        sync.record(subject, methods)
    for age in ages:
        clock.advance(age)
        decided = sync.check(subject, action, tenant, context)
        on_loop = asyncio.run(on_async.check(subject, action, tenant, context))
        assert on_loop == decided
        assert type(on_loop) is type(decided)


class TenantlessStore(MemoryStore):
    """A real memory store whose tenant reads fail, as a dropped connection would, alone
    or in a batch."""

    def get_tenant(self, tenant_id: str) -> Tenant | None:
        raise ConnectionError("lost")

    def batch(self, calls: Sequence[tuple[str, tuple[Any, ...]]]) -> tuple[Any, ...]:
        if any(method == "get_tenant" for method, _ in calls):
            raise ConnectionError("lost")
        return super().batch(calls)


def test_a_failed_tenant_read_denies_the_check() -> None:
    decision = Reauth(TenantlessStore()).check(SUBJECT, "api_key.read", "on")
    assert isinstance(decision, ReauthUnavailable)
    on_loop = asyncio.run(AsyncReauth(TenantlessStore()).check(SUBJECT, "api_key.read", "on"))
    assert isinstance(on_loop, ReauthUnavailable)


@pytest.mark.redis
def test_a_failed_batch_leaves_no_reply_behind(redis_prefix: str) -> None:
    """An error reply half-way through a batch fails the batch, and the rest of its
    replies are still read: the next caller on the pool reads its own answers, never
    the rest of the failed batch."""
    with RedisStore(REDIS_URL, prefix=redis_prefix) as store:
        store.put_tenant(Tenant("on", FLAGGED))
        Reauth(store).record(SUBJECT, ["pwd"])
        grants_key = store.keys.grants("broken")
        store.client.set(grants_key, "not a hash")  # HGET on it answers WRONGTYPE
        with pytest.raises(StoreUnavailableError):
            store.batch([("get_grant", ("broken", "s1")), ("get_tenant", ("on",))])
        for _ in range(3):
            tenant, grant = store.batch([("get_tenant", ("on",)), ("get_grant", ("alice", "s1"))])
            assert tenant == Tenant("on", FLAGGED)
            assert grant is not None
            assert grant.user_id == "alice"
            assert store.get_tenant("missing") is None


# Schema version 2: the attempts table's expires_at index is gone -------------------


def _indexes(store: SQLStore) -> set[str]:
    return {
        index["name"] or ""
        for index in sqlalchemy.inspect(store.engine).get_indexes(f"{store.prefix}attempts")
    }


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_version_1_tables_are_upgraded_and_keep_their_data(backend: str, tmp_path: Path) -> None:
    if backend == "sqlite":
        store = SQLStore.sqlite(tmp_path / "v1.sqlite3")
    else:
        need(port_open("127.0.0.1", 5432), "PostgreSQL at 127.0.0.1:5432")
        store = SQLStore(POSTGRES_URL, prefix=f"v1_{uuid.uuid4().hex[:8]}_")
        store.create_schema()
    try:
        assert f"ix_{store.prefix}attempts_expires_at" not in _indexes(store)
        # Make it look like version 1: the index and the version number.
        with store.engine.begin() as conn:
            conn.exec_driver_sql(
                f"CREATE INDEX ix_{store.prefix}attempts_expires_at"
                f" ON {store.prefix}attempts (expires_at)"
            )
            conn.exec_driver_sql(f"UPDATE {store.prefix}schema_version SET version = 1")  # noqa: S608 (a validated prefix)
        assert store.totp_attempt("k", 7, T0, POLICY).outcome is AttemptOutcome.ACCEPTED
        assert store.create_schema() == SCHEMA_VERSION
        assert f"ix_{store.prefix}attempts_expires_at" not in _indexes(store)
        assert store.throttle_state("k").last_step == 7
        assert store.totp_attempt("k", 7, T0, POLICY).outcome is AttemptOutcome.REPLAYED
        assert store.prune(T0 + POLICY.forget_after + 1) >= 1
        assert store.throttle_state("k") == ThrottleState()
    finally:
        if backend == "postgresql":
            store.drop_schema()
        store.close()
