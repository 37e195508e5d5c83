"""The Flask SSO re-auth pages ask the provider for the level the rule needs, refuse a
lower one with its own message, and record the level the signed answer proved.

Against the real oidc-provider (two acr values: ``urn:stepup:pwd``, and
``urn:stepup:mfa`` when the login also gave the OTP) and the real pysaml2 IdP.
"""

from __future__ import annotations

import html
import math
import re
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from flask import Flask
from saml2.saml import AUTHN_PASSWORD_PROTECTED

from idp.oidc.harness import ALICE as OIDC_ALICE
from idp.oidc.harness import REDIRECT_URI, Provider, launch_provider
from idp.oidc.harness import make_config as oidc_config
from idp.oidc.useragent import UserAgent
from idp.saml.saml_idp import ALICE as SAML_ALICE
from idp.saml.saml_idp import IDP_ID, KeyPair, make_idp, make_keypair
from idp.saml.saml_idp import make_config as saml_config
from integrations.flask.flask_support import Browser, TestApp, app_policy, make_app, set_flag
from stepup.adapters.idp.oidc import OIDCReauth
from stepup.adapters.idp.saml import SAMLServiceProvider
from stepup.adapters.storage.memory import MemoryStore
from stepup.assurance import Level, Levels
from stepup.integrations.flask import Stepup
from stepup.policy import Policy, Rule, Sensitivity
from stepup.testing import SettableClock
from support import need

MFA_CLASS = "https://refeds.org/profile/mfa"
LEVELS = Levels(
    (
        Level(
            "password",
            acr=("urn:stepup:pwd",),
            saml=(AUTHN_PASSWORD_PROTECTED,),
            methods=(("pwd",),),
        ),
        Level("mfa", acr=("urn:stepup:mfa",), saml=(MFA_CLASS,), methods=(("pwd", "otp"),)),
    )
)


def _policy(method: str) -> Policy:
    rule = Rule(
        Sensitivity.SENSITIVE, methods=frozenset({method}), level="mfa", description="Paying"
    )
    return app_policy().with_levels(LEVELS).extend({"billing.pay": rule})


def _routes(app: Flask, stepup: Stepup) -> None:
    @app.get("/billing/pay")
    @stepup.reauth_required("billing.pay")
    def pay() -> Any:
        return {"paid": True}


def _start(browser: Browser, location: str, kind: str) -> Any:
    page = browser.get(location).get_data(as_text=True)
    assert f'action="/stepup/reauth/{kind}/start"' in page
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page))
    data = {k: html.unescape(v) for k, v in fields.items()}
    return browser.post(f"/stepup/reauth/{kind}/start", data=data)


def _user(test_app: TestApp, sso: tuple[str, str, str, str]) -> Browser:
    admin = test_app.client()
    admin.login("alice")
    assert set_flag(admin).status_code == 200
    browser = test_app.client()
    with browser.client.session_transaction() as session:
        session["user_id"] = "alice"
        session["sso"] = sso
    return browser


# OIDC ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    started = launch_provider(tmp_path_factory.mktemp("flask-oidc-levels") / "provider.log")
    yield started
    started.stop()


@pytest.fixture
def agent() -> Iterator[UserAgent]:
    user_agent = UserAgent(REDIRECT_URI)
    yield user_agent
    user_agent.close()


def _level(store: MemoryStore, browser: Browser) -> str | None:
    """The level of the grant alice's session holds now (its id is in the session)."""
    with browser.client.session_transaction() as session:
        sid = session["_stepup_sid"]
    grant = store.get_grant("alice", sid)
    return None if grant is None else grant.level


@contextmanager
def _signed_in_at_oidc(
    provider: Provider, policy: Policy, setup: Callable[[Flask, Stepup], None]
) -> Iterator[tuple[MemoryStore, Browser]]:
    """An app whose SSO users re-authenticate at the real oidc-provider, its store, and
    alice signed in there (the clock in whole seconds: the provider stamps real times)."""
    clock = SettableClock(math.floor(time.time()))
    store = MemoryStore()
    oidc = OIDCReauth(oidc_config(provider), store, clock=clock)
    test_app = make_app(
        clock=clock,
        store=store,
        policy=policy,
        setup=setup,
        config={"STEPUP_OIDC_PROVIDERS": {"test-op": oidc}},
    )
    try:
        yield store, _user(test_app, ("oidc", provider.issuer, OIDC_ALICE[0], "test-op"))
    finally:
        oidc.close()


@pytest.mark.oidc
def test_oidc_asks_for_the_level_refuses_less_and_keeps_it(
    provider: Provider, agent: UserAgent
) -> None:
    with _signed_in_at_oidc(provider, _policy("oidc"), _routes) as (store, alice):
        location = alice.get("/billing/pay").headers["Location"]

        to_provider = _start(alice, location, "oidc")
        assert to_provider.status_code == 303
        query = parse_qs(urlsplit(to_provider.headers["Location"]).query)
        assert query["acr_values"] == ["urn:stepup:mfa"]  # the level the rule needs
        weaker = agent.authorize(
            to_provider.headers["Location"], login=OIDC_ALICE[0], password=OIDC_ALICE[1]
        )
        refused = alice.get(f"/stepup/reauth/oidc/callback?{urlencode(weaker)}")
        assert refused.status_code == 400
        assert "not as strongly as this action needs" in refused.get_data(as_text=True)
        assert alice.get("/billing/pay").status_code == 303

        to_provider = _start(alice, location, "oidc")
        met = agent.authorize(
            to_provider.headers["Location"],
            login=OIDC_ALICE[0],
            password=OIDC_ALICE[1],
            otp="123456",
        )
        back = alice.get(f"/stepup/reauth/oidc/callback?{urlencode(met)}")
        assert back.status_code == 303
        assert alice.get("/billing/pay").get_json() == {"paid": True}
        assert _level(store, alice) == "mfa"


# SAML ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, KeyPair]:
    need(shutil.which("xmlsec1") is not None, "xmlsec1 is not installed (apt-get install xmlsec1)")
    directory = tmp_path_factory.mktemp("flask-saml-level-keys")
    return {name: make_keypair(directory, name) for name in ("sp", "idp")}


@pytest.mark.saml
def test_saml_asks_for_the_level_refuses_less_and_keeps_it(keys: dict[str, KeyPair]) -> None:
    clock = SettableClock(time.time())  # the IdP stamps real times
    store = MemoryStore()
    config = saml_config(keys, authn_comparison="minimum")
    sp = SAMLServiceProvider(config, store, clock=clock)
    idp = make_idp(keys["idp"], sp.metadata())
    test_app = make_app(
        clock=clock,
        store=store,
        policy=_policy("saml"),
        setup=_routes,
        config={"STEPUP_SAML_PROVIDERS": {"corp-saml": sp}},
    )
    alice = _user(test_app, ("saml", IDP_ID, SAML_ALICE, "corp-saml"))
    location = alice.get("/billing/pay").headers["Location"]

    request = idp.receive(_start(alice, location, "saml").headers["Location"])
    assert request.requested_contexts == [MFA_CLASS]
    assert request.message.requested_authn_context.comparison == "minimum"
    weaker = idp.answer(request, SAML_ALICE, class_ref=AUTHN_PASSWORD_PROTECTED)
    refused = alice.post("/stepup/reauth/saml/acs", data={"SAMLResponse": weaker})
    assert refused.status_code == 400
    assert "not as strongly as this action needs" in refused.get_data(as_text=True)
    assert alice.get("/billing/pay").status_code == 303

    request = idp.receive(_start(alice, location, "saml").headers["Location"])
    met = idp.answer(request, SAML_ALICE, class_ref=MFA_CLASS)
    back = alice.post("/stepup/reauth/saml/acs", data={"SAMLResponse": met})
    assert back.status_code == 303
    assert alice.get("/billing/pay").get_json() == {"paid": True}
    assert _level(store, alice) == "mfa"


@pytest.mark.oidc
def test_oidc_confirms_one_transaction_once(provider: Provider, agent: UserAgent) -> None:
    from integrations.flask.test_transactions import _destroy, _policy
    from integrations.flask.test_transactions import _routes as _bound

    with _signed_in_at_oidc(provider, _policy(), _bound) as (_store, alice):
        assert _destroy(alice, "prod-us").status_code == 303
        location = _destroy(alice, "prod-eu").headers["Location"]
        assert "Delete workspace prod-eu" in alice.get(location).get_data(as_text=True)
        to_provider = _start(alice, location, "oidc")
        callback = agent.authorize(
            to_provider.headers["Location"], login=OIDC_ALICE[0], password=OIDC_ALICE[1]
        )
        assert alice.get(f"/stepup/reauth/oidc/callback?{urlencode(callback)}").status_code in {
            200,
            303,
        }
        assert _destroy(alice, "prod-us").status_code == 303
        assert _destroy(alice, "prod-eu").status_code == 200
        assert _destroy(alice, "prod-eu").status_code == 303


@pytest.mark.oidc
def test_two_sso_trips_each_confirm_their_own_transaction(
    provider: Provider, agent: UserAgent
) -> None:
    """Two tabs: a trip for prod-eu, then one for prod-us. Finishing the first confirms
    prod-eu (what its page showed), never the transaction the later start was for."""
    from integrations.flask.test_transactions import _destroy, _policy
    from integrations.flask.test_transactions import _routes as _bound

    with _signed_in_at_oidc(provider, _policy(), _bound) as (_store, alice):

        def trip(name: str) -> str:
            location = _destroy(alice, name).headers["Location"]
            assert f"Delete workspace {name}" in alice.get(location).get_data(as_text=True)
            return str(_start(alice, location, "oidc").headers["Location"])

        def finish(to_provider: str) -> int:
            callback = agent.authorize(to_provider, login=OIDC_ALICE[0], password=OIDC_ALICE[1])
            status: int = alice.get(
                f"/stepup/reauth/oidc/callback?{urlencode(callback)}"
            ).status_code
            return status

        eu, us = trip("prod-eu"), trip("prod-us")
        assert finish(eu) in {200, 303}  # 200: a suspended form is sent again
        assert _destroy(alice, "prod-us").status_code == 303  # still asks
        assert _destroy(alice, "prod-eu").status_code == 200
        # The re-authentication renewed the session id: the other tab's trip, bound to the
        # old one, proves nothing now; a new trip for prod-us confirms it.
        assert finish(us) == 400
        assert _destroy(alice, "prod-us").status_code == 303
        assert finish(trip("prod-us")) in {200, 303}
        assert _destroy(alice, "prod-us").status_code == 200
        assert _destroy(alice, "prod-eu").status_code == 303  # each confirmation counts once
