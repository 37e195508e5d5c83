"""A sign-in that counts (Policy.sign_in_counts) and the sliding window (Policy.sliding_max)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stepup.adapters.storage.memory import MemoryStore
from stepup.errors import ConfigurationError, MalformedInputError
from stepup.events import EventBus, SignInRecorded, StepupEvent
from stepup.policy import CRITICAL, SENSITIVE, Policy
from stepup.reauth import (
    Allowed,
    AsyncReauth,
    Reauth,
    ReauthRequired,
    SignInCounted,
    SignInNotCounted,
    SignInReason,
)
from stepup.records import Grant, Tenant
from stepup.subject import Identity, LoginMethod, Subject
from stepup.testing import SettableClock

ALICE = Subject("alice", "s1")
OIDC_USER = Subject("carol", "s9", Identity(LoginMethod.OIDC, "https://idp.example", "c", "corp"))
SAML_USER = Subject("dave", "s7", Identity(LoginMethod.SAML, "https://saml.example", "d", "s"))
TWO_FACTOR = Policy(
    {"key.read": SENSITIVE, "key.rotate": replace(SENSITIVE, second_factor=True)}, lifetime=3600
)


def make(
    policy: Policy, store: MemoryStore | None = None
) -> tuple[Reauth, MemoryStore, SettableClock, list[StepupEvent]]:
    store = store or MemoryStore()
    store.put_tenant(Tenant("t1", {"feature_flags": {"sensitive_actions_reauth": True}}))
    clock = SettableClock()
    seen: list[StepupEvent] = []
    return Reauth(store, policy, clock=clock, events=EventBus(seen.append)), store, clock, seen


COUNTING = TWO_FACTOR.with_sign_in_counts()


# A sign-in that counts ---------------------------------------------------------------


def test_off_by_default_a_sign_in_records_nothing() -> None:
    reauth, store, _, seen = make(TWO_FACTOR)
    assert TWO_FACTOR.sign_in_counts is False
    outcome = reauth.record_sign_in(ALICE, ["pwd", "otp"])
    assert outcome == SignInNotCounted(SignInReason.POLICY_OFF)
    assert not outcome.ok
    assert store.get_grant("alice", "s1") is None
    assert seen == []
    assert isinstance(reauth.check(ALICE, "key.read", "t1"), ReauthRequired)


def test_a_password_and_code_sign_in_is_not_asked_again_a_minute_later() -> None:
    reauth, _, clock, seen = make(COUNTING)
    outcome = reauth.record_sign_in(ALICE, ("pwd", "otp"))
    assert isinstance(outcome, SignInCounted)
    assert outcome.grant == Grant("alice", "s1", frozenset({"pwd", "otp"}), clock())
    clock.advance(60)
    assert isinstance(reauth.check(ALICE, "key.rotate", "t1"), Allowed)  # second factor too
    assert isinstance(reauth.check(ALICE, "key.read", "t1"), Allowed)
    assert [type(e) for e in seen] == [SignInRecorded]
    event = seen[0]
    assert isinstance(event, SignInRecorded)
    assert (event.user_id, event.session_id, event.method) == ("alice", "s1", "otp,pwd")
    clock.advance(3600 - 60)  # the lifetime counts from the sign-in
    assert isinstance(reauth.check(ALICE, "key.read", "t1"), ReauthRequired)


def test_a_password_only_sign_in_does_not_satisfy_a_second_factor_rule() -> None:
    reauth, _, _, _ = make(COUNTING)
    assert reauth.record_sign_in(ALICE, ["pwd"]).ok
    assert isinstance(reauth.check(ALICE, "key.read", "t1"), Allowed)
    decision = reauth.check(ALICE, "key.rotate", "t1")
    assert isinstance(decision, ReauthRequired)
    assert decision.methods == ("pwd", "otp")


def test_the_grant_is_bound_to_the_signed_in_session_only() -> None:
    reauth, _, _, _ = make(COUNTING)
    reauth.record_sign_in(ALICE, ["pwd"])
    assert isinstance(reauth.check(Subject("alice", "s2"), "key.read", "t1"), ReauthRequired)
    assert isinstance(reauth.check(Subject("bob", "s1"), "key.read", "t1"), ReauthRequired)


def test_an_oidc_sign_in_is_dated_by_its_auth_time() -> None:
    reauth, _, clock, _ = make(COUNTING)
    logged_in = clock() - 3000  # the provider's session is 50 minutes old
    outcome = reauth.record_sign_in(OIDC_USER, ["oidc"], logged_in)
    assert isinstance(outcome, SignInCounted)
    assert outcome.grant.authenticated_at == logged_in
    assert isinstance(reauth.check(OIDC_USER, "key.read", "t1"), Allowed)
    clock.advance(600)  # 60 minutes after the provider's login: expired
    assert isinstance(reauth.check(OIDC_USER, "key.read", "t1"), ReauthRequired)


def test_a_saml_sign_in_is_dated_by_its_authn_instant() -> None:
    reauth, _, clock, _ = make(COUNTING)
    outcome = reauth.record_sign_in(SAML_USER, ["saml"], clock() - 10)
    assert isinstance(outcome, SignInCounted)
    assert outcome.grant.authenticated_at == clock() - 10


@pytest.mark.parametrize(("subject", "method"), [(OIDC_USER, "oidc"), (SAML_USER, "saml")])
def test_an_sso_sign_in_without_the_providers_time_does_not_count(
    subject: Subject, method: str
) -> None:
    reauth, store, _, _ = make(COUNTING)
    outcome = reauth.record_sign_in(subject, [method])
    assert outcome == SignInNotCounted(SignInReason.NO_PROVIDER_TIME)
    assert store.get_grant(subject.user_id, subject.session_id) is None


def test_a_login_older_than_every_lifetime_does_not_count() -> None:
    reauth, store, clock, _ = make(COUNTING)
    outcome = reauth.record_sign_in(OIDC_USER, ["oidc"], clock() - 3600)
    assert outcome == SignInNotCounted(SignInReason.TOO_OLD)
    assert store.get_grant("carol", "s9") is None


def test_a_provider_time_in_the_future_counts_as_now() -> None:
    """Within the skew a provider's clock may run ahead (300 s); further ahead is no
    time at all (tests/reauth/test_review3_sign_in_time.py)."""
    reauth, _, clock, _ = make(COUNTING)
    outcome = reauth.record_sign_in(OIDC_USER, ["oidc"], clock() + 300)
    assert isinstance(outcome, SignInCounted)
    assert outcome.grant.authenticated_at == clock()


@pytest.mark.parametrize(
    ("subject", "methods"),
    [
        (ALICE, ["recovery"]),
        (ALICE, []),
        (ALICE, ["sms"]),
        (ALICE, ["oidc"]),  # a password user's sign-in proves pwd
        (OIDC_USER, ["pwd"]),
    ],
)
def test_bad_methods_are_a_clear_error_and_change_nothing(
    subject: Subject, methods: list[str]
) -> None:
    for policy in (TWO_FACTOR, COUNTING):
        reauth, store, _, seen = make(policy)
        with pytest.raises(MalformedInputError):
            reauth.record_sign_in(subject, methods, 1.0)
        assert store.get_grant(subject.user_id, subject.session_id) is None
        assert seen == []


def test_a_time_that_is_not_a_number_is_refused() -> None:
    reauth, *_ = make(COUNTING)
    with pytest.raises(MalformedInputError):
        reauth.record_sign_in(OIDC_USER, ["oidc"], "yesterday")  # type: ignore[arg-type]


class FailingPut(MemoryStore):
    def put_grant(self, grant: Grant, expires_at: float) -> None:
        raise ConnectionError("redis://user:secret@host down")


def test_a_store_failure_leaves_the_sign_in_uncounted() -> None:
    reauth, _, _, seen = make(COUNTING, FailingPut())
    assert reauth.record_sign_in(ALICE, ["pwd"]) == SignInNotCounted(SignInReason.UNAVAILABLE)
    assert seen == []


def test_async_records_the_same() -> None:
    store = MemoryStore()
    store.put_tenant(Tenant("t1", {"feature_flags": {"sensitive_actions_reauth": True}}))
    clock = SettableClock()
    reauth = AsyncReauth(store, COUNTING, clock=clock)

    async def go() -> Any:
        outcome = await reauth.record_sign_in(ALICE, ["pwd", "otp"])
        return outcome, await reauth.check(ALICE, "key.rotate", "t1")

    outcome, decision = asyncio.run(go())
    assert isinstance(outcome, SignInCounted)
    assert isinstance(decision, Allowed)


def test_the_policy_file_turns_both_options_on(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text('sign_in_counts = true\nsliding_max = "12h"\n')
    policy = TWO_FACTOR.load_toml(path)
    assert policy.sign_in_counts is True
    assert policy.sliding_max == 12 * 3600
    # ... and they survive extending the table
    extended = policy.extend({"other": CRITICAL})
    assert (extended.sign_in_counts, extended.sliding_max) == (True, 12 * 3600)
    assert "sign_in_counts=True" in repr(policy)


@pytest.mark.parametrize(
    "text", ['sign_in_counts = "yes"', "sliding_max = 0", 'sliding_max = "forever"']
)
def test_bad_option_values_name_the_setting(tmp_path: Path, text: str) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigurationError, match=r"sign_in_counts|sliding_max"):
        TWO_FACTOR.load_toml(path)


def test_bad_constructor_options_are_refused() -> None:
    with pytest.raises(ConfigurationError):
        Policy(sign_in_counts="yes")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        Policy(sliding_max=-1)


# The sliding window ---------------------------------------------------------------------

SLIDING = TWO_FACTOR.with_sliding_window(4 * 3600)  # lifetime 1 h, at most 4 h after the proof


def test_without_the_window_the_lifetime_counts_from_the_proof() -> None:
    reauth, _, clock, _ = make(TWO_FACTOR)
    reauth.record(ALICE, ["pwd"])
    clock.advance(3000)
    assert isinstance(reauth.check(ALICE, "key.read", "t1"), Allowed)
    clock.advance(700)
    assert isinstance(reauth.check(ALICE, "key.read", "t1"), ReauthRequired)


def test_each_sensitive_action_renews_the_grant_up_to_the_maximum() -> None:
    reauth, _, clock, _ = make(SLIDING)
    reauth.record(ALICE, ["pwd"])
    proved = clock()
    for _ in range(4):  # an action every 50 minutes keeps it alive
        clock.advance(3000)
        decision = reauth.check(ALICE, "key.read", "t1")
        assert isinstance(decision, Allowed)
        assert decision.valid_until == min(clock() + 3600, proved + 4 * 3600)
    clock.set(proved + 4 * 3600 - 1)  # still within an hour of the last action
    assert isinstance(reauth.check(ALICE, "key.read", "t1"), Allowed)
    clock.set(proved + 4 * 3600)  # the absolute maximum
    assert isinstance(reauth.check(ALICE, "key.read", "t1"), ReauthRequired)


def test_a_quiet_hour_ends_the_window() -> None:
    reauth, _, clock, _ = make(SLIDING)
    reauth.record(ALICE, ["pwd"])
    clock.advance(3000)
    assert isinstance(reauth.check(ALICE, "key.read", "t1"), Allowed)
    clock.advance(3600)
    assert isinstance(reauth.check(ALICE, "key.read", "t1"), ReauthRequired)


def test_a_look_renews_nothing() -> None:
    """``peek`` (the status endpoint's look) says what ``check`` would, and a session
    that only looks is asked again an hour after its last sensitive action."""
    reauth, _, clock, _ = make(SLIDING)
    reauth.record(ALICE, ["pwd"])
    proved = clock()
    clock.advance(3000)
    assert isinstance(reauth.check(ALICE, "key.read", "t1"), Allowed)  # renewed at +50 min
    for _ in range(7):  # a page polling the status every ten minutes, past the hour
        clock.advance(600)
        looked = reauth.peek(ALICE, "key.read", "t1")
        checked_now = clock() - proved < 3000 + 3600
        assert isinstance(looked, Allowed) is checked_now
        if isinstance(looked, Allowed):
            assert looked.valid_until == proved + 3000 + 3600  # not moved by the look
    assert isinstance(reauth.check(ALICE, "key.read", "t1"), ReauthRequired)


@given(st.lists(st.sampled_from(["peek", "check"]), max_size=12), st.integers(60, 3000))
def test_a_look_and_a_check_agree(steps: list[str], gap: int) -> None:
    reauth, _, clock, _ = make(SLIDING)
    reauth.record(ALICE, ["pwd"])
    for step in steps:
        clock.advance(gap)
        looked = reauth.peek(ALICE, "key.read", "t1")
        assert looked == reauth.peek(ALICE, "key.read", "t1")  # a look changes nothing
        if step == "check":
            assert reauth.check(ALICE, "key.read", "t1").ok is looked.ok


def test_a_look_at_a_transaction_bound_action_spends_nothing() -> None:
    from stepup.policy import Rule, Sensitivity
    from stepup.reauth import ReauthUnavailable, UnavailableReason
    from stepup.transactions import transaction_digest

    bound = TWO_FACTOR.extend({"ws.delete": Rule(Sensitivity.CRITICAL, bind_transaction=True)})
    reauth, _, _, _ = make(bound)
    digest = transaction_digest("ws.delete", {"ws": "prod"})
    reauth.record(ALICE, ["pwd"], transaction=digest)
    looked = reauth.peek(ALICE, "ws.delete", "t1")
    assert isinstance(looked, ReauthUnavailable)
    assert looked.reason is UnavailableReason.TRANSACTION_BOUND
    assert reauth.check(ALICE, "ws.delete", "t1", transaction=digest).ok  # still there


def test_an_async_look_renews_nothing() -> None:
    store = MemoryStore()
    store.put_tenant(Tenant("t1", {"feature_flags": {"sensitive_actions_reauth": True}}))
    clock = SettableClock()
    reauth = AsyncReauth(store, SLIDING, clock=clock)
    asyncio.run(reauth.record(ALICE, ["pwd"]))
    clock.advance(3000)
    assert isinstance(asyncio.run(reauth.peek(ALICE, "key.read", "t1")), Allowed)
    clock.advance(700)  # past the hour: the look did not renew it
    assert isinstance(asyncio.run(reauth.check(ALICE, "key.read", "t1")), ReauthRequired)


def test_renewal_never_lends_methods_or_sessions() -> None:
    reauth, _, clock, _ = make(SLIDING)
    reauth.record(ALICE, ["pwd"])
    clock.advance(3000)
    assert isinstance(reauth.check(ALICE, "key.read", "t1"), Allowed)
    assert isinstance(reauth.check(ALICE, "key.rotate", "t1"), ReauthRequired)  # no otp
    assert isinstance(reauth.check(Subject("alice", "s2"), "key.read", "t1"), ReauthRequired)
    assert isinstance(reauth.check(Subject("bob", "s1"), "key.read", "t1"), ReauthRequired)


def test_a_new_proof_starts_a_new_window() -> None:
    reauth, _, clock, _ = make(SLIDING)
    reauth.record(ALICE, ["pwd"])
    clock.advance(3000)
    assert isinstance(reauth.check(ALICE, "key.read", "t1"), Allowed)  # renewed at +50 min
    clock.advance(3700)  # past an hour since the renewal: asked again
    assert isinstance(reauth.check(ALICE, "key.read", "t1"), ReauthRequired)
    reauth.record(ALICE, ["pwd"])
    new_proof = clock()
    clock.advance(3599)
    decision = reauth.check(ALICE, "key.read", "t1")
    assert isinstance(decision, Allowed)
    assert decision.valid_until == clock() + 3600 <= new_proof + 4 * 3600


def test_sign_out_ends_the_window() -> None:
    reauth, _, clock, _ = make(SLIDING)
    reauth.record(ALICE, ["pwd"])
    clock.advance(3000)
    assert isinstance(reauth.check(ALICE, "key.read", "t1"), Allowed)
    reauth.sign_out(ALICE)
    assert isinstance(reauth.check(ALICE, "key.read", "t1"), ReauthRequired)


class FailingRenewal(MemoryStore):
    def put_grant(self, grant: Grant, expires_at: float) -> None:
        if "#slide@" in grant.session_id:
            raise ConnectionError("down")
        super().put_grant(grant, expires_at)


def test_a_failed_renewal_allows_what_the_grant_allows_and_renews_nothing() -> None:
    reauth, _, clock, _ = make(SLIDING, FailingRenewal())
    reauth.record(ALICE, ["pwd"])
    clock.advance(3000)
    assert isinstance(reauth.check(ALICE, "key.read", "t1"), Allowed)
    clock.advance(700)  # no renewal was kept: an hour after the proof it is over
    assert isinstance(reauth.check(ALICE, "key.read", "t1"), ReauthRequired)


@given(st.lists(st.floats(min_value=1, max_value=5000), min_size=1, max_size=12))
def test_the_window_never_outlives_its_maximum_nor_a_quiet_lifetime(gaps: list[float]) -> None:
    reauth, _, clock, _ = make(SLIDING)
    reauth.record(ALICE, ["pwd"])
    proved = last_allowed = clock()
    for gap in gaps:
        clock.advance(gap)
        decision = reauth.check(ALICE, "key.read", "t1")
        expected = clock() - last_allowed < 3600 and clock() - proved < 4 * 3600
        assert isinstance(decision, Allowed) is expected
        if expected:
            last_allowed = clock()
        else:
            break


def test_the_window_is_the_same_through_the_async_flow() -> None:
    store = MemoryStore()
    store.put_tenant(Tenant("t1", {"feature_flags": {"sensitive_actions_reauth": True}}))
    clock = SettableClock()
    reauth = AsyncReauth(store, SLIDING, clock=clock)

    async def go() -> list[bool]:
        await reauth.record(ALICE, ["pwd"])
        seen = []
        for gap in (3000, 3000, 3700):
            clock.advance(gap)
            seen.append((await reauth.check(ALICE, "key.read", "t1")).ok)
        return seen

    assert asyncio.run(go()) == [True, True, False]


def test_an_sso_sign_in_that_counts_keeps_the_level_its_provider_proved() -> None:
    """An OIDC sign-in whose signed acr proved ``mfa`` is as good, counted, as the same
    proof recorded by ``record(level=...)``; it was recorded without its level and asked
    again on a rule that needs ``mfa``."""
    from stepup.assurance import Level, Levels
    from stepup.policy import Rule, Sensitivity

    levels = Levels(
        (
            Level("password", acr=("urn:pwd",), methods=(("pwd",),)),
            Level("mfa", acr=("urn:mfa",), methods=(("pwd", "otp"),)),
        )
    )
    policy = Policy(
        {"billing.pay": Rule(Sensitivity.SENSITIVE, level="mfa")}, lifetime=3600, levels=levels
    ).with_sign_in_counts()
    reauth, _, clock, _ = make(policy)
    assert isinstance(reauth.check(OIDC_USER, "billing.pay", "t1"), ReauthRequired)
    outcome = reauth.record_sign_in(OIDC_USER, ["oidc"], clock() - 5, level="mfa")
    assert isinstance(outcome, SignInCounted)
    assert outcome.grant.level == "mfa"
    assert isinstance(reauth.check(OIDC_USER, "billing.pay", "t1"), Allowed)
    with pytest.raises(MalformedInputError, match="level"):
        reauth.record_sign_in(OIDC_USER, ["oidc"], clock(), level="platinum")
    async_reauth = AsyncReauth(MemoryStore(), policy, clock=clock)
    counted = asyncio.run(async_reauth.record_sign_in(SAML_USER, ["saml"], clock(), level="mfa"))
    assert isinstance(counted, SignInCounted)
    assert counted.grant.level == "mfa"
