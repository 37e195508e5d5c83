"""The two-factor journeys: enrol, verify at sign-in, replay refused, recovery codes,
removal by the user (behind re-auth) and by an admin with full access."""

from __future__ import annotations

import anyio
import pytest

from integrations.resume_support import as_multidict, resume_form
from integrations.starlette.starlette_support import (
    PASSWORDS,
    Browser,
    TestApp,
    csrf_token,
    enrol,
    next_of,
)
from stepup.events import RecoveryCodeUsed, TwoFactorEnabled, TwoFactorRemoved
from stepup.testing import SettableClock

VERIFY = "/stepup/2fa/verify"


def is_enrolled(test_app: TestApp, user: str) -> bool:
    return anyio.run(test_app.stepup.two_factor.is_enrolled, user)


def sign_in_again(browser: Browser, user: str, next: str = "/") -> None:
    browser.logout()
    waiting = browser.login(user, next=next)
    assert waiting.status_code == 303
    assert waiting.headers["location"] == VERIFY
    assert browser.get("/").text == "hello stranger"  # not signed in yet


def test_enrol_verify_and_replay(test_app: TestApp, alice: Browser, clock: SettableClock) -> None:
    page = alice.form("/stepup/2fa", to="/stepup/2fa/enrol")
    # A malformed code is refused, and enrolment stays pending.
    wrong = alice.post(
        "/stepup/2fa/confirm", data={"csrf_token": csrf_token(page.text), "code": "12345"}
    )
    assert wrong.status_code == 400
    assert not is_enrolled(test_app, "alice")

    totp, _ = enrol(alice)
    confirming_code = totp.at(clock())
    assert is_enrolled(test_app, "alice")
    assert any(isinstance(e, TwoFactorEnabled) for e in test_app.events)
    # Enrolling again is refused while it is on: back to the two-factor page, which says so.
    again = alice.form("/stepup/2fa", to="/stepup/2fa/enrol")
    assert (again.status_code, again.headers["location"]) == (303, "/stepup/2fa")
    assert "Two-factor authentication is already on." in alice.get("/stepup/2fa").text

    # Sign-in now waits for the code. The confirming code was burned: refused.
    sign_in_again(alice, "alice", next="/api-key")
    replayed = alice.form(VERIFY, {"code": confirming_code})
    assert replayed.status_code == 400
    assert "already used" in replayed.text
    assert alice.get("/").text == "hello stranger"

    clock.advance(30)
    code = totp.at(clock())
    passed = alice.form(VERIFY, {"code": code})
    assert passed.status_code == 303
    assert passed.headers["location"] == "/api-key"
    assert alice.get("/").text == "hello alice"

    # The same code at the next sign-in is a replay, however quick.
    sign_in_again(alice, "alice")
    assert alice.form(VERIFY, {"code": code}).status_code == 400
    clock.advance(30)
    assert alice.form(VERIFY, {"code": totp.at(clock())}).status_code == 303


def test_recovery_codes_sign_in_once(
    test_app: TestApp, alice: Browser, clock: SettableClock
) -> None:
    _, codes = enrol(alice)
    sign_in_again(alice, "alice")
    used = alice.form(VERIFY, {"recovery_code": codes[0].upper()})
    assert used.status_code == 303
    assert alice.get("/").text == "hello alice"
    assert [e.remaining for e in test_app.events if isinstance(e, RecoveryCodeUsed)] == [9]

    sign_in_again(alice, "alice")
    assert alice.form(VERIFY, {"recovery_code": codes[0]}).status_code == 400
    assert alice.form(VERIFY, {"recovery_code": codes[1]}).status_code == 303


def test_pending_sign_in_expires(alice: Browser, clock: SettableClock) -> None:
    enrol(alice)
    sign_in_again(alice, "alice")
    clock.advance(601)
    assert alice.get(VERIFY).status_code == 400
    assert alice.get("/").text == "hello stranger"


def test_verify_without_a_pending_sign_in(test_app: TestApp) -> None:
    stranger = test_app.browser()
    try:
        assert stranger.get(VERIFY).status_code == 400
    finally:
        stranger.close()


def test_regenerate_recovery_codes_behind_reauth(
    test_app: TestApp, alice: Browser, clock: SettableClock
) -> None:
    _, old_codes = enrol(alice)
    assert alice.patch_tenant(True).status_code == 200
    asked = alice.get("/stepup/2fa/recovery-codes")
    assert asked.status_code == 303
    location = asked.headers["location"]
    assert "action=2fa.recovery.regenerate" in location
    assert alice.reauth(location, PASSWORDS["alice"]).headers["location"] == next_of(location)

    fresh = alice.form("/stepup/2fa/recovery-codes")
    assert fresh.status_code == 200
    assert fresh.headers["cache-control"] == "private, no-store"
    new_codes = [c for c in old_codes if c in fresh.text]
    assert new_codes == []  # every old code is gone from the page...
    sign_in_again(alice, "alice")
    assert alice.form(VERIFY, {"recovery_code": old_codes[0]}).status_code == 400  # ...and void


def test_removal_by_the_user_behind_reauth(
    test_app: TestApp, alice: Browser, clock: SettableClock
) -> None:
    enrol(alice)
    assert alice.patch_tenant(True).status_code == 200

    asked = alice.post("/stepup/2fa/remove", data={"csrf_token": "x"})
    assert asked.status_code == 303
    location = asked.headers["location"]
    assert "action=2fa.disable" in location
    assert is_enrolled(test_app, "alice")

    back = alice.reauth(location, PASSWORDS["alice"])  # the resume page sends it again
    assert 'action="/stepup/2fa/remove"' in back.text
    removed = alice.form("/stepup/2fa/remove")
    assert removed.status_code == 303
    assert not is_enrolled(test_app, "alice")
    removals = [e for e in test_app.events if isinstance(e, TwoFactorRemoved)]
    assert [(e.user_id, e.removed_by) for e in removals] == [("alice", "alice")]

    # Sign-in no longer asks for a code.
    alice.logout()
    assert alice.login("alice").headers["location"] == "/"


@pytest.mark.parametrize("path", ["/stepup/2fa/remove", "/stepup/2fa/users/bob/remove"])
def test_a_forged_removal_stays_refused_after_the_reauthentication(
    test_app: TestApp, alice: Browser, bob: Browser, path: str
) -> None:
    """Another site's form, without this session's token, is interrupted by the guard
    (which runs first) like any other; re-authenticating must not turn it into a request
    with a valid token: its replay is refused and nothing is removed."""
    enrol(alice)
    enrol(bob)
    assert alice.patch_tenant(True).status_code == 200

    forged = alice.post(path, data={"go": "1"})
    assert forged.status_code == 303
    assert "resume=" in forged.headers["location"]
    back = alice.reauth(forged.headers["location"], PASSWORDS["alice"])
    target, fields = resume_form(back.text)
    assert fields == [("go", "1")]
    assert alice.post(target, data=as_multidict(fields)).status_code == 403
    assert is_enrolled(test_app, "alice")
    assert is_enrolled(test_app, "bob")
    assert not [e for e in test_app.events if isinstance(e, TwoFactorRemoved)]


def test_removal_by_an_admin_with_full_access(
    test_app: TestApp, alice: Browser, bob: Browser, clock: SettableClock
) -> None:
    enrol(alice)
    enrol(bob)
    assert alice.patch_tenant(True).status_code == 200

    # bob has no full access: refused at once, with no detour through a re-authentication
    # that could not help (as in Flask and Django).
    assert bob.get("/stepup/2fa/users/alice/remove").status_code == 403
    refused = bob.post("/stepup/2fa/users/alice/remove", data={"csrf_token": "any"})
    assert refused.status_code == 403
    assert is_enrolled(test_app, "alice")

    # alice has full access and removes bob's.
    asked = alice.get("/stepup/2fa/users/bob/remove?next=/admin/users")
    assert alice.reauth(asked.headers["location"], PASSWORDS["alice"]).status_code == 303
    removed = alice.form("/stepup/2fa/users/bob/remove?next=/admin/users")
    assert removed.status_code == 303
    assert removed.headers["location"] == "/admin/users"
    assert not is_enrolled(test_app, "bob")
    assert is_enrolled(test_app, "alice")
    removals = [e for e in test_app.events if isinstance(e, TwoFactorRemoved)]
    assert [(e.user_id, e.removed_by) for e in removals] == [("bob", "alice")]

    # Removing it again: nothing to remove.
    assert alice.form("/stepup/2fa/users/bob/remove").status_code == 404
