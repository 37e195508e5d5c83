"""Transaction-bound grants under attack: canonicalisation, ids, and races on real stores.

A proof recorded for one target must never be spent on another (no two different
parameter sets share a digest), by another user or session (even one whose ids are
built to collide), or twice (exactly one of many concurrent checks wins, in every store,
sync and async).
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import unicodedata
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from enum import IntEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from markupsafe import Markup

from api import tokens_support
from stepup.adapters.idp.oidc import AccessTokenValidator
from stepup.adapters.storage.memory import MemoryStore
from stepup.adapters.storage.redis import AsyncRedisStore, RedisStore
from stepup.adapters.storage.sql import AsyncSQLStore, SQLStore
from stepup.errors import MalformedInputError
from stepup.integrations.bearer import BearerGuard
from stepup.integrations.http import HttpResponse, RequestInfo
from stepup.integrations.transaction import Transaction, note_transaction, pending_transaction
from stepup.policy import Policy, Rule, Sensitivity
from stepup.reauth import AsyncReauth, Reauth, ReauthUnavailable, UnavailableReason
from stepup.records import Tenant
from stepup.subject import Subject
from stepup.testing import SettableClock
from stepup.tokens import AccessToken
from stepup.transactions import (
    MAX_CANONICAL_BYTES,
    MAX_DEPTH,
    MAX_INT_BITS,
    transaction_digest,
)
from support import POSTGRES_URL, REDIS_URL, need, port_open

T0 = 1_700_000_000.0
ACTION = "workspace.delete"
RULES = {
    ACTION: Rule(Sensitivity.CRITICAL, lifetime=300.0, bind_transaction=True),
    "workspace.rename": Rule(Sensitivity.SENSITIVE),
}
PROD_EU = transaction_digest(ACTION, {"workspace": "prod-eu"})
THREADS = 12


# canonicalisation ------------------------------------------------------------------


def _typed(value: Any) -> Any:
    """What a JSON value is, with its type: 1, 1.0, True and "1" all differ, and so do
    -0.0 and 0.0 (their JSON texts differ)."""
    if value is None or isinstance(value, bool | str):
        return (type(value).__name__, value)
    if isinstance(value, int):
        return ("int", int(value))
    if isinstance(value, float):
        return ("float", value.hex())
    if isinstance(value, list | tuple):
        return ("list", tuple(_typed(v) for v in value))
    return ("map", frozenset((k, _typed(v)) for k, v in value.items()))


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
params = st.dictionaries(st.text(max_size=4), json_values, max_size=3)


@given(params, params)
def test_two_parameter_sets_share_a_digest_only_when_they_are_the_same(
    a: dict[str, Any], b: dict[str, Any]
) -> None:
    same = _typed(a) == _typed(b)
    assert (transaction_digest(ACTION, a) == transaction_digest(ACTION, b)) == same


@given(params, st.randoms(use_true_random=False))
def test_key_order_never_changes_the_digest(a: dict[str, Any], rnd: Any) -> None:
    items = list(a.items())
    rnd.shuffle(items)
    assert transaction_digest(ACTION, dict(items)) == transaction_digest(ACTION, a)
    assert transaction_digest(ACTION, MappingProxyType(dict(items))) == transaction_digest(
        ACTION, a
    )


def test_look_alike_values_are_different_targets() -> None:
    looks_like_one = ["1", 1, 1.0, True, "1.0", "true", [1], {"": 1}]
    zeros = [0, 0.0, -0.0, False, "0", None, "", []]
    for group in (looks_like_one, zeros):
        digests = {transaction_digest(ACTION, {"id": value}) for value in group}
        assert len(digests) == len(group)
    # the same visible text in two normal forms names two targets (two database keys)
    nfc = unicodedata.normalize("NFC", "café-prod")
    nfd = unicodedata.normalize("NFD", "café-prod")
    assert nfc != nfd
    assert transaction_digest(ACTION, {"w": nfc}) != transaction_digest(ACTION, {"w": nfd})
    assert transaction_digest(ACTION, {nfc: 1}) != transaction_digest(ACTION, {nfd: 1})
    # the action is part of what is hashed, and cannot be smuggled in through the params
    assert transaction_digest("a", {"x": 1}) != transaction_digest("b", {"x": 1})
    assert transaction_digest("a", {"action": "b"}) != transaction_digest("b", {"action": "a"})


class Level(IntEnum):
    HIGH = 3


class Sneaky(str):
    def __str__(self) -> str:
        return "prod-us"


def test_subclasses_are_hashed_as_the_value_json_carries() -> None:
    assert transaction_digest(ACTION, {"n": Level.HIGH}) == transaction_digest(ACTION, {"n": 3})
    assert transaction_digest(ACTION, {"workspace": Sneaky("prod-eu")}) == PROD_EU
    assert transaction_digest(ACTION, {Sneaky("workspace"): "prod-eu"}) == PROD_EU


class Repeating(Mapping[str, Any]):
    """A mapping whose items name one key twice (as a JSON object with duplicate keys
    parsed into a custom type could): which value would the digest be for?"""

    def __init__(self, *pairs: tuple[str, Any]) -> None:
        self.pairs = pairs

    def __getitem__(self, key: str) -> Any:
        return dict(self.pairs)[key]

    def __iter__(self) -> Iterator[str]:
        return iter(k for k, _ in self.pairs)

    def __len__(self) -> int:
        return len(self.pairs)

    def items(self) -> Any:
        return list(self.pairs)


@pytest.mark.parametrize(
    "bad",
    [
        {"w": float("nan")},
        {"w": float("inf")},
        {"w": -math.inf},
        {1: "a"},
        {("a",): "b"},
        {"w": b"prod-eu"},
        {"w": {1, 2}},
        {"w": object()},
        {"n": 10**5000},
        {"n": -(2 ** (MAX_INT_BITS + 1))},
        {"w": "x" * (MAX_CANONICAL_BYTES + 1)},
        {"w": "é" * (MAX_CANONICAL_BYTES // 3)},  # 6 ASCII bytes each once escaped
        {"w": list(range(MAX_CANONICAL_BYTES))},
        {f"k{i}": i for i in range(MAX_CANONICAL_BYTES // 4)},
        Repeating(("workspace", "prod-eu"), ("workspace", "prod-us")),
    ],
    ids=lambda value: type(value).__name__,
)
def test_bad_parameters_are_a_typed_error(bad: Any) -> None:
    with pytest.raises(MalformedInputError):
        transaction_digest(ACTION, bad)


def test_nesting_is_bounded_and_cycles_end() -> None:
    deep: Any = "x"
    for _ in range(MAX_DEPTH - 1):
        deep = [deep]
    transaction_digest(ACTION, {"d": deep})  # the params, then MAX_DEPTH levels below
    with pytest.raises(MalformedInputError, match="nested"):
        transaction_digest(ACTION, {"d": [deep]})
    cycle: dict[str, Any] = {}
    cycle["self"] = cycle
    with pytest.raises(MalformedInputError, match="nested"):
        transaction_digest(ACTION, cycle)


@pytest.mark.parametrize("action", ["", "x" * 201, None, 5, b"workspace.delete"])
def test_the_action_must_be_a_short_name(action: Any) -> None:
    with pytest.raises(MalformedInputError):
        transaction_digest(action, {"w": 1})


def test_the_largest_allowed_values_still_hash() -> None:
    n = 2**MAX_INT_BITS - 1
    assert transaction_digest(ACTION, {"n": n}) != transaction_digest(ACTION, {"n": n - 1})
    assert transaction_digest(ACTION, {"w": "x" * (MAX_CANONICAL_BYTES - 100)})


# who may spend a proof ----------------------------------------------------------------


def _reauth(store: Any, clock: SettableClock) -> Reauth:
    store.put_tenant(Tenant("t", {"feature_flags": {"sensitive_actions_reauth": True}}))
    return Reauth(store, Policy(RULES), clock=clock)


@pytest.mark.parametrize(
    ("owner", "other"),
    [
        (Subject("a:b", "c"), Subject("a", "b:c")),
        (Subject("a", "b:c"), Subject("a:b", "c")),
        (Subject("alice", "s1"), Subject("alice", "s1:" + PROD_EU)),
        (Subject('a", "b', "c"), Subject("a", 'b", "c')),
    ],
)
def test_ids_built_to_collide_neither_spend_nor_overwrite_a_proof(
    owner: Subject, other: Subject
) -> None:
    clock = SettableClock(T0)
    reauth = _reauth(MemoryStore(), clock)
    reauth.record(owner, ["pwd"], transaction=PROD_EU)
    reauth.record(other, ["pwd"], transaction=transaction_digest(ACTION, {"workspace": "x"}))
    assert not reauth.check(other, ACTION, "t", transaction=PROD_EU).ok
    assert reauth.check(owner, ACTION, "t", transaction=PROD_EU).ok


def test_an_ordinary_grant_never_satisfies_a_bound_rule() -> None:
    clock = SettableClock(T0)
    reauth = _reauth(MemoryStore(), clock)
    alice = Subject("alice", "s1")
    reauth.record(alice, ["pwd", "otp"])  # a fresh, strong, unbound re-authentication
    assert reauth.check(alice, "workspace.rename", "t").ok
    assert not reauth.check(alice, ACTION, "t", transaction=PROD_EU).ok


# exactly one concurrent spend wins, in every store ------------------------------------


def need_postgres() -> None:
    need(port_open("127.0.0.1", 5432), "PostgreSQL on 127.0.0.1:5432")


def need_redis() -> None:
    need(port_open("127.0.0.1", 6379), "Redis on 127.0.0.1:6379")


def _prefix() -> str:
    return f"t{uuid.uuid4().hex[:12]}_"


@pytest.fixture(params=["memory", "sqlite", "postgres", "redis"])
def sync_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    kind = request.param
    if kind == "memory":
        yield MemoryStore()
    elif kind == "sqlite":
        with SQLStore.sqlite(tmp_path / "tx.sqlite3") as store:
            yield store
    elif kind == "postgres":
        need_postgres()
        store = SQLStore(POSTGRES_URL, prefix=_prefix())
        store.create_schema()
        try:
            yield store
        finally:
            store.drop_schema()
            store.close()
    else:
        need_redis()
        with RedisStore(REDIS_URL, prefix=_prefix()) as store:
            yield store


@pytest.fixture(params=["memory", "sqlite", "postgres", "redis"])
async def async_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    kind = request.param
    if kind == "memory":
        yield MemoryStore()
    elif kind == "sqlite":
        async with AsyncSQLStore.sqlite(tmp_path / "tx.sqlite3") as store:
            await store.create_schema()
            yield store
    elif kind == "postgres":
        need_postgres()
        url = POSTGRES_URL.replace("+psycopg", "+asyncpg", 1)
        store = AsyncSQLStore(url, prefix=_prefix())
        await store.create_schema()
        try:
            yield store
        finally:
            await store.drop_schema()
            await store.aclose()
    else:
        need_redis()
        async with AsyncRedisStore(REDIS_URL, prefix=_prefix()) as store:
            yield store


def _race(calls: list[Callable[[], bool]]) -> list[bool]:
    barrier = threading.Barrier(len(calls))
    results: list[bool | None] = [None] * len(calls)

    def worker(i: int) -> None:
        barrier.wait()
        results[i] = calls[i]()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(r is not None for r in results)
    return [bool(r) for r in results]


def test_concurrent_spends_of_one_proof_exactly_one_wins(sync_store: Any) -> None:
    clock = SettableClock(T0)
    reauth = _reauth(sync_store, clock)
    prod_us = transaction_digest(ACTION, {"workspace": "prod-us"})

    def spend(who: Subject, digest: str = PROD_EU) -> Callable[[], bool]:
        return lambda: reauth.check(who, ACTION, "t", transaction=digest).ok

    for round_ in range(3):
        alice = Subject("alice", f"s{round_}")
        reauth.record(alice, ["pwd"], transaction=PROD_EU)
        # the same session spending it on another target, another session, another user
        strangers = [
            spend(alice, prod_us),
            spend(Subject("alice", "other")),
            spend(Subject("mallory", alice.session_id)),
        ]
        mine = [spend(alice)] * THREADS
        results = _race(mine + strangers)
        assert results[: len(mine)].count(True) == 1
        assert not any(results[len(mine) :])
        assert not reauth.check(alice, ACTION, "t", transaction=PROD_EU).ok  # spent


async def test_async_concurrent_spends_of_one_proof_exactly_one_wins(async_store: Any) -> None:
    clock = SettableClock(T0)
    await _put_tenant(async_store)
    reauth = AsyncReauth(async_store, Policy(RULES), clock=clock)
    for round_ in range(3):
        alice = Subject("alice", f"s{round_}")
        await reauth.record(alice, ["pwd"], transaction=PROD_EU)
        decisions = await asyncio.gather(
            *(reauth.check(alice, ACTION, "t", transaction=PROD_EU) for _ in range(THREADS)),
            reauth.check(Subject("alice", "other"), ACTION, "t", transaction=PROD_EU),
        )
        assert [d.ok for d in decisions[:THREADS]].count(True) == 1
        assert not decisions[THREADS].ok
        assert not (await reauth.check(alice, ACTION, "t", transaction=PROD_EU)).ok


async def _put_tenant(store: Any) -> None:
    result = store.put_tenant(Tenant("t", {"feature_flags": {"sensitive_actions_reauth": True}}))
    if asyncio.iscoroutine(result):
        await result


# a bearer token never satisfies a bound rule ----------------------------------------------


def test_a_fresh_token_cannot_confirm_a_transaction() -> None:
    clock = SettableClock(T0)
    reauth = Reauth(MemoryStore(), Policy(RULES), clock=clock)
    token = AccessToken(
        issuer="https://idp",
        subject="alice",
        audience=("api",),
        expires_at=T0 + 300,
        auth_time=T0,
        acr="urn:mfa",
        amr=("pwd", "otp", "phr", "hwk"),
    )
    for _ in range(2):  # not once, not twice: a token would allow every target
        decision = reauth.check_token(token, ACTION)
        assert isinstance(decision, ReauthUnavailable)
        assert decision.reason is UnavailableReason.TRANSACTION_BOUND
    assert reauth.check_token(token, "workspace.rename").ok  # unbound rules as before


@pytest.mark.parametrize("asynchronous", [False, True])
async def test_a_bearer_client_gets_a_403_for_a_bound_rule(asynchronous: bool) -> None:
    clock = SettableClock(tokens_support.T0)
    policy = tokens_support.POLICY.extend({ACTION: RULES[ACTION]})
    validator = AccessTokenValidator(
        issuer=tokens_support.ISSUER,
        audience=tokens_support.AUDIENCE,
        fetch_jwks=lambda: {"keys": [tokens_support.KEY.as_dict(private=False)]},
        clock=clock,
    )
    reauth_class = AsyncReauth if asynchronous else Reauth
    protect = BearerGuard(reauth_class(MemoryStore(), policy, clock=clock), validator)
    request = RequestInfo("POST", "/api", authorization=f"Bearer {tokens_support.sign()}")
    answer = (
        await protect.acheck(request, ACTION) if asynchronous else protect.check(request, ACTION)
    )
    assert isinstance(answer, HttpResponse)
    assert answer.status == 403
    body = json.loads(answer.body)
    assert (body["error"], body["reason"]) == ("reauth_unreachable", "transaction_bound")
    # A token's client has no session to sign in to another way: the title says so.
    assert body["title"] == (
        "No access token can confirm this action. Confirm it in the app, signed in."
    )
    german = RequestInfo(
        "POST",
        "/api",
        authorization=f"Bearer {tokens_support.sign()}",
        accept_language="de",
    )
    answer = await protect.acheck(german, ACTION) if asynchronous else protect.check(german, ACTION)
    assert isinstance(answer, HttpResponse)
    assert json.loads(answer.body)["title"].startswith("Kein Zugriffstoken")


# what the page says is being confirmed ----------------------------------------------------


def test_the_confirmation_is_plain_text_filled_once() -> None:
    hostile = "%(workspace)s<script>alert(1)</script>"
    target = Transaction({"workspace": hostile}, Markup("<b>Delete</b> %(workspace)s"))
    assert type(target.description) is str  # markup from the app is text, escaped later
    session: dict[str, Any] = {}
    note_transaction(session, "s1", ACTION, target, target.digest(ACTION), T0)
    pending = pending_transaction(session, "s1", ACTION, target.digest(ACTION), T0 + 1)
    assert pending is not None
    shown = pending.confirmation.translate(None)
    assert shown == f"<b>Delete</b> {hostile}"  # the value is not formatted again
    # another session, another action, a stale or unknown digest: nothing to show
    digest = target.digest(ACTION)
    assert pending_transaction(session, "s2", ACTION, digest, T0 + 1) is None
    assert pending_transaction(session, "s1", "other.action", digest, T0 + 1) is None
    assert pending_transaction(session, "s1", ACTION, digest, T0 + 900) is None
    assert pending_transaction(session, "s1", ACTION, PROD_EU, T0 + 1) is None
    assert pending_transaction(session, "s1", ACTION, digest.upper(), T0 + 1) is None
