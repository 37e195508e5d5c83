"""An OIDC user re-authenticates at a real OpenID provider through the ready-made views.

The provider is the certified ``oidc-provider`` the OIDC adapter's tests run
(``tests/idp/oidc``); the test's user agent fills in its login form over HTTP.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest

from idp.oidc.harness import ALICE, MALLORY, REDIRECT_URI, Provider, launch_provider
from idp.oidc.useragent import UserAgent
from integrations.flask.flask_support import Browser, TestApp, set_flag
from integrations.flask.oidc_support import oidc_app_on
from integrations.sso_refusal_support import (
    CANCELLED,
    LOGGER,
    NOT_CONFIRMED,
    OTHER_ACCOUNT,
    TOOK_TOO_LONG,
    TRY_AGAIN_SOON,
    ChallengeOutage,
    assert_not_noted,
    assert_noted,
    refusals,
)
from stepup.events import ReauthSucceeded

pytestmark = pytest.mark.oidc


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    started = launch_provider(tmp_path_factory.mktemp("flask-oidc") / "provider.log")
    yield started
    started.stop()


@pytest.fixture
def store() -> ChallengeOutage:
    return ChallengeOutage()  # a memory store, but for the outage test


@pytest.fixture
def oidc_app(provider: Provider, store: ChallengeOutage) -> Iterator[TestApp]:
    with oidc_app_on(provider, store) as app:
        yield app


@pytest.fixture
def agent() -> Iterator[UserAgent]:
    user_agent = UserAgent(REDIRECT_URI)
    yield user_agent
    user_agent.close()


def _oidc_user(test_app: TestApp, provider: Provider, user_id: str, sub: str) -> Browser:
    browser = test_app.client()
    with browser.client.session_transaction() as session:
        session["user_id"] = user_id
        session["sso"] = ("oidc", provider.issuer, sub, "test-op")
    return browser


def _to_provider(browser: Browser, location: str, **typed: str) -> Any:
    """Open the re-auth page and press its provider button (after typing ``typed``)."""
    page = browser.get(location).get_data(as_text=True)
    assert 'action="/stepup/reauth/oidc/start"' in page
    assert "Continue with test-op" in page
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page))
    data = {k: html.unescape(v) for k, v in fields.items()}
    return browser.post("/stepup/reauth/oidc/start", data={**data, **typed})


def test_an_oidc_user_reauthenticates_at_the_provider(
    oidc_app: TestApp, provider: Provider, agent: UserAgent
) -> None:
    admin = oidc_app.client()
    admin.login("alice")
    assert set_flag(admin).status_code == 200
    alice = _oidc_user(oidc_app, provider, "alice", ALICE[0])

    refused = alice.get("/api-key?tab=keys")
    assert refused.status_code == 303
    to_provider = _to_provider(alice, refused.headers["Location"])
    assert to_provider.status_code == 303
    assert to_provider.headers["Location"].startswith(f"{provider.issuer}/auth?")

    callback = agent.authorize(to_provider.headers["Location"], login=ALICE[0], password=ALICE[1])
    back = alice.get(f"/stepup/reauth/oidc/callback?{urlencode(callback)}")
    assert back.status_code == 303
    assert back.headers["Location"] == "/api-key?tab=keys"
    assert alice.get("/api-key").json["reason"] == "fresh_grant"

    # The same callback again: its state was consumed.
    assert alice.get(f"/stepup/reauth/oidc/callback?{urlencode(callback)}").status_code == 400


def test_someone_else_at_the_provider_does_not_count(
    oidc_app: TestApp, provider: Provider, agent: UserAgent, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    admin = oidc_app.client()
    admin.login("alice")
    set_flag(admin)
    alice = _oidc_user(oidc_app, provider, "alice", ALICE[0])
    to_provider = _to_provider(alice, "/stepup/reauth?next=/api-key")
    callback = agent.authorize(
        to_provider.headers["Location"], login=MALLORY[0], password=MALLORY[1]
    )
    refused = alice.get(f"/stepup/reauth/oidc/callback?{urlencode(callback)}")
    assert refused.status_code == 400
    assert OTHER_ACCOUNT in refused.get_data(as_text=True)
    assert alice.get("/api-key").status_code == 303
    assert refusals(oidc_app.events) == [("alice", "oidc", "wrong_subject")]
    assert_noted(caplog, "oidc", "wrong_subject")


def test_a_code_rule_checks_the_code_before_leaving(
    oidc_app: TestApp, provider: Provider, agent: UserAgent
) -> None:
    admin = oidc_app.client()
    admin.login("alice")
    set_flag(admin)
    alice = _oidc_user(oidc_app, provider, "alice", ALICE[0])
    secret, _ = alice.enrol()
    location = alice.get("/billing/export").headers["Location"]  # this rule wants a code too
    assert 'name="code"' in alice.get(location).get_data(as_text=True)

    wrong = _to_provider(alice, location, code="12345x")
    assert wrong.status_code == 400  # refused here, before any trip to the provider

    oidc_app.clock.advance(30)
    to_provider = _to_provider(alice, location, code=oidc_app.totp_code(secret))
    assert to_provider.status_code == 303
    callback = agent.authorize(to_provider.headers["Location"], login=ALICE[0], password=ALICE[1])
    back = alice.get(f"/stepup/reauth/oidc/callback?{urlencode(callback)}")
    assert back.headers["Location"] == "/billing/export"
    grants = [e for e in oidc_app.events if isinstance(e, ReauthSucceeded)]
    assert grants[-1].method == "oidc,otp"
    assert alice.get("/billing/export").get_data(as_text=True) == "billing.csv"


def test_each_refusal_names_its_cause_and_is_reported(
    oidc_app: TestApp,
    store: ChallengeOutage,
    provider: Provider,
    agent: UserAgent,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    admin = oidc_app.client()
    admin.login("alice")
    set_flag(admin)
    alice = _oidc_user(oidc_app, provider, "alice", ALICE[0])

    def trip(**at_provider: Any) -> dict[str, str]:
        to_provider = _to_provider(alice, "/stepup/reauth?next=/api-key")
        return agent.authorize(to_provider.headers["Location"], **at_provider)

    def back(callback: dict[str, str]) -> tuple[int, str]:
        answer = alice.get(f"/stepup/reauth/oidc/callback?{urlencode(callback)}")
        return answer.status_code, answer.get_data(as_text=True)

    status, page = back(trip(cancel=True))
    assert status == 400
    assert CANCELLED in page
    assert_noted(caplog, "oidc", "provider_error (provider error access_denied)")

    callback = trip(login=ALICE[0], password=ALICE[1])
    oidc_app.clock.advance(600)  # the challenge's lifetime, at the provider
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

    assert refusals(oidc_app.events) == [
        ("alice", "oidc", "provider_error"),
        ("alice", "oidc", "expired"),
    ]
    assert alice.get("/api-key").status_code == 303
