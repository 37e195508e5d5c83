"""SSO users re-authenticate at a real OpenID provider and a real SAML IdP through the
ready-made views: the start view, the OIDC callback, the SAML ACS.

The OpenID provider is the certified ``oidc-provider`` of the adapter's own tests, the
SAML IdP pysaml2's ``Server`` (``tests/idp``); both stamp real times, so each test's
clock starts at the real time and is then frozen.
"""

from __future__ import annotations

import html
import logging
import math
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

import pytest
from saml2.samlp import STATUS_AUTHN_FAILED

from idp.oidc.harness import ALICE, MALLORY, REDIRECT_URI, Provider, launch_provider, make_config
from idp.oidc.useragent import UserAgent
from idp.saml import saml_idp
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
from integrations.starlette.starlette_support import (
    PASSWORDS,
    Browser,
    TestApp,
    csrf_token,
    enrol,
    make_app,
)
from stepup.adapters.idp.oidc import AsyncOIDCReauth
from stepup.adapters.idp.saml import AsyncSAMLServiceProvider, SAMLServiceProvider
from stepup.adapters.storage.memory import MemoryStore
from stepup.events import ReauthSucceeded
from stepup.integrations.views import default_policy
from stepup.policy import SENSITIVE
from stepup.testing import SettableClock
from support import need

_SSO_FORM = re.compile(r'<form method="post" action="([^"]+/(?:oidc|saml)/start[^"]*)">')


def press_sso_button(browser: Browser, reauth_url: str, **fields: str) -> Any:
    """Open the re-auth page and submit its provider form (with a code, if given)."""
    page = browser.get(reauth_url)
    assert page.status_code == 200
    assert 'type="password"' not in page.text
    form = _SSO_FORM.search(page.text)
    assert form is not None, page.text
    data = {"csrf_token": csrf_token(page.text), **fields}
    return browser.post(html.unescape(form.group(1)), data=data)


def last_grant_methods(test_app: TestApp) -> str:
    return [e for e in test_app.events if isinstance(e, ReauthSucceeded)][-1].method


# OIDC ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    started = launch_provider(tmp_path_factory.mktemp("starlette-oidc") / "provider.log")
    yield started
    started.stop()


@pytest.fixture
def agent() -> Iterator[UserAgent]:
    user_agent = UserAgent(REDIRECT_URI)
    yield user_agent
    user_agent.close()


def oidc_app(provider: Provider, store: MemoryStore | None = None, **options: Any) -> TestApp:
    clock = SettableClock(math.floor(time.time()))
    store = MemoryStore() if store is None else store
    oidc = AsyncOIDCReauth(make_config(provider), store, clock=clock)
    return make_app(clock=clock, store=store, oidc=oidc, teardown=oidc.aclose, **options)


def oidc_browser(test_app: TestApp, provider: Provider) -> Browser:
    # One browser per app: the adapter's HTTP client lives on that browser's event loop.
    browser = test_app.browser()
    signed_in = browser.login_sso("alice", "oidc", provider.issuer, ALICE[0], "test-op")
    assert signed_in.status_code == 303
    assert browser.patch_tenant(True).status_code == 200
    return browser


@pytest.mark.oidc
def test_oidc_user_reauthenticates_at_the_provider(provider: Provider, agent: UserAgent) -> None:
    test_app = oidc_app(provider)
    alice = oidc_browser(test_app, provider)
    try:
        refused = alice.get("/api-key?tab=keys")
        assert refused.status_code == 303
        to_provider = press_sso_button(alice, refused.headers["location"])
        assert to_provider.status_code == 303
        assert to_provider.headers["location"].startswith(f"{provider.issuer}/auth?")

        callback = agent.authorize(
            to_provider.headers["location"], login=ALICE[0], password=ALICE[1]
        )
        back = alice.get(f"/stepup/oidc/callback?{urlencode(callback)}")
        assert back.status_code == 303
        assert back.headers["location"] == "/api-key?tab=keys"
        assert alice.get("/api-key").text == "the key"
        assert last_grant_methods(test_app) == "oidc"

        # The same callback again: its state was consumed.
        assert alice.get(f"/stepup/oidc/callback?{urlencode(callback)}").status_code == 400
    finally:
        alice.close()


@pytest.mark.oidc
def test_someone_else_at_the_provider_does_not_count(
    provider: Provider, agent: UserAgent, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    test_app = oidc_app(provider)
    alice = oidc_browser(test_app, provider)
    try:
        to_provider = press_sso_button(alice, "/stepup/reauth?action=api_key.read&next=/api-key")
        callback = agent.authorize(
            to_provider.headers["location"], login=MALLORY[0], password=MALLORY[1]
        )
        refused = alice.get(f"/stepup/oidc/callback?{urlencode(callback)}")
        assert refused.status_code == 400
        assert OTHER_ACCOUNT in refused.text
        assert alice.get("/api-key").status_code == 303
        assert refusals(test_app.events) == [("alice", "oidc", "wrong_subject")]
        assert_noted(caplog, "oidc", "wrong_subject")
    finally:
        alice.close()


@pytest.mark.oidc
def test_each_refusal_names_its_cause_and_is_reported(
    provider: Provider, agent: UserAgent, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    store = ChallengeOutage()
    test_app = oidc_app(provider, store)
    alice = oidc_browser(test_app, provider)

    def trip(**at_provider: Any) -> dict[str, str]:
        start = "/stepup/reauth?action=api_key.read&next=/api-key"
        to_provider = press_sso_button(alice, start)
        return agent.authorize(to_provider.headers["location"], **at_provider)

    def back(callback: dict[str, str]) -> tuple[int, str]:
        answer = alice.get(f"/stepup/oidc/callback?{urlencode(callback)}")
        return answer.status_code, answer.text

    try:
        status, page = back(trip(cancel=True))
        assert status == 400
        assert CANCELLED in page
        assert_noted(caplog, "oidc", "provider_error (provider error access_denied)")

        callback = trip(login=ALICE[0], password=ALICE[1])
        test_app.clock.advance(600)  # the challenge's lifetime, at the provider
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

        assert refusals(test_app.events) == [
            ("alice", "oidc", "provider_error"),
            ("alice", "oidc", "expired"),
        ]
        assert alice.get("/api-key").status_code == 303
    finally:
        alice.close()


@pytest.mark.oidc
def test_a_code_rule_checks_the_code_before_leaving(provider: Provider, agent: UserAgent) -> None:
    policy = default_policy().extend({"api_key.read": replace(SENSITIVE, second_factor=True)})
    test_app = oidc_app(provider, policy=policy)
    alice = oidc_browser(test_app, provider)
    try:
        totp, _ = enrol(alice)
        location = alice.get("/api-key").headers["location"]
        assert 'name="code"' in alice.get(location).text

        wrong = press_sso_button(alice, location, code="12345x")
        assert wrong.status_code == 400  # refused here, before any trip to the provider
        test_app.clock.advance(30)  # a step whose code is not used yet
        right = totp.at(test_app.clock())
        twice = press_sso_button(alice, location, code=["000000", right])  # type: ignore[arg-type]
        assert twice.status_code == 400  # a code sent twice is no code, in every framework

        test_app.clock.advance(30)
        to_provider = press_sso_button(alice, location, code=totp.at(test_app.clock()))
        assert to_provider.status_code == 303
        callback = agent.authorize(
            to_provider.headers["location"], login=ALICE[0], password=ALICE[1]
        )
        back = alice.get(f"/stepup/oidc/callback?{urlencode(callback)}")
        assert back.headers["location"] == "/api-key"
        assert last_grant_methods(test_app) == "oidc,otp"
        assert alice.get("/api-key").text == "the key"
    finally:
        alice.close()


@pytest.mark.oidc
def test_a_password_user_cannot_start_oidc(provider: Provider) -> None:
    test_app = oidc_app(provider)
    bob = test_app.browser()
    try:
        bob.login("bob")
        page = bob.get("/stepup/reauth?action=api_key.read&next=/api-key")
        assert 'type="password"' in page.text
        assert not _SSO_FORM.search(page.text)
        started = bob.post(
            "/stepup/oidc/start?action=api_key.read&next=/",
            data={"csrf_token": csrf_token(page.text)},
        )
        assert started.status_code == 400
        assert bob.reauth("/stepup/reauth?action=api_key.read", PASSWORDS["bob"]).status_code == 303
    finally:
        bob.close()


# SAML ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, saml_idp.KeyPair]:
    need(shutil.which("xmlsec1") is not None, "xmlsec1 is not installed (apt-get install xmlsec1)")
    directory = tmp_path_factory.mktemp("starlette-saml-keys")
    return {name: saml_idp.make_keypair(directory, name) for name in ("sp", "idp")}


@pytest.fixture(scope="module")
def idp(keys: dict[str, saml_idp.KeyPair]) -> saml_idp.TestIdP:
    metadata = SAMLServiceProvider(saml_idp.make_config(keys), MemoryStore()).metadata()
    return saml_idp.make_idp(keys["idp"], metadata)


@pytest.fixture
def saml_app(keys: dict[str, saml_idp.KeyPair]) -> TestApp:
    clock = SettableClock(time.time())
    store = MemoryStore()
    sp = AsyncSAMLServiceProvider(saml_idp.make_config(keys), store, clock=clock)
    return make_app(clock=clock, store=store, saml=sp)


def saml_browser(test_app: TestApp) -> Browser:
    browser = test_app.browser()
    assert browser.login_sso("alice", "saml", saml_idp.IDP_ID, saml_idp.ALICE, "corp").status_code
    assert browser.patch_tenant(True).status_code == 200
    return browser


@pytest.mark.saml
def test_saml_user_reauthenticates_at_the_idp(saml_app: TestApp, idp: saml_idp.TestIdP) -> None:
    alice = saml_browser(saml_app)
    try:
        refused = alice.get("/api-key?tab=1")
        to_idp = press_sso_button(alice, refused.headers["location"])
        assert to_idp.status_code == 303
        assert to_idp.headers["location"].startswith(saml_idp.SSO_URL)

        request = idp.receive(to_idp.headers["location"])
        assert request.force_authn
        answer = {
            "SAMLResponse": idp.answer(request, saml_idp.ALICE),
            "RelayState": request.relay_state or "",
        }
        back = alice.post("/stepup/saml/acs", data=answer)  # no CSRF token: the IdP posts
        assert back.status_code == 303
        assert back.headers["location"] == "/api-key?tab=1"
        assert alice.get("/api-key").text == "the key"
        assert last_grant_methods(saml_app) == "saml"

        # The same response again: its request was consumed.
        assert alice.post("/stepup/saml/acs", data=answer).status_code == 400
    finally:
        alice.close()


@pytest.mark.saml
def test_a_stale_or_foreign_saml_answer_records_no_grant(
    saml_app: TestApp, idp: saml_idp.TestIdP, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    alice = saml_browser(saml_app)
    try:
        # An IdP that ignores ForceAuthn and answers from a login made an hour ago.
        idp.log_in(saml_idp.ALICE, at=time.time() - 3600)
        start = "/stepup/reauth?action=api_key.read&next=/api-key"
        request = idp.receive(press_sso_button(alice, start).headers["location"])
        stale = idp.answer(request, saml_idp.ALICE, honour_force_authn=False)
        refused = alice.post("/stepup/saml/acs", data={"SAMLResponse": stale})
        assert refused.status_code == 400
        assert NOT_ASKED_AGAIN in refused.text
        assert alice.get("/api-key").status_code == 303
        assert_noted(caplog, "saml", "stale_authn_instant")

        # Another person signing in at the IdP does not count for alice.
        request = idp.receive(press_sso_button(alice, start).headers["location"])
        foreign = idp.answer(request, saml_idp.BOB)
        refused = alice.post("/stepup/saml/acs", data={"SAMLResponse": foreign})
        assert refused.status_code == 400
        assert OTHER_ACCOUNT in refused.text
        assert alice.get("/api-key").status_code == 303
        assert_noted(caplog, "saml", "wrong_subject")

        # The IdP could not sign her in (or she cancelled there).
        request = idp.receive(press_sso_button(alice, start).headers["location"])
        error = idp.error(request, STATUS_AUTHN_FAILED)
        refused = alice.post("/stepup/saml/acs", data={"SAMLResponse": error})
        assert refused.status_code == 400
        assert PROVIDER_REFUSED in refused.text
        assert_noted(caplog, "saml", "idp_error")
        assert refusals(saml_app.events) == [
            ("alice", "saml", "stale_authn_instant"),
            ("alice", "saml", "wrong_subject"),
            ("alice", "saml", "idp_error"),
        ]
    finally:
        alice.close()


@pytest.mark.saml
def test_a_forged_saml_answer_with_no_trip_begun_is_no_failure_of_hers(
    saml_app: TestApp, idp: saml_idp.TestIdP, caplog: pytest.LogCaptureFixture
) -> None:
    """Any page can make alice's browser post to the ACS. An unsigned answer, or an IdP
    error, is refused before it is matched to a request: with no trip of her session
    pending it is only a DEBUG line; the IdP's error on her own trip is reported."""
    caplog.set_level(logging.DEBUG, LOGGER)
    alice, other = saml_browser(saml_app), saml_browser(saml_app)
    try:
        start = "/stepup/reauth?action=api_key.read&next=/api-key"
        # A request of another session (the forger's): alice's session began no trip.
        request = idp.receive(press_sso_button(other, start).headers["location"])
        forged = {
            "unsigned": idp.answer(
                request, saml_idp.ALICE, sign_response=False, sign_assertion=False
            ),
            "idp_error": idp.error(request, STATUS_AUTHN_FAILED),
        }
        for reason, answer in forged.items():
            refused = alice.post(
                "/stepup/saml/acs",
                data={"SAMLResponse": answer, "RelayState": request.relay_state or ""},
            )
            assert refused.status_code == 400
            assert (PROVIDER_REFUSED if reason == "idp_error" else NOT_CONFIRMED) in refused.text
            assert f"saml answer matching no re-authentication of this session: {reason}" in [
                r.getMessage() for r in caplog.records if r.name == LOGGER
            ]
            assert_not_noted(caplog)
        assert refusals(saml_app.events) == []

        # Her own trip, refused at the IdP: reported as before.
        request = idp.receive(press_sso_button(alice, start).headers["location"])
        error = idp.error(request, STATUS_AUTHN_FAILED)
        assert alice.post("/stepup/saml/acs", data={"SAMLResponse": error}).status_code == 400
        assert [
            r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno >= logging.INFO
        ] == ["saml re-authentication refused: idp_error"]
        assert refusals(saml_app.events) == [("alice", "saml", "idp_error")]
    finally:
        alice.close()
        other.close()


@pytest.mark.saml
def test_saml_metadata_is_published(saml_app: TestApp) -> None:
    browser = saml_app.browser()
    try:
        metadata = browser.get("/stepup/saml/metadata")
        assert metadata.status_code == 200
        assert metadata.headers["content-type"].startswith("application/samlmetadata+xml")
        assert saml_idp.SP_ID in metadata.text
    finally:
        browser.close()
