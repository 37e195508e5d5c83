"""The demo in headless Chromium: the journeys of issue 7, as a person clicks them.

Each test gets a fresh demo (its own SQLite file) whose clock the test holds: TOTP codes
are computed from it, and the next step or an expired grant is one ``advance`` away.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from e2e.conftest import Tour
from e2e.demo_server import DemoServer
from e2e.journeys import (
    ADMIN,
    MEMBER,
    PASSWORDS,
    enrol,
    fill_sign_in,
    grant_state,
    new_session,
    reauthenticate,
    sign_in,
    sign_out,
    submit_code,
    toggle_flag,
)

pytestmark = pytest.mark.browser

REPLAYED = "That code was already used. Wait for the next code and try again."
SIX_HOURS = 6 * 3600


def test_sign_in_and_out(page: Any, tour: Tour) -> None:
    page.goto("/api-keys")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fapi-keys$"))
    tour.shot(page, "sign-in")

    fill_sign_in(page, ADMIN, "not the password")
    expect(page.locator("#login-error")).to_have_text("Wrong email or password.")
    fill_sign_in(page, ADMIN)
    expect(page).to_have_url(re.compile(r"/api-keys$"))  # back where they were going
    expect(page.locator("#signed-in-as")).to_have_text(ADMIN)
    assert grant_state(page) == "off"

    page.goto("/account")
    expect(page.locator("#account-email")).to_have_text(ADMIN)
    tour.shot(page, "account")

    sign_out(page)
    page.goto("/account")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Faccount$"))


def test_two_factor_enrol_sign_in_replay_and_removal(
    page: Any, demo: DemoServer, tour: Tour
) -> None:
    sign_in(page, MEMBER)
    expect(page).to_have_url(re.compile(r"/account$"))
    totp, confirming, recovery = enrol(page, demo.clock, tour)
    tour.shot(page, "recovery-codes")
    page.goto("/security")
    expect(page.locator("#two-factor-state")).to_have_attribute("data-enrolled", "yes")

    # Signing in now asks for a code; the one that confirmed enrolment is spent.
    sign_out(page)
    sign_in(page, MEMBER)
    expect(page).to_have_url(re.compile(r"/stepup/2fa/verify$"))
    submit_code(page, confirming)
    expect(page.locator("#stepup-error")).to_have_text(REPLAYED)
    tour.shot(page, "code-replayed")

    demo.clock.advance(30)  # the next step: a new code
    code = totp.at(demo.clock())
    submit_code(page, code)
    expect(page).to_have_url(re.compile(r"/account$"))

    # Sign out and in again within the same 30 seconds: the same code is refused.
    sign_out(page)
    sign_in(page, MEMBER)
    submit_code(page, code)
    expect(page.locator("#stepup-error")).to_have_text(REPLAYED)
    expect(page).to_have_url(re.compile(r"/stepup/2fa/verify$"))

    # A recovery code works once, instead of the app.
    page.click("summary")
    page.fill("#stepup-recovery", recovery[0])
    page.click("form:has(#stepup-recovery) button[type=submit]")
    expect(page).to_have_url(re.compile(r"/account$"))
    sign_out(page)

    # An admin with full access removes the member's 2FA (flag off: no prompt).
    sign_in(page, ADMIN)
    page.goto("/users")
    row = page.locator("tr", has_text=MEMBER)
    row.get_by_role("link", name="Remove two-factor").click()
    page.click("form button[type=submit]")
    expect(page).to_have_url(re.compile(r"/users$"))
    expect(page.locator("tr", has_text=MEMBER).get_by_role("link")).to_have_count(0)
    sign_out(page)

    sign_in(page, MEMBER)  # the password alone again
    expect(page).to_have_url(re.compile(r"/account$"))


def test_flag_on_then_regenerate_an_api_key_through_the_prompt(
    page: Any, demo: DemoServer, tour: Tour
) -> None:
    sign_in(page, ADMIN)
    page.goto("/api-keys/1/regenerate")  # flag off: no prompt
    expect(page.locator("h1")).to_have_text("Regenerate the API key Deploy bot?")

    toggle_flag(page, on=True)  # changing tenant settings asked for the password
    assert grant_state(page) == "fresh"
    new_session(page, ADMIN)
    page.goto("/tenant")
    assert grant_state(page) == "stale"
    tour.shot(page, "tenant")

    page.goto("/api-keys")
    before = page.locator("tr[data-key-id='1'] code").inner_text()
    page.locator("tr[data-key-id='1']").get_by_role("link", name="Regenerate").click()
    expect(page).to_have_url(re.compile(r"/stepup/reauth\?next=%2Fapi-keys%2F1%2Fregenerate"))

    reauthenticate(page, "not my password")
    expect(page.locator("#stepup-error")).to_have_text(
        "That password is not right. Check it and try again."
    )
    tour.shot(page, "reauth")
    reauthenticate(page, PASSWORDS[ADMIN])

    expect(page).to_have_url(re.compile(r"/api-keys/1/regenerate$"))
    assert grant_state(page) == "fresh"
    expect(page.locator("#grant-status")).to_contain_text("allowed for 6 h more")
    page.click("#confirm")
    expect(page).to_have_url(re.compile(r"/api-keys$"))
    expect(page.locator(".flash")).to_contain_text("Deploy bot was regenerated")
    after = page.locator("tr[data-key-id='1'] code").inner_text()
    assert after != before
    tour.shot(page, "api-keys")

    # Within the lifetime: reading the key asks nothing.
    page.locator("tr[data-key-id='1']").get_by_role("link", name="Show").click()
    expect(page).to_have_url(re.compile(r"/api-keys/1$"))
    assert page.input_value("#api-key-value").endswith(after[-4:])

    # Six hours later the grant is stale: the same page asks again.
    demo.clock.advance(SIX_HOURS)
    page.goto("/api-keys/1")
    expect(page).to_have_url(re.compile(r"/stepup/reauth\?next=%2Fapi-keys%2F1&"))

    page.goto("/audit")
    names = page.locator("#audit .event-name").all_inner_texts()
    for name in ("TenantFlagChanged", "ReauthFailed", "ReauthSucceeded", "ApiKeyRegenerated"):
        assert name in names
    expect(page.locator("#audit tr", has_text="TenantFlagChanged")).to_contain_text("new=True")
    html = page.content()
    assert PASSWORDS[ADMIN] not in html
    assert "not my password" not in html
    tour.shot(page, "audit")


def test_one_grant_covers_the_other_sensitive_actions(page: Any, demo: DemoServer) -> None:
    sign_in(page, ADMIN)
    toggle_flag(page, on=True)
    new_session(page, ADMIN)

    # A sandbox is not sensitive: deleted without a prompt, even now.
    page.goto("/workspaces")
    page.locator("tr", has_text="Sandbox").get_by_role("link", name="Delete").click()
    expect(page.locator("h1")).to_have_text("Delete the workspace Sandbox?")
    page.click("#confirm")
    expect(page.locator(".flash")).to_have_text("Deleted the workspace Sandbox.")

    # Inviting to the contract is: one prompt, then everything else within the lifetime.
    page.goto("/contract")
    page.get_by_role("link", name="Invite a member").click()
    reauthenticate(page, PASSWORDS[ADMIN])
    expect(page).to_have_url(re.compile(r"/contract/members/invite$"))
    page.fill("#email", "new.person@acme.test")
    page.select_option("#role", "admin")
    page.click("main form button[type=submit]")
    expect(page.locator("table.members")).to_contain_text("new.person@acme.test")

    row = page.locator("tr", has_text="new.person@acme.test")
    row.get_by_role("link", name="Change role").click()
    page.select_option("#role", "member")
    page.click("main form button[type=submit]")
    expect(page.locator("tr", has_text="new.person@acme.test")).to_contain_text("member")

    page.goto("/ssh-keys/new")
    page.fill("#title", "Build server")
    page.fill("#public_key", "ssh-rsa not-a-key")
    page.click("main form button[type=submit]")
    expect(page.locator(".error")).to_contain_text("not an OpenSSH public key")

    page.goto("/workspaces")
    page.locator("tr", has_text="Production").get_by_role("link", name="Delete").click()
    expect(page.locator("h1")).to_have_text("Delete the workspace Production?")
    page.click("#confirm")
    expect(page.locator("#workspaces")).not_to_contain_text("Production")

    # Signing out revokes the grant: the next session is asked again.
    sign_out(page)
    sign_in(page, ADMIN)
    page.goto("/ssh-keys/new")
    expect(page.locator("h1")).to_have_text("Confirm it is you")


def test_copy_asks_through_json_and_members_cannot_flip_the_flag(page: Any) -> None:
    sign_in(page, MEMBER)
    page.goto("/tenant")
    expect(page.locator("#toggle-flag")).to_have_count(0)
    status = page.evaluate(
        """async () => (await fetch("/stepup/tenants/acme", {method: "PATCH",
            headers: {"Content-Type": "application/vnd.api+json"},
            body: JSON.stringify({data: {type: "tenant",
                attributes: {feature_flags: {sensitive_actions_reauth: true}}}})})).status"""
    )
    assert status == 403
    sign_out(page)

    sign_in(page, ADMIN)
    toggle_flag(page, on=True)
    new_session(page, ADMIN)
    page.goto("/api-keys")
    page.locator("tr[data-key-id='1']").get_by_role("link", name="Copy").click()
    # The script's fetch got 401 with the re-auth address, and went there.
    expect(page).to_have_url(re.compile(r"/stepup/reauth\?next=%2Fapi-keys%2F1%2Fcopy"))
    reauthenticate(page, PASSWORDS[ADMIN])
    expect(page).to_have_url(re.compile(r"/api-keys/1/copy$"))
    expect(page.locator("#api-key-value")).to_have_value(re.compile(r"^sk_demo_"))

    toggle_flag(page, on=False)
    assert grant_state(page) == "off"
