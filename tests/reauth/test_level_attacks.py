"""Levels of assurance under attack in the core: what a grant proves is its signed level
or what its methods prove, never more; TOTP alone and recovery codes reach nothing; a
bound proof counts only at the level its rule asks for; a level lasts the rule lifetime."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stepup.adapters.storage.memory import MemoryStore
from stepup.assurance import DEFAULT_LEVELS, Level, Levels
from stepup.errors import ConfigurationError, MalformedInputError
from stepup.policy import Policy, Rule, Sensitivity
from stepup.reauth import Reauth, ReauthRequired
from stepup.records import Grant, Tenant
from stepup.subject import Identity, LoginMethod, Subject
from stepup.testing import SettableClock
from stepup.tokens import AccessToken
from stepup.transactions import transaction_digest

T0 = 1_700_000_000.0
ALICE = Subject("alice", "s1")
SSO = Subject("alice", "s1", Identity(LoginMethod.OIDC, "https://idp", "alice"))
LEVELS = Levels(
    (
        Level("password", acr=("urn:pwd",), methods=(("pwd",),)),
        Level("mfa", acr=("urn:mfa",), methods=(("pwd", "otp"),)),
        Level("phishing_resistant", acr=("urn:phr",), methods=(("phr",),)),
    )
)
RULES = {
    "pay": Rule(Sensitivity.SENSITIVE, lifetime=600.0, level="mfa"),
    "rotate": Rule(Sensitivity.SENSITIVE, lifetime=600.0, level="phishing_resistant"),
    "rename": Rule(Sensitivity.SENSITIVE, lifetime=600.0, level="password"),
    "password_only": Rule(Sensitivity.SENSITIVE, lifetime=600.0, methods=frozenset({"pwd"})),
    "wipe": Rule(Sensitivity.CRITICAL, lifetime=300.0, level="mfa", bind_transaction=True),
}
WIPE = transaction_digest("wipe", {"disk": "d1"})


def _reauth(clock: SettableClock | None = None) -> Reauth:
    store = MemoryStore()
    store.put_tenant(Tenant("t", {"feature_flags": {"sensitive_actions_reauth": True}}))
    return Reauth(store, Policy(RULES, levels=LEVELS), clock=clock or SettableClock(T0))


def _allowed(reauth: Reauth, action: str, who: Subject = ALICE) -> bool:
    return reauth.check(who, action, "t").ok


def test_totp_alone_reaches_no_level_and_no_password_rule() -> None:
    reauth = _reauth()
    reauth.record(ALICE, ["otp"])
    for action in ("pay", "rotate", "rename", "password_only"):
        assert not _allowed(reauth, action), action
    assert DEFAULT_LEVELS.for_methods({"otp"}) is None


@pytest.mark.parametrize("methods", [["recovery"], ["pwd", "recovery"], ["recovery", "otp"]])
def test_recovery_codes_never_record_anything(methods: list[str]) -> None:
    reauth = _reauth()
    with pytest.raises(MalformedInputError, match="recovery"):
        reauth.record(ALICE, methods)
    with pytest.raises(MalformedInputError, match="recovery"):
        reauth.record(ALICE, methods, transaction=WIPE)
    assert reauth.store.get_grant("alice", "s1") is None  # type: ignore[attr-defined]
    assert not reauth.check(ALICE, "wipe", "t", transaction=WIPE).ok


def test_recovery_codes_cannot_be_asked_for() -> None:
    with pytest.raises(ConfigurationError):
        Rule(Sensitivity.SENSITIVE, methods=frozenset({"recovery"}))
    with pytest.raises(ConfigurationError):
        Level("backup", methods=(("recovery",),))


def test_a_token_whose_amr_names_recovery_proves_nothing_more() -> None:
    reauth = _reauth()
    token = AccessToken(
        subject="alice",
        issuer="https://idp",
        audience=("api",),
        expires_at=T0 + 300,
        auth_time=T0,
        acr=None,
        amr=("recovery",),
    )
    decision = reauth.check_token(token, "password_only")
    assert isinstance(decision, ReauthRequired)


@pytest.mark.parametrize("level", ["admin", "MFA", "", "mfa ", 3])
def test_a_level_the_policy_does_not_declare_is_never_recorded(level: Any) -> None:
    reauth = _reauth()
    with pytest.raises(MalformedInputError, match="level"):
        reauth.record(ALICE, ["pwd"], level=level)
    assert reauth.store.get_grant("alice", "s1") is None  # type: ignore[attr-defined]


def test_a_stored_grant_naming_an_undeclared_level_counts_for_its_methods_only() -> None:
    reauth = _reauth()
    reauth.store.put_grant(  # type: ignore[attr-defined]
        Grant("alice", "s1", frozenset({"pwd"}), T0, "root"), T0 + 600
    )
    assert _allowed(reauth, "rename")  # the password it proved
    assert not _allowed(reauth, "pay")
    decision = reauth.check(ALICE, "rotate", "t")
    assert isinstance(decision, ReauthRequired)
    assert decision.level == "phishing_resistant"


@given(
    who=st.sampled_from([ALICE, SSO]),
    signed=st.sampled_from([None, "password", "mfa", "phishing_resistant"]),
    methods=st.sets(st.sampled_from(["pwd", "otp", "phr", "oidc", "saml", "hwk"]), min_size=1),
)
def test_a_grant_proves_its_signed_level_or_its_methods_never_more(
    who: Subject, signed: str | None, methods: set[str]
) -> None:
    reauth = _reauth()
    reauth.record(who, methods, level=signed)
    proved = LEVELS.highest(signed, LEVELS.for_methods(methods))
    for action, need in (("rename", "password"), ("pay", "mfa"), ("rotate", "phishing_resistant")):
        if _allowed(reauth, action, who):
            assert LEVELS.meets(proved, need), (action, proved)
        if who is SSO and "oidc" in methods and LEVELS.meets(signed, need):
            assert _allowed(reauth, action, who)  # the provider's signed level counts


def test_a_high_level_lasts_only_the_rule_lifetime() -> None:
    clock = SettableClock(T0)
    reauth = _reauth(clock)
    reauth.record(SSO, ["oidc"], level="phishing_resistant")
    clock.advance(599)
    assert _allowed(reauth, "rotate", SSO)
    clock.advance(1)
    decision = reauth.check(SSO, "rotate", "t")
    assert isinstance(decision, ReauthRequired)
    assert decision.stale


@pytest.mark.parametrize(
    ("who", "methods", "level", "allowed"),
    [
        (ALICE, ["pwd"], None, False),
        (SSO, ["oidc"], "password", False),
        (SSO, ["oidc"], None, False),
        (ALICE, ["pwd", "otp"], None, True),
        (SSO, ["oidc"], "mfa", True),
        (ALICE, ["phr"], None, True),
    ],
)
def test_a_bound_proof_counts_only_at_its_rule_level_and_once(
    who: Subject, methods: list[str], level: str | None, allowed: bool
) -> None:
    reauth = _reauth()
    signed = WIPE if "phr" in methods else None  # a passkey signed the digest
    reauth.record(who, methods, level=level, transaction=WIPE, signed=signed)
    first = reauth.check(who, "wipe", "t", transaction=WIPE)
    assert first.ok == allowed
    if not first.ok:
        assert isinstance(first, ReauthRequired)
        assert (first.level, first.transaction) == ("mfa", WIPE)
    assert not reauth.check(who, "wipe", "t", transaction=WIPE).ok  # spent either way


def test_an_ordinary_high_level_grant_never_satisfies_a_bound_rule() -> None:
    reauth = _reauth()
    reauth.record(SSO, ["oidc"], level="phishing_resistant")
    assert _allowed(reauth, "rotate", SSO)
    decision = reauth.check(SSO, "wipe", "t", transaction=WIPE)
    assert isinstance(decision, ReauthRequired)
    assert decision.transaction == WIPE


@pytest.mark.parametrize("methods", [["phr"], ["phr", "hwk", "user"], ["swk"], ["pwd", "user"]])
def test_a_passkey_proof_for_a_transaction_needs_the_digest_it_signed(methods: list[str]) -> None:
    reauth = _reauth()
    with pytest.raises(MalformedInputError, match="signed"):
        reauth.record(ALICE, methods, transaction=WIPE)
    other = transaction_digest("wipe", {"disk": "d2"})
    with pytest.raises(MalformedInputError, match="signed"):
        reauth.record(ALICE, methods, transaction=WIPE, signed=other)
    assert not reauth.check(ALICE, "wipe", "t", transaction=WIPE).ok  # nothing recorded
    reauth.record(ALICE, methods)  # an unbound passkey proof needs no digest


PASSKEY_ONLY_WIPE = {
    "wipe": Rule(Sensitivity.CRITICAL, lifetime=300.0, accept=(("phr",),), bind_transaction=True),
    "wipe_level": Rule(
        Sensitivity.CRITICAL, lifetime=300.0, level="phishing_resistant", bind_transaction=True
    ),
}


@pytest.mark.parametrize("action", sorted(PASSKEY_ONLY_WIPE))
def test_an_unsigned_passkey_grant_never_joins_a_transaction_proof(action: str) -> None:
    # A plain passkey re-authentication (its assertion signed no digest), then a password
    # for the transaction moments later: the proof is the password's alone, so a rule
    # that needs the passkey to have confirmed the transaction still asks for it.
    clock = SettableClock(T0)
    store = MemoryStore()
    store.put_tenant(Tenant("t", {"feature_flags": {"sensitive_actions_reauth": True}}))
    reauth = Reauth(store, Policy(PASSKEY_ONLY_WIPE, levels=LEVELS), clock=clock)
    digest = transaction_digest(action, {"disk": "d1"})
    reauth.record(ALICE, ["phr", "hwk", "user", "mfa"], level="phishing_resistant")
    clock.advance(60)
    proof = reauth.record(ALICE, ["pwd"], transaction=digest)
    assert proof.methods == {"pwd"}
    assert proof.level is None
    assert not reauth.check(ALICE, action, "t", transaction=digest).ok
    # The passkey that signs this digest confirms it.
    reauth.record(ALICE, ["phr", "hwk", "user", "mfa"], transaction=digest, signed=digest)
    assert reauth.check(ALICE, action, "t", transaction=digest).ok


@pytest.mark.parametrize(
    ("earlier", "level"),
    [(["pwd"], None), (["oidc"], "phishing_resistant"), (["oidc"], "mfa"), (["pwd", "otp"], "mfa")],
)
def test_a_transaction_proof_takes_nothing_from_the_sessions_grant(
    earlier: list[str], level: str | None
) -> None:
    """The session's grant confirmed no digest (a provider's login, however strong its
    level, was for no target): a code given for the transaction minutes later is the
    proof's only method, and a rule that needs more for this transaction asks again."""
    reauth = _reauth()
    who = SSO if "oidc" in earlier else ALICE
    reauth.record(who, earlier, level=level)
    proof = reauth.record(who, ["otp"], transaction=WIPE)
    assert proof.methods == {"otp"}
    assert proof.level is None
    assert not reauth.check(who, "wipe", "t", transaction=WIPE).ok
    # Everything the rule needs, proved for this transaction, confirms it.
    needed = ["oidc"] if who is SSO else ["pwd", "otp"]
    reauth.record(who, needed, level="mfa", transaction=WIPE)
    assert reauth.check(who, "wipe", "t", transaction=WIPE).ok


@pytest.mark.parametrize("at", ["1700000000", True, False, b"1", [1], None.__class__])
def test_record_refuses_a_time_that_is_no_number(at: Any) -> None:
    reauth = _reauth()
    with pytest.raises(MalformedInputError, match="Unix seconds"):
        reauth.record(ALICE, ["pwd"], authenticated_at=at)
    assert not _allowed(reauth, "rename")  # nothing recorded
