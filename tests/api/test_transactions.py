"""Grants bound to one transaction: single-use, for one action on one target."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stepup.adapters.storage.memory import MemoryStore
from stepup.errors import MalformedInputError
from stepup.passkeys import Passkeys, RelyingParty
from stepup.policy import Policy, Rule, Sensitivity
from stepup.reauth import AsyncReauth, Reauth, ReauthRequired
from stepup.records import Tenant
from stepup.subject import Subject
from stepup.testing import SettableClock
from stepup.testing.webauthn import SoftAuthenticator
from stepup.transactions import is_transaction_digest, transaction_digest

T0 = 1_700_000_000.0
ALICE = Subject("alice", "s1")
RULES = {
    "workspace.delete": Rule(Sensitivity.CRITICAL, lifetime=300.0, bind_transaction=True),
    "workspace.rename": Rule(Sensitivity.SENSITIVE),
}
PROD_EU = transaction_digest("workspace.delete", {"workspace": "prod-eu"})
PROD_US = transaction_digest("workspace.delete", {"workspace": "prod-us"})


def reauth_for(store: MemoryStore, clock: SettableClock) -> Reauth:
    store.put_tenant(Tenant("t", {"feature_flags": {"sensitive_actions_reauth": True}}))
    return Reauth(store, Policy(RULES), clock=clock)


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(T0)


def test_the_digest_is_canonical() -> None:
    a = transaction_digest("x", {"b": 1, "a": [1, "é", {"z": None, "y": True}]})
    b = transaction_digest("x", {"a": [1, "é", {"y": True, "z": None}], "b": 1})
    assert a == b
    assert is_transaction_digest(a)
    assert transaction_digest("y", {"b": 1, "a": [1, "é", {"z": None, "y": True}]}) != a
    for bad in ({"x": float("nan")}, {1: "a"}, {"x": object()}, {"x": {1, 2}}):
        with pytest.raises(MalformedInputError):
            transaction_digest("x", bad)  # type: ignore[arg-type]


@given(
    st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=4),
    st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=4),
)
def test_different_parameters_never_share_a_digest(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert (transaction_digest("act", a) == transaction_digest("act", b)) == (a == b)


_TENANTS = st.text(st.characters(codec="utf-8", exclude_categories=("Cc",)), min_size=1, max_size=8)


@given(_TENANTS, _TENANTS)
def test_the_same_target_in_two_tenants_is_two_targets(a: str, b: str) -> None:
    params = {"workspace": "prod-eu"}
    one = transaction_digest("act", params, tenant_id=a)
    assert is_transaction_digest(one)
    assert (one == transaction_digest("act", params, tenant_id=b)) == (a == b)
    assert one != transaction_digest("act", params)  # no tenant named: another digest


def test_a_malformed_tenant_is_refused() -> None:
    for bad in ("", "a\x00b", "x" * 1025, 7, "\ud800"):
        with pytest.raises(MalformedInputError, match="tenant_id"):
            transaction_digest("act", {}, tenant_id=bad)  # type: ignore[arg-type]


def test_a_proof_for_one_tenant_is_not_spent_in_another(clock: SettableClock) -> None:
    store = MemoryStore()
    reauth = reauth_for(store, clock)
    store.put_tenant(Tenant("u", {"feature_flags": {"sensitive_actions_reauth": True}}))
    in_t = transaction_digest("workspace.delete", {"workspace": "prod-eu"}, tenant_id="t")
    in_u = transaction_digest("workspace.delete", {"workspace": "prod-eu"}, tenant_id="u")
    reauth.record(ALICE, ["pwd"], transaction=in_t)
    elsewhere = reauth.check(ALICE, "workspace.delete", "u", transaction=in_u)
    assert isinstance(elsewhere, ReauthRequired)
    assert reauth.check(ALICE, "workspace.delete", "t", transaction=in_t).ok  # not used up


def test_a_proof_counts_once_and_only_for_its_target(clock: SettableClock) -> None:
    reauth = reauth_for(MemoryStore(), clock)
    first = reauth.check(ALICE, "workspace.delete", "t", transaction=PROD_EU)
    assert isinstance(first, ReauthRequired)
    assert first.transaction == PROD_EU  # the page can show what is being confirmed
    reauth.record(ALICE, ["pwd"], transaction=PROD_EU)
    # the session's grant does not cover another target of the bound rule
    assert not reauth.check(ALICE, "workspace.delete", "t", transaction=PROD_US).ok
    assert reauth.check(ALICE, "workspace.delete", "t", transaction=PROD_EU).ok
    assert not reauth.check(ALICE, "workspace.delete", "t", transaction=PROD_EU).ok  # spent
    # the person confirmed one thing: the proof does not refresh the session's grant
    assert not reauth.check(ALICE, "workspace.rename", "t").ok


def test_another_session_cannot_spend_it(clock: SettableClock) -> None:
    reauth = reauth_for(MemoryStore(), clock)
    reauth.record(ALICE, ["pwd"], transaction=PROD_EU)
    assert not reauth.check(Subject("alice", "s2"), "workspace.delete", "t", transaction=PROD_EU).ok
    assert not reauth.check(
        Subject("mallory", "s1"), "workspace.delete", "t", transaction=PROD_EU
    ).ok
    assert reauth.check(ALICE, "workspace.delete", "t", transaction=PROD_EU).ok


def test_the_rule_lifetime_still_applies(clock: SettableClock) -> None:
    reauth = reauth_for(MemoryStore(), clock)
    reauth.record(ALICE, ["pwd"], transaction=PROD_EU)
    clock.advance(300)
    decision = reauth.check(ALICE, "workspace.delete", "t", transaction=PROD_EU)
    assert isinstance(decision, ReauthRequired)
    assert decision.stale


def test_a_bound_rule_needs_the_digest(clock: SettableClock) -> None:
    reauth = reauth_for(MemoryStore(), clock)
    with pytest.raises(MalformedInputError, match="bound to one transaction"):
        reauth.check(ALICE, "workspace.delete", "t")
    with pytest.raises(MalformedInputError):
        reauth.record(ALICE, ["pwd"], transaction="prod-eu")


class RacingStore(MemoryStore):
    """Runs a competing check between the first check's read and its use: the store's
    take is the only place a proof is spent, so exactly one of them may win."""

    def __init__(self) -> None:
        super().__init__()
        self.compete: Any = None
        self.results: list[bool] = []

    def take_challenge(self, challenge_id: str, now: float) -> Any:
        if self.compete is not None:
            compete, self.compete = self.compete, None
            self.results.append(compete().ok)
        return super().take_challenge(challenge_id, now)


def test_two_concurrent_checks_spend_it_once(clock: SettableClock) -> None:
    store = RacingStore()
    reauth = reauth_for(store, clock)
    reauth.record(ALICE, ["pwd"], transaction=PROD_EU)
    store.compete = lambda: reauth.check(ALICE, "workspace.delete", "t", transaction=PROD_EU)
    mine = reauth.check(ALICE, "workspace.delete", "t", transaction=PROD_EU).ok
    assert sorted([mine, *store.results]) == [False, True]


async def test_async_reauth_binds_the_same_way(clock: SettableClock) -> None:
    store = MemoryStore()
    store.put_tenant(Tenant("t", {"feature_flags": {"sensitive_actions_reauth": True}}))
    reauth = AsyncReauth(store, Policy(RULES), clock=clock)
    await reauth.record(ALICE, ["pwd"], transaction=PROD_EU)
    assert not (await reauth.check(ALICE, "workspace.delete", "t", transaction=PROD_US)).ok
    assert (await reauth.require(ALICE, "workspace.delete", "t", transaction=PROD_EU)).ok
    assert not (await reauth.check(ALICE, "workspace.delete", "t", transaction=PROD_EU)).ok


def test_policy_files_may_bind_a_rule() -> None:
    policy = Policy.default().merge_mapping(
        {"actions": {"workspace.delete": {"sensitivity": "critical", "bind_transaction": True}}}
    )
    assert policy.rule_for("workspace.delete").bind_transaction


# strongest available, bound ----------------------------------------------------------

ORIGIN = "https://app.example.com"
RP = RelyingParty(id="example.com", name="Example", origins=(ORIGIN,))
BOUND_PASSKEYS = Policy(RULES, passkeys=True)  # a passkey first, else the sign-in method


def _bound(store: MemoryStore, clock: SettableClock) -> tuple[Reauth, Passkeys, SoftAuthenticator]:
    store.put_tenant(Tenant("t", {"feature_flags": {"sensitive_actions_reauth": True}}))
    passkeys = Passkeys(store, RP, clock=clock)
    key = SoftAuthenticator(origin=ORIGIN, counter=1)
    return Reauth(store, BOUND_PASSKEYS, clock=clock), passkeys, key


def test_a_bound_decision_offers_the_passkey_and_it_signs_the_digest(
    clock: SettableClock,
) -> None:
    store = MemoryStore()
    reauth, passkeys, key = _bound(store, clock)
    assert passkeys.finish_registration(
        ALICE, key.create(passkeys.begin_registration(ALICE, "alice")), "Laptop"
    )
    decision = reauth.check(ALICE, "workspace.delete", "t", transaction=PROD_EU)
    assert isinstance(decision, ReauthRequired)
    assert (decision.methods, decision.transaction) == (("phr",), PROD_EU)
    assert reauth.offer(ALICE, "workspace.delete").methods == ("phr",)
    # The page asks the authenticator to sign the digest (part of the challenge).
    options = passkeys.begin_authentication(ALICE, transaction=PROD_EU)
    assert options is not None
    assertion = key.get(options)
    # An assertion over prod-eu is no proof for prod-us...
    assert not passkeys.finish_authentication(ALICE, assertion, transaction=PROD_US)
    options = passkeys.begin_authentication(ALICE, transaction=PROD_EU)
    assert options is not None
    result = passkeys.finish_authentication(ALICE, key.get(options), transaction=PROD_EU)
    assert result
    assert result.transaction == PROD_EU
    # ...and the proof recorded must be for the digest it signed.
    with pytest.raises(MalformedInputError, match="signed another transaction"):
        reauth.record(ALICE, result.methods, transaction=PROD_US, signed=result.transaction)
    assert not reauth.check(ALICE, "workspace.delete", "t", transaction=PROD_US).ok
    reauth.record(ALICE, result.methods, transaction=PROD_EU, signed=result.transaction)
    assert reauth.check(ALICE, "workspace.delete", "t", transaction=PROD_EU).ok


def test_a_bound_password_proof_does_not_count_for_a_user_with_a_passkey(
    clock: SettableClock,
) -> None:
    """Strongest available holds for bound rules too: no weaker way than the one offered."""
    store = MemoryStore()
    reauth, passkeys, key = _bound(store, clock)
    assert passkeys.finish_registration(
        ALICE, key.create(passkeys.begin_registration(ALICE, "alice")), "Laptop"
    )
    reauth.record(ALICE, ["pwd"], transaction=PROD_EU)
    decision = reauth.check(ALICE, "workspace.delete", "t", transaction=PROD_EU)
    assert isinstance(decision, ReauthRequired)
    assert (decision.methods, decision.transaction) == (("phr",), PROD_EU)


def test_a_user_without_a_passkey_is_not_blocked_on_a_bound_rule(clock: SettableClock) -> None:
    reauth, _, _ = _bound(MemoryStore(), clock)
    decision = reauth.check(ALICE, "workspace.delete", "t", transaction=PROD_EU)
    assert isinstance(decision, ReauthRequired)
    assert (decision.methods, decision.enrol, decision.offered) == (("pwd",), (), 1)
    assert decision.alternatives == (("phr",), ("pwd",))
    reauth.record(ALICE, ["pwd"], transaction=PROD_EU)
    assert reauth.check(ALICE, "workspace.delete", "t", transaction=PROD_EU).ok


async def test_async_bound_decisions_offer_the_same(clock: SettableClock) -> None:
    store = MemoryStore()
    store.put_tenant(Tenant("t", {"feature_flags": {"sensitive_actions_reauth": True}}))
    sync = Reauth(store, BOUND_PASSKEYS, clock=clock)
    asynchronous = AsyncReauth(store, BOUND_PASSKEYS, clock=clock)
    for has_passkey in (False, True):
        if has_passkey:
            key = SoftAuthenticator(origin=ORIGIN, counter=1)
            passkeys = Passkeys(store, RP, clock=clock)
            assert passkeys.finish_registration(
                ALICE, key.create(passkeys.begin_registration(ALICE, "alice")), "Key"
            )
        a = sync.check(ALICE, "workspace.delete", "t", transaction=PROD_EU)
        b = await asynchronous.check(ALICE, "workspace.delete", "t", transaction=PROD_EU)
        assert a == b


def test_the_longest_session_id_confirms_a_transaction(clock: SettableClock) -> None:
    """The session's transaction epoch is a grant under its id with a suffix: a session
    id as long as a subject may have still records and spends its proof."""
    from stepup.ids import MAX_ID_LENGTH

    store = MemoryStore()
    reauth = reauth_for(store, clock)
    longest = Subject("alice", "s" * MAX_ID_LENGTH)
    reauth.record(longest, ["pwd"], transaction=PROD_EU)
    assert reauth.check(longest, "workspace.delete", "t", transaction=PROD_EU).ok
    assert not reauth.check(longest, "workspace.delete", "t", transaction=PROD_EU).ok
