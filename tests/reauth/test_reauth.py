"""Re-authentication decisions and grants, on a settable clock."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from stepup.adapters.storage.memory import MemoryStore
from stepup.errors import MalformedInputError, StoreUnavailableError, UnknownActionError
from stepup.events import EventBus, ReauthSucceeded, StepupEvent
from stepup.policy import CRITICAL, SENSITIVE, Policy, Rule, Sensitivity
from stepup.reauth import (
    Allowed,
    AllowReason,
    AsyncReauth,
    Reauth,
    ReauthRequired,
    ReauthRequiredError,
    ReauthUnavailable,
    ReauthUnavailableError,
    required_methods,
)
from stepup.records import Tenant
from stepup.subject import Identity, LoginMethod, Subject
from stepup.testing import SettableClock
from stepup.twofactor import Channel

SIX_HOURS = 6 * 3600
ALICE = Subject("alice", "s1")
ALICE_OTHER_SESSION = Subject("alice", "s2")
BOB = Subject("bob", "s1")
OIDC_USER = Subject(
    "carol", "s9", Identity(LoginMethod.OIDC, "https://idp.example", "sub-1", "corp")
)
SAML_USER = Subject(
    "dave", "s7", Identity(LoginMethod.SAML, "https://saml.example", "dave@corp", "corp-saml")
)


def make(
    flag: bool = True, policy: Policy | None = None
) -> tuple[Reauth, MemoryStore, SettableClock, list[StepupEvent]]:
    store = MemoryStore()
    store.put_tenant(
        Tenant("t1", {"name": "Acme", "feature_flags": {"sensitive_actions_reauth": flag}})
    )
    clock = SettableClock()
    seen: list[StepupEvent] = []
    reauth = Reauth(
        store, policy or Policy.default(environ={}), clock=clock, events=EventBus(seen.append)
    )
    return reauth, store, clock, seen


def test_flag_off_allows_every_action() -> None:
    reauth, *_ = make(flag=False)
    decision = reauth.check(ALICE, "api_key.regenerate", "t1")
    assert isinstance(decision, Allowed)
    assert decision.reason is AllowReason.FLAG_OFF
    assert decision.ok


def test_unknown_tenant_counts_as_flag_off() -> None:
    reauth, *_ = make()
    assert reauth.check(ALICE, "api_key.read", "nobody").reason is AllowReason.FLAG_OFF  # type: ignore[union-attr]


@pytest.mark.parametrize("value", ["true", 1, "yes", None])
def test_only_a_literal_true_turns_the_flag_on(value: Any) -> None:
    reauth, store, *_ = make()
    store.put_tenant(Tenant("t1", {"feature_flags": {"sensitive_actions_reauth": value}}))
    assert reauth.check(ALICE, "api_key.read", "t1").ok


def test_flag_on_without_grant_requires_password() -> None:
    reauth, *_ = make()
    decision = reauth.check(ALICE, "api_key.regenerate", "t1")
    assert isinstance(decision, ReauthRequired)
    assert not decision.ok
    assert decision.methods == ("pwd",)
    assert decision.lifetime == SIX_HOURS
    assert decision.last_reauth_at is None
    assert decision.sensitivity is Sensitivity.SENSITIVE


def test_unknown_action_raises_even_with_flag_off() -> None:
    reauth, *_ = make(flag=False)
    with pytest.raises(UnknownActionError):
        reauth.check(ALICE, "api_key.regenrate", "t1")


def test_non_production_workspace_delete_is_not_sensitive() -> None:
    reauth, *_ = make()
    decision = reauth.check(ALICE, "workspace.delete", "t1", {"workspace_type": "sandbox"})
    assert decision.reason is AllowReason.NOT_SENSITIVE  # type: ignore[union-attr]
    assert not reauth.check(ALICE, "workspace.delete", "t1", {"workspace_type": "full"}).ok


def test_grant_lasts_its_lifetime_and_not_a_second_more() -> None:
    reauth, _, clock, events = make()
    grant = reauth.record(ALICE, ["pwd"])
    assert isinstance(events[-1], ReauthSucceeded)
    decision = reauth.check(ALICE, "api_key.regenerate", "t1")
    assert isinstance(decision, Allowed)
    assert decision.reason is AllowReason.FRESH_GRANT
    assert decision.valid_until == grant.authenticated_at + SIX_HOURS
    clock.advance(SIX_HOURS - 1)
    assert reauth.check(ALICE, "api_key.regenerate", "t1").ok
    clock.advance(1)
    stale = reauth.check(ALICE, "api_key.regenerate", "t1")
    assert isinstance(stale, ReauthRequired)
    assert stale.last_reauth_at == grant.authenticated_at


def test_lifetime_override_from_the_environment() -> None:
    reauth, _, clock, _ = make(
        policy=Policy.default(environ={"SENSITIVE_ACTION_AUTH_LIFETIME": "30m"})
    )
    reauth.record(ALICE, ["pwd"])
    clock.advance(29 * 60)
    assert reauth.check(ALICE, "user.update", "t1").ok
    clock.advance(60)
    assert not reauth.check(ALICE, "user.update", "t1").ok


def test_one_grant_serves_each_rule_by_its_own_lifetime() -> None:
    policy = Policy.default(environ={}).extend({"org.delete": CRITICAL})
    reauth, _, clock, _ = make(policy=policy)
    reauth.record(ALICE, ["pwd"])
    clock.advance(2 * 3600)
    assert reauth.check(ALICE, "user.update", "t1").ok
    critical = reauth.check(ALICE, "org.delete", "t1")
    assert isinstance(critical, ReauthRequired)
    assert critical.lifetime == 300


def test_grants_are_bound_to_session_and_user() -> None:
    reauth, *_ = make()
    reauth.record(ALICE, ["pwd"])
    assert reauth.check(ALICE, "ssh_key.add", "t1").ok
    assert not reauth.check(ALICE_OTHER_SESSION, "ssh_key.add", "t1").ok
    assert not reauth.check(BOB, "ssh_key.add", "t1").ok


def test_sign_out_revokes_the_session_grant_only() -> None:
    reauth, *_ = make()
    reauth.record(ALICE, ["pwd"])
    reauth.record(ALICE_OTHER_SESSION, ["pwd"])
    assert reauth.sign_out(ALICE) == 1
    assert not reauth.check(ALICE, "ssh_key.add", "t1").ok
    assert reauth.check(ALICE_OTHER_SESSION, "ssh_key.add", "t1").ok


def test_password_change_revokes_every_session() -> None:
    reauth, *_ = make()
    reauth.record(ALICE, ["pwd"])
    reauth.record(ALICE_OTHER_SESSION, ["pwd"])
    reauth.record(BOB, ["pwd"])
    assert reauth.password_changed("alice") == 2
    assert not reauth.check(ALICE, "ssh_key.add", "t1").ok
    assert not reauth.check(ALICE_OTHER_SESSION, "ssh_key.add", "t1").ok
    assert reauth.check(BOB, "ssh_key.add", "t1").ok


@pytest.mark.parametrize(
    ("subject", "methods", "provider"),
    [(ALICE, ("pwd",), ""), (OIDC_USER, ("oidc",), "corp"), (SAML_USER, ("saml",), "corp-saml")],
)
def test_method_follows_how_the_user_signed_in(
    subject: Subject, methods: tuple[str, ...], provider: str
) -> None:
    reauth, *_ = make()
    decision = reauth.check(subject, "api_key.read", "t1")
    assert isinstance(decision, ReauthRequired)
    assert (decision.methods, decision.provider) == (methods, provider)


def test_sso_user_is_not_satisfied_by_a_password_grant() -> None:
    reauth, *_ = make()
    reauth.record(OIDC_USER, ["pwd"])
    assert not reauth.check(OIDC_USER, "api_key.read", "t1").ok
    reauth.record(OIDC_USER, ["oidc"])
    assert reauth.check(OIDC_USER, "api_key.read", "t1").ok


def test_second_factor_rule_needs_both() -> None:
    policy = Policy.default(environ={}).extend(
        {"vault.open": Rule(Sensitivity.CRITICAL, second_factor=True)}
    )
    reauth, *_ = make(policy=policy)
    decision = reauth.check(ALICE, "vault.open", "t1")
    assert isinstance(decision, ReauthRequired)
    assert decision.methods == ("pwd", "otp")
    reauth.record(ALICE, ["pwd"])
    assert not reauth.check(ALICE, "vault.open", "t1").ok
    reauth.record(ALICE, ["pwd", "otp"])
    assert reauth.check(ALICE, "vault.open", "t1").ok


@pytest.mark.parametrize("methods", [["recovery"], ["pwd", "recovery"], [], ["sms"], ["PWD"]])
def test_recovery_codes_and_unknown_methods_never_make_a_grant(methods: list[str]) -> None:
    reauth, store, *_ = make()
    with pytest.raises(MalformedInputError):
        reauth.record(ALICE, methods)
    assert store.get_grant("alice", "s1") is None


@pytest.mark.parametrize("channel", [Channel.API_KEY, Channel.MESSAGE_INJECTION])
def test_api_key_channels_follow_the_rule(channel: Channel) -> None:
    policy = Policy.default(environ={}).extend(
        {"ssh_key.add": Rule(Sensitivity.SENSITIVE, api_keys=True)}
    )
    reauth, *_ = make(policy=policy)
    robot = Subject("alice", "key-1", channel=channel)
    exempt = reauth.check(robot, "api_key.read", "t1")
    assert exempt.reason is AllowReason.EXEMPT_CHANNEL  # type: ignore[union-attr]
    assert not reauth.check(robot, "ssh_key.add", "t1").ok


def test_bearer_api_channel_is_not_exempt() -> None:
    reauth, *_ = make()
    assert not reauth.check(Subject("alice", "tok", channel=Channel.API), "api_key.read", "t1").ok


def test_always_rule_applies_with_flag_off() -> None:
    policy = Policy.default(environ={}).extend(
        {"2fa.disable": Rule(Sensitivity.SENSITIVE, always=True)}
    )
    reauth, *_ = make(flag=False, policy=policy)
    assert not reauth.check(ALICE, "2fa.disable", "t1").ok
    assert reauth.check(ALICE, "api_key.read", "t1").ok


def test_grant_from_the_future_is_not_trusted() -> None:
    reauth, _, clock, _ = make()
    reauth.record(ALICE, ["pwd"])
    clock.advance(-60)
    assert not reauth.check(ALICE, "ssh_key.add", "t1").ok


def test_require_raises_typed_errors() -> None:
    reauth, *_ = make()
    with pytest.raises(ReauthRequiredError) as caught:
        reauth.require(ALICE, "ssh_key.add", "t1")
    assert caught.value.decision.methods == ("pwd",)
    reauth.record(ALICE, ["pwd"])
    assert reauth.require(ALICE, "ssh_key.add", "t1").reason is AllowReason.FRESH_GRANT


class BrokenStore(MemoryStore):
    def get_grant(self, user_id: str, session_id: str) -> None:
        raise ConnectionError("connection refused to redis://secret@host")


def test_store_failure_denies_with_unavailable() -> None:
    store = BrokenStore()
    store.put_tenant(Tenant("t1", {"feature_flags": {"sensitive_actions_reauth": True}}))
    reauth = Reauth(store, Policy.default(environ={}), clock=SettableClock())
    decision = reauth.check(ALICE, "ssh_key.add", "t1")
    assert isinstance(decision, ReauthUnavailable)
    assert not decision.ok
    with pytest.raises(ReauthUnavailableError) as caught:
        reauth.require(ALICE, "ssh_key.add", "t1")
    assert isinstance(caught.value, StoreUnavailableError)
    assert "secret" not in str(caught.value)


def test_required_methods_uses_rule_methods_when_login_method_is_not_allowed() -> None:
    rule = Rule(Sensitivity.SENSITIVE, methods=frozenset({"pwd"}))
    assert required_methods(OIDC_USER, rule) == ("pwd",)
    assert required_methods(ALICE, SENSITIVE) == ("pwd",)


def test_async_twin_decides_the_same() -> None:
    store = MemoryStore()
    store.put_tenant(Tenant("t1", {"feature_flags": {"sensitive_actions_reauth": True}}))
    clock = SettableClock()
    reauth = AsyncReauth(store, Policy.default(environ={}), clock=clock)

    async def journey() -> list[bool]:
        first = await reauth.check(ALICE, "ssh_key.add", "t1")
        await reauth.record(ALICE, ["pwd"])
        second = await reauth.check(ALICE, "ssh_key.add", "t1")
        clock.advance(SIX_HOURS)
        third = await reauth.check(ALICE, "ssh_key.add", "t1")
        return [first.ok, second.ok, third.ok]

    assert asyncio.run(journey()) == [False, True, False]


def test_second_step_soon_after_the_first_adds_to_the_grant() -> None:
    policy = Policy.default(environ={}).extend(
        {"vault.open": Rule(Sensitivity.CRITICAL, second_factor=True)}
    )
    reauth, _, clock, _ = make(policy=policy)
    first = reauth.record(OIDC_USER, ["oidc"])
    clock.advance(30)
    merged = reauth.record(OIDC_USER, ["otp"])
    assert merged.methods == {"oidc", "otp"}
    assert merged.authenticated_at == first.authenticated_at
    assert reauth.check(OIDC_USER, "vault.open", "t1").ok


def test_a_late_step_replaces_the_grant_instead_of_merging() -> None:
    reauth, _, clock, _ = make()
    reauth.record(ALICE, ["pwd", "otp"])
    clock.advance(3600)
    fresh = reauth.record(ALICE, ["pwd"])
    assert fresh.methods == {"pwd"}
    assert fresh.authenticated_at == clock()


class _AwaitingProxy:
    """An async store that answers through ``__getattr__`` (as tracing or test proxies
    do): its class has no ``get_grant`` to inspect."""

    def __init__(self, inner: MemoryStore) -> None:
        self.inner = inner
        self.awaited = 0

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)

        async def call(*args: Any) -> Any:
            self.awaited += 1
            await asyncio.sleep(0)
            return method(*args)

        return call


@pytest.mark.parametrize("proxied", [False, True], ids=["sync store", "async proxy"])
def test_async_reauth_drives_sync_stores_and_async_proxies_alike(proxied: bool) -> None:
    inner = MemoryStore()
    inner.put_tenant(Tenant("t1", {"feature_flags": {"sensitive_actions_reauth": True}}))
    store: Any = _AwaitingProxy(inner) if proxied else inner
    clock = SettableClock()
    reauth = AsyncReauth(store, Policy.default(environ={}), clock=clock)

    async def journey() -> list[object]:
        denied = await reauth.check(ALICE, "ssh_key.add", "t1")
        await reauth.record(ALICE, ["pwd"])
        allowed = await reauth.check(ALICE, "ssh_key.add", "t1")
        required = await reauth.require(ALICE, "ssh_key.add", "t1")
        return [denied, allowed, required]

    denied, allowed, required = asyncio.run(journey())
    assert isinstance(denied, ReauthRequired)
    assert denied.methods == ("pwd",)
    assert isinstance(allowed, Allowed)
    assert allowed.reason is AllowReason.FRESH_GRANT
    assert required == allowed
    assert getattr(store, "awaited", 0) > 0 if proxied else not hasattr(store, "awaited")


def test_decisions_are_immutable_records() -> None:
    reauth, _, _, _ = make()
    denied = reauth.check(ALICE, "ssh_key.add", "t1")
    reauth.record(ALICE, ["pwd"])
    allowed = reauth.check(ALICE, "ssh_key.add", "t1")
    assert isinstance(denied, ReauthRequired)
    assert not denied.ok
    assert isinstance(allowed, Allowed)
    assert allowed.ok
    for decision, field in ((denied, "methods"), (allowed, "reason")):
        with pytest.raises(AttributeError):
            setattr(decision, field, ("none",))
    assert denied.methods == ("pwd",)
    assert allowed.reason is AllowReason.FRESH_GRANT
    assert ReauthUnavailable("x").ok is False


@pytest.mark.parametrize("failing", ["revoke_grants", "put_grant"])
def test_a_renewal_that_fails_half_way_grants_nothing_anywhere(failing: str) -> None:
    """A re-authentication with a renewed session id writes the new grant and revokes
    the old id's: whichever write fails, the caller's "try again" is true (no grant was
    stored for the new id) and the old id keeps nothing (the new grant was stored and
    the old id's revocation failed: a copy of the old cookie kept its grant)."""

    class FailsAt(MemoryStore):
        def __getattribute__(self, name: str) -> Any:
            if name == failing and object.__getattribute__(self, "down"):
                raise StoreUnavailableError(f"{name}: the store is down")
            return object.__getattribute__(self, name)

    store = FailsAt()
    store.down = False  # type: ignore[attr-defined]
    store.put_tenant(Tenant("t1", {"feature_flags": {"sensitive_actions_reauth": True}}))
    reauth = Reauth(store, Policy.default(), clock=SettableClock())
    old, new = Subject("alice", "s1"), Subject("alice", "s2")
    reauth.record(old, ["pwd"])
    store.down = True  # type: ignore[attr-defined]
    with pytest.raises(StoreUnavailableError):
        reauth.record(new, ["pwd"], renewed_from="s1")
    store.down = False  # type: ignore[attr-defined]
    assert store.get_grant("alice", "s2") is None
    if failing == "put_grant":  # the revocation came first and held
        assert store.get_grant("alice", "s1") is None
