"""API-key and message-injection requests are never asked for a second factor.

A rule with ``api_keys=True`` applies to them, but only with what needs nothing enrolled
(the sign-in method): never TOTP, never a passkey, never an enrolment. When only a second
factor would satisfy the rule the answer is a typed refusal
(``UnavailableReason.NON_INTERACTIVE``), not a request to re-authenticate. And only a
bearer-token (``Channel.API``) subject gets the RFC 9470 challenge, however an API key is
sent."""

from __future__ import annotations

import asyncio
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stepup.adapters.storage.memory import MemoryStore
from stepup.assurance import DEFAULT_LEVELS, Level, Levels
from stepup.integrations.http import RequestInfo, decision_response
from stepup.policy import Policy, Rule, Sensitivity
from stepup.reauth import (
    Allowed,
    AllowReason,
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
from stepup.twofactor import Channel

T0 = 1_700_000_000.0
KEYLESS = (Channel.API_KEY, Channel.MESSAGE_INJECTION)
SECOND_FACTORS = {"otp", "phr", "hwk", "swk", "user"}
LEVELS = Levels(
    (
        Level("password", acr=("urn:pwd",), methods=(("pwd",),)),
        Level("mfa", acr=("urn:mfa",), methods=(("pwd", "otp"),)),
        Level("phishing_resistant", methods=(("phr",),)),
    )
)
RULES = {
    "ssh_key.add": Rule(Sensitivity.SENSITIVE, api_keys=True, second_factor=True),
    "vault.open": Rule(Sensitivity.SENSITIVE, api_keys=True, level="mfa"),
    "wire": Rule(Sensitivity.CRITICAL, lifetime=300.0, api_keys=True, accept=(("phr",),)),
    "pay": Rule(Sensitivity.SENSITIVE, api_keys=True, accept=(("phr",), ("primary", "otp"))),
    "export": Rule(Sensitivity.SENSITIVE, api_keys=True, accept=(("phr",), ("primary",))),
    "keys.list": Rule(Sensitivity.SENSITIVE, api_keys=True),
    "keys.rotate": Rule(Sensitivity.SENSITIVE, api_keys=True, always=True, second_factor=True),
}
LOGINS = {
    LoginMethod.PASSWORD: Identity(LoginMethod.PASSWORD),
    LoginMethod.OIDC: Identity(LoginMethod.OIDC, "https://idp", "u", "corp"),
    LoginMethod.SAML: Identity(LoginMethod.SAML, "https://saml-idp", "u", "corp-saml"),
}


def _passkey() -> Passkey:
    return Passkey(
        user_id="u",
        credential_id="cred-1",
        credential_data="AAAA",
        name="Key",
        sign_count=0,
        backup_eligible=False,
        backup_state=False,
        user_verified=True,
    )


def _setup(
    *, passkeys: bool = False, totp: bool = False, key: bool = False, flag: bool = True
) -> tuple[Reauth, MemoryStore]:
    store = MemoryStore()
    store.put_tenant(Tenant("t", {"feature_flags": {"sensitive_actions_reauth": flag}}))
    if totp:
        store.put_credential(Credential("u", "totp-u", "sealed", confirmed=True))
    if key:
        store.add_passkey(_passkey(), 10)
    policy = Policy(RULES, lifetime=3600.0, passkeys=passkeys, levels=LEVELS)
    return Reauth(store, policy, clock=SettableClock(T0)), store


def _robot(channel: Channel, login: LoginMethod = LoginMethod.PASSWORD) -> Subject:
    return Subject("u", "key-1", LOGINS[login], channel)


@pytest.mark.parametrize("channel", KEYLESS)
@pytest.mark.parametrize("action", ["ssh_key.add", "vault.open", "wire", "keys.rotate"])
def test_a_rule_only_a_second_factor_satisfies_is_a_typed_refusal(
    channel: Channel, action: str
) -> None:
    reauth, _ = _setup(totp=True, key=True)
    decision = reauth.check(_robot(channel), action, "t")
    assert isinstance(decision, ReauthUnavailable)
    assert decision.reason is UnavailableReason.NON_INTERACTIVE
    # Nothing to offer but another way of signing in whose provider asserts the level.
    assert decision.alternatives == ((("oidc",),) if action == "vault.open" else ())
    with pytest.raises(ReauthUnavailableError, match="never asked for one"):
        reauth.require(_robot(channel), action, "t")
    response = decision_response(
        decision, RequestInfo("POST", "/api/x", accept="application/json"), reauth_url="/reauth"
    )
    assert response is not None
    assert response.status == 403  # no retry helps: not the store's 503
    body = json.loads(response.body)
    assert (body["error"], body["reason"]) == ("reauth_unreachable", "non_interactive")


@pytest.mark.parametrize("channel", KEYLESS)
@pytest.mark.parametrize("passkeys", [False, True])
def test_what_needs_nothing_enrolled_is_asked_for_and_nothing_else(
    channel: Channel, passkeys: bool
) -> None:
    """The user has TOTP and a passkey: a session would be offered the passkey; the API key
    is asked for the sign-in method, the one alternative without a second factor."""
    for action in ("export", "keys.list"):
        reauth, _ = _setup(passkeys=passkeys, totp=True, key=True)
        decision = reauth.check(_robot(channel), action, "t")
        assert isinstance(decision, ReauthRequired)
        assert (decision.methods, decision.alternatives, decision.enrol) == (
            ("pwd",),
            (("pwd",),),
            (),
        )
        assert decision.channel is channel
        reauth.record(_robot(channel), ["pwd"])
        assert reauth.check(_robot(channel), action, "t").ok


@pytest.mark.parametrize("channel", KEYLESS)
def test_the_tenant_flag_off_still_allows(channel: Channel) -> None:
    reauth, _ = _setup(flag=False)
    decision = reauth.check(_robot(channel), "ssh_key.add", "t")
    assert decision == Allowed("ssh_key.add", AllowReason.FLAG_OFF)
    # A rule applied whatever the flag is refused: only a second factor satisfies it.
    refused = reauth.check(_robot(channel), "keys.rotate", "t")
    assert isinstance(refused, ReauthUnavailable)
    assert refused.reason is UnavailableReason.NON_INTERACTIVE


def test_a_level_no_primary_reaches_for_this_sign_in_stays_unreachable() -> None:
    """A SAML user of a level that needs a passkey (no class ref asserts it): nothing this
    session could prove reaches it, as for a session; the alternatives name only what an
    API key could be asked for elsewhere (an OIDC sign-in, whose provider asserts mfa)."""
    levels = Levels(
        (
            Level("password", methods=(("pwd",),)),
            Level("mfa", acr=("urn:mfa",), methods=(("pwd", "otp"),)),
        )
    )
    policy = Policy({"act": Rule(Sensitivity.SENSITIVE, api_keys=True, level="mfa")}, levels=levels)
    store = MemoryStore()
    store.put_tenant(Tenant("t", {"feature_flags": {"sensitive_actions_reauth": True}}))
    reauth = Reauth(store, policy)
    saml = reauth.check(_robot(Channel.API_KEY, LoginMethod.SAML), "act", "t")
    assert saml == ReauthUnavailable("act", UnavailableReason.UNREACHABLE, "mfa", (("oidc",),))
    password = reauth.check(_robot(Channel.API_KEY), "act", "t")
    assert password == ReauthUnavailable(
        "act", UnavailableReason.NON_INTERACTIVE, "mfa", (("oidc",),)
    )
    oidc = reauth.check(_robot(Channel.API_KEY, LoginMethod.OIDC), "act", "t")
    assert isinstance(oidc, ReauthRequired)
    assert (oidc.methods, oidc.acr_values) == (("oidc",), ("urn:mfa",))


@pytest.mark.parametrize("first", ["robot", "session"])
def test_an_api_keys_plan_never_reaches_a_session(first: str) -> None:
    """Plans are kept per action and way of signing in: the channel is part of the key,
    whichever asks first."""
    reauth, _ = _setup(totp=True)
    robot, session = _robot(Channel.API_KEY), Subject("u", "s1")
    order = [robot, session] if first == "robot" else [session, robot]
    answers = {subject.channel: reauth.check(subject, "pay", "t") for subject in order}
    web, key = answers[Channel.WEB], answers[Channel.API_KEY]
    assert isinstance(web, ReauthRequired)
    assert web.methods == ("pwd", "otp")
    assert isinstance(key, ReauthUnavailable)
    assert key.reason is UnavailableReason.NON_INTERACTIVE
    assert reauth.offer(session, "pay").methods == ("pwd", "otp")
    robot_offer = reauth.offer(robot, "pay")
    assert robot_offer.unreachable
    assert not robot_offer.needs_enrolment


@pytest.mark.parametrize("channel", KEYLESS)
def test_required_methods_name_no_second_factor(channel: Channel) -> None:
    policy = Policy(RULES, passkeys=True, levels=LEVELS)
    robot = _robot(channel)
    assert required_methods(robot, policy.rule_for("export"), policy) == ("pwd",)
    assert required_methods(Subject("u", "s"), policy.rule_for("export"), policy) == ("phr",)


@given(
    channel=st.sampled_from(KEYLESS),
    login=st.sampled_from(list(LoginMethod)),
    action=st.sampled_from(sorted(RULES)),
    passkeys=st.booleans(),
    totp=st.booleans(),
    key=st.booleans(),
    granted=st.lists(st.sampled_from(["pwd", "oidc", "saml"]), max_size=2),
)
def test_never_a_second_factor_never_an_enrolment(
    channel: Channel,
    login: LoginMethod,
    action: str,
    passkeys: bool,
    totp: bool,
    key: bool,
    granted: list[str],
) -> None:
    """Whatever the rule, the sign-in, what the user has enrolled and what was proved:
    the decision asks for, offers and names no second factor, and sync and async agree."""
    reauth, store = _setup(passkeys=passkeys, totp=totp, key=key)
    robot = _robot(channel, login)
    if granted:
        reauth.record(robot, granted)
    decision = reauth.check(robot, action, "t")
    on_loop = asyncio.run(
        AsyncReauth(store, reauth.policy, clock=reauth.clock).check(robot, action, "t")
    )
    assert on_loop == decision
    if isinstance(decision, ReauthRequired):
        named = {token for alternative in decision.alternatives for token in alternative}
        assert not (set(decision.methods) | named) & SECOND_FACTORS
        assert decision.enrol == ()
        assert decision.channel is channel
        # What is asked for, once proved, allows the action (no loop).
        reauth.record(robot, decision.methods, level=_level(reauth, decision))
        assert reauth.check(robot, action, "t").ok
    elif isinstance(decision, ReauthUnavailable):
        assert decision.reason in {
            UnavailableReason.NON_INTERACTIVE,
            UnavailableReason.UNREACHABLE,
        }
        named = {token for alternative in decision.alternatives for token in alternative}
        assert not named & SECOND_FACTORS
    offer = reauth.offer(robot, action)
    assert not offer.needs_enrolment
    assert offer.enrol == ()


def _level(reauth: Reauth, decision: ReauthRequired) -> str | None:
    """The level a provider signs when asked for the decision's acr values."""
    levels = reauth.policy.levels
    assert levels is not None
    if decision.acr_values and "oidc" in decision.methods:
        return levels.for_acr(decision.acr_values[0])
    return None


def test_the_same_rules_still_ask_a_session_for_a_second_factor() -> None:
    """The exemption is the channel's, not the rule's: a web session facing the same
    rules is asked for TOTP or a passkey (and to enrol one)."""
    reauth, _ = _setup()
    session = Subject("u", "s1")
    second = reauth.check(session, "ssh_key.add", "t")
    assert isinstance(second, ReauthRequired)
    assert second.methods == ("pwd", "otp")
    level = reauth.check(session, "vault.open", "t")
    assert isinstance(level, ReauthRequired)
    assert level.enrol


@pytest.mark.parametrize("channel", KEYLESS)
@pytest.mark.parametrize("authorization", ["Bearer ak_live_1234", "bearer ak_live_1234", ""])
def test_an_api_key_never_gets_the_rfc_9470_challenge(channel: Channel, authorization: str) -> None:
    """An API key sent as ``Authorization: Bearer ak_...`` is no access token: no
    authorization server can step it up, so the answer is the JSON 401."""
    reauth, _ = _setup()
    decision = reauth.check(_robot(channel), "keys.list", "t")
    assert isinstance(decision, ReauthRequired)
    request = RequestInfo("POST", "/api/x", accept="application/json", authorization=authorization)
    response = decision_response(decision, request, reauth_url="/reauth")
    assert response is not None
    assert response.status == 401
    # RFC 9110 15.5.2: a 401 names a challenge; never RFC 9470's Bearer one here.
    assert response.headers["WWW-Authenticate"] == 'Session realm="stepup"'
    assert json.loads(response.body)["error"] == "reauth_required"


def test_only_a_bearer_token_subject_gets_the_rfc_9470_challenge() -> None:
    reauth, _ = _setup()
    request = RequestInfo("POST", "/api/x", authorization="Bearer abc")
    answers = {}
    for channel in Channel:
        decision = reauth.check(Subject("u", "s", channel=channel), "keys.list", "t")
        assert isinstance(decision, ReauthRequired)
        response = decision_response(decision, request, reauth_url="/reauth")
        assert response is not None
        answers[channel] = response.headers.get("WWW-Authenticate", "")
    assert answers[Channel.API].startswith('Bearer error="insufficient_user_authentication"')
    session = 'Session realm="stepup"'  # RFC 9110 15.5.2: every 401 names a challenge
    assert answers == {
        Channel.WEB: session,
        Channel.API: answers[Channel.API],
        Channel.API_KEY: session,
        Channel.MESSAGE_INJECTION: session,
    }


def test_default_levels_mfa_is_refused_to_an_api_key_not_asked() -> None:
    """The reviewer's case: ``level="mfa"`` under DEFAULT_LEVELS once asked an API key to
    enrol TOTP."""
    rule = Rule(Sensitivity.SENSITIVE, api_keys=True, level="mfa")
    policy = Policy({"vault.open": rule}, levels=DEFAULT_LEVELS)
    store = MemoryStore()
    store.put_tenant(Tenant("t", {"feature_flags": {"sensitive_actions_reauth": True}}))
    decision = Reauth(store, policy).check(_robot(Channel.API_KEY), "vault.open", "t")
    assert isinstance(decision, ReauthUnavailable)
    assert decision.reason is UnavailableReason.NON_INTERACTIVE
