"""An OIDC single sign-on user in the browser: signs in at the test OpenID provider, and
re-authenticates there (not with a password) once the tenant flag is on."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from e2e.conftest import Tour
from e2e.demo_server import DemoServer
from e2e.journeys import ADMIN, grant_state, sign_in, sign_out, toggle_flag
from e2e.oidc_provider import ALICE, PROVIDER_NAME

pytestmark = [pytest.mark.browser, pytest.mark.oidc]


def provider_login(page: Any, issuer: str) -> None:
    expect(page).to_have_url(re.compile("^" + re.escape(issuer) + "/interaction/"))
    page.fill("input[name=login]", ALICE[0])
    page.fill("input[name=password]", ALICE[1])
    page.click("button[type=submit]")


@pytest.mark.parametrize("demo", ["oidc"], indirect=True)
def test_oidc_user_signs_in_and_reauthenticates_at_the_provider(
    page: Any, demo: DemoServer, tour: Tour
) -> None:
    sign_in(page, ADMIN)
    toggle_flag(page, on=True)
    sign_out(page)

    page.get_by_role("button", name=f"Sign in with {PROVIDER_NAME}").click()
    issuer = page.url.split("/interaction/")[0]
    provider_login(page, issuer)
    expect(page).to_have_url(re.compile(r"/account$"))
    expect(page.locator("#account-email")).to_have_text("alice@example.com")
    expect(page.locator("main")).to_contain_text("OpenID Connect single sign-on")

    # A sensitive action: no password field, a button to the provider instead.
    page.goto("/account/edit")
    expect(page.locator("h1")).to_have_text("Confirm it is you")
    expect(page.locator("#stepup-password")).to_have_count(0)
    tour.shot(page, "reauth-sso")
    page.get_by_role("button", name=f"Continue with {PROVIDER_NAME}").click()
    provider_login(page, issuer)  # prompt=login: the provider asks again
    expect(page).to_have_url(re.compile(r"/account/edit$"))
    assert grant_state(page) == "fresh"

    page.fill("#name", "Alice from SSO")
    page.click("main form button[type=submit]")
    expect(page.locator("#account-name")).to_have_text("Alice from SSO")

    # The same identity signs in to the same demo user next time (the provider still
    # has its own session, so it answers at once).
    sign_out(page)
    page.get_by_role("button", name=f"Sign in with {PROVIDER_NAME}").click()
    expect(page).to_have_url(re.compile(r"/account$"))
    expect(page.locator("#account-name")).to_have_text("Alice from SSO")
