"""Levels of assurance: configuration, lookups, rules that ask for a level, grants that
keep it, decisions that say which level is missing, and bearer tokens decided the same way."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stepup.adapters.storage.memory import MemoryStore
from stepup.adapters.storage.redis import RedisStore
from stepup.adapters.storage.sql import SQLStore
from stepup.assurance import (
    DEFAULT_LEVELS,
    Level,
    LevelConfigurationError,
    Levels,
    UnknownLevelError,
)
from stepup.errors import ConfigurationError, MalformedInputError
from stepup.policy import Policy, Rule, Sensitivity
from stepup.reauth import Allowed, AllowReason, Reauth, ReauthRequired
from stepup.records import Grant, Tenant
from stepup.subject import Identity, LoginMethod, Subject
from stepup.testing import SettableClock
from stepup.tokens import AccessToken
from support import REDIS_URL, port_open

T0 = 1_700_000_000.0
ACR_PWD, ACR_MFA, ACR_PHR = "urn:stepup:pwd", "urn:stepup:mfa", "urn:stepup:phr"
LEVELS = Levels(
    (
        Level("password", acr=(ACR_PWD,), methods=(("pwd",),)),
        Level(
            "mfa",
            acr=(ACR_MFA,),
            saml=("https://refeds.org/profile/mfa",),
            methods=(("pwd", "otp"),),
        ),
        Level("phishing_resistant", acr=(ACR_PHR,), methods=(("phr",),)),
    )
)


def policy(**rules: Rule) -> Policy:
    return Policy(rules, lifetime=3600.0, levels=LEVELS)


# configuration -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: Levels(()),
        lambda: Levels((Level("a", methods=(("pwd",),)), Level("a", methods=(("otp",),)))),
        lambda: Levels((Level("a", acr=("x",)), Level("b", acr=("x",)))),
        # one set of methods proving two levels: a password proved the stronger one
        lambda: Levels((Level("a", methods=(("pwd",),)), Level("b", methods=(("pwd",),)))),
        lambda: Levels(
            (Level("a", methods=(("otp", "pwd"),)), Level("b", methods=(("pwd", "otp"),)))
        ),
        lambda: Level("Bad Name", methods=(("pwd",),)),
        lambda: Level("a"),
        lambda: Level("a", methods=(("recovery",),)),
        lambda: Level("a", acr="urn:x"),
        lambda: Level("a", acr=("has space",)),
        lambda: Level("a", acr=('has"quote',)),
        lambda: Level("a", saml=("back\\slash",)),
    ],
)
def test_bad_levels_are_refused_at_start_up(make: object) -> None:
    with pytest.raises(LevelConfigurationError):
        make()  # type: ignore[operator]


def test_a_rule_with_an_undeclared_level_is_refused_at_start_up() -> None:
    with pytest.raises(UnknownLevelError):
        policy(a=Rule(Sensitivity.SENSITIVE, level="gold"))
    with pytest.raises(ConfigurationError, match="declares no levels"):
        Policy({"a": Rule(Sensitivity.SENSITIVE, level="mfa")})
    with pytest.raises(UnknownLevelError):
        Policy(levels=LEVELS).extend({"a": Rule(Sensitivity.SENSITIVE, level="gold")})


def test_lookups() -> None:
    assert LEVELS.for_methods({"pwd"}) == "password"
    assert LEVELS.for_methods({"pwd", "otp"}) == "mfa"
    assert LEVELS.for_methods({"phr", "hwk"}) == "phishing_resistant"
    assert LEVELS.for_methods({"otp"}) is None
    assert LEVELS.for_acr(ACR_MFA) == "mfa"
    assert LEVELS.for_acr("urn:other") is None
    assert LEVELS.for_saml("https://refeds.org/profile/mfa") == "mfa"
    assert LEVELS.meets("phishing_resistant", "mfa")
    assert not LEVELS.meets("password", "mfa")
    assert not LEVELS.meets(None, "password")
    assert not LEVELS.meets("unknown", "password")
    assert LEVELS.acr_values("mfa") == (ACR_PHR, ACR_MFA)  # strongest first
    with pytest.raises(UnknownLevelError):
        LEVELS.meets("mfa", "gold")


@given(st.lists(st.sampled_from(["pwd", "otp", "phr", "hwk", "oidc", "user"]), max_size=6))
def test_a_level_from_methods_is_monotonic(methods: list[str]) -> None:
    """More proved methods never lower the level."""
    base = LEVELS.for_methods(methods)
    more = LEVELS.for_methods([*methods, "otp"])
    if base is not None:
        assert more is not None
        assert LEVELS.rank(more) >= LEVELS.rank(base)


def test_levels_from_a_policy_file(tmp_path: object) -> None:
    data = {
        "levels": [
            {"name": "low", "methods": [["pwd"]], "acr": ["urn:a"]},
            {"name": "high", "methods": [["pwd", "otp"]], "acr": ["urn:b"]},
        ],
        "actions": {"billing.pay": {"level": "high"}},
    }
    merged = Policy.default().merge_mapping(data)
    assert merged.levels is not None
    assert merged.levels.names == ("low", "high")
    assert merged.rule_for("billing.pay").level == "high"
    assert {row["action"]: row["level"] for row in merged.table()}["billing.pay"] == "high"
    with pytest.raises(ConfigurationError, match="unknown level keys"):
        Policy.default().merge_mapping({"levels": [{"name": "x", "methods": [["pwd"]], "y": 1}]})


# grants ------------------------------------------------------------------------------


def test_old_stored_grants_stay_readable_and_new_ones_keep_the_level() -> None:
    old = {"user_id": "u", "session_id": "s", "methods": ["otp", "pwd"], "authenticated_at": T0}
    grant = Grant.from_dict(json.loads(json.dumps(old)))
    assert grant.level is None
    assert Grant.from_dict(grant.to_dict()) == grant
    assert "level" not in grant.to_dict()
    leveled = Grant("u", "s", frozenset({"oidc"}), T0, "mfa")
    assert Grant.from_dict(json.loads(json.dumps(leveled.to_dict()))) == leveled


# decisions ---------------------------------------------------------------------------


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(T0)


def reauth_for(pol: Policy, clock: SettableClock) -> tuple[Reauth, MemoryStore]:
    store = MemoryStore()
    store.put_tenant(Tenant("t", {"feature_flags": {"sensitive_actions_reauth": True}}))
    return Reauth(store, pol, clock=clock), store


SUBJECT = Subject("u", "s")


def test_a_level_only_rule_needs_a_proof_of_that_level(clock: SettableClock) -> None:
    reauth, _ = reauth_for(policy(pay=Rule(Sensitivity.SENSITIVE, level="mfa")), clock)
    reauth.record(SUBJECT, ["pwd"])
    decision = reauth.check(SUBJECT, "pay", "t")
    assert isinstance(decision, ReauthRequired)
    assert decision.level == "mfa"
    assert decision.acr_values == (ACR_PHR, ACR_MFA)
    assert decision.stale is False  # recent, only too weak
    reauth.record(SUBJECT, ["pwd", "otp"])
    assert reauth.check(SUBJECT, "pay", "t").ok


def test_an_old_grant_without_level_is_judged_by_its_methods(clock: SettableClock) -> None:
    reauth, store = reauth_for(policy(pay=Rule(Sensitivity.SENSITIVE, level="mfa")), clock)
    store.put_grant(Grant("u", "s", frozenset({"pwd", "otp"}), T0), T0 + 3600)
    assert reauth.check(SUBJECT, "pay", "t").ok
    clock.advance(3600)
    decision = reauth.check(SUBJECT, "pay", "t")
    assert isinstance(decision, ReauthRequired)
    assert decision.stale
    assert not decision.level


def test_level_besides_methods(clock: SettableClock) -> None:
    rule = Rule(Sensitivity.SENSITIVE, methods=frozenset({"oidc"}), level="mfa")
    reauth, _ = reauth_for(policy(pay=rule), clock)
    reauth.record(SUBJECT, ["oidc"], level="password")
    decision = reauth.check(SUBJECT, "pay", "t")
    assert isinstance(decision, ReauthRequired)
    assert decision.level == "mfa"
    reauth.record(SUBJECT, ["oidc"], level="mfa")
    assert reauth.check(SUBJECT, "pay", "t").ok
    with pytest.raises(MalformedInputError):
        reauth.record(SUBJECT, ["oidc"], level="gold")


# tokens: the same decision -------------------------------------------------------------


def token(**claims: object) -> AccessToken:
    values: dict[str, object] = {
        "issuer": "https://idp",
        "subject": "alice",
        "audience": ("https://api",),
        "expires_at": T0 + 600,
        "auth_time": T0 - 10,
        "acr": ACR_MFA,
        "amr": ("pwd", "otp"),
    }
    values.update(claims)
    return AccessToken(**values)  # type: ignore[arg-type]


def test_tokens_are_decided_with_the_same_rule(clock: SettableClock) -> None:
    rules = {
        "pay": Rule(Sensitivity.SENSITIVE, level="mfa"),
        "read": Rule(Sensitivity.NONE),
        "quick": Rule(Sensitivity.CRITICAL, lifetime=300.0),
    }
    reauth, _ = reauth_for(Policy(rules, lifetime=3600.0, levels=LEVELS), clock)
    allowed = reauth.check_token(token(), "pay")
    assert isinstance(allowed, Allowed)
    assert allowed.reason is AllowReason.FRESH_GRANT
    assert allowed.valid_until == T0 - 10 + 3600
    assert reauth.check_token(token(auth_time=None), "read").ok
    low = reauth.check_token(token(acr=ACR_PWD, amr=("pwd",)), "pay")
    assert isinstance(low, ReauthRequired)
    assert (low.level, low.acr_values, low.stale) == ("mfa", (ACR_PHR, ACR_MFA), False)
    stale = reauth.check_token(token(auth_time=T0 - 400), "quick")
    assert isinstance(stale, ReauthRequired)
    assert stale.stale
    assert stale.lifetime == 300
    none = reauth.check_token(token(auth_time=None), "pay")
    assert isinstance(none, ReauthRequired)
    assert none.stale
    future = reauth.check_token(token(auth_time=T0 + 301), "pay")
    assert isinstance(future, ReauthRequired)
    skewed = reauth.check_token(token(auth_time=T0 + 20), "pay")  # the issuer's clock runs ahead
    assert isinstance(skewed, Allowed)
    assert skewed.valid_until == T0 + 3600


@given(st.floats(min_value=0, max_value=10_000), st.sampled_from([ACR_PWD, ACR_MFA, ACR_PHR, "x"]))
def test_token_decision_matches_session_decision(age: float, acr: str) -> None:
    """A token and a session grant with the same time, methods and level decide alike."""
    clock = SettableClock(T0)
    reauth, store = reauth_for(policy(pay=Rule(Sensitivity.SENSITIVE, level="mfa")), clock)
    level = LEVELS.for_acr(acr)
    store.put_grant(Grant("u", "s", frozenset({"oidc"}), T0 - age, level), T0 + 3600)
    oidc_subject = Subject("u", "s", Identity(LoginMethod.OIDC, "https://idp", "alice"))
    session = reauth.check(oidc_subject, "pay", "t")
    bearer = reauth.check_token(token(auth_time=T0 - age, acr=acr, amr=()), "pay")
    assert session.ok == bearer.ok


def test_default_levels_are_usable() -> None:
    assert DEFAULT_LEVELS.names == ("password", "mfa", "phishing_resistant")
    assert DEFAULT_LEVELS.for_methods({"phr", "swk"}) == "phishing_resistant"


# stores keep the level -----------------------------------------------------------------


def test_sqlite_and_redis_keep_a_grants_level(tmp_path: Path) -> None:
    """Both serialise grants with to_dict: the level survives, and a grant without one
    comes back without one (the decision then reads its methods)."""
    leveled = Grant("u", "s1", frozenset({"oidc"}), T0, "mfa")
    plain = Grant("u", "s2", frozenset({"pwd", "otp"}), T0)
    stores: list[object] = [SQLStore.sqlite(tmp_path / "stepup.sqlite3")]
    redis_up = port_open("127.0.0.1", 6379)
    if redis_up:
        stores.append(RedisStore(REDIS_URL, prefix=f"stepup-test-{uuid.uuid4().hex}:"))
    elif os.environ.get("CI") == "true":
        pytest.fail("Redis is required under CI")
    for store in stores:
        try:
            store.put_grant(leveled, T0 + 3600)  # type: ignore[attr-defined]
            store.put_grant(plain, T0 + 3600)  # type: ignore[attr-defined]
            assert store.get_grant("u", "s1") == leveled  # type: ignore[attr-defined]
            assert store.get_grant("u", "s2") == plain  # type: ignore[attr-defined]
        finally:
            store.revoke_grants("u")  # type: ignore[attr-defined]
            store.close()  # type: ignore[attr-defined]
