"""A rule's level decides what is offered: only alternatives whose proof reaches the
level, given what the user has (passkeys, TOTP, how they signed in); enrolment named
when nothing they have reaches it, a typed refusal when nothing could; and the offered
alternative, once taken, always satisfies the same check (no re-authentication loop)."""

from __future__ import annotations

import asyncio
import json

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from stepup.adapters.storage.memory import MemoryStore
from stepup.assurance import Level, Levels
from stepup.errors import ConfigurationError
from stepup.integrations.http import RequestInfo, decision_response
from stepup.policy import Policy, Rule, Sensitivity, askable
from stepup.reauth import (
    Allowed,
    AsyncReauth,
    Reauth,
    ReauthRequired,
    ReauthUnavailable,
    ReauthUnavailableError,
    UnavailableReason,
    required_methods,
)
from stepup.records import Credential, Passkey, Tenant
from stepup.subject import Identity, LoginMethod, Subject
from stepup.testing import SettableClock

T0 = 1_700_000_000.0
ACR = {"password": "urn:pwd", "mfa": "urn:mfa", "phishing_resistant": "urn:phr"}
REFEDS_MFA = "https://refeds.org/profile/mfa"
#: OIDC providers can assert every level; SAML ones up to mfa (no phishing-resistant
#: class ref), so a SAML session facing a phishing-resistant level needs a passkey.
LEVELS = Levels(
    (
        Level("password", acr=(ACR["password"],), saml=("urn:saml:pwd",), methods=(("pwd",),)),
        Level("mfa", acr=(ACR["mfa"],), saml=(REFEDS_MFA,), methods=(("pwd", "otp"),)),
        Level("phishing_resistant", acr=(ACR["phishing_resistant"],), methods=(("phr",),)),
    )
)
#: Providers that assert only the password level: an SSO user reaches mfa only with
#: what they enrol here (a passkey; TOTP needs a password they do not have).
PASSWORD_ONLY_PROVIDERS = Levels(
    (
        Level("password", acr=(ACR["password"],), saml=("urn:saml:pwd",), methods=(("pwd",),)),
        Level("mfa", methods=(("pwd", "otp"),)),
        Level("phishing_resistant", methods=(("phr",),)),
    )
)
SUBJECTS = {
    LoginMethod.PASSWORD: Subject("u", "s"),
    LoginMethod.OIDC: Subject("u", "s", Identity(LoginMethod.OIDC, "https://idp", "u")),
    LoginMethod.SAML: Subject("u", "s", Identity(LoginMethod.SAML, "https://saml-idp", "u")),
}


def _passkey(*, synced: bool, n: int = 1) -> Passkey:
    return Passkey(
        user_id="u",
        credential_id=f"cred-{n}",
        credential_data="AAAA",
        name="Key",
        sign_count=0,
        backup_eligible=synced,
        backup_state=synced,
        user_verified=True,
        created_at=1.0,
        transports=(),
    )


def _setup(policy: Policy) -> tuple[Reauth, MemoryStore, SettableClock]:
    store = MemoryStore()
    store.put_tenant(Tenant("t", {"feature_flags": {"sensitive_actions_reauth": True}}))
    clock = SettableClock(T0)
    return Reauth(store, policy, clock=clock), store, clock


def _take(reauth: Reauth, subject: Subject, decision: ReauthRequired, store: MemoryStore) -> None:
    """Do what the page asks (``decision.methods``) and record what that proves: exactly
    the offered methods, with the level a federated provider signs when it was asked for
    the decision's acr values (OIDC) or the level's class refs (SAML)."""
    levels = reauth.policy.levels
    assert levels is not None
    methods = set(decision.methods)
    level = None
    if "oidc" in methods and decision.acr_values:
        level = levels.for_acr(decision.acr_values[-1])  # the least the provider may give
    if "saml" in methods:
        rule_level = reauth.policy.rule_for("act").level
        refs = levels.saml_class_refs(rule_level) if rule_level else ()
        level = levels.highest(level, levels.for_saml(refs[0]) if refs else None)
    passkey = {"phr", "hwk", "swk", "user"} & methods
    if passkey:
        # The assertion proves what a registered passkey proves, and user verification.
        usable = [p for p in store.list_passkeys("u") if (p.methods | {"user"}) >= passkey]
        methods |= usable[0].methods | {"user", "mfa"}
    reauth.record(subject, sorted(methods), level=level)


def _enrol(store: MemoryStore, enrol: tuple[str, ...]) -> None:
    if "otp" in enrol:
        store.put_credential(Credential("u", "totp-u", "sealed", confirmed=True))
    if {"phr", "hwk", "swk", "user"} & set(enrol):
        store.add_passkey(_passkey(synced="swk" in enrol, n=2), 10)


_TOKENS = st.sampled_from(["primary", "pwd", "oidc", "otp", "phr", "hwk", "swk"])
_ACCEPT = st.lists(st.frozensets(_TOKENS, min_size=1, max_size=2), min_size=1, max_size=3)


@st.composite
def _rules(draw: st.DrawFn) -> Rule:
    level = draw(st.sampled_from([None, "password", "mfa", "phishing_resistant"]))
    shape = draw(st.sampled_from(["level", "accept", "second_factor", "methods"]))
    if shape == "accept":
        accept = draw(_ACCEPT)
        assume(len({frozenset(a) for a in accept}) == len(accept))
        assume(not any({"hwk", "swk"} <= a for a in accept))  # no one passkey is both
        return Rule(
            Sensitivity.SENSITIVE, accept=tuple(tuple(sorted(a)) for a in accept), level=level
        )
    if shape == "second_factor":
        return Rule(Sensitivity.SENSITIVE, second_factor=True, level=level)
    if shape == "methods":
        methods = draw(st.frozensets(st.sampled_from(["pwd", "oidc", "saml"]), min_size=1))
        return Rule(Sensitivity.SENSITIVE, methods=methods, level=level)
    return Rule(Sensitivity.SENSITIVE, level=level or "mfa")


@settings(max_examples=400, deadline=None)
@given(
    rule=_rules(),
    login=st.sampled_from(list(LoginMethod)),
    totp=st.sampled_from(["none", "unconfirmed", "confirmed"]),
    passkey=st.sampled_from(["none", "synced", "device"]),
    passkeys_on=st.booleans(),
    levels=st.sampled_from([LEVELS, PASSWORD_ONLY_PROVIDERS]),
)
def test_the_offered_alternative_once_taken_is_allowed(
    rule: Rule, login: LoginMethod, totp: str, passkey: str, passkeys_on: bool, levels: Levels
) -> None:
    """For every rule and everything a user may have: what is offered, once done, lets
    the same check through. Without enrolment: at once; with: after enrolling what the
    decision names. Otherwise the refusal is typed and says nothing could reach it."""
    try:
        policy = Policy({"act": rule}, lifetime=3600.0, passkeys=passkeys_on, levels=levels)
    except ConfigurationError:
        assume(False)  # a level nothing could reach is refused at start-up
        raise
    reauth, store, _ = _setup(policy)
    if totp != "none":
        store.put_credential(Credential("u", "totp-u", "sealed", confirmed=totp == "confirmed"))
    if passkey != "none":
        store.add_passkey(_passkey(synced=passkey == "synced"), 10)
    subject = SUBJECTS[login]
    decision = reauth.check(subject, "act", "t")
    if isinstance(decision, ReauthUnavailable):
        assert decision.reason is UnavailableReason.UNREACHABLE
        assert decision.level == rule.level
        assert reauth.offer(subject, "act").unreachable
        # Truly nothing this session has or could enrol reaches it; what is named does.
        assert rule.level is not None
        own = {"password": "pwd", "oidc": "oidc", "saml": "saml"}[login.value]
        primary = own if not rule.methods or own in rule.methods else sorted(rule.methods)[0]
        named = set(rule.methods or ()) | {t for a in rule.accept or () for t in a}
        for alternative in policy.alternatives_for(rule):
            resolved = {primary if t == "primary" else t for t in alternative}
            usable = resolved & {"pwd", "oidc", "saml"} <= {primary} | named
            usable = usable and askable(alternative)  # a passkey pair is a token's only
            assert not (usable and levels.reachable(resolved, rule.level))
        assert all(levels.reachable(a, rule.level) for a in decision.alternatives)
        return
    assert isinstance(decision, ReauthRequired)
    offer = reauth.offer(subject, "act")
    assert offer.methods == decision.methods
    # A rule without a level and one way only does not read enrolment in the decision
    # (the hot path stays as it was); the page's offer does.
    assert decision.enrol in {(), offer.enrol}
    if rule.level is not None or len(decision.alternatives) > 1:
        assert decision.enrol == offer.enrol
    if offer.enrol:
        _enrol(store, offer.enrol)
        decision = reauth.check(subject, "act", "t")
        assert isinstance(decision, ReauthRequired)
        assert not decision.enrol
    if rule.level is not None:
        # Only alternatives that reach the level are ever offered.
        assert all(levels.reachable(a, rule.level) for a in decision.alternatives)
    _take(reauth, subject, decision, store)
    again = reauth.check(subject, "act", "t")
    assert isinstance(again, Allowed), (decision, again)


def _policy(rule: Rule, *, passkeys: bool = False, levels: Levels = LEVELS) -> Policy:
    return Policy({"act": rule}, lifetime=3600.0, passkeys=passkeys, levels=levels)


def test_a_password_user_is_never_offered_the_password_alone_for_a_higher_level() -> None:
    """The loop this closes: the password was offered, recorded, then asked again."""
    reauth, store, _ = _setup(_policy(Rule(Sensitivity.SENSITIVE, level="mfa")))
    user = SUBJECTS[LoginMethod.PASSWORD]
    decision = reauth.check(user, "act", "t")
    assert isinstance(decision, ReauthRequired)
    assert ("pwd",) not in decision.alternatives
    assert decision.alternatives == (("phr",), ("otp", "pwd"))
    assert (decision.methods, decision.enrol, decision.needs_enrolment) == (
        ("otp", "pwd"),
        ("otp",),
        True,
    )
    offer = reauth.offer(user, "act")
    assert (offer.needs_enrolment, offer.enrol) == (True, ("otp",))
    store.add_passkey(_passkey(synced=True), 10)
    decision = reauth.check(user, "act", "t")
    assert isinstance(decision, ReauthRequired)
    assert (decision.methods, decision.enrol) == (("phr",), ())
    assert required_methods(user, reauth.policy.rule_for("act"), reauth.policy) == ("phr",)


def test_a_phishing_resistant_level_names_a_passkey_to_enrol() -> None:
    reauth, _, _ = _setup(_policy(Rule(Sensitivity.CRITICAL, level="phishing_resistant")))
    user = SUBJECTS[LoginMethod.PASSWORD]
    decision = reauth.check(user, "act", "t")
    assert isinstance(decision, ReauthRequired)
    assert (decision.methods, decision.enrol) == (("phr",), ("phr",))
    body = decision_response(
        decision, RequestInfo("POST", "/x", accept="application/json"), reauth_url="/reauth"
    )
    assert body is not None
    assert json.loads(body.body)["enrol"] == ["phr"]


def test_an_sso_user_goes_back_to_the_provider_never_to_a_password() -> None:
    """A level's method sets name ``pwd``: an OIDC user (no password here) with TOTP is
    sent to the provider, with the acr values that reach the level, strongest first."""
    reauth, store, _ = _setup(_policy(Rule(Sensitivity.SENSITIVE, level="mfa")))
    store.put_credential(Credential("u", "totp-u", "sealed", confirmed=True))
    carol = SUBJECTS[LoginMethod.OIDC]
    decision = reauth.check(carol, "act", "t")
    assert isinstance(decision, ReauthRequired)
    assert decision.methods == ("oidc",)
    assert decision.acr_values == ("urn:phr", "urn:mfa")
    reauth.record(carol, ["oidc"], level="mfa")
    assert reauth.check(carol, "act", "t").ok


def test_the_acr_values_are_asked_for_even_when_only_the_time_is_missing() -> None:
    """Otherwise a federated re-authentication after a stale mfa grant asks for no level,
    comes back at a lower one, and is asked again."""
    reauth, _, clock = _setup(_policy(Rule(Sensitivity.SENSITIVE, level="mfa")))
    carol = SUBJECTS[LoginMethod.OIDC]
    reauth.record(carol, ["oidc"], level="mfa")
    clock.advance(3600)
    decision = reauth.check(carol, "act", "t")
    assert isinstance(decision, ReauthRequired)
    assert (decision.level, decision.stale) == ("", True)
    assert decision.acr_values == ("urn:phr", "urn:mfa")


def test_nothing_reaches_the_level_is_a_typed_refusal_not_a_loop() -> None:
    """A level only a provider's acr proves: a password session cannot reach it, whatever
    it enrols; the refusal names the level and what would reach it."""
    levels = Levels((Level("basic", methods=(("pwd",),)), Level("high", acr=("urn:high",))))
    reauth, _, _ = _setup(_policy(Rule(Sensitivity.SENSITIVE, level="high"), levels=levels))
    user = SUBJECTS[LoginMethod.PASSWORD]
    decision = reauth.check(user, "act", "t")
    assert decision == ReauthUnavailable("act", UnavailableReason.UNREACHABLE, "high", (("oidc",),))
    assert reauth.offer(user, "act").unreachable
    with pytest.raises(ReauthUnavailableError, match="level 'high'"):
        reauth.require(user, "act", "t")
    response = decision_response(
        decision, RequestInfo("POST", "/x", accept="application/json"), reauth_url="/reauth"
    )
    assert response is not None
    assert response.status == 403
    assert b'"reauth_unreachable"' in response.body
    # An OIDC session reaches it through its provider.
    assert isinstance(reauth.check(SUBJECTS[LoginMethod.OIDC], "act", "t"), ReauthRequired)


def test_a_level_no_alternative_can_reach_is_refused_at_start_up() -> None:
    levels = Levels((Level("basic", methods=(("pwd",),)), Level("high", methods=(("phr",),))))
    rule = Rule(Sensitivity.SENSITIVE, accept=(("primary", "otp"),), level="high")
    with pytest.raises(ConfigurationError, match="can reach level 'high'"):
        _policy(rule, levels=levels)
    # Accepting a passkey makes it reachable.
    _policy(
        Rule(Sensitivity.SENSITIVE, accept=(("phr",), ("primary",)), level="high"), levels=levels
    )


@settings(max_examples=60, deadline=None)
@given(
    rule=_rules(),
    login=st.sampled_from(list(LoginMethod)),
    totp=st.booleans(),
    passkey=st.sampled_from(["none", "synced", "device"]),
)
def test_sync_and_async_decide_and_offer_alike(
    rule: Rule, login: LoginMethod, totp: bool, passkey: str
) -> None:
    """One flow: the async Reauth gives the same decision and offer for level rules."""
    try:
        policy = Policy({"act": rule}, lifetime=3600.0, passkeys=True, levels=LEVELS)
    except ConfigurationError:
        assume(False)
        raise
    reauth, store, clock = _setup(policy)
    if totp:
        store.put_credential(Credential("u", "totp-u", "sealed", confirmed=True))
    if passkey != "none":
        store.add_passkey(_passkey(synced=passkey == "synced"), 10)
    asynchronous = AsyncReauth(store, policy, clock=clock)
    subject = SUBJECTS[login]

    async def both() -> tuple[object, object]:
        return await asynchronous.check(subject, "act", "t"), await asynchronous.offer(
            subject, "act"
        )

    assert asyncio.run(both()) == (reauth.check(subject, "act", "t"), reauth.offer(subject, "act"))


def test_an_sso_user_whose_provider_cannot_assert_the_level_is_asked_for_a_passkey() -> None:
    """Not for TOTP: ``pwd + otp`` needs a password an SSO user does not have here."""
    policy = _policy(Rule(Sensitivity.SENSITIVE, level="mfa"), levels=PASSWORD_ONLY_PROVIDERS)
    reauth, store, _ = _setup(policy)
    store.put_credential(Credential("u", "totp-u", "sealed", confirmed=True))
    carol = SUBJECTS[LoginMethod.OIDC]
    decision = reauth.check(carol, "act", "t")
    assert isinstance(decision, ReauthRequired)
    assert (decision.alternatives, decision.methods, decision.enrol) == (
        (("phr",),),
        ("phr",),
        ("phr",),
    )
    # A password user has both ways; with TOTP confirmed, TOTP is offered.
    decision = reauth.check(SUBJECTS[LoginMethod.PASSWORD], "act", "t")
    assert isinstance(decision, ReauthRequired)
    assert (decision.methods, decision.enrol) == (("otp", "pwd"), ())
