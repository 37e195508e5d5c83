"""SSO users re-authenticate at a real OpenID provider and a real SAML IdP through the
ready-made views: the start view, the OIDC callback, the SAML ACS (the harnesses of
``tests/idp``). Both providers stamp real times, so each test's clock starts at the
real time and is then frozen."""

from __future__ import annotations

import html
import logging
import math
import re
import shutil
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from saml2.samlp import STATUS_AUTHN_FAILED

from idp.oidc.harness import ALICE, MALLORY, REDIRECT_URI, Provider, launch_provider, make_config
from idp.oidc.useragent import UserAgent
from idp.saml import saml_idp
from integrations.django.django_support import Browser, Site, running_site, set_flag, user_id
from integrations.sso_refusal_support import (
    CANCELLED,
    LOGGER,
    NOT_ASKED_AGAIN,
    NOT_CONFIRMED,
    OTHER_ACCOUNT,
    PROVIDER_REFUSED,
    TOOK_TOO_LONG,
    TRY_AGAIN_SOON,
    ChallengeOutage,
    assert_not_noted,
    assert_noted,
    refusals,
)
from stepup.adapters.idp.saml import SAMLServiceProvider
from stepup.adapters.storage.memory import MemoryStore
from stepup.events import ReauthSucceeded
from stepup.integrations.django.services import get_stepup
from stepup.testing import SettableClock
from support import need

_SSO_FORM = re.compile(r'<form method="post" action="(/stepup/reauth/(?:oidc|saml)/start/)">')
_FIELD = re.compile(r'<input type="hidden" name="(\w+)" value="([^"]*)"')


def press_sso_button(browser: Browser, reauth_url: str, **fields: str) -> Any:
    """Open the re-auth page and submit its provider form (with a code, if given)."""
    page = browser.get(reauth_url)
    assert page.status_code == 200
    text = page.content.decode()
    assert 'type="password"' not in text
    form = _SSO_FORM.search(text)
    assert form is not None, text
    hidden = {name: html.unescape(value) for name, value in _FIELD.findall(text)}
    return browser.post(form.group(1), {**hidden, **fields})


def last_grant_methods(site: Site) -> str:
    return [e for e in site.events if isinstance(e, ReauthSucceeded)][-1].method


# OIDC ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    started = launch_provider(tmp_path_factory.mktemp("django-oidc") / "provider.log")
    yield started
    started.stop()


@pytest.fixture
def agent() -> Iterator[UserAgent]:
    user_agent = UserAgent(REDIRECT_URI)
    yield user_agent
    user_agent.close()


@pytest.fixture
def store() -> ChallengeOutage:
    return ChallengeOutage()  # a memory store, but for the outage test


@pytest.fixture
def oidc_site(provider: Provider, store: ChallengeOutage) -> Iterator[Site]:
    clock = SettableClock(math.floor(time.time()))
    providers = {"test-op": make_config(provider)}  # the adapter is built on the store
    with running_site(store, clock, OIDC_PROVIDERS=providers) as site:
        stepup = get_stepup()
        stepup.tenant_settings.ensure("acme")
        yield site
        stepup.oidc["test-op"].close()


def oidc_alice(site: Site, provider: Provider) -> Browser:
    alice = site.browser()
    signed_in = alice.login_sso("alice", "oidc", provider.issuer, ALICE[0], "test-op")
    assert signed_in.status_code == 303
    assert set_flag(alice).status_code == 200
    return alice


@pytest.mark.oidc
def test_oidc_user_reauthenticates_at_the_provider(
    oidc_site: Site, provider: Provider, agent: UserAgent
) -> None:
    alice = oidc_alice(oidc_site, provider)
    refused = alice.get("/api-key/?tab=keys")
    assert refused.status_code == 303
    to_provider = press_sso_button(alice, refused["Location"])
    assert to_provider.status_code == 303
    assert to_provider["Location"].startswith(f"{provider.issuer}/auth?")

    callback = agent.authorize(to_provider["Location"], login=ALICE[0], password=ALICE[1])
    back = alice.get(f"/stepup/reauth/oidc/callback/?{urlencode(callback)}")
    assert back.status_code == 303
    assert back["Location"] == "/api-key/?tab=keys"
    assert alice.get("/api-key/").json()["reason"] == "fresh_grant"
    assert last_grant_methods(oidc_site) == "oidc"

    # The same callback again: its state was consumed.
    assert alice.get(f"/stepup/reauth/oidc/callback/?{urlencode(callback)}").status_code == 400


@pytest.mark.oidc
def test_someone_else_at_the_provider_does_not_count(
    oidc_site: Site, provider: Provider, agent: UserAgent, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    alice = oidc_alice(oidc_site, provider)
    to_provider = press_sso_button(alice, "/stepup/reauth/?action=api_key.read&next=/api-key/")
    callback = agent.authorize(to_provider["Location"], login=MALLORY[0], password=MALLORY[1])
    refused = alice.get(f"/stepup/reauth/oidc/callback/?{urlencode(callback)}")
    assert refused.status_code == 400
    assert OTHER_ACCOUNT in refused.content.decode()
    assert alice.get("/api-key/").status_code == 303
    assert refusals(oidc_site.events) == [(user_id("alice"), "oidc", "wrong_subject")]
    assert_noted(caplog, "oidc", "wrong_subject")


@pytest.mark.oidc
def test_each_refusal_names_its_cause_and_is_reported(
    oidc_site: Site,
    store: ChallengeOutage,
    provider: Provider,
    agent: UserAgent,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    alice = oidc_alice(oidc_site, provider)

    def trip(**at_provider: Any) -> dict[str, str]:
        start = "/stepup/reauth/?action=api_key.read&next=/api-key/"
        return agent.authorize(press_sso_button(alice, start)["Location"], **at_provider)

    def back(callback: dict[str, str]) -> tuple[int, str]:
        answer = alice.get(f"/stepup/reauth/oidc/callback/?{urlencode(callback)}")
        return answer.status_code, answer.content.decode()

    status, page = back(trip(cancel=True))
    assert status == 400
    assert CANCELLED in page
    assert_noted(caplog, "oidc", "provider_error (provider error access_denied)")

    callback = trip(login=ALICE[0], password=ALICE[1])
    oidc_site.clock.advance(600)  # the challenge's lifetime, at the provider
    status, page = back(callback)
    assert status == 400
    assert TOOK_TOO_LONG in page
    assert_noted(caplog, "oidc", "expired")

    status, page = back(callback)  # again: its state was consumed (a replay)
    assert status == 400
    assert NOT_CONFIRMED in page
    assert_not_noted(caplog)  # a replay: matched no trip of this session

    callback = trip(login=ALICE[0], password=ALICE[1])
    store.down = True  # stepup's own store, while the user was at the provider
    status, page = back(callback)
    store.down = False
    assert status == 503
    assert TRY_AGAIN_SOON in page
    assert "identity provider" not in page
    assert_noted(caplog, "oidc", "unavailable")

    assert refusals(oidc_site.events) == [
        (user_id("alice"), "oidc", "provider_error"),
        (user_id("alice"), "oidc", "expired"),
    ]
    assert alice.get("/api-key/").status_code == 303


@pytest.mark.oidc
def test_a_code_rule_checks_the_code_before_leaving(
    oidc_site: Site, provider: Provider, agent: UserAgent
) -> None:
    alice = oidc_alice(oidc_site, provider)
    secret, _ = alice.enrol()
    location = alice.get("/billing/export/")["Location"]  # this rule wants a code too
    assert 'name="code"' in alice.get(location).content.decode()

    wrong = press_sso_button(alice, location, code="12345x")
    assert wrong.status_code == 400  # refused here, before any trip to the provider

    oidc_site.clock.advance(30)
    to_provider = press_sso_button(alice, location, code=oidc_site.totp_code(secret))
    assert to_provider.status_code == 303
    callback = agent.authorize(to_provider["Location"], login=ALICE[0], password=ALICE[1])
    back = alice.get(f"/stepup/reauth/oidc/callback/?{urlencode(callback)}")
    assert back["Location"] == "/billing/export/"
    assert last_grant_methods(oidc_site) == "oidc,otp"
    assert alice.get("/billing/export/").content == b"billing.csv"


@pytest.mark.oidc
def test_a_password_user_cannot_start_oidc(oidc_site: Site) -> None:
    bob = oidc_site.browser("bob")
    page = bob.get("/stepup/reauth/?action=api_key.read&next=/api-key/").content.decode()
    assert 'type="password"' in page
    assert not _SSO_FORM.search(page)
    hidden = {name: html.unescape(value) for name, value in _FIELD.findall(page)}
    assert bob.post("/stepup/reauth/oidc/start/", hidden).status_code == 400


# SAML ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, saml_idp.KeyPair]:
    need(shutil.which("xmlsec1") is not None, "xmlsec1 is not installed (apt-get install xmlsec1)")
    directory = tmp_path_factory.mktemp("django-saml-keys")
    return {name: saml_idp.make_keypair(directory, name) for name in ("sp", "idp")}


@pytest.fixture(scope="module")
def idp(keys: dict[str, saml_idp.KeyPair]) -> saml_idp.TestIdP:
    metadata = SAMLServiceProvider(saml_idp.make_config(keys), MemoryStore()).metadata()
    return saml_idp.make_idp(keys["idp"], metadata)


@pytest.fixture
def saml_site(keys: dict[str, saml_idp.KeyPair]) -> Iterator[Site]:
    clock = SettableClock(time.time())
    providers = {"corp": saml_idp.make_config(keys)}
    with running_site(MemoryStore(), clock, SAML_PROVIDERS=providers) as site:
        get_stepup().tenant_settings.ensure("acme")
        yield site


def saml_alice(site: Site) -> Browser:
    alice = site.browser()
    assert alice.login_sso("alice", "saml", saml_idp.IDP_ID, saml_idp.ALICE, "corp").status_code
    assert set_flag(alice).status_code == 200
    return alice


@pytest.mark.saml
def test_saml_user_reauthenticates_at_the_idp(saml_site: Site, idp: saml_idp.TestIdP) -> None:
    alice = saml_alice(saml_site)
    refused = alice.get("/api-key/?tab=1")
    to_idp = press_sso_button(alice, refused["Location"])
    assert to_idp.status_code == 303
    assert to_idp["Location"].startswith(saml_idp.SSO_URL)

    request = idp.receive(to_idp["Location"])
    assert request.force_authn
    answer = {
        "SAMLResponse": idp.answer(request, saml_idp.ALICE),
        "RelayState": request.relay_state or "",
    }
    back = alice.post("/stepup/reauth/saml/acs/", answer)  # no CSRF token: the IdP posts
    assert back.status_code == 303
    assert back["Location"] == "/api-key/?tab=1"
    assert alice.get("/api-key/").json()["reason"] == "fresh_grant"
    assert last_grant_methods(saml_site) == "saml"

    # The same response again: its request was consumed.
    assert alice.post("/stepup/reauth/saml/acs/", answer).status_code == 400


@pytest.mark.saml
def test_a_stale_or_foreign_saml_answer_records_no_grant(
    saml_site: Site, idp: saml_idp.TestIdP, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    alice = saml_alice(saml_site)
    # An IdP that ignores ForceAuthn and answers from a login made an hour ago.
    idp.log_in(saml_idp.ALICE, at=time.time() - 3600)
    start = "/stepup/reauth/?action=api_key.read&next=/api-key/"
    request = idp.receive(press_sso_button(alice, start)["Location"])
    stale = idp.answer(request, saml_idp.ALICE, honour_force_authn=False)
    refused = alice.post("/stepup/reauth/saml/acs/", {"SAMLResponse": stale})
    assert refused.status_code == 400
    assert NOT_ASKED_AGAIN in refused.content.decode()
    assert alice.get("/api-key/").status_code == 303
    assert_noted(caplog, "saml", "stale_authn_instant")

    # Another person signing in at the IdP does not count for alice.
    request = idp.receive(press_sso_button(alice, start)["Location"])
    foreign = idp.answer(request, saml_idp.BOB)
    refused = alice.post("/stepup/reauth/saml/acs/", {"SAMLResponse": foreign})
    assert refused.status_code == 400
    assert OTHER_ACCOUNT in refused.content.decode()
    assert alice.get("/api-key/").status_code == 303
    assert_noted(caplog, "saml", "wrong_subject")

    # The IdP could not sign her in (or she cancelled there).
    request = idp.receive(press_sso_button(alice, start)["Location"])
    error = idp.error(request, STATUS_AUTHN_FAILED)
    refused = alice.post("/stepup/reauth/saml/acs/", {"SAMLResponse": error})
    assert refused.status_code == 400
    assert PROVIDER_REFUSED in refused.content.decode()
    assert_noted(caplog, "saml", "idp_error")
    assert refusals(saml_site.events) == [
        (user_id("alice"), "saml", "stale_authn_instant"),
        (user_id("alice"), "saml", "wrong_subject"),
        (user_id("alice"), "saml", "idp_error"),
    ]


@pytest.mark.saml
def test_a_forged_saml_answer_with_no_trip_begun_is_no_failure_of_hers(
    saml_site: Site, idp: saml_idp.TestIdP, caplog: pytest.LogCaptureFixture
) -> None:
    """Any page can make alice's browser post to the ACS. An unsigned answer, or an IdP
    error, is refused before it is matched to a request: with no trip of her session
    pending it is only a DEBUG line; the IdP's error on her own trip is reported."""
    caplog.set_level(logging.DEBUG, LOGGER)
    alice = saml_alice(saml_site)
    start = "/stepup/reauth/?action=api_key.read&next=/api-key/"
    # A request of another session (the forger's): alice's session began no trip.
    request = idp.receive(press_sso_button(saml_alice(saml_site), start)["Location"])
    forged = {
        "unsigned": idp.answer(request, saml_idp.ALICE, sign_response=False, sign_assertion=False),
        "idp_error": idp.error(request, STATUS_AUTHN_FAILED),
    }
    for reason, answer in forged.items():
        refused = alice.post(
            "/stepup/reauth/saml/acs/",
            {"SAMLResponse": answer, "RelayState": request.relay_state or ""},
        )
        assert refused.status_code == 400
        words = PROVIDER_REFUSED if reason == "idp_error" else NOT_CONFIRMED
        assert words in refused.content.decode()
        assert f"saml answer matching no re-authentication of this session: {reason}" in [
            r.getMessage() for r in caplog.records if r.name == LOGGER
        ]
        assert_not_noted(caplog)
    assert refusals(saml_site.events) == []

    # Her own trip, refused at the IdP: reported as before.
    request = idp.receive(press_sso_button(alice, start)["Location"])
    error = idp.error(request, STATUS_AUTHN_FAILED)
    assert alice.post("/stepup/reauth/saml/acs/", {"SAMLResponse": error}).status_code == 400
    assert [
        r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno >= logging.INFO
    ] == ["saml re-authentication refused: idp_error"]
    assert refusals(saml_site.events) == [(user_id("alice"), "saml", "idp_error")]


@pytest.mark.saml
def test_saml_metadata_is_published(saml_site: Site) -> None:
    metadata = saml_site.browser().get("/stepup/reauth/saml/metadata/")
    assert metadata.status_code == 200
    assert metadata["Content-Type"].startswith("application/samlmetadata+xml")
    assert saml_idp.SP_ID in metadata.content.decode()
