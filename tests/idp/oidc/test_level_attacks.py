"""A hostile OpenID provider answering a re-authentication at a level: every downgrade of
the signed ``acr`` is refused, ``amr`` never raises a level, and only a grant at the
level asked for satisfies the rule.

The provider here is played by an ``httpx.MockTransport`` minting ID tokens with a key
made here, so each answer can be exactly the attack (a real provider would not sign
most of them). The chain is the one the framework views run: ``OIDCReauth.start`` with
the decision's ``acr_values``, ``complete``, ``sso_answer`` (the level the signed ``acr``
proves), ``Reauth.record`` and the next decision.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from stepup.adapters.idp.oidc import OIDCProviderConfig, OIDCReason, OIDCReauth
from stepup.adapters.storage.memory import MemoryStore
from stepup.assurance import Level, Levels
from stepup.integrations.views import sso_answer
from stepup.policy import Policy, Rule, Sensitivity
from stepup.reauth import Reauth, ReauthRequired
from stepup.records import Tenant
from stepup.subject import Identity, LoginMethod, Subject
from stepup.testing import SettableClock

T0 = 1_800_000_000.0
ISSUER = "http://127.0.0.1:9/op"
CLIENT = "stepup-rp"
KEY = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig"}, private=True)
LEVELS = Levels(
    (
        Level("password", acr=("urn:x:pwd",), methods=(("pwd",),)),
        Level("mfa", acr=("urn:x:mfa",), methods=(("pwd", "otp"),)),
        Level("phishing_resistant", acr=("urn:x:phr",), methods=(("phr",),)),
    )
)
POLICY = Policy(
    {
        "billing.pay": Rule(Sensitivity.SENSITIVE, lifetime=600.0, level="mfa"),
        "keys.rotate": Rule(Sensitivity.SENSITIVE, level="phishing_resistant"),
    },
    levels=LEVELS,
)
ALICE = Subject(
    "alice", "s1", Identity(LoginMethod.OIDC, issuer=ISSUER, subject="sub-alice", provider="op")
)


class HostileProvider:
    """Discovery, keys and a token endpoint whose ID token carries ``claims``."""

    def __init__(self) -> None:
        self.claims: dict[str, Any] = {}
        self.nonce = ""

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/.well-known/openid-configuration"):
            return httpx.Response(
                200,
                json={
                    "issuer": ISSUER,
                    "authorization_endpoint": f"{ISSUER}/auth",
                    "token_endpoint": f"{ISSUER}/token",
                    "jwks_uri": f"{ISSUER}/jwks",
                },
            )
        if path.endswith("/jwks"):
            return httpx.Response(200, json=KeySet([KEY]).as_dict(private=False))
        if path.endswith("/token"):
            payload = {
                "iss": ISSUER,
                "sub": "sub-alice",
                "aud": CLIENT,
                "exp": int(T0) + 300,
                "iat": int(T0),
                "auth_time": int(T0),
                "nonce": self.nonce,
            } | self.claims
            payload = {k: v for k, v in payload.items() if v is not ...}
            token = jwt.encode({"alg": "RS256", "kid": "k1"}, payload, KEY, algorithms=["RS256"])
            return httpx.Response(
                200, json={"id_token": token, "access_token": "at", "token_type": "Bearer"}
            )
        return httpx.Response(404)


@pytest.fixture
def provider() -> HostileProvider:
    return HostileProvider()


@pytest.fixture
def http(provider: HostileProvider) -> Iterator[httpx.Client]:
    with httpx.Client(transport=httpx.MockTransport(provider.handle)) as client:
        yield client


def _config(**changes: Any) -> OIDCProviderConfig:
    return OIDCProviderConfig(
        issuer=ISSUER,
        client_id=CLIENT,
        client_secret="secret",
        redirect_uri="http://127.0.0.1:9/rp/callback",
        name="op",
        **changes,
    )


def _reauth_at_provider(
    provider: HostileProvider,
    http: httpx.Client,
    claims: dict[str, Any],
    *,
    action: str = "billing.pay",
    essential: bool = False,
) -> tuple[Reauth, Any]:
    """One re-authentication for ``action`` answered with ``claims``: the reauth (with
    whatever grant the answer recorded) and the framework's answer."""
    clock = SettableClock(T0)
    store = MemoryStore()
    store.put_tenant(Tenant("t", {"feature_flags": {"sensitive_actions_reauth": True}}))
    reauth = Reauth(store, POLICY, clock=clock)
    decision = reauth.check(ALICE, action, "t")
    assert isinstance(decision, ReauthRequired)
    oidc = OIDCReauth(_config(essential_acr=essential), store, http=http, clock=clock)
    url = oidc.start(ALICE, return_to="/", action=action, acr_values=decision.acr_values)
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert query["acr_values"].split() == list(
        LEVELS.acr_values(POLICY.rule_for(action).level or "")
    )
    if essential:
        wanted = json.loads(query["claims"])["id_token"]["acr"]
        assert wanted["essential"] is True
    provider.nonce = query["nonce"]
    provider.claims = claims
    outcome = oidc.complete(ALICE, {"state": query["state"], "code": "code-1"})
    answer = sso_answer(outcome, False, POLICY)
    if answer.ok:
        reauth.record(
            ALICE, answer.methods, authenticated_at=answer.authenticated_at, level=answer.level
        )
    return reauth, outcome


LYING_AMR = ["pwd", "otp", "hwk", "phr", "mfa", "swk", "user"]


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"acr": ...}, OIDCReason.ACR_NOT_MET),  # no acr at all
        ({"acr": ..., "amr": LYING_AMR}, OIDCReason.ACR_NOT_MET),
        ({"acr": "urn:x:pwd"}, OIDCReason.ACR_NOT_MET),  # a lower level
        ({"acr": "urn:x:pwd", "amr": LYING_AMR}, OIDCReason.ACR_NOT_MET),
        ({"acr": "urn:x:unknown"}, OIDCReason.ACR_NOT_MET),  # valid, not in the mapping
        ({"acr": "URN:X:MFA"}, OIDCReason.ACR_NOT_MET),  # no case leeway
        ({"acr": " urn:x:mfa"}, OIDCReason.ACR_NOT_MET),  # no whitespace leeway
        ({"acr": "urn:x:mfa urn:x:phr"}, OIDCReason.ACR_NOT_MET),  # not a list in a string
        ({"acr": ""}, OIDCReason.ACR_NOT_MET),
        ({"acr": ["urn:x:mfa"]}, OIDCReason.INVALID_TOKEN),  # a list is malformed
        ({"acr": 2}, OIDCReason.INVALID_TOKEN),  # so is a number
        ({"acr": {"value": "urn:x:mfa"}}, OIDCReason.INVALID_TOKEN),
        ({"acr": True}, OIDCReason.INVALID_TOKEN),
        ({"acr": "urn:x:mfa", "amr": "pwd otp"}, OIDCReason.INVALID_TOKEN),
    ],
)
@pytest.mark.parametrize("essential", [False, True])
def test_a_downgraded_acr_is_refused_and_grants_nothing(
    provider: HostileProvider,
    http: httpx.Client,
    claims: dict[str, Any],
    reason: OIDCReason,
    essential: bool,
) -> None:
    reauth, outcome = _reauth_at_provider(provider, http, claims, essential=essential)
    assert outcome.reason is reason
    assert not sso_answer(outcome, False, POLICY).ok
    decision = reauth.check(ALICE, "billing.pay", "t")
    assert isinstance(decision, ReauthRequired)
    assert decision.level == "mfa"
    assert reauth.store.get_grant("alice", "s1") is None  # type: ignore[attr-defined]


def test_the_level_asked_for_is_granted_and_no_higher(
    provider: HostileProvider, http: httpx.Client
) -> None:
    reauth, outcome = _reauth_at_provider(provider, http, {"acr": "urn:x:mfa", "amr": LYING_AMR})
    assert outcome.reason is OIDCReason.OK
    assert reauth.check(ALICE, "billing.pay", "t").ok
    grant = reauth.store.get_grant("alice", "s1")  # type: ignore[attr-defined]
    assert grant is not None
    # the amr claimed a passkey: it is not recorded, and does not raise the level
    assert grant.methods == frozenset({"oidc"})
    assert reauth.level_of(grant) == "mfa"
    decision = reauth.check(ALICE, "keys.rotate", "t")
    assert isinstance(decision, ReauthRequired)
    assert (decision.level, decision.stale) == ("phishing_resistant", False)


def test_a_stronger_level_than_asked_counts(provider: HostileProvider, http: httpx.Client) -> None:
    reauth, outcome = _reauth_at_provider(provider, http, {"acr": "urn:x:phr"})
    assert outcome.reason is OIDCReason.OK
    assert reauth.check(ALICE, "billing.pay", "t").ok
    assert reauth.check(ALICE, "keys.rotate", "t").ok


def test_the_level_lasts_only_the_rule_lifetime(
    provider: HostileProvider, http: httpx.Client
) -> None:
    reauth, _ = _reauth_at_provider(provider, http, {"acr": "urn:x:phr"})
    reauth.clock.advance(599)  # type: ignore[attr-defined]
    assert reauth.check(ALICE, "billing.pay", "t").ok
    reauth.clock.advance(1)  # type: ignore[attr-defined]
    decision = reauth.check(ALICE, "billing.pay", "t")
    assert isinstance(decision, ReauthRequired)
    assert decision.stale


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    acr=st.none()
    | st.text(max_size=12)
    | st.sampled_from(["urn:x:pwd", "urn:x:mfa", "urn:x:phr", "urn:x:mfa\x00"]),
    amr=st.lists(st.sampled_from([*LYING_AMR, "recovery", "face"]), max_size=5),
)
def test_only_a_signed_acr_at_the_level_satisfies_the_rule(
    provider: HostileProvider, http: httpx.Client, acr: str | None, amr: list[str]
) -> None:
    claims: dict[str, Any] = {"acr": ... if acr is None else acr, "amr": amr}
    reauth, outcome = _reauth_at_provider(provider, http, claims)
    allowed = reauth.check(ALICE, "billing.pay", "t").ok
    assert allowed == (acr in ("urn:x:mfa", "urn:x:phr"))
    assert allowed == (outcome.reason is OIDCReason.OK)
