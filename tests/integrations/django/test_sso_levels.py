"""The Django SSO re-auth views ask the provider for the level the rule needs, refuse a
lower one with its own message, and record the level the signed answer proved, against
the real oidc-provider (``urn:stepup:pwd``; ``urn:stepup:mfa`` with the OTP) and the
real pysaml2 IdP."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from idp.oidc.harness import ALICE, REDIRECT_URI, Provider, launch_provider, make_config
from idp.oidc.useragent import UserAgent
from idp.saml import saml_idp
from integrations.django.django_support import Browser, running_site, set_flag
from integrations.django.test_sso import keys, press_sso_button
from integrations.resume_support import as_multidict, resume_form, try_again_link
from stepup.adapters.storage.memory import MemoryStore
from stepup.integrations.django.services import get_stepup
from stepup.testing import SettableClock

__all__ = ["keys"]  # the SAML key pair fixture

MFA_CLASS = "https://refeds.org/profile/mfa"
LEVEL_NOT_MET = "not as strongly as this action needs"


def _level(browser: Browser) -> str | None:
    stepup = get_stepup()
    session = browser.client.session
    user = str(session["_auth_user_id"])
    grant = stepup.store.get_grant(user, session["_stepup_sid"])
    return None if grant is None else grant.level


@contextmanager
def _signed_in_at_oidc(provider: Provider) -> Iterator[Browser]:
    """A site whose SSO users re-authenticate at the real oidc-provider, with alice
    signed in there and the tenant's flag on (the clock in whole seconds: the provider
    stamps real times)."""
    clock = SettableClock(math.floor(time.time()))
    providers = {"test-op": make_config(provider)}
    with running_site(MemoryStore(), clock, OIDC_PROVIDERS=providers) as site:
        get_stepup().tenant_settings.ensure("acme")
        alice = site.browser()
        assert alice.login_sso("alice", "oidc", provider.issuer, ALICE[0], "test-op")
        assert set_flag(alice).status_code == 200
        try:
            yield alice
        finally:
            get_stepup().oidc["test-op"].close()


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    started = launch_provider(tmp_path_factory.mktemp("django-oidc-levels") / "provider.log")
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
    with _signed_in_at_oidc(provider) as alice:
        location = alice.get("/billing/pay/")["Location"]

        to_provider = press_sso_button(alice, location)
        query = parse_qs(urlsplit(to_provider["Location"]).query)
        assert query["acr_values"] == ["urn:stepup:mfa"]
        weaker = agent.authorize(to_provider["Location"], login=ALICE[0], password=ALICE[1])
        refused = alice.get(f"/stepup/reauth/oidc/callback/?{urlencode(weaker)}")
        assert refused.status_code == 400
        assert LEVEL_NOT_MET in refused.content.decode()
        assert alice.get("/billing/pay/").status_code == 303

        to_provider = press_sso_button(alice, location)
        met = agent.authorize(
            to_provider["Location"], login=ALICE[0], password=ALICE[1], otp="123456"
        )
        assert alice.get(f"/stepup/reauth/oidc/callback/?{urlencode(met)}").status_code == 303
        assert alice.get("/billing/pay/").json() == {"paid": True}
        assert _level(alice) == "mfa"


@pytest.mark.saml
def test_saml_asks_for_the_level_refuses_less_and_keeps_it(
    keys: dict[str, saml_idp.KeyPair],
) -> None:
    clock = SettableClock(time.time())
    config = saml_idp.make_config(keys, authn_comparison="minimum")
    with running_site(MemoryStore(), clock, SAML_PROVIDERS={"corp": config}) as site:
        get_stepup().tenant_settings.ensure("acme")
        idp = saml_idp.make_idp(keys["idp"], get_stepup().saml["corp"].metadata())
        alice = site.browser()
        assert alice.login_sso("alice", "saml", saml_idp.IDP_ID, saml_idp.ALICE, "corp")
        assert set_flag(alice).status_code == 200
        location = alice.get("/billing/pay/")["Location"]

        request = idp.receive(press_sso_button(alice, location)["Location"])
        assert request.requested_contexts == [MFA_CLASS]
        assert request.message.requested_authn_context.comparison == "minimum"
        weaker = idp.answer(request, saml_idp.ALICE)  # PasswordProtectedTransport
        refused = alice.post("/stepup/reauth/saml/acs/", {"SAMLResponse": weaker})
        assert refused.status_code == 400
        assert LEVEL_NOT_MET in refused.content.decode()
        assert alice.get("/billing/pay/").status_code == 303

        request = idp.receive(press_sso_button(alice, location)["Location"])
        met = idp.answer(request, saml_idp.ALICE, class_ref=MFA_CLASS)
        assert alice.post("/stepup/reauth/saml/acs/", {"SAMLResponse": met}).status_code == 303
        assert alice.get("/billing/pay/").json() == {"paid": True}
        assert _level(alice) == "mfa"


@pytest.mark.oidc
def test_oidc_confirms_one_transaction_once(provider: Provider, agent: UserAgent) -> None:
    with _signed_in_at_oidc(provider) as alice:
        assert alice.post("/workspaces/prod-us/destroy/").status_code == 303
        location = alice.post("/workspaces/prod-eu/destroy/")["Location"]
        assert "Delete workspace prod-eu" in alice.get(location).content.decode()
        to_provider = press_sso_button(alice, location)
        callback = agent.authorize(to_provider["Location"], login=ALICE[0], password=ALICE[1])
        back = alice.get(f"/stepup/reauth/oidc/callback/?{urlencode(callback)}")
        assert back.status_code in {200, 303}
        assert alice.post("/workspaces/prod-us/destroy/").status_code == 303
        assert alice.post("/workspaces/prod-eu/destroy/").status_code == 200
        assert alice.post("/workspaces/prod-eu/destroy/").status_code == 303


@pytest.mark.oidc
def test_two_sso_trips_each_confirm_their_own_transaction(
    provider: Provider, agent: UserAgent
) -> None:
    """Two tabs: a trip for prod-eu, then one for prod-us. Finishing the first confirms
    prod-eu (what its page showed), never the transaction the later start was for."""
    with _signed_in_at_oidc(provider) as alice:

        def trip(name: str) -> str:
            location = alice.post(f"/workspaces/{name}/destroy/")["Location"]
            assert f"Delete workspace {name}" in alice.get(location).content.decode()
            return str(press_sso_button(alice, location)["Location"])

        def finish(to_provider: str) -> int:
            callback = agent.authorize(to_provider, login=ALICE[0], password=ALICE[1])
            back = alice.get(f"/stepup/reauth/oidc/callback/?{urlencode(callback)}")
            status: int = back.status_code
            return status

        eu, us = trip("prod-eu"), trip("prod-us")
        assert finish(eu) in {200, 303}  # 200: a suspended form is sent again
        assert alice.post("/workspaces/prod-us/destroy/").status_code == 303  # still asks
        assert alice.post("/workspaces/prod-eu/destroy/").status_code == 200
        # The re-authentication renewed the session id: the other tab's trip, bound to
        # the old one, proves nothing now; a new trip for prod-us confirms it.
        assert finish(us) == 400
        assert alice.post("/workspaces/prod-us/destroy/").status_code == 303
        assert finish(trip("prod-us")) in {200, 303}
        assert alice.post("/workspaces/prod-us/destroy/").status_code == 200
        assert alice.post("/workspaces/prod-eu/destroy/").status_code == 303


@pytest.mark.oidc
def test_two_sso_trips_each_resume_their_own_form(provider: Provider, agent: UserAgent) -> None:
    """Two tabs, each with a form the guard suspended (prod-eu, then prod-us), each
    leaving for the provider: the answer to the first trip sends the first tab's form
    again, never the form of the trip started after it."""
    with _signed_in_at_oidc(provider) as alice:

        def trip(name: str) -> str:
            location = str(alice.post(f"/workspaces/{name}/destroy/", {"why": name})["Location"])
            assert "resume=" in location
            return str(press_sso_button(alice, location)["Location"])

        eu = trip("prod-eu")
        trip("prod-us")  # the second tab leaves for the provider too
        callback = agent.authorize(eu, login=ALICE[0], password=ALICE[1])
        back = alice.get(f"/stepup/reauth/oidc/callback/?{urlencode(callback)}")
        assert back.status_code == 200
        target, fields = resume_form(back.content.decode())
        assert target == "/workspaces/prod-eu/destroy/"
        assert ("why", "prod-eu") in fields
        assert alice.post(target, as_multidict(fields)).status_code == 200


@pytest.mark.oidc
def test_a_cancelled_trip_keeps_the_form_for_the_next_try(
    provider: Provider, agent: UserAgent
) -> None:
    """The user cancels at the provider: the "Try again" link keeps the action, the
    transaction and the suspended form, and the next trip sends the form again."""
    with _signed_in_at_oidc(provider) as alice:
        location = str(alice.post("/workspaces/prod-eu/destroy/", {"why": "eu"})["Location"])
        first = str(press_sso_button(alice, location)["Location"])
        state = parse_qs(urlsplit(first).query)["state"][0]
        cancelled = alice.get(f"/stepup/reauth/oidc/callback/?error=access_denied&state={state}")
        assert cancelled.status_code == 400
        again = try_again_link(cancelled.content.decode())
        query, before = parse_qs(urlsplit(again).query), parse_qs(urlsplit(location).query)
        for name in ("action", "resume", "transaction"):
            assert query[name] == before[name], name

        callback = agent.authorize(
            str(press_sso_button(alice, again)["Location"]), login=ALICE[0], password=ALICE[1]
        )
        back = alice.get(f"/stepup/reauth/oidc/callback/?{urlencode(callback)}")
        assert back.status_code == 200
        target, fields = resume_form(back.content.decode())
        assert (target, ("why", "eu") in fields) == ("/workspaces/prod-eu/destroy/", True)
        assert alice.post(target, as_multidict(fields)).status_code == 200
