"""The demo in headless Chromium with stepup's store on a real Redis (its own
``redis-server``, stopped by the test): the Tenant page's button says in a sentence why
the change was refused (never the raw JSON), the prompt it leads to cancels back to the
Tenant page, and an OpenID Connect sign-in during an outage says "try again"."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from e2e import demo_server
from e2e.conftest import running_demo
from e2e.demo_server import DemoServer
from e2e.journeys import ADMIN, sign_in, toggle_flag
from e2e.oidc_provider import PROVIDER_NAME
from e2e.test_browser_sso import provider_login
from e2e.test_demo_outage import TRY_AGAIN, spare_port
from stepup.adapters.storage.redis import AsyncRedisStore
from stepup.demo import create_app
from stepup.demo.sso import OIDC_CALLBACK
from storage.redis_cluster import RedisServer, need_redis_binaries

pytestmark = pytest.mark.browser

#: The endpoint's JSON:API 503 title, the same for the grant read and the write.
CANNOT_CHANGE = "Tenant settings cannot be changed right now."


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    need_redis_binaries()
    server = RedisServer(tmp_path / "redis", spare_port())
    try:
        yield server.start()
    finally:
        server.kill()


@pytest.fixture
def demo(
    tmp_path: Path,
    request: pytest.FixtureRequest,
    redis: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[DemoServer]:
    """conftest's demo (the ``page`` fixture's), with stepup's store on ``redis``."""
    store = AsyncRedisStore(redis.url, prefix=f"demo-outage-{uuid.uuid4().hex}:", timeout=2.0)
    monkeypatch.setattr(demo_server, "create_app", partial(create_app, store=store))
    with running_demo(tmp_path, getattr(request, "param", None)) as server:
        yield server


def test_the_tenant_button_while_the_store_is_down_says_why_in_a_sentence(
    page: Any, redis: RedisServer
) -> None:
    sign_in(page, ADMIN)
    expect(page).to_have_url(re.compile(r"/account$"))
    page.goto("/tenant")
    redis.kill()
    page.click("#toggle-flag")
    result = page.locator("#patch-result")
    expect(result).to_be_visible()
    expect(result).to_have_text(CANNOT_CHANGE)  # not '503 {"error":...}'
    expect(page).to_have_url(re.compile(r"/tenant$"))
    # The other answers the endpoint gives: a JSON:API error document's title and
    # detail, as sentences; anything else (no JSON, no words) its status.
    said = {
        "404": "refusal({errors: [{status: '404', code: 'not_found', title: 'No such tenant'}]}, 404)",
        "403": "refusal({errors: [{title: 'forbidden', detail: 'Only a tenant admin may.'}]}, 403)",
        "500": "refusal({}, 500)",
        "415": "refusal({errors: [{title: ' '}]}, 415)",
    }
    assert {status: page.evaluate(call) for status, call in said.items()} == {
        "404": "No such tenant.",
        "403": "Forbidden. Only a tenant admin may.",
        "500": "The change could not be made (status 500).",
        "415": "The change could not be made (status 415).",
    }


def test_cancel_on_the_prompt_of_the_tenant_button_goes_back_to_the_tenant_page(
    page: Any,
) -> None:
    sign_in(page, ADMIN)
    expect(page).to_have_url(re.compile(r"/account$"))
    page.goto("/tenant")
    with page.expect_navigation():
        page.click("#toggle-flag")  # the PATCH's 401 names the prompt
    expect(page.locator("#stepup-password")).to_have_count(1)
    assert "next=%2Ftenant%2Fflag" in page.url
    page.click("a.stepup-cancel")
    expect(page).to_have_url(re.compile(r"/tenant$"))  # not /
    expect(page.locator("#flag-state")).to_have_attribute("data-on", "no")
    # The prompt, answered, comes back to the Tenant page for the second click.
    toggle_flag(page, on=True)


@pytest.mark.oidc
@pytest.mark.parametrize("demo", ["oidc"], indirect=True)
def test_an_oidc_sign_in_while_the_store_is_down_says_try_again(
    page: Any, demo: DemoServer, redis: RedisServer
) -> None:
    page.goto("/login")
    redis.kill()
    page.get_by_role("button", name=f"Sign in with {PROVIDER_NAME}").click()
    provider_login(page, page.url.split("/interaction/")[0])
    # The provider signed Alice in; whether a second factor is due cannot be known now.
    expect(page).to_have_url(re.compile(re.escape(OIDC_CALLBACK)))
    expect(page.locator("main")).to_contain_text(TRY_AGAIN)
    page.goto("/account")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Faccount$"))  # nobody signed in
