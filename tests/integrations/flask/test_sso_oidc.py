"""An OIDC user re-authenticates at a real OpenID provider through the ready-made views.

The provider is the certified ``oidc-provider`` the OIDC adapter's tests run
(``tests/idp/oidc``); the test's user agent fills in its login form over HTTP.
"""

from __future__ import annotations

import html
import math
import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest

from idp.oidc.harness import ALICE, MALLORY, REDIRECT_URI, Provider, launch_provider, make_config
from idp.oidc.useragent import UserAgent
from integrations.flask.flask_support import Browser, TestApp, make_app, set_flag
from stepup.adapters.idp.oidc import OIDCReauth
from stepup.adapters.storage.memory import MemoryStore
from stepup.events import ReauthSucceeded
from stepup.testing import SettableClock

pytestmark = pytest.mark.oidc


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    started = launch_provider(tmp_path_factory.mktemp("flask-oidc") / "provider.log")
    yield started
    started.stop()


@pytest.fixture
def oidc_app(provider: Provider) -> Iterator[TestApp]:
    clock = SettableClock(math.floor(time.time()))  # the provider stamps real times
    store = MemoryStore()
    reauth = OIDCReauth(make_config(provider), store, clock=clock)
    yield make_app(
        "subject_loader",
        clock=clock,
        store=store,
        config={"STEPUP_OIDC_PROVIDERS": {"test-op": reauth}},
    )
    reauth.close()


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
    oidc_app: TestApp, provider: Provider, agent: UserAgent
) -> None:
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
    assert "did not confirm" in refused.get_data(as_text=True)
    assert alice.get("/api-key").status_code == 303


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
