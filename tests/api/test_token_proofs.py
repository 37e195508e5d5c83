"""What a bearer token proves, and what its challenge asks for.

- An ``acr`` stands for an alternative only when its level accounts for every method the
  alternative names: a password-level ``acr`` never stands for a second factor, however
  the installation's levels are declared.
- The RFC 9470 challenge names only ``acr`` values that would satisfy the rule, never the
  token's own, and none at all when no ``acr`` would (only ``max_age``).
- A token's ``amr`` is read as RFC 8176 defines it: ``user`` is a presence test, not
  stepup's user verification.
"""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from api.tokens_support import parse_challenge
from stepup.adapters.storage.memory import MemoryStore
from stepup.assurance import Level, Levels
from stepup.errors import ConfigurationError
from stepup.integrations.bearer import token_decision_response
from stepup.integrations.http import RequestInfo, step_up_challenge
from stepup.policy import Policy, Rule, Sensitivity
from stepup.reauth import Allowed, Reauth, ReauthRequired
from stepup.records import Tenant
from stepup.subject import Identity, LoginMethod, Subject
from stepup.testing import SettableClock
from stepup.tokens import AccessToken
from stepup.twofactor import Channel

T0 = 1_700_000_000.0
CLIENT = RequestInfo("POST", "/api", authorization="Bearer x")
#: No level declares a method set with ``otp``: the reviewer's configuration.
NO_OTP_LEVEL = Levels(
    (
        Level("password", acr=("urn:pwd",), methods=(("pwd",),)),
        Level("phishing_resistant", acr=("urn:phr",), methods=(("phr",),)),
    )
)
SECOND_FACTOR_RULES = {
    "vault.open": Rule(Sensitivity.CRITICAL, lifetime=300.0, second_factor=True),
    "pay": Rule(Sensitivity.SENSITIVE, accept=(("primary", "otp"),)),
}


def token(
    acr: str | None = None,
    amr: tuple[str, ...] = (),
    age: float | None = 10.0,
) -> AccessToken:
    return AccessToken(
        issuer="https://idp",
        subject="alice",
        audience=("https://api",),
        expires_at=T0 + 600,
        auth_time=None if age is None else T0 - age,
        acr=acr,
        amr=amr,
    )


def reauth(rules: dict[str, Rule], levels: Levels | None) -> Reauth:
    return Reauth(MemoryStore(), Policy(rules, levels=levels), clock=SettableClock(T0))


# 1. An acr stands for an alternative only when its level accounts for it -----------


@pytest.mark.parametrize("action", sorted(SECOND_FACTOR_RULES))
def test_a_password_acr_never_stands_for_a_second_factor(action: str) -> None:
    """The token's proof is the session's: a password; both are refused."""
    decide = reauth(SECOND_FACTOR_RULES, NO_OTP_LEVEL)
    decision = decide.check_token(token("urn:pwd", ("pwd",)), action)
    assert isinstance(decision, ReauthRequired)
    # No acr would do (no level accounts for otp): only a new authentication proving it.
    assert (decision.acr_values, decision.stale) == ((), False)
    assert decision.channel is Channel.API
    assert "acr_values" not in step_up_challenge(decision)
    # The amr proves the second factor: allowed.
    assert isinstance(decide.check_token(token("urn:pwd", ("pwd", "otp")), action), Allowed)
    # The same proof in an OIDC session is refused too.
    store = MemoryStore()
    store.put_tenant(Tenant("t", {"feature_flags": {"sensitive_actions_reauth": True}}))
    sessions = Reauth(store, decide.policy, clock=decide.clock)
    carol = Subject("alice", "s1", Identity(LoginMethod.OIDC, provider="idp"))
    sessions.record(carol, ["oidc"], level="password")
    assert not sessions.check(carol, action, "t").ok


def test_a_stronger_acr_than_the_level_that_names_otp_stands_for_it() -> None:
    """Levels are ordered: a phishing-resistant acr is at least an mfa one, whose method
    set names pwd + otp."""
    levels = Levels(
        (
            Level("password", acr=("urn:pwd",), methods=(("pwd",),)),
            Level("mfa", acr=("urn:mfa",), methods=(("pwd", "otp"),)),
            Level("phishing_resistant", acr=("urn:phr",), methods=(("phr",),)),
        )
    )
    decide = reauth(SECOND_FACTOR_RULES, levels)
    for acr in ("urn:mfa", "urn:phr"):
        assert isinstance(decide.check_token(token(acr), "pay"), Allowed)
    refused = decide.check_token(token("urn:pwd", ("pwd",)), "pay")
    assert isinstance(refused, ReauthRequired)
    assert (refused.level, refused.acr_values) == ("mfa", ("urn:phr", "urn:mfa"))


@pytest.mark.parametrize("action", sorted(SECOND_FACTOR_RULES))
@pytest.mark.parametrize("acr", [None, "urn:pwd"])
def test_a_level_worked_out_from_amr_never_stands_for_a_code(action: str, acr: str | None) -> None:
    """A passkey in the token's amr (no acr that signs a level naming a code) is not the
    code the rule asks for, as a session's passkey is not: the level amr reaches
    (phishing resistant, above mfa) is no signed acr."""
    levels = Levels(
        (
            Level("password", acr=("urn:pwd",), methods=(("pwd",),)),
            Level("mfa", acr=("urn:mfa",), methods=(("pwd", "otp"),)),
            Level("phishing_resistant", acr=("urn:phr",), methods=(("phr",),)),
        )
    )
    decide = reauth(SECOND_FACTOR_RULES, levels)
    refused = decide.check_token(token(acr, ("pwd", "phr")), action)
    assert isinstance(refused, ReauthRequired)
    assert refused.acr_values == ("urn:phr", "urn:mfa")
    assert isinstance(decide.check_token(token(acr, ("pwd", "otp")), action), Allowed)
    # The same proof in a password session is refused too.
    store = MemoryStore()
    store.put_tenant(Tenant("t", {"feature_flags": {"sensitive_actions_reauth": True}}))
    sessions = Reauth(store, decide.policy, clock=decide.clock)
    alice = Subject("alice", "s1")
    sessions.record(alice, ["pwd", "phr", "hwk", "user"])
    assert not sessions.check(alice, action, "t").ok


def test_an_acr_only_level_stands_for_what_a_weaker_level_names() -> None:
    """A level proved only by its acr (no method sets) accounts for what the levels under
    it name, and no more."""
    levels = Levels(
        (Level("password", acr=("urn:pwd",), methods=(("pwd",),)), Level("high", acr=("urn:hi",)))
    )
    decide = reauth(SECOND_FACTOR_RULES, levels)
    assert not decide.check_token(token("urn:hi"), "pay").ok
    assert isinstance(decide.check_token(token("urn:hi", ("otp",)), "pay"), Allowed)


_METHOD_SETS = st.lists(
    st.sets(st.sampled_from(["pwd", "otp", "oidc", "phr", "hwk", "user"]), min_size=1).map(
        lambda s: tuple(sorted(s))
    ),
    max_size=2,
)


@st.composite
def _levels(draw: st.DrawFn) -> Levels:
    count = draw(st.integers(1, 4))
    result = []
    named: set[tuple[str, ...]] = set()  # a set of methods proves one level only
    for index in range(count):
        methods = tuple(m for m in draw(_METHOD_SETS) if tuple(sorted(set(m))) not in named)
        named.update(tuple(sorted(set(m))) for m in methods)
        acr = (f"urn:{index}",) if draw(st.booleans()) or not methods else ()
        result.append(Level(f"l{index}", acr=acr, methods=methods))
    return Levels(result)


_AMR = st.lists(st.sampled_from(["pwd", "otp", "phr", "hwk", "swk", "user", "pin", "sms"]))
_NO_OTP_AMR = st.lists(st.sampled_from(["pwd", "phr", "hwk", "sms"]))


@given(
    levels=_levels(), amr=_NO_OTP_AMR, pick=st.integers(0, 5), action=st.sampled_from(["v", "p"])
)
def test_no_acr_waives_a_second_factor_no_level_names(
    levels: Levels, amr: list[str], pick: int, action: str
) -> None:
    """Whatever the levels: a token whose amr has no otp is allowed for a rule that asks
    for one only when the level its acr signs is at least one that names otp beside a
    sign-in method (a level worked out from amr never stands for a code it lacks)."""
    rules = {
        "v": Rule(Sensitivity.SENSITIVE, second_factor=True),
        "p": Rule(Sensitivity.SENSITIVE, accept=(("primary", "otp"),)),
    }
    acrs = [None, *(value for level in levels for value in level.acr)]
    acr = acrs[pick % len(acrs)]
    decision = reauth(rules, levels).check_token(token(acr, tuple(amr)), action)
    if not decision.ok:
        return
    proved = levels.for_acr(acr)
    assert proved is not None
    assert any(
        "otp" in methods and set(methods) & {"pwd", "oidc", "saml"}
        for name in levels.names[: levels.rank(proved) + 1]
        for methods in levels.level(name).methods
    )


# 3. The challenge names only acr values that would satisfy --------------------------


def test_a_level_without_acr_values_gets_max_age_not_the_rules_own_values() -> None:
    """The reviewer's case: a passkey is needed (phishing_resistant, which has no acr);
    the rule's own level's values (urn:pwd, urn:mfa), which the token may already carry,
    would send the client round in a loop."""
    levels = Levels(
        (
            Level("password", acr=("urn:pwd",), methods=(("pwd",),)),
            Level("mfa", acr=("urn:mfa",), methods=(("pwd", "otp"),)),
            Level("phishing_resistant", methods=(("phr",),)),
        )
    )
    rule = Rule(Sensitivity.CRITICAL, lifetime=300.0, accept=(("phr",),), level="password")
    decide = reauth({"wire": rule}, levels)
    for acr in ("urn:pwd", "urn:mfa"):
        decision = decide.check_token(token(acr, age=5), "wire")
        assert isinstance(decision, ReauthRequired)
        assert (decision.level, decision.acr_values) == ("phishing_resistant", ())
        response = token_decision_response(decision, CLIENT)
        assert response is not None
        _, params = parse_challenge(response.headers["WWW-Authenticate"])
        assert "acr_values" not in params
        assert params["max_age"] == "0"  # recent: a new authentication, however recent
    assert isinstance(decide.check_token(token("urn:pwd", ("phr",)), "wire"), Allowed)


def test_a_token_without_auth_time_that_met_the_level_is_asked_for_it_again() -> None:
    levels = Levels(
        (
            Level("password", acr=("urn:pwd",), methods=(("pwd",),)),
            Level("mfa", acr=("urn:mfa",), methods=(("pwd", "otp"),)),
        )
    )
    decide = reauth({"pay": Rule(Sensitivity.SENSITIVE, level="mfa")}, levels)
    decision = decide.check_token(token("urn:mfa", age=None), "pay")
    assert isinstance(decision, ReauthRequired)
    assert decision.stale
    assert (decision.level, decision.acr_values) == ("mfa", ("urn:mfa",))  # only old
    assert step_up_challenge(decision).endswith('acr_values="urn:mfa", max_age="21600"')


@given(
    levels=_levels(),
    amr=_AMR,
    pick=st.integers(0, 5),
    age=st.sampled_from([None, 5.0, 400.0]),
    accept=st.lists(
        st.sets(st.sampled_from(["primary", "otp", "phr", "hwk", "user"]), min_size=1).map(
            lambda s: tuple(sorted(s))
        ),
        min_size=1,
        max_size=3,
        unique_by=frozenset,
    ),
    level=st.integers(-1, 3),
)
def test_every_acr_value_named_would_satisfy_and_none_is_the_tokens_own(
    levels: Levels,
    amr: list[str],
    pick: int,
    age: float | None,
    accept: list[tuple[str, ...]],
    level: int,
) -> None:
    """Following the challenge works, and a recent token is never named what it already
    has (a client would loop); with no value to name, it asks for a new authentication:
    now (``max_age`` 0) for a recent token, within the lifetime for a stale one, which
    may be named its own ``acr`` (it satisfied, it is only old)."""
    minimum = levels.names[level] if 0 <= level < len(levels.names) else None
    rule = Rule(Sensitivity.CRITICAL, lifetime=300.0, accept=accept, level=minimum)
    try:
        decide = reauth({"act": rule}, levels)
    except ConfigurationError:
        assume(False)  # a level nothing the rule accepts can reach: refused at start-up
    acrs = [None, *(value for level in levels for value in level.acr)]
    acr = acrs[pick % len(acrs)]
    decision = decide.check_token(token(acr, tuple(amr), age), "act")
    if decision.ok:
        return
    assert isinstance(decision, ReauthRequired)
    if not decision.stale:
        assert acr not in decision.acr_values
    for value in decision.acr_values:
        assert isinstance(decide.check_token(token(value, tuple(amr)), "act"), Allowed)
    _, params = parse_challenge(step_up_challenge(decision))
    if decision.stale:
        assert params["max_age"] == "300"
    elif "acr_values" not in params:
        assert params["max_age"] == "0"


# 4. amr is read as RFC 8176 defines it ------------------------------------------------


@pytest.mark.parametrize(
    ("amr", "allowed"),
    [
        (("hwk", "user"), False),  # RFC 8176 user: presence, not verification
        (("swk", "user"), False),
        (("user",), False),
        (("hwk",), False),
        (("hwk", "pin"), True),  # a PIN that unlocks the key: the user verified
        (("hwk", "fpt"), True),
        (("hwk", "face"), True),
        (("pin", "fpt"), False),  # verification of nothing: no key beside it
    ],
)
def test_amr_user_is_presence_not_verification(amr: tuple[str, ...], allowed: bool) -> None:
    rules = {"keys.rotate": Rule(Sensitivity.CRITICAL, lifetime=300.0, accept=(("hwk", "user"),))}
    decision = reauth(rules, None).check_token(token(None, amr, age=5), "keys.rotate")
    assert decision.ok is allowed


@pytest.mark.parametrize(
    ("amr", "allowed"),
    [
        (("pwd", "otp"), True),
        (("pwd", "sms"), False),  # an SMS code is not a TOTP code
        (("pwd", "tel"), False),
        (("pwd", "mca"), False),
    ],
)
def test_only_otp_proves_otp(amr: tuple[str, ...], allowed: bool) -> None:
    decision = reauth(SECOND_FACTOR_RULES, None).check_token(token(None, amr), "pay")
    assert decision.ok is allowed


def test_an_issuers_saml_in_amr_proves_no_saml_sign_in() -> None:
    rules = {"act": Rule(Sensitivity.SENSITIVE, methods=frozenset({"saml"}))}
    decide = reauth(rules, None)
    assert not decide.check_token(token(None, ("saml",)), "act").ok


#: "Password and TOTP, or a passkey with user verification": one level, two ways.
MIXED = Levels(
    (
        Level("password", acr=("urn:pwd",), methods=(("pwd",),)),
        Level("mfa", acr=("urn:mfa",), methods=(("pwd", "otp"), ("phr", "user"))),
        Level("phishing_resistant", acr=("urn:phr",), methods=(("phr",),)),
    )
)


@pytest.mark.parametrize("amr", [(), ("pwd", "otp")])
@pytest.mark.parametrize("accept", [(("phr", "user"),), (("primary", "otp"),)])
def test_an_acr_of_several_ways_stands_for_none_of_them_alone(
    accept: tuple[tuple[str, ...], ...], amr: tuple[str, ...]
) -> None:
    """``acr=mfa`` says one of the level's sets was proved, not which: it stands for
    neither a passkey alone nor password and TOTP alone; only the ``amr`` can prove one."""
    reauth = Reauth(
        MemoryStore(),
        Policy({"wire.send": Rule(Sensitivity.CRITICAL, accept=accept)}, levels=MIXED),
        clock=SettableClock(T0),
    )
    decision = reauth.check_token(token("urn:mfa", amr), "wire.send")
    proved_by_amr = accept == (("primary", "otp"),) and amr == ("pwd", "otp")
    assert isinstance(decision, Allowed) is proved_by_amr


def test_a_single_way_level_still_stands_for_its_way() -> None:
    reauth = Reauth(
        MemoryStore(),
        Policy({"pay": Rule(Sensitivity.SENSITIVE, accept=(("phr",),))}, levels=MIXED),
        clock=SettableClock(T0),
    )
    assert isinstance(reauth.check_token(token("urn:phr"), "pay"), Allowed)
    assert isinstance(reauth.check_token(token("urn:mfa"), "pay"), ReauthRequired)
