"""The Starlette SSO re-auth views ask the provider for the level the rule needs,
refuse a lower one with its own message, and record the level the signed answer
proved, against the real oidc-provider (``urn:stepup:pwd``; ``urn:stepup:mfa`` with the
OTP) and the real pysaml2 IdP."""

from __future__ import annotations

import base64
import json
import math
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from idp.oidc.harness import ALICE, REDIRECT_URI, Provider, launch_provider, make_config
from idp.oidc.useragent import UserAgent
from idp.saml import saml_idp
from integrations.resume_support import as_multidict, resume_form, try_again_link
from integrations.starlette.starlette_support import Browser, TestApp, make_app
from integrations.starlette.test_sso import keys, press_sso_button
from stepup.adapters.idp.oidc import AsyncOIDCReauth
from stepup.adapters.idp.saml import AsyncSAMLServiceProvider
from stepup.adapters.storage.memory import MemoryStore
from stepup.assurance import Level, Levels
from stepup.integrations.starlette import Stepup
from stepup.integrations.views import default_policy
from stepup.policy import Policy, Rule, Sensitivity
from stepup.testing import SettableClock

__all__ = ["keys"]  # the SAML key pair fixture

MFA_CLASS = "https://refeds.org/profile/mfa"
LEVEL_NOT_MET = "not as strongly as this action needs"
LEVELS = Levels(
    (
        Level(
            "password",
            acr=("urn:stepup:pwd",),
            saml=("urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport",),
            methods=(("pwd",),),
        ),
        Level("mfa", acr=("urn:stepup:mfa",), saml=(MFA_CLASS,), methods=(("pwd", "otp"),)),
    )
)


def _policy() -> Policy:
    rule = Rule(
        Sensitivity.SENSITIVE, methods=frozenset({"oidc", "saml"}), level="mfa", description="Pay"
    )
    return default_policy().with_levels(LEVELS).extend({"billing.pay": rule})


def _routes(stepup: Stepup) -> list[Any]:
    @stepup.requires_reauth("billing.pay")
    async def pay(request: Request) -> Response:
        return JSONResponse({"paid": True})

    return [Route("/billing/pay", pay)]


def _level(test_app: TestApp, browser: Browser) -> str | None:
    """The level of the grant alice's session holds now (its id is in the session)."""
    cookie = browser.client.cookies["session"].split(".", 1)[0]
    sid = json.loads(base64.b64decode(cookie + "=" * (-len(cookie) % 4)))["sid"]
    grant = test_app.store.get_grant("alice", sid)
    return None if grant is None else grant.level


def _oidc_app(provider: Provider, policy: Policy, routes: Any) -> TestApp:
    """An app whose SSO users re-authenticate at the real oidc-provider (the clock in
    whole seconds: the provider stamps real times)."""
    clock = SettableClock(math.floor(time.time()))
    store = MemoryStore()
    oidc = AsyncOIDCReauth(make_config(provider), store, clock=clock)
    return make_app(
        clock=clock,
        store=store,
        oidc=oidc,
        teardown=oidc.aclose,
        policy=policy,
        extra_routes=routes,
    )


def _transactions_app(provider: Provider) -> TestApp:
    """:func:`_oidc_app` with the transaction-bound workspace routes."""
    from integrations.starlette.test_transactions import _policy as bound_policy
    from integrations.starlette.test_transactions import _starlette_routes

    return _oidc_app(provider, bound_policy(), _starlette_routes)


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    started = launch_provider(tmp_path_factory.mktemp("starlette-oidc-levels") / "provider.log")
    yield started
    started.stop()


@pytest.fixture
def agent() -> Iterator[UserAgent]:
    user_agent = UserAgent(REDIRECT_URI)
    yield user_agent
    user_agent.close()


@pytest.mark.oidc
def test_oidc_asks_for_the_level_refuses_less_and_keeps_it(
    provider: Provider, agent: UserAgent
) -> None:
    test_app = _oidc_app(provider, _policy(), _routes)
    alice = test_app.browser()
    try:
        assert alice.login_sso("alice", "oidc", provider.issuer, ALICE[0], "test-op")
        assert alice.patch_tenant(True).status_code == 200
        location = alice.get("/billing/pay").headers["location"]

        to_provider = press_sso_button(alice, location).headers["location"]
        assert parse_qs(urlsplit(to_provider).query)["acr_values"] == ["urn:stepup:mfa"]
        weaker = agent.authorize(to_provider, login=ALICE[0], password=ALICE[1])
        refused = alice.get(f"/stepup/oidc/callback?{urlencode(weaker)}")
        assert refused.status_code == 400
        assert LEVEL_NOT_MET in refused.text
        assert alice.get("/billing/pay").status_code == 303

        to_provider = press_sso_button(alice, location).headers["location"]
        met = agent.authorize(to_provider, login=ALICE[0], password=ALICE[1], otp="123456")
        assert alice.get(f"/stepup/oidc/callback?{urlencode(met)}").status_code == 303
        assert alice.get("/billing/pay").json() == {"paid": True}
        assert _level(test_app, alice) == "mfa"
    finally:
        alice.close()


@pytest.mark.saml
def test_saml_asks_for_the_level_refuses_less_and_keeps_it(
    keys: dict[str, saml_idp.KeyPair],
) -> None:
    clock = SettableClock(time.time())
    store = MemoryStore()
    config = saml_idp.make_config(keys, authn_comparison="minimum")
    sp = AsyncSAMLServiceProvider(config, store, clock=clock)
    idp = saml_idp.make_idp(keys["idp"], sp.metadata())
    test_app = make_app(clock=clock, store=store, saml=sp, policy=_policy(), extra_routes=_routes)
    alice = test_app.browser()
    try:
        assert alice.login_sso("alice", "saml", saml_idp.IDP_ID, saml_idp.ALICE, "corp")
        assert alice.patch_tenant(True).status_code == 200
        location = alice.get("/billing/pay").headers["location"]

        request = idp.receive(press_sso_button(alice, location).headers["location"])
        assert request.requested_contexts == [MFA_CLASS]
        assert request.message.requested_authn_context.comparison == "minimum"
        weaker = idp.answer(request, saml_idp.ALICE)  # PasswordProtectedTransport
        refused = alice.post("/stepup/saml/acs", data={"SAMLResponse": weaker})
        assert refused.status_code == 400
        assert LEVEL_NOT_MET in refused.text
        assert alice.get("/billing/pay").status_code == 303

        request = idp.receive(press_sso_button(alice, location).headers["location"])
        met = idp.answer(request, saml_idp.ALICE, class_ref=MFA_CLASS)
        back = alice.post("/stepup/saml/acs", data={"SAMLResponse": met})
        assert back.status_code == 303
        assert alice.get("/billing/pay").json() == {"paid": True}
        assert _level(test_app, alice) == "mfa"
    finally:
        alice.close()


@pytest.mark.oidc
def test_oidc_confirms_one_transaction_once(provider: Provider, agent: UserAgent) -> None:
    test_app = _transactions_app(provider)
    alice = test_app.browser()
    try:
        assert alice.login_sso("alice", "oidc", provider.issuer, ALICE[0], "test-op")
        assert alice.patch_tenant(True).status_code == 200
        assert alice.post("/workspaces/prod-us/destroy").status_code == 303
        location = alice.post("/workspaces/prod-eu/destroy").headers["location"]
        assert "Delete workspace prod-eu" in alice.get(location).text
        to_provider = press_sso_button(alice, location).headers["location"]
        callback = agent.authorize(to_provider, login=ALICE[0], password=ALICE[1])
        back = alice.get(f"/stepup/oidc/callback?{urlencode(callback)}")
        assert back.status_code == 303
        assert alice.post("/workspaces/prod-us/destroy").status_code == 303
        assert alice.post("/workspaces/prod-eu/destroy").status_code == 200
        assert alice.post("/workspaces/prod-eu/destroy").status_code == 303
    finally:
        alice.close()


@pytest.mark.oidc
def test_two_sso_trips_each_confirm_their_own_transaction(
    provider: Provider, agent: UserAgent
) -> None:
    """Two tabs: a trip for prod-eu, then one for prod-us. Finishing the first confirms
    prod-eu (what its page showed), never the transaction the later start was for."""
    test_app = _transactions_app(provider)
    alice = test_app.browser()

    def trip(name: str) -> str:
        location = alice.post(f"/workspaces/{name}/destroy").headers["location"]
        assert f"Delete workspace {name}" in alice.get(location).text
        return str(press_sso_button(alice, location).headers["location"])

    def finish(to_provider: str) -> int:
        callback = agent.authorize(to_provider, login=ALICE[0], password=ALICE[1])
        status: int = alice.get(f"/stepup/oidc/callback?{urlencode(callback)}").status_code
        return status

    try:
        assert alice.login_sso("alice", "oidc", provider.issuer, ALICE[0], "test-op")
        assert alice.patch_tenant(True).status_code == 200
        eu, us = trip("prod-eu"), trip("prod-us")
        assert finish(eu) in {200, 303}  # 200: a suspended form is sent again
        assert alice.post("/workspaces/prod-us/destroy").status_code == 303  # still asks
        assert alice.post("/workspaces/prod-eu/destroy").status_code == 200
        # The re-authentication renewed the session id: the other tab's trip, bound to
        # the old one, proves nothing now; a new trip for prod-us confirms it.
        assert finish(us) == 400
        assert alice.post("/workspaces/prod-us/destroy").status_code == 303
        assert finish(trip("prod-us")) in {200, 303}
        assert alice.post("/workspaces/prod-us/destroy").status_code == 200
        assert alice.post("/workspaces/prod-eu/destroy").status_code == 303
    finally:
        alice.close()


@pytest.mark.oidc
def test_two_sso_trips_each_resume_their_own_form(provider: Provider, agent: UserAgent) -> None:
    """Two tabs, each with a form the guard suspended (prod-eu, then prod-us), each
    leaving for the provider: the answer to the first trip sends the first tab's form
    again, never the form of the trip started after it."""
    test_app = _transactions_app(provider)
    alice = test_app.browser()

    def trip(name: str) -> str:
        refused = alice.post(f"/workspaces/{name}/destroy", data={"why": name})
        assert "resume=" in refused.headers["location"]
        return str(press_sso_button(alice, refused.headers["location"]).headers["location"])

    try:
        assert alice.login_sso("alice", "oidc", provider.issuer, ALICE[0], "test-op")
        assert alice.patch_tenant(True).status_code == 200
        eu = trip("prod-eu")
        trip("prod-us")  # the second tab leaves for the provider too
        callback = agent.authorize(eu, login=ALICE[0], password=ALICE[1])
        back = alice.get(f"/stepup/oidc/callback?{urlencode(callback)}")
        assert back.status_code == 200
        target, fields = resume_form(back.text)
        assert target == "/workspaces/prod-eu/destroy"
        assert ("why", "prod-eu") in fields
        assert alice.post(target, data=as_multidict(fields)).status_code == 200
    finally:
        alice.close()


@pytest.mark.oidc
def test_a_cancelled_trip_keeps_the_form_for_the_next_try(
    provider: Provider, agent: UserAgent
) -> None:
    """The user cancels at the provider: the "Try again" link keeps the action, the
    transaction and the suspended form, and the next trip sends the form again."""
    test_app = _transactions_app(provider)
    alice = test_app.browser()
    try:
        assert alice.login_sso("alice", "oidc", provider.issuer, ALICE[0], "test-op")
        assert alice.patch_tenant(True).status_code == 200
        location = alice.post("/workspaces/prod-eu/destroy", data={"why": "eu"}).headers["location"]
        first = press_sso_button(alice, location).headers["location"]
        state = parse_qs(urlsplit(first).query)["state"][0]
        cancelled = alice.get(f"/stepup/oidc/callback?error=access_denied&state={state}")
        assert cancelled.status_code == 400
        again = try_again_link(cancelled.text)
        query, before = parse_qs(urlsplit(again).query), parse_qs(urlsplit(location).query)
        for name in ("action", "resume", "transaction"):
            assert query[name] == before[name], name

        callback = agent.authorize(
            press_sso_button(alice, again).headers["location"], login=ALICE[0], password=ALICE[1]
        )
        back = alice.get(f"/stepup/oidc/callback?{urlencode(callback)}")
        assert back.status_code == 200
        target, fields = resume_form(back.text)
        assert (target, ("why", "eu") in fields) == ("/workspaces/prod-eu/destroy", True)
        assert alice.post(target, data=as_multidict(fields)).status_code == 200
    finally:
        alice.close()
