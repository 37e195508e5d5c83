"""Flask: a passkey as the second factor at sign-in, with a software authenticator
answering as the browser would (the page's form and the JSON endpoints)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from integrations.flask.flask_support import (
    TENANT,
    Browser,
    TestApp,
    app_policy,
    changes_factors,
    confirm_factors,
    make_app,
)
from stepup import Channel
from stepup.adapters.storage.memory import MemoryStore
from stepup.passkeys import MAX_PAYLOAD_BYTES, PasskeySignInRejected, PasskeySignInVerified
from stepup.reauth import FEATURE_FLAG
from stepup.records import Tenant
from stepup.testing import SettableClock
from stepup.testing.webauthn import SoftAuthenticator

ORIGIN = "http://localhost"
CONFIG = {"STEPUP_PASSKEYS_RP_ID": "localhost", "STEPUP_PASSKEYS_ORIGINS": [ORIGIN]}
VERIFY = "/stepup/2fa/verify"
BEGIN = "/stepup/2fa/verify/passkey/begin"
FINISH = "/stepup/2fa/verify/passkey/finish"


@pytest.fixture
def app(mode: str) -> TestApp:
    policy = app_policy().with_sign_in_counts()
    return make_app(mode, clock=SettableClock(), store=MemoryStore(), config=CONFIG, policy=policy)


def _json(browser: Browser, url: str, body: Any, csrf: str) -> Any:
    """POST JSON; adding a passkey with a fresh grant first (guarded whatever the flag)."""
    if changes_factors(url):
        confirm_factors(browser)
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    headers = {"X-CSRF-Token": csrf}
    return browser.post(url, data=data, content_type="application/json", headers=headers)


def _with_passkey(app: TestApp, user_id: str = "alice") -> SoftAuthenticator:
    """Sign in (no second factor yet), add a passkey, sign out."""
    browser = app.client()
    assert browser.login(user_id).status_code == 303
    key = SoftAuthenticator(origin=ORIGIN, counter=1)
    csrf = browser.csrf("/stepup/passkeys")
    options = _json(browser, "/stepup/passkeys/register/begin", {}, csrf)
    assert options.status_code == 200, options.get_data(as_text=True)
    done = _json(
        browser,
        "/stepup/passkeys/register/finish",
        {"credential": key.create(options.get_json())},
        csrf,
    )
    assert done.status_code == 200
    browser.post("/logout")
    return key


def _who(browser: Browser) -> str:
    """Who the app thinks is signed in."""
    return browser.get("/home").get_data(as_text=True).removeprefix("home of ")


def _at_second_step(app: TestApp, user_id: str = "alice", next: str = "/api-key") -> Browser:
    browser = app.client()
    answer = browser.login(user_id, next=next)
    assert answer.status_code == 303
    assert answer.headers["Location"] == VERIFY
    return browser


def test_sign_in_with_password_then_passkey_counts_for_sensitive_actions(app: TestApp) -> None:
    key = _with_passkey(app)
    with app.app.app_context():
        app.stepup.store.put_tenant(Tenant(TENANT, {"feature_flags": {FEATURE_FLAG: True}}))
    control = app.client()
    control.login("bob")  # no second factor: the sign-in does not count
    assert control.get("/api-key").status_code == 303
    browser = _at_second_step(app)
    page = browser.get(VERIFY).get_data(as_text=True)
    # Only passkeys: the passkey button, no code form, no recovery codes to offer.
    assert "Use a passkey" in page
    assert 'name="code"' not in page
    assert 'name="recovery_code"' not in page
    assert "stepup-passkeys.js" in page
    csrf = browser.csrf(VERIFY)
    assert _who(browser) == "nobody"  # not signed in yet
    options = _json(browser, BEGIN, {}, csrf)
    assert options.status_code == 200
    assert options.get_json()["publicKey"]["userVerification"] == "preferred"
    credential = json.dumps(key.get(options.get_json()))
    done = browser.post(FINISH, data={"credential": credential, "csrf_token": csrf})
    assert done.status_code == 303
    assert done.headers["Location"] == "/api-key"
    # The sign-in counts (pwd + the passkey): the guarded page opens without asking again.
    assert browser.get("/api-key").status_code == 200
    assert any(isinstance(e, PasskeySignInVerified) for e in app.events)
    # The pending sign-in is gone: the same answer cannot sign in again.
    again = browser.post(FINISH, data={"credential": credential, "csrf_token": browser.csrf()})
    assert again.status_code == 400


def test_json_endpoints_for_single_page_apps(app: TestApp) -> None:
    key = _with_passkey(app)
    browser = _at_second_step(app, next="/home")
    csrf = browser.csrf(VERIFY)
    options = _json(browser, BEGIN, {}, csrf).get_json()
    done = _json(browser, FINISH, {"credential": key.get(options)}, csrf)
    assert done.status_code == 200
    answer = done.get_json()
    assert answer == {"ok": True, "next": "/home", "csrf_token": answer["csrf_token"]}
    assert answer["csrf_token"] == browser.csrf("/stepup/passkeys")  # the new session's
    assert _who(browser) == "alice"


def test_a_passkey_only_user_must_pass_the_second_step(app: TestApp) -> None:
    _with_passkey(app)
    with app.app.test_request_context():
        assert app.stepup.two_factor_required("alice")
        assert not app.stepup.two_factor_required("alice", Channel.API)
        assert not app.stepup.two_factor_required("bob")


def test_another_users_passkey_is_refused(app: TestApp) -> None:
    _with_passkey(app, "alice")
    bobs = _with_passkey(app, "bob")
    browser = _at_second_step(app)
    csrf = browser.csrf(VERIFY)
    options = _json(browser, BEGIN, {}, csrf).get_json()
    bobs.user_handle = None
    refused = _json(browser, FINISH, {"credential": bobs.get(options)}, csrf)
    assert refused.status_code == 400
    assert refused.get_json()["error"] == "unknown_credential"
    # The form gets the page again with the error, still not signed in.
    options = _json(browser, BEGIN, {}, csrf).get_json()
    page = browser.post(
        FINISH, data={"credential": json.dumps(bobs.get(options)), "csrf_token": csrf}
    )
    assert page.status_code == 400
    assert "not registered to your account" in page.get_data(as_text=True)
    assert _who(browser) == "nobody"
    assert [e.reason for e in app.events if isinstance(e, PasskeySignInRejected)] == [
        "unknown_credential",
        "unknown_credential",
    ]


def test_a_challenge_of_another_pending_sign_in_is_refused(app: TestApp) -> None:
    key = _with_passkey(app)
    first, second = _at_second_step(app), _at_second_step(app)
    options = _json(first, BEGIN, {}, first.csrf(VERIFY)).get_json()
    csrf = second.csrf(VERIFY)
    refused = _json(second, FINISH, {"credential": key.get(options)}, csrf)
    assert refused.status_code == 400
    assert refused.get_json()["error"] == "challenge"
    assert _who(second) == "nobody"


@pytest.mark.parametrize(
    "body", ["{", "[]", json.dumps({"credential": "x" * (MAX_PAYLOAD_BYTES + 4096)})]
)
def test_malformed_or_oversized_body_is_a_clear_400(app: TestApp, body: str) -> None:
    key = _with_passkey(app)
    browser = _at_second_step(app)
    csrf = browser.csrf(VERIFY)
    options = _json(browser, BEGIN, {}, csrf).get_json()
    refused = _json(browser, FINISH, body, csrf)
    assert refused.status_code == 400
    assert refused.get_json()["error"] == "malformed"
    # Nothing changed: the sign-in still waits, and the real answer still passes.
    assert _json(browser, FINISH, {"credential": key.get(options)}, csrf).status_code == 200


def test_no_pending_sign_in_and_no_csrf_are_refused(app: TestApp) -> None:
    key = _with_passkey(app)
    stranger = app.client()
    assert _json(stranger, BEGIN, {}, "").status_code == 403  # no token: the JSON "csrf"
    browser = _at_second_step(app)
    assert _json(browser, BEGIN, {}, "forged").get_json()["error"] == "csrf"
    stale = browser.csrf(VERIFY)
    app.clock.advance(3600)  # the pending sign-in expired
    expired = _json(browser, BEGIN, {}, stale)
    assert expired.status_code == 400
    assert expired.get_json()["error"] == "sign_in_expired"
    assert key.credential_id


def test_attempts_are_throttled(app: TestApp) -> None:
    key = _with_passkey(app)
    browser = _at_second_step(app)
    csrf = browser.csrf(VERIFY)
    statuses = []
    for _ in range(5):
        options = _json(browser, BEGIN, {}, csrf).get_json()
        wrong = SoftAuthenticator(origin=ORIGIN).get(options)
        statuses.append(_json(browser, FINISH, {"credential": wrong}, csrf).status_code)
    assert statuses[:3] == [400, 400, 400]
    assert statuses[-1] == 429
    options = _json(browser, BEGIN, {}, csrf).get_json()
    throttled = _json(browser, FINISH, {"credential": key.get(options)}, csrf)
    assert throttled.status_code == 429
    assert "retry_at" in throttled.get_json()


def test_a_user_with_totp_and_a_passkey_sees_both(app: TestApp) -> None:
    key = _with_passkey(app, "bob")
    bob = app.client()
    bob.login("bob")
    # Bob now has a passkey: the login asks for it. Pass it, then enrol TOTP too.
    csrf = bob.csrf(VERIFY)
    options = _json(bob, BEGIN, {}, csrf).get_json()
    assert _json(bob, FINISH, {"credential": key.get(options)}, csrf).status_code == 200
    secret, _codes = bob.enrol()
    bob.post("/logout")
    browser = _at_second_step(app, "bob", next="/home")
    page = browser.get(VERIFY).get_data(as_text=True)
    assert "Use a passkey" in page
    assert 'name="code"' in page
    assert 'name="recovery_code"' in page
    app.clock.advance(30)  # the confirming code is spent: the next one
    done = browser.form(VERIFY, {"code": app.totp_code(secret)}, page=VERIFY)
    assert done.status_code == 303
    assert _who(browser) == "bob"


@pytest.mark.parametrize("token", [None, "", "forged"])
def test_the_sign_in_passkey_endpoints_check_csrf(app: TestApp, token: str | None) -> None:
    """A cross-site post cannot start or finish the waiting sign-in's passkey step
    (and spends nothing: the genuine answer still passes)."""
    key = _with_passkey(app)
    browser = _at_second_step(app)
    genuine = browser.csrf(VERIFY)
    headers = {} if token is None else {"X-CSRF-Token": token}
    begun = browser.post(BEGIN, data="{}", content_type="application/json", headers=headers)
    assert begun.status_code == 403
    options = _json(browser, BEGIN, {}, genuine).get_json()
    body = json.dumps({"credential": key.get(options)})
    forged = browser.post(FINISH, data=body, content_type="application/json", headers=headers)
    assert forged.status_code == 403
    assert _who(browser) != "alice"
    assert _json(browser, FINISH, {"credential": key.get(options)}, genuine).status_code == 200
    assert _who(browser) == "alice"
