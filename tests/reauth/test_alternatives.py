"""Which proofs satisfy a rule: alternatives, strongest available, passkeys in grants."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stepup.adapters.storage.memory import MemoryStore
from stepup.cli import main
from stepup.errors import ConfigurationError, MalformedInputError, StoreUnavailableError
from stepup.passkeys import Passkeys, RelyingParty
from stepup.policy import ACCEPT_TOKENS, CRITICAL, SENSITIVE, Policy, Rule, Sensitivity, strength
from stepup.reauth import (
    GRANT_METHODS,
    Allowed,
    AsyncReauth,
    Offer,
    Reauth,
    ReauthRequired,
    ReauthUnavailable,
)
from stepup.records import Credential, Passkey, Tenant
from stepup.subject import Identity, LoginMethod, Subject
from stepup.testing import SettableClock
from stepup.testing.webauthn import SoftAuthenticator

ALICE = Subject("alice", "s1")
CAROL = Subject("carol", "s9", Identity(LoginMethod.OIDC, "https://idp.example", "c", "corp"))
STRONGEST = Rule(
    Sensitivity.CRITICAL, lifetime=300, accept=(("primary",), ("primary", "otp"), ("phr",))
)
ORIGIN = "https://app.example.com"
RP = RelyingParty(id="example.com", name="Example", origins=(ORIGIN,))


class CountingStore(MemoryStore):
    """A memory store that notes every read the decision makes."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def list_passkeys(self, user_id: str) -> tuple[Passkey, ...]:
        self.calls.append("list_passkeys")
        return super().list_passkeys(user_id)

    def get_credential(self, user_id: str) -> Credential | None:
        self.calls.append("get_credential")
        return super().get_credential(user_id)


class BatchingStore(CountingStore):
    """A memory store with ``batch`` (as Redis has), answering the reads it lists."""

    batchable = frozenset({"get_tenant", "get_grant", "get_credential", "list_passkeys"})

    def batch(self, calls: Any) -> tuple[Any, ...]:
        self.calls.append("batch:" + ",".join(method for method, _ in calls))
        return tuple(getattr(MemoryStore, method)(self, *args) for method, args in calls)


class FailingPasskeys(MemoryStore):
    def list_passkeys(self, user_id: str) -> tuple[Passkey, ...]:
        raise ConnectionError("down")


def _store(store: MemoryStore | None = None) -> MemoryStore:
    store = store if store is not None else CountingStore()
    store.put_tenant(Tenant("t1", {"feature_flags": {"sensitive_actions_reauth": True}}))
    return store


def _policy(**rules: Rule) -> Policy:
    return Policy.default(environ={}).extend({k.replace("_", "."): v for k, v in rules.items()})


def _passkey(user_id: str = "alice", *, synced: bool = False, n: int = 1) -> Passkey:
    return Passkey(
        user_id=user_id,
        credential_id=f"cred-{user_id}-{n}",
        credential_data="AAAA",
        name=f"Key {n}",
        sign_count=0,
        backup_eligible=synced,
        backup_state=synced,
        user_verified=True,
        created_at=1.0,
        transports=(),
    )


def _totp(store: MemoryStore, user_id: str = "alice", *, confirmed: bool = True) -> None:
    store.put_credential(Credential(user_id, f"totp-{user_id}", "sealed", confirmed=confirmed))


def _reauth(store: MemoryStore, policy: Policy) -> tuple[Reauth, SettableClock]:
    clock = SettableClock()
    return Reauth(store, policy, clock=clock), clock


# defaults keep today's behaviour ----------------------------------------------------


def test_default_policy_asks_for_the_sign_in_method_and_reads_no_enrolment() -> None:
    store = _store()
    assert isinstance(store, CountingStore)
    store.add_passkey(_passkey(), 10)
    reauth, _ = _reauth(store, Policy.default(environ={}))
    decision = reauth.check(ALICE, "api_key.regenerate", "t1")
    assert isinstance(decision, ReauthRequired)
    assert decision.methods == ("pwd",)
    assert decision.alternatives == (("pwd",),)
    assert decision.offered == 0
    assert store.calls == []  # the hot path is unchanged: no passkey or TOTP read


def test_default_second_factor_rule_is_still_one_alternative() -> None:
    store = _store()
    reauth, _ = _reauth(store, _policy(vault_open=Rule(Sensitivity.SENSITIVE, second_factor=True)))
    decision = reauth.check(ALICE, "vault.open", "t1")
    assert isinstance(decision, ReauthRequired)
    assert decision.methods == ("pwd", "otp")
    assert decision.alternatives == (("pwd", "otp"),)
    offer = reauth.offer(ALICE, "vault.open")
    assert offer.needs_enrolment  # no TOTP yet: the page asks to enrol first, as before


# strongest available --------------------------------------------------------------


def test_a_user_with_a_passkey_is_offered_the_passkey_never_the_password() -> None:
    store = _store()
    store.add_passkey(_passkey(), 10)
    _totp(store)
    reauth, _ = _reauth(store, _policy(vault_open=STRONGEST))
    decision = reauth.check(ALICE, "vault.open", "t1")
    assert isinstance(decision, ReauthRequired)
    assert decision.alternatives == (("phr",), ("pwd", "otp"), ("pwd",))
    assert (decision.offered, decision.methods) == (0, ("phr",))
    # a password (even with TOTP) does not satisfy the rule for this user
    reauth.record(ALICE, ["pwd", "otp"])
    assert isinstance(reauth.check(ALICE, "vault.open", "t1"), ReauthRequired)
    reauth.record(ALICE, ["phr", "hwk", "user", "mfa"])
    assert isinstance(reauth.check(ALICE, "vault.open", "t1"), Allowed)


def test_a_user_without_a_passkey_gets_the_next_alternative_not_blocked() -> None:
    store = _store()
    _totp(store)
    reauth, _ = _reauth(store, _policy(vault_open=STRONGEST))
    decision = reauth.check(ALICE, "vault.open", "t1")
    assert isinstance(decision, ReauthRequired)
    assert (decision.offered, decision.methods) == (1, ("pwd", "otp"))
    reauth.record(ALICE, ["pwd"])
    assert isinstance(reauth.check(ALICE, "vault.open", "t1"), ReauthRequired)
    reauth.record(ALICE, ["pwd", "otp"])
    assert isinstance(reauth.check(ALICE, "vault.open", "t1"), Allowed)


def test_a_second_factor_is_asked_only_of_a_user_who_has_one() -> None:
    store = _store()
    _totp(store, confirmed=False)  # started, never confirmed: not a second factor
    reauth, _ = _reauth(store, _policy(vault_open=STRONGEST))
    decision = reauth.check(ALICE, "vault.open", "t1")
    assert isinstance(decision, ReauthRequired)
    assert (decision.offered, decision.methods) == (2, ("pwd",))
    assert reauth.offer(ALICE, "vault.open") == Offer(decision.alternatives, 2)
    reauth.record(ALICE, ["pwd"])
    assert isinstance(reauth.check(ALICE, "vault.open", "t1"), Allowed)


def test_a_stronger_proof_than_offered_satisfies_the_rule() -> None:
    store = _store()
    reauth, _ = _reauth(store, _policy(vault_open=STRONGEST))
    reauth.record(ALICE, ["pwd", "otp"])  # e.g. TOTP removed since: still stronger
    assert isinstance(reauth.check(ALICE, "vault.open", "t1"), Allowed)


def test_totp_alone_satisfies_a_rule_that_allows_it() -> None:
    store = _store()
    _totp(store)
    rule = Rule(Sensitivity.SENSITIVE, accept=(("otp",), ("primary",)))
    reauth, _ = _reauth(store, _policy(report_export=rule))
    decision = reauth.check(ALICE, "report.export", "t1")
    assert isinstance(decision, ReauthRequired)
    assert decision.methods == ("otp",)
    reauth.record(ALICE, ["otp"])
    assert isinstance(reauth.check(ALICE, "report.export", "t1"), Allowed)


def test_recovery_codes_never_satisfy_a_rule() -> None:
    with pytest.raises(ConfigurationError, match="recovery codes never"):
        Rule(Sensitivity.SENSITIVE, accept=(("recovery",),))
    with pytest.raises(ConfigurationError, match="recovery codes never"):
        Policy.default(environ={}).merge_mapping(
            {"actions": {"x": {"accept": [["primary", "recovery"]]}}}
        )
    reauth, _ = _reauth(_store(), _policy(vault_open=STRONGEST))
    with pytest.raises(MalformedInputError):
        reauth.record(ALICE, ["recovery"])
    assert "recovery" not in GRANT_METHODS
    assert "recovery" not in ACCEPT_TOKENS


def test_device_bound_alternative_is_not_offered_for_a_synced_passkey() -> None:
    store = _store()
    store.add_passkey(_passkey(synced=True), 10)
    rule = Rule(Sensitivity.CRITICAL, accept=(("hwk",), ("primary",)))
    reauth, _ = _reauth(store, _policy(vault_open=rule))
    decision = reauth.check(ALICE, "vault.open", "t1")
    assert isinstance(decision, ReauthRequired)
    assert decision.methods == ("pwd",)
    reauth.record(ALICE, ["phr", "swk"])  # a synced passkey is not the device-bound one
    decision = reauth.check(ALICE, "vault.open", "t1")
    assert isinstance(decision, Allowed) is False
    store.add_passkey(_passkey(n=2), 10)
    decision = reauth.check(ALICE, "vault.open", "t1")
    assert isinstance(decision, ReauthRequired)
    assert decision.methods == ("hwk",)


def test_primary_is_the_sessions_sign_in_method() -> None:
    store = _store()
    reauth, _ = _reauth(store, _policy(vault_open=STRONGEST))
    decision = reauth.check(CAROL, "vault.open", "t1")
    assert isinstance(decision, ReauthRequired)
    assert decision.alternatives == (("phr",), ("oidc", "otp"), ("oidc",))
    assert decision.methods == ("oidc",)
    assert decision.provider == "corp"


def test_policy_passkeys_puts_a_passkey_first_on_every_rule_without_accept() -> None:
    store = _store()
    store.add_passkey(_passkey(), 10)
    policy = Policy.default(environ={}).with_passkeys()
    reauth, _ = _reauth(store, policy)
    decision = reauth.check(ALICE, "api_key.regenerate", "t1")
    assert isinstance(decision, ReauthRequired)
    assert decision.alternatives == (("phr",), ("pwd",))
    assert decision.methods == ("phr",)
    reauth.record(ALICE, ["pwd"])
    assert isinstance(reauth.check(ALICE, "api_key.regenerate", "t1"), ReauthRequired)
    # and for Bob, who has no passkey, the password still does
    bob = Subject("bob", "s2")
    reauth.record(bob, ["pwd"])
    assert isinstance(reauth.check(bob, "api_key.regenerate", "t1"), Allowed)


def test_the_strongest_alternative_allows_without_reading_enrolment() -> None:
    store = _store()
    assert isinstance(store, CountingStore)
    reauth, _ = _reauth(store, _policy(vault_open=STRONGEST))
    reauth.record(ALICE, ["phr", "hwk"])
    store.calls.clear()
    assert isinstance(reauth.check(ALICE, "vault.open", "t1"), Allowed)
    assert store.calls == []


def test_an_expired_grant_is_not_fresh_for_any_alternative() -> None:
    store = _store()
    reauth, clock = _reauth(store, _policy(vault_open=STRONGEST))
    reauth.record(ALICE, ["pwd"])
    clock.advance(300)
    decision = reauth.check(ALICE, "vault.open", "t1")
    assert isinstance(decision, ReauthRequired)
    assert decision.last_reauth_at is not None


def test_a_grant_of_another_session_does_not_count() -> None:
    store = _store()
    reauth, _ = _reauth(store, _policy(vault_open=STRONGEST))
    reauth.record(Subject("alice", "other"), ["pwd"])
    assert isinstance(reauth.check(ALICE, "vault.open", "t1"), ReauthRequired)


def test_enrolment_read_failure_fails_closed() -> None:
    store = _store(FailingPasskeys())
    reauth, _ = _reauth(store, _policy(vault_open=STRONGEST))
    reauth.record(ALICE, ["pwd"])
    assert isinstance(reauth.check(ALICE, "vault.open", "t1"), ReauthUnavailable)
    with pytest.raises(StoreUnavailableError):
        reauth.offer(ALICE, "vault.open")


def test_enrolment_reads_are_batched_where_the_store_batches_them() -> None:
    store = _store(BatchingStore())
    assert isinstance(store, BatchingStore)
    reauth, _ = _reauth(store, _policy(vault_open=STRONGEST))
    store.calls.clear()
    decision = reauth.check(ALICE, "vault.open", "t1")
    assert isinstance(decision, ReauthRequired)
    assert "batch:list_passkeys,get_credential" in store.calls
    assert "list_passkeys" not in store.calls


def test_a_batch_without_list_passkeys_reads_them_one_by_one() -> None:
    class RedisLike(BatchingStore):
        batchable = frozenset({"get_tenant", "get_grant", "get_credential"})

    store = _store(RedisLike())
    assert isinstance(store, RedisLike)
    _totp(store)
    reauth, _ = _reauth(store, _policy(vault_open=STRONGEST))
    store.calls.clear()
    decision = reauth.check(ALICE, "vault.open", "t1")
    assert isinstance(decision, ReauthRequired)
    assert decision.methods == ("pwd", "otp")
    assert store.calls[-2:] == ["list_passkeys", "get_credential"]


def test_async_decides_the_same() -> None:
    class Async:
        def __init__(self, inner: MemoryStore) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> Any:
            method = getattr(self.inner, name)
            if not callable(method):  # data, such as the store's ``batchable``
                return method

            async def call(*args: Any) -> Any:
                return method(*args)

            return call

    store = _store()
    store.add_passkey(_passkey(), 10)
    policy = _policy(vault_open=STRONGEST)
    sync, _ = _reauth(store, policy)
    areauth = AsyncReauth(Async(store), policy, clock=SettableClock())

    async def both() -> tuple[Any, Any]:
        return await areauth.check(ALICE, "vault.open", "t1"), await areauth.offer(
            ALICE, "vault.open"
        )

    decision, offer = asyncio.run(both())
    assert decision == sync.check(ALICE, "vault.open", "t1")
    assert offer == sync.offer(ALICE, "vault.open") == Offer(decision.alternatives, 0)


def test_totp_users_from_a_configuration_file() -> None:
    store = _store()
    clock = SettableClock()
    reauth = Reauth(store, _policy(vault_open=STRONGEST), clock=clock, totp_users={"alice"})
    decision = reauth.check(ALICE, "vault.open", "t1")
    assert isinstance(decision, ReauthRequired)
    assert decision.methods == ("pwd", "otp")


# with real passkeys -----------------------------------------------------------------


def test_passkey_assertion_then_record_allows_and_removal_revokes() -> None:
    store = _store()
    clock = SettableClock()
    passkeys = Passkeys(store, RP, clock=clock)
    reauth = Reauth(store, _policy(vault_open=STRONGEST), clock=clock)
    key = SoftAuthenticator(origin=ORIGIN, counter=1)
    registered = passkeys.finish_registration(
        ALICE, key.create(passkeys.begin_registration(ALICE, "alice")), "Laptop"
    )
    assert registered
    decision = reauth.check(ALICE, "vault.open", "t1")
    assert isinstance(decision, ReauthRequired)
    assert decision.methods == ("phr",)
    options = passkeys.begin_authentication(ALICE)
    assert options is not None
    result = passkeys.finish_authentication(ALICE, key.get(options))
    assert result
    reauth.record(ALICE, result.methods)
    assert isinstance(reauth.check(ALICE, "vault.open", "t1"), Allowed)
    assert registered.passkey is not None
    assert passkeys.remove("alice", registered.passkey.credential_id, removed_by="alice")
    decision = reauth.check(ALICE, "vault.open", "t1")
    assert isinstance(decision, ReauthRequired)
    assert decision.methods == ("pwd",)  # the passkey is gone: the password, not blocked


# the rule and the policy ----------------------------------------------------------


def test_alternatives_are_ordered_strongest_first() -> None:
    assert STRONGEST.alternatives() == (("phr",), ("primary", "otp"), ("primary",))
    assert SENSITIVE.alternatives() == (("primary",),)
    assert CRITICAL.alternatives(passkeys=True) == (("phr",), ("primary",))
    assert strength(("hwk",)) > strength(("phr",)) > strength(("pwd", "otp"))
    assert strength(("pwd", "otp")) > strength(("otp",))


@pytest.mark.parametrize(
    ("accept", "message"),
    [
        ((), "at least one"),
        (((),), "must name"),
        ((("password",),), "not \\['password'\\]"),
        ("phr", "list of alternatives"),
        (("phr",), "must be a list"),
        ((("phr",), ("phr",)), "twice"),
    ],
)
def test_bad_accept_is_a_configuration_error(accept: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Rule(Sensitivity.SENSITIVE, accept=accept)


def test_accept_replaces_second_factor() -> None:
    with pytest.raises(ConfigurationError, match="not both"):
        Rule(Sensitivity.SENSITIVE, second_factor=True, accept=(("primary", "otp"),))


def test_toml_accept_and_passkeys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(
        "passkeys = true\n"
        '[actions."2fa.disable"]\nsecond_factor = true\n'
        '[actions."vault.open"]\nsensitivity = "critical"\n'
        'accept = [["primary"], ["phr"], ["primary", "otp"]]\n'
    )
    policy = Policy.default(environ={}).load_toml(path)
    assert policy.passkeys
    assert policy.rule_for("vault.open").accept == (("primary",), ("phr",), ("primary", "otp"))
    assert policy.alternatives_for(policy.rule_for("2fa.disable")) == (
        ("phr",),
        ("primary", "otp"),
    )
    assert main(["policy", "show", "--file", str(path), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    rows = {row["action"]: row for row in shown["actions"]}
    assert shown["passkeys"] is True
    assert rows["vault.open"]["alternatives"] == "passkey | sign-in method + otp | sign-in method"
    assert rows["user.update"]["alternatives"] == "passkey | sign-in method"
    assert main(["policy", "show", "--file", str(path)]) == 0
    assert "passkey | sign-in method + otp | sign-in method" in capsys.readouterr().out


def test_toml_bad_passkeys_value() -> None:
    with pytest.raises(ConfigurationError, match="passkeys must be true or false"):
        Policy.default(environ={}).merge_mapping({"passkeys": "yes"})


_TOKENS = st.sampled_from(sorted(ACCEPT_TOKENS))
_PASSKEY_TOKENS = frozenset({"phr", "hwk", "swk", "user"})
#: A passkey is asked for alone: an alternative naming one with another method is refused
#: by the policy (the pages could never satisfy it).
_ALTERNATIVE = st.frozensets(_TOKENS, min_size=1, max_size=3).filter(
    lambda a: a <= _PASSKEY_TOKENS or not a & _PASSKEY_TOKENS
)
_ALTERNATIVES = st.lists(_ALTERNATIVE, min_size=1, max_size=4, unique=True)


@settings(max_examples=60, deadline=None)
@given(
    alternatives=_ALTERNATIVES,
    has_passkey=st.booleans(),
    synced=st.booleans(),
    has_totp=st.booleans(),
)
def test_the_offered_alternative_is_the_strongest_the_user_has(
    alternatives: list[frozenset[str]], has_passkey: bool, synced: bool, has_totp: bool
) -> None:
    store = _store(MemoryStore())
    if has_passkey:
        store.add_passkey(_passkey(synced=synced), 10)
    if has_totp:
        _totp(store)
    rule = Rule(Sensitivity.SENSITIVE, accept=tuple(tuple(sorted(a)) for a in alternatives))
    reauth, _ = _reauth(store, _policy(vault_open=rule))
    decision = reauth.check(ALICE, "vault.open", "t1")
    assert isinstance(decision, ReauthRequired)
    provable = {"pwd", "oidc", "saml"} | ({"otp"} if has_totp else set())
    if has_passkey:
        provable |= {"phr", "user", "swk" if synced else "hwk"}
    usable = [i for i, a in enumerate(decision.alternatives) if provable.issuperset(a)]
    strengths = [strength(a) for a in decision.alternatives]
    assert strengths == sorted(strengths, reverse=True)
    assert decision.methods == decision.alternatives[decision.offered]
    if usable:
        assert decision.offered == usable[0]
        # a user with a passkey is never offered a weaker way the rule ranks below it
        if has_passkey and any("phr" in a and provable.issuperset(a) for a in alternatives):
            assert set(decision.methods) & {"phr", "hwk", "swk", "user"}
    else:
        assert decision.offered == len(decision.alternatives) - 1
        assert reauth.offer(ALICE, "vault.open").needs_enrolment


def test_the_sliding_window_slides_for_the_alternative_offered() -> None:
    """With passkeys on, a user without a passkey proves the password: each action the
    grant allows renews it, as it did before passkeys (and it never slides for a user
    who has a passkey and proved only the password)."""
    store = _store()
    rule = Rule(Sensitivity.SENSITIVE, lifetime=600)
    policy = _policy(report_export=rule).with_passkeys().with_sliding_window(3600)
    reauth, clock = _reauth(store, policy)
    reauth.record(ALICE, ["pwd"])
    clock.advance(500)
    assert isinstance(reauth.check(ALICE, "report.export", "t1"), Allowed)
    clock.advance(500)  # 1000 s after the proof, 500 s after the last action
    assert isinstance(reauth.check(ALICE, "report.export", "t1"), Allowed)
    store.add_passkey(_passkey(), 10)  # now she has a passkey: the password is not enough
    clock.advance(10)
    decision = reauth.check(ALICE, "report.export", "t1")
    assert isinstance(decision, ReauthRequired)
    assert decision.methods == ("phr",)
