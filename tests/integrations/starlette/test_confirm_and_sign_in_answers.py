"""Starlette answers as Flask and Django do: a confirmation with no enrolment pending is
the 400 that says the set-up expired, linking to the two-factor page where it begins
again; a code at sign-in for a user whose two-factor was removed meanwhile is the 400
"sign-in expired", and the sign-in waiting in the session stays (Flask and Django keep
it too)."""

from __future__ import annotations

from integrations.starlette.starlette_support import Browser, TestApp, csrf_token, enrol
from stepup import TwoFactor

_EXPIRED = "The set-up was not finished in time, or was replaced."
_SIGN_IN_EXPIRED = "Your sign-in has expired."
SETTINGS = "/stepup/2fa"
VERIFY = "/stepup/2fa/verify"


def test_a_confirmation_with_nothing_pending_links_to_the_two_factor_page(
    test_app: TestApp, bob: Browser
) -> None:
    token = csrf_token(bob.get("/stepup/reauth?action=2fa.disable&next=/").text)
    refused = bob.post("/stepup/2fa/confirm", data={"csrf_token": token, "code": "000000"})
    assert refused.status_code == 400
    assert _EXPIRED in refused.text
    assert f'href="{SETTINGS}"' in refused.text


def test_a_code_for_a_user_without_two_factor_keeps_the_pending_sign_in(
    test_app: TestApp, bob: Browser
) -> None:
    totp, _ = enrol(bob)
    bob.logout()
    assert bob.login("bob").status_code == 303
    page = bob.get(VERIFY)
    assert page.status_code == 200
    # Removed meanwhile (another session, an admin).
    TwoFactor(test_app.store, clock=test_app.clock).remove("bob", actor_id="bob")
    test_app.clock.advance(30)
    code = totp.at(test_app.clock())
    refused = bob.post(VERIFY, data={"csrf_token": csrf_token(page.text), "code": code})
    assert refused.status_code == 400
    assert _SIGN_IN_EXPIRED in refused.text
    assert bob.get(VERIFY).status_code == 200  # the sign-in still waits, as in Flask and Django
    assert bob.get("/").text == "hello stranger"  # nobody signed in
