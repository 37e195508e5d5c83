"""Federated re-authentication asks the OpenID provider for a level of assurance: the
decision's acr_values go into the request (as an essential acr claim when configured),
the signed acr that comes back is checked, and the grant keeps the level it proves."""

from __future__ import annotations

import json

import httpx

from idp.oidc.harness import ALICE, Provider, make_config
from idp.oidc.useragent import UserAgent, query_of
from stepup.adapters.idp.oidc import OIDCReason, OIDCReauth
from stepup.adapters.storage.memory import MemoryStore
from stepup.assurance import Level, Levels
from stepup.policy import Policy, Rule, Sensitivity
from stepup.reauth import Reauth, ReauthRequired
from stepup.records import Tenant
from stepup.subject import Subject
from stepup.testing import SettableClock

LEVELS = Levels(
    (
        Level("password", acr=("urn:stepup:pwd",), methods=(("pwd",),)),
        Level("mfa", acr=("urn:stepup:mfa",), methods=(("pwd", "otp"),)),
    )
)
POLICY = Policy(
    {"billing.pay": Rule(Sensitivity.SENSITIVE, methods=frozenset({"oidc"}), level="mfa")},
    levels=LEVELS,
)


def test_the_level_is_asked_for_checked_and_kept(
    provider: Provider,
    store: MemoryStore,
    http: httpx.Client,
    clock: SettableClock,
    alice: Subject,
    agent: UserAgent,
) -> None:
    store.put_tenant(Tenant("t", {"feature_flags": {"sensitive_actions_reauth": True}}))
    reauth = Reauth(store, POLICY, clock=clock)
    oidc = OIDCReauth(make_config(provider, essential_acr=True), store, http=http, clock=clock)
    decision = reauth.check(alice, "billing.pay", "t")
    assert isinstance(decision, ReauthRequired)
    assert (decision.level, decision.acr_values) == ("mfa", ("urn:stepup:mfa",))

    url = oidc.start(alice, return_to="/", acr_values=decision.acr_values)
    query = query_of(url)
    assert query["acr_values"] == "urn:stepup:mfa"
    assert json.loads(query["claims"]) == {
        "id_token": {"acr": {"essential": True, "values": ["urn:stepup:mfa"]}}
    }
    weaker = oidc.complete(alice, agent.authorize(url, login=ALICE[0], password=ALICE[1]))
    assert weaker.reason is not OIDCReason.OK  # the provider refuses, or stepup does
    if weaker.reason is not OIDCReason.PROVIDER_ERROR:
        assert weaker.reason is OIDCReason.ACR_NOT_MET
    assert not reauth.check(alice, "billing.pay", "t").ok

    url = oidc.start(alice, return_to="/", acr_values=decision.acr_values)
    met = oidc.complete(
        alice, agent.authorize(url, login=ALICE[0], password=ALICE[1], otp="123456")
    )
    assert met.reason is OIDCReason.OK
    level = LEVELS.for_acr(met.acr)
    assert level == "mfa"
    grant = reauth.record(alice, ["oidc"], authenticated_at=met.auth_time, level=level)
    assert grant.level == "mfa"
    assert reauth.check(alice, "billing.pay", "t").ok


def test_without_essential_acr_no_claims_parameter(
    provider: Provider, store: MemoryStore, http: httpx.Client, clock: SettableClock, alice: Subject
) -> None:
    oidc = OIDCReauth(make_config(provider), store, http=http, clock=clock)
    assert "claims" not in query_of(oidc.start(alice, return_to="/", acr_values=["urn:stepup:mfa"]))
