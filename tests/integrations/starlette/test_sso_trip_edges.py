"""What a trip to the provider keeps to itself, in Starlette: the start views take only
a CSRF-checked POST (another site's GET starts no trip), the proof of a code checked at
the start rides with the trip (a forged answer cannot use it up), and an IdP's error
status still hands back the action, the transaction, the suspended form and the way
back."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import replace
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from saml2.samlp import STATUS_AUTHN_FAILED

from idp.oidc.harness import ALICE, REDIRECT_URI, Provider, launch_provider, make_config
from idp.oidc.useragent import UserAgent
from idp.saml import saml_idp
from integrations.resume_support import as_multidict, resume_form, try_again_link
from integrations.starlette.starlette_support import TestApp, enrol, make_app
from integrations.starlette.test_sso import keys, press_sso_button
from integrations.starlette.test_transactions import _policy as bound_policy
from integrations.starlette.test_transactions import _starlette_routes
from stepup.adapters.idp.oidc import AsyncOIDCReauth
from stepup.adapters.idp.saml import AsyncSAMLServiceProvider, SAMLServiceProvider
from stepup.adapters.storage.memory import MemoryStore
from stepup.events import ReauthSucceeded
from stepup.integrations.views import default_policy
from stepup.policy import SENSITIVE
from stepup.testing import SettableClock

__all__ = ["keys"]  # the SAML key pair fixture

CODE_RULE = default_policy().extend({"api_key.read": replace(SENSITIVE, second_factor=True)})


def _grants(test_app: TestApp) -> list[str]:
    return [e.method for e in test_app.events if isinstance(e, ReauthSucceeded)]


def _methods(test_app: TestApp) -> set[str]:
    """The methods of the latest grant."""
    grants = _grants(test_app)
    return set(grants[-1].split(",")) if grants else set()


# OIDC ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    started = launch_provider(tmp_path_factory.mktemp("starlette-oidc-edges") / "provider.log")
    yield started
    started.stop()


def _oidc_app(provider: Provider) -> TestApp:
    clock = SettableClock(math.floor(time.time()))  # the provider stamps real times
    store = MemoryStore()
    oidc = AsyncOIDCReauth(make_config(provider), store, clock=clock)
    return make_app(clock=clock, store=store, oidc=oidc, teardown=oidc.aclose, policy=CODE_RULE)


@pytest.mark.oidc
@pytest.mark.parametrize(
    "cross_site",
    [
        "/stepup/oidc/start?action=api_key.read&next=/api-key",
        "/stepup/saml/start?action=api_key.read&next=/api-key",
        "/stepup/oidc/callback?state=forged&code=x",
        "/stepup/oidc/callback?error=access_denied&state=forged",
    ],
)
def test_another_sites_request_leaves_the_code_proof_of_the_trip_in_flight(
    provider: Provider, cross_site: str
) -> None:
    """Between the code step and her real callback, another site's page sends her
    browser to a start view (a GET, no CSRF token) or to the callback with an answer
    that matches no trip: no trip starts, nothing is granted, and her real answer still
    records ``oidc`` with ``otp``."""
    test_app = _oidc_app(provider)
    alice = test_app.browser()
    agent = UserAgent(REDIRECT_URI)
    try:
        assert alice.login_sso("alice", "oidc", provider.issuer, ALICE[0], "test-op")
        assert alice.patch_tenant(True).status_code == 200
        totp, _ = enrol(alice)
        location = alice.get("/api-key").headers["location"]
        test_app.clock.advance(30)
        to_provider = press_sso_button(alice, location, code=totp.at(test_app.clock()))
        assert to_provider.status_code == 303
        challenges = len(test_app.store._challenges)

        answered = alice.get(cross_site)
        assert answered.status_code in (400, 404, 405)
        assert "location" not in answered.headers  # no trip to any provider
        assert len(test_app.store._challenges) <= challenges  # none stored

        callback = agent.authorize(
            to_provider.headers["location"], login=ALICE[0], password=ALICE[1]
        )
        back = alice.get(f"/stepup/oidc/callback?{urlencode(callback)}")
        assert back.headers["location"] == "/api-key"
        assert _methods(test_app) == {"oidc", "otp"}
        assert alice.get("/api-key").text == "the key"
    finally:
        agent.close()
        alice.close()


@pytest.mark.oidc
def test_a_get_to_the_start_view_starts_no_trip(provider: Provider) -> None:
    """Even for a rule that asks for no code: a bare GET (an ``<img>`` on any page) is
    not a press of the provider button."""
    test_app = _oidc_app(provider)
    alice = test_app.browser()
    try:
        assert alice.login_sso("alice", "oidc", provider.issuer, ALICE[0], "test-op")
        started = alice.get("/stepup/oidc/start?next=/")
        assert started.status_code == 405
        assert test_app.store._challenges == {}
    finally:
        alice.close()


# SAML ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def idp(keys: dict[str, saml_idp.KeyPair]) -> saml_idp.TestIdP:
    metadata = SAMLServiceProvider(saml_idp.make_config(keys), MemoryStore()).metadata()
    return saml_idp.make_idp(keys["idp"], metadata)


def _saml_app(keys: dict[str, saml_idp.KeyPair], **options: object) -> TestApp:
    clock = SettableClock(time.time())  # the IdP stamps real times
    store = MemoryStore()
    sp = AsyncSAMLServiceProvider(saml_idp.make_config(keys), store, clock=clock)
    return make_app(clock=clock, store=store, saml=sp, **options)


@pytest.mark.saml
def test_a_forged_saml_answer_leaves_the_code_proof_of_the_request_in_flight(
    keys: dict[str, saml_idp.KeyPair], idp: saml_idp.TestIdP
) -> None:
    test_app = _saml_app(keys, policy=CODE_RULE)
    alice = test_app.browser()
    try:
        assert alice.login_sso("alice", "saml", saml_idp.IDP_ID, saml_idp.ALICE, "corp")
        assert alice.patch_tenant(True).status_code == 200
        totp, _ = enrol(alice)
        location = alice.get("/api-key").headers["location"]
        test_app.clock.advance(30)
        to_idp = press_sso_button(alice, location, code=totp.at(test_app.clock()))
        request = idp.receive(to_idp.headers["location"])

        forged = {"SAMLResponse": "PGZvcmdlZC8+", "RelayState": "_forged"}
        assert alice.post("/stepup/saml/acs", data=forged).status_code == 400
        assert alice.get("/stepup/saml/start?action=api_key.read&next=/").status_code == 405

        answer = idp.answer(request, saml_idp.ALICE)
        back = alice.post(
            "/stepup/saml/acs",
            data={"SAMLResponse": answer, "RelayState": request.relay_state or ""},
        )
        assert back.headers["location"] == "/api-key"
        assert _methods(test_app) == {"saml", "otp"}
        assert alice.get("/api-key").text == "the key"
    finally:
        alice.close()


@pytest.mark.saml
def test_try_again_after_an_idp_error_keeps_the_action_the_form_and_next(
    keys: dict[str, saml_idp.KeyPair], idp: saml_idp.TestIdP
) -> None:
    """The IdP answers "authentication failed": nothing is granted, and "Try again"
    keeps the action, the transaction, the suspended form and the way back, so the next
    trip sends the form again."""
    test_app = _saml_app(keys, policy=bound_policy(), extra_routes=_starlette_routes)
    alice = test_app.browser()
    try:
        assert alice.login_sso("alice", "saml", saml_idp.IDP_ID, saml_idp.ALICE, "corp")
        assert alice.patch_tenant(True).status_code == 200
        location = alice.post("/workspaces/prod-eu/destroy", data={"why": "eu"}).headers["location"]
        granted = _grants(test_app)
        request = idp.receive(press_sso_button(alice, location).headers["location"])
        failed = alice.post(
            "/stepup/saml/acs",
            data={
                "SAMLResponse": idp.error(request, STATUS_AUTHN_FAILED),
                "RelayState": request.relay_state or "",
            },
        )
        assert failed.status_code == 400
        assert _grants(test_app) == granted  # nothing granted
        again = try_again_link(failed.text)
        query, before = parse_qs(urlsplit(again).query), parse_qs(urlsplit(location).query)
        for name in ("action", "resume", "transaction", "next"):
            assert query[name] == before[name], name

        request = idp.receive(press_sso_button(alice, again).headers["location"])
        answer = idp.answer(request, saml_idp.ALICE)
        back = alice.post(
            "/stepup/saml/acs",
            data={"SAMLResponse": answer, "RelayState": request.relay_state or ""},
        )
        assert back.status_code == 303  # the ACS is cross-site: the resume view sends it
        target, fields = resume_form(alice.get(back.headers["location"]).text)
        assert (target, ("why", "eu") in fields) == ("/workspaces/prod-eu/destroy", True)
        assert alice.post(target, data=as_multidict(fields)).text == "destroyed prod-eu"
    finally:
        alice.close()
