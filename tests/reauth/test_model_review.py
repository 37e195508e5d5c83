"""Three answers a reference model written from the documents disagreed with (the
seventeenth session's model-based review), each checked on the memory store and on
SQLite, sync and async:

- re-authenticating exactly as the decision asked is allowed at once, even when the
  session's grant holds more methods (merging the proof into that older grant kept its
  date, so the rule asked again and again until ``merge_window`` had passed);
- on an API key, a grant that proves one of the rule's ways counts, whichever way the
  plan names first (a level rule refused a fresh password and code as
  ``non_interactive``);
- the sliding window's maximum is absolute, even for a rule whose own lifetime is longer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stepup.adapters.storage.memory import MemoryStore
from stepup.adapters.storage.sql import AsyncSQLStore, SQLStore
from stepup.assurance import DEFAULT_LEVELS
from stepup.policy import CRITICAL, Policy, Rule, Sensitivity
from stepup.reauth import (
    Allowed,
    AsyncReauth,
    Reauth,
    ReauthRequired,
    ReauthUnavailable,
    UnavailableReason,
)
from stepup.records import Tenant
from stepup.subject import Subject
from stepup.testing import SettableClock
from stepup.twofactor import Channel

TENANT = Tenant("acme", {"feature_flags": {"sensitive_actions_reauth": True}})
ALICE = Subject("alice", "s1")


class SyncSide:
    """Reauth or AsyncReauth behind one sync face (the same flow, driven both ways)."""

    def __init__(self, reauth: Any, loop: asyncio.AbstractEventLoop | None) -> None:
        self.reauth, self.loop = reauth, loop

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.reauth, name)
        if self.loop is None:
            return method  # type: ignore[no-any-return]
        return lambda *a, **k: self.loop.run_until_complete(method(*a, **k))  # type: ignore[union-attr]


@pytest.fixture(params=["memory", "sqlite", "memory-async", "sqlite-async"])
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    kind = request.param
    loop = asyncio.new_event_loop() if kind.endswith("async") else None
    stores: list[Any] = []

    def build(policy: Policy, clock: SettableClock) -> SyncSide:
        path = tmp_path / f"s{len(stores)}.sqlite3"
        if kind in ("memory", "memory-async"):
            store: Any = MemoryStore()
            store.put_tenant(TENANT)
        elif kind == "sqlite":
            store = SQLStore.sqlite(path)
            store.put_tenant(TENANT)
        else:
            assert loop is not None
            store = AsyncSQLStore.sqlite(path)
            loop.run_until_complete(store.create_schema())
            loop.run_until_complete(store.put_tenant(TENANT))
        stores.append(store)
        cls = Reauth if loop is None else AsyncReauth
        return SyncSide(cls(store, policy, clock=clock), loop)

    yield build
    for store in stores:
        close = getattr(store, "aclose", None) or getattr(store, "close", None)
        if close is not None:
            result = close()
            if loop is not None and asyncio.iscoroutine(result):
                loop.run_until_complete(result)
    if loop is not None:
        loop.close()


def test_re_authenticating_as_asked_is_allowed_at_once(make: Callable[..., Any]) -> None:
    clock = SettableClock()
    reauth = make(Policy.default(environ={}).extend({"report.export": CRITICAL}), clock)
    reauth.record(ALICE, ["pwd", "otp"])
    clock.advance(400)  # older than CRITICAL's 300 s, inside the 600 s merge window
    asked = reauth.check(ALICE, "report.export", "acme")
    assert isinstance(asked, ReauthRequired)
    assert asked.methods == ("pwd",)
    grant = reauth.record(ALICE, list(asked.methods))
    assert grant.authenticated_at == clock()
    assert isinstance(reauth.check(ALICE, "report.export", "acme"), Allowed)


def test_a_second_step_moments_after_the_first_still_merges(make: Callable[..., Any]) -> None:
    """What the merge is for: a sign-in step, then a code, make one grant of both, dated
    by the older."""
    clock = SettableClock()
    reauth = make(Policy.default(environ={}), clock)
    first = reauth.record(ALICE, ["pwd"]).authenticated_at
    clock.advance(30)
    grant = reauth.record(ALICE, ["otp"])
    assert (grant.methods, grant.authenticated_at) == ({"pwd", "otp"}, first)


def test_an_api_key_counts_a_grant_that_proves_another_way(make: Callable[..., Any]) -> None:
    clock = SettableClock()
    policy = Policy(
        {
            "sf": Rule(Sensitivity.SENSITIVE, api_keys=True, second_factor=True),
            "lvl": Rule(Sensitivity.SENSITIVE, api_keys=True, level="mfa"),
        },
        levels=DEFAULT_LEVELS,
    )
    reauth = make(policy, clock)
    key = Subject("alice", "s1", channel=Channel.API_KEY)
    refused = reauth.check(key, "lvl", "acme")
    assert isinstance(refused, ReauthUnavailable)
    assert refused.reason is UnavailableReason.NON_INTERACTIVE
    reauth.record(ALICE, ["pwd", "otp"])  # proves mfa, though not the plan's first way
    for action in ("sf", "lvl"):
        assert isinstance(reauth.check(key, action, "acme"), Allowed), action
    clock.advance(6 * 3600)
    assert isinstance(reauth.check(key, "lvl", "acme"), ReauthUnavailable)


@given(lifetime=st.integers(60, 48 * 3600), maximum=st.integers(60, 48 * 3600))
def test_no_proof_counts_past_the_windows_maximum(lifetime: int, maximum: int) -> None:
    clock = SettableClock()
    store = MemoryStore()
    store.put_tenant(TENANT)
    rules = {"act": Rule(Sensitivity.SENSITIVE, lifetime=float(lifetime))}
    reauth = Reauth(store, Policy(rules).with_sliding_window(maximum), clock=clock)
    proved = reauth.record(ALICE, ["pwd"]).authenticated_at
    end = proved + min(lifetime, maximum)
    first = reauth.check(ALICE, "act", "acme")
    assert isinstance(first, Allowed)
    assert first.valid_until == end  # nothing renewed yet: the proof's own lifetime, capped
    clock.set(proved + maximum - 1)
    still = reauth.check(ALICE, "act", "acme")
    assert still.ok is (maximum - 1 < lifetime)
    clock.set(proved + maximum)
    assert isinstance(reauth.check(ALICE, "act", "acme"), ReauthRequired)


def test_the_window_on_sql_stores_the_same(make: Callable[..., Any]) -> None:
    clock = SettableClock()
    reauth = make(Policy.default(environ={}).with_sliding_window(3600), clock)
    proved = reauth.record(ALICE, ["pwd"]).authenticated_at
    assert reauth.check(ALICE, "user.update", "acme").valid_until == proved + 3600
    clock.set(proved + 3600)
    assert isinstance(reauth.check(ALICE, "user.update", "acme"), ReauthRequired)


@pytest.mark.parametrize("passkeys", [False, True])
@pytest.mark.parametrize(
    "rule",
    [
        Rule(Sensitivity.SENSITIVE, second_factor=True),
        Rule(Sensitivity.SENSITIVE, accept=(("otp",),)),
        Rule(Sensitivity.SENSITIVE, accept=(("hwk", "user"), ("primary", "otp"))),
    ],
    ids=["second factor", "a code alone", "a key or a code"],
)
def test_the_decision_says_what_to_enrol_as_the_offer_does(rule: Rule, passkeys: bool) -> None:
    """A user with nothing enrolled, a rule whose only way needs a code: the decision
    (and so the JSON 401's ``enrol``) says to enrol TOTP first, as ``offer`` does; it
    said nothing for a rule with one way."""
    store = MemoryStore()
    store.put_tenant(TENANT)
    reauth = Reauth(store, Policy({"act": rule}, passkeys=passkeys), clock=SettableClock())
    decision = reauth.check(ALICE, "act", "acme")
    offer = reauth.offer(ALICE, "act")
    assert isinstance(decision, ReauthRequired)
    assert decision.enrol == offer.enrol == ("otp",)
    assert decision.needs_enrolment
    assert offer.needs_enrolment


def test_a_passkey_asked_for_is_enough_after_an_older_password(make: Callable[..., Any]) -> None:
    """A whole re-authentication after another (a passkey after a password) is not
    merged into the older grant: dated by it, the passkey the rule asked for was as
    stale as the password, and the rule asked for it again. Only a code and another
    step join."""
    clock = SettableClock()
    policy = Policy({"act": CRITICAL}, passkeys=True)
    reauth = make(policy, clock)
    reauth.record(ALICE, ["pwd"])
    clock.advance(200)
    joined = reauth.record(ALICE, ["otp"])  # a code joins the password of moments before
    assert joined.methods == {"pwd", "otp"}
    assert joined.authenticated_at == clock() - 200
    clock.advance(200)  # the grant is 400 s old: stale for the 300 s rule
    assert isinstance(reauth.check(ALICE, "act", "acme"), ReauthRequired)
    grant = reauth.record(ALICE, ["phr", "hwk", "user"])
    assert (grant.methods, grant.authenticated_at) == ({"phr", "hwk", "user"}, clock())
    assert isinstance(reauth.check(ALICE, "act", "acme"), Allowed)


@pytest.mark.parametrize(
    ("rule", "passkeys", "methods"),
    [
        (Rule(Sensitivity.SENSITIVE, second_factor=True), False, ["pwd", "otp"]),
        (Rule(Sensitivity.SENSITIVE), True, ["pwd"]),
        (
            Rule(Sensitivity.SENSITIVE, accept=(("hwk", "user"), ("primary", "otp"))),
            False,
            ["pwd", "otp"],
        ),
    ],
    ids=["second factor", "passkeys on", "several ways"],
)
def test_the_windows_maximum_holds_for_rules_with_a_choice(
    rule: Rule, passkeys: bool, methods: list[str]
) -> None:
    """The strongest-available path judged the grant by the rule's own six hours after
    the window had refused it at its one-hour maximum."""
    clock = SettableClock()
    store = MemoryStore()
    store.put_tenant(TENANT)
    policy = Policy({"act": rule}, passkeys=passkeys).with_sliding_window(3600)
    reauth = Reauth(store, policy, clock=clock)
    proved = reauth.record(ALICE, methods).authenticated_at
    allowed = reauth.check(ALICE, "act", "acme")
    assert isinstance(allowed, Allowed)
    assert allowed.valid_until == proved + 3600
    clock.set(proved + 3660)
    assert isinstance(reauth.check(ALICE, "act", "acme"), ReauthRequired)
    assert isinstance(reauth.peek(ALICE, "act", "acme"), ReauthRequired)


@pytest.mark.parametrize("code_first", [False, True])
@pytest.mark.parametrize("earlier", [["pwd"], ["phr", "hwk", "user"], ["otp"]])
def test_the_steps_of_one_re_authentication_recorded_apart_are_enough(
    make: Callable[..., Any], earlier: list[str], code_first: bool
) -> None:
    """Whatever the session proved minutes before (a password, a passkey, a code alone),
    recording the password and the code a decision asked for as two steps, in either
    order, allows the action: a step no longer replaced the other (the grant lost the
    code, or the password, and the person was asked again, forever)."""
    clock = SettableClock()
    rules = {
        "act": Rule(Sensitivity.SENSITIVE, second_factor=True),
        "otp": Rule(Sensitivity.SENSITIVE, accept=(("otp",),)),
    }
    reauth = make(Policy(rules), clock)
    reauth.record(ALICE, earlier)
    clock.advance(240)
    asked = reauth.check(ALICE, "act", "acme")
    if asked.ok:  # the earlier proof was already enough
        return
    assert asked.methods == ("pwd", "otp")
    for step in (["otp"], ["pwd"]) if code_first else (["pwd"], ["otp"]):
        reauth.record(ALICE, step)
        clock.advance(5)
    assert isinstance(reauth.check(ALICE, "act", "acme"), Allowed)


def test_a_config_file_totp_user_is_not_told_to_enrol() -> None:
    """With TOTP secrets in a configuration file, the store holds no credential: the
    decision reads who has TOTP from the file (the Starlette integration passes it)."""
    from stepup import AsyncTwoFactor
    from stepup.adapters.storage.memory import MemoryStore as Store
    from stepup.config_users import ConfigUsers
    from stepup.integrations.starlette import Stepup

    users = ConfigUsers.from_mapping(
        {"users": {"alice": {"otp_secret": "DTGL5PTYL2CNPDP6H3O65U5NVNW42GRF"}}}
    )
    store = Store()
    store.put_tenant(TENANT)
    policy = Policy({"act": Rule(Sensitivity.SENSITIVE, second_factor=True)})
    stepup = Stepup(
        store=store,
        secret_key="k" * 32,
        subject_loader=lambda request: ALICE,
        tenant_loader=lambda request: "acme",
        policy=policy,
        two_factor=AsyncTwoFactor(store, issuer="Acme", config_users=users),
    )
    decision = asyncio.run(stepup.reauth.check(ALICE, "act", "acme"))
    assert isinstance(decision, ReauthRequired)
    assert decision.methods == ("pwd", "otp")
    assert decision.enrol == ()
