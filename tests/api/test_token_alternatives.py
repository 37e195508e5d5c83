"""Bearer tokens against rules with alternatives: a token whose ``amr`` or ``acr``
satisfies any alternative is allowed, and the RFC 9470 challenge lists every ``acr``
value that would satisfy the rule, strongest first."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from stepup.adapters.storage.memory import MemoryStore
from stepup.assurance import Level, Levels
from stepup.integrations.bearer import token_decision_response
from stepup.integrations.http import RequestInfo, step_up_challenge
from stepup.policy import Policy, Rule, Sensitivity
from stepup.reauth import Allowed, Reauth, ReauthRequired
from stepup.testing import SettableClock
from stepup.tokens import AccessToken

T0 = 1_700_000_000.0
LEVELS = Levels(
    (
        Level("password", acr=("urn:pwd",), methods=(("pwd",),)),
        Level("mfa", acr=("urn:mfa", "urn:mfa:app"), methods=(("pwd", "otp"),)),
        Level("phishing_resistant", acr=("urn:phr",), methods=(("phr",),)),
    )
)
PASSKEY_OR_TOTP = Rule(Sensitivity.SENSITIVE, accept=(("primary", "otp"), ("phr",)))
RULES = {
    "pay": PASSKEY_OR_TOTP,
    "wire": Rule(Sensitivity.CRITICAL, lifetime=300.0, accept=(("phr",),)),
    "vault": Rule(Sensitivity.SENSITIVE, accept=(("primary", "otp"), ("phr",)), level="mfa"),
    "export": Rule(Sensitivity.SENSITIVE),  # with passkeys on: a passkey, or the sign-in
}
CLIENT = RequestInfo("POST", "/api", authorization="Bearer x")


def reauth(passkeys: bool = True) -> Reauth:
    policy = Policy(RULES, lifetime=3600.0, passkeys=passkeys, levels=LEVELS)
    return Reauth(MemoryStore(), policy, clock=SettableClock(T0))


def token(acr: str | None = None, amr: tuple[str, ...] = (), age: float = 10.0) -> AccessToken:
    return AccessToken(
        issuer="https://idp",
        subject="alice",
        audience=("https://api",),
        expires_at=T0 + 600,
        auth_time=T0 - age,
        acr=acr,
        amr=amr,
    )


def test_an_acr_that_reaches_an_alternatives_level_is_allowed() -> None:
    decide = reauth()
    assert isinstance(decide.check_token(token("urn:mfa"), "pay"), Allowed)  # primary + otp
    assert isinstance(decide.check_token(token("urn:mfa:app"), "pay"), Allowed)
    assert isinstance(decide.check_token(token("urn:phr"), "pay"), Allowed)  # the passkey
    assert isinstance(decide.check_token(token(None, ("pwd", "otp")), "pay"), Allowed)  # amr
    assert isinstance(decide.check_token(token(None, ("hwk", "phr")), "wire"), Allowed)
    assert isinstance(decide.check_token(token("urn:phr"), "wire"), Allowed)
    assert not decide.check_token(token("urn:mfa"), "wire").ok  # mfa is no passkey


def test_the_challenge_lists_every_acr_that_would_do_strongest_first() -> None:
    decision = reauth().check_token(token("urn:pwd", ("pwd",)), "pay")
    assert isinstance(decision, ReauthRequired)
    assert (decision.level, decision.stale) == ("mfa", False)
    assert decision.acr_values == ("urn:phr", "urn:mfa", "urn:mfa:app")
    assert decision.alternatives == (("phr",), ("oidc", "otp"))
    assert step_up_challenge(decision) == (
        'Bearer error="insufficient_user_authentication", '
        'error_description="A different authentication level is required", '
        'acr_values="urn:phr urn:mfa urn:mfa:app"'
    )
    wire = reauth().check_token(token("urn:mfa"), "wire")
    assert isinstance(wire, ReauthRequired)
    assert (wire.level, wire.acr_values) == ("phishing_resistant", ("urn:phr",))


def test_a_stale_token_that_satisfies_the_rule_is_asked_for_its_level_again() -> None:
    """Its own acr included (it satisfied, it is only old): a new authentication asked
    for no level could come back below it."""
    decision = reauth().check_token(token("urn:phr", age=400), "wire")
    assert isinstance(decision, ReauthRequired)
    assert (decision.level, decision.stale) == ("phishing_resistant", True)
    response = token_decision_response(decision, CLIENT)
    assert response is not None
    assert response.headers["WWW-Authenticate"] == (
        'Bearer error="insufficient_user_authentication", '
        'error_description="A more recent authentication is required", '
        'acr_values="urn:phr", max_age="300"'
    )
    both = reauth().check_token(token("urn:pwd", age=400), "wire")
    assert isinstance(both, ReauthRequired)
    assert 'acr_values="urn:phr", max_age="300"' in step_up_challenge(both)


def test_passkeys_on_any_fresh_token_proves_the_sign_in_alternative() -> None:
    decide = reauth(passkeys=True)
    assert isinstance(decide.check_token(token(None), "export"), Allowed)
    stale = decide.check_token(token(None, age=4000), "export")
    assert isinstance(stale, ReauthRequired)
    assert "acr_values" not in step_up_challenge(stale)


def test_a_rule_level_besides_alternatives_bounds_the_acr_values() -> None:
    decide = reauth()
    # amr proves primary + otp but the level (mfa) is not signed... it is: pwd + otp is mfa.
    assert isinstance(decide.check_token(token(None, ("pwd", "otp")), "vault"), Allowed)
    low = decide.check_token(token("urn:pwd", ("otp",)), "vault")  # oidc + otp: no mfa level
    assert isinstance(low, ReauthRequired)
    assert low.level == "mfa"
    assert low.acr_values == ("urn:phr", "urn:mfa", "urn:mfa:app")


_ACRS = st.sampled_from([None, "urn:pwd", "urn:mfa", "urn:mfa:app", "urn:phr", "urn:other"])
_AMR = st.lists(st.sampled_from(["pwd", "otp", "phr", "hwk", "swk", "user"]), max_size=3)


@given(
    acr=_ACRS,
    amr=_AMR,
    age=st.sampled_from([0.0, 200.0, 400.0, 5000.0]),
    action=st.sampled_from(sorted(RULES)),
    passkeys=st.booleans(),
)
def test_a_token_with_any_acr_the_challenge_names_is_allowed(
    acr: str | None, amr: list[str], age: float, action: str, passkeys: bool
) -> None:
    """Following the challenge works: a new token, recent and carrying any one of its
    acr_values, is allowed (the same amr kept), and a refused token never already carries
    one of them while fresh."""
    decide = reauth(passkeys)
    decision = decide.check_token(token(acr, tuple(amr), age), action)
    if decision.ok:
        return
    assert isinstance(decision, ReauthRequired)
    values = decision.acr_values if decision.level else ()
    if not decision.stale:
        assert values  # a fresh token is refused only for its level: say which would do
        assert acr not in values
    for value in values:
        assert isinstance(decide.check_token(token(value, tuple(amr)), action), Allowed)
    assert list(values) == sorted(
        values, key=lambda v: LEVELS.rank(LEVELS.for_acr(v) or "password"), reverse=True
    )
    if not values:
        assert isinstance(decide.check_token(token(acr, tuple(amr)), action), Allowed)
