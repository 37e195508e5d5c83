"""Two-factor journeys: enrol, verify at sign-in, replay refused, recovery codes,
removal by the user (behind re-auth) and by an admin with full access."""

from __future__ import annotations

import re

from integrations.flask.flask_support import Browser, TestApp, set_flag
from stepup import Channel
from stepup.events import RecoveryCodeUsed, TwoFactorEnabled, TwoFactorRemoved

_CODES = re.compile(r"<li><code>([^<]+)</code></li>")


def _enrolled_bob(test_app: TestApp) -> tuple[Browser, str, list[str]]:
    bob = test_app.client()
    bob.login("bob")
    secret, codes = bob.enrol()
    bob.post("/logout")
    return bob, secret, codes


def _flag_on(test_app: TestApp) -> Browser:
    admin = test_app.client()
    admin.login("alice")
    assert set_flag(admin).status_code == 200
    return admin


def test_enrolment_shows_qr_key_and_codes_once(test_app: TestApp, bob: Browser) -> None:
    assert "is off" in bob.get("/stepup/2fa").get_data(as_text=True)
    page = bob.form("/stepup/2fa/enrol", {})
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    body = page.get_data(as_text=True)
    assert "<svg" in body
    secret = re.search(r'id="stepup-manual-key">([^<]+)</code>', body)
    assert secret
    key = secret.group(1).replace(" ", "")
    assert len(key) == 32

    wrong = bob.form("/stepup/2fa/confirm", {"code": "123456"})
    assert wrong.status_code == 400
    assert "not right" in wrong.get_data(as_text=True)
    assert "is off" in bob.get("/stepup/2fa").get_data(as_text=True)

    confirmed = bob.form("/stepup/2fa/confirm", {"code": test_app.totp_code(key)})
    assert confirmed.status_code == 200
    assert confirmed.headers["Cache-Control"] == "no-store"
    codes = _CODES.findall(confirmed.get_data(as_text=True))
    assert len(codes) == 10
    assert len(set(codes)) == 10
    assert "is on" in bob.get("/stepup/2fa").get_data(as_text=True)
    assert any(isinstance(e, TwoFactorEnabled) for e in test_app.events)
    # Nothing shows the secret again.
    again = bob.form("/stepup/2fa/enrol", {})
    assert again.status_code == 303
    assert key not in bob.get("/stepup/2fa").get_data(as_text=True)


def test_sign_in_asks_for_the_code_and_refuses_a_replay(test_app: TestApp) -> None:
    bob, secret, _ = _enrolled_bob(test_app)

    started = bob.login("bob", next="/home")
    assert started.status_code == 303
    assert started.headers["Location"] == "/stepup/2fa/verify"
    assert bob.get("/home").get_data(as_text=True) == "home of nobody"  # not signed in yet
    assert 'name="code"' in bob.get("/stepup/2fa/verify").get_data(as_text=True)

    # The code that confirmed the enrolment is burned: it cannot also sign in.
    replayed = bob.form("/stepup/2fa/verify", {"code": test_app.totp_code(secret)}, page=_VERIFY)
    assert replayed.status_code == 400
    assert "already used" in replayed.get_data(as_text=True)

    test_app.clock.advance(30)
    code = test_app.totp_code(secret)
    signed_in = bob.form("/stepup/2fa/verify", {"code": code}, page=_VERIFY)
    assert signed_in.status_code == 303
    assert signed_in.headers["Location"] == "/home"
    assert bob.get("/home").get_data(as_text=True) == "home of bob"

    # Sign out and straight back in within the same 30 seconds: the same code is refused.
    bob.post("/logout")
    bob.login("bob")
    again = bob.form("/stepup/2fa/verify", {"code": code}, page=_VERIFY)
    assert again.status_code == 400
    assert "already used" in again.get_data(as_text=True)
    assert bob.get("/home").get_data(as_text=True) == "home of nobody"
    test_app.clock.advance(30)
    ok = bob.form("/stepup/2fa/verify", {"code": test_app.totp_code(secret)}, page=_VERIFY)
    assert ok.status_code == 303


_VERIFY = "/stepup/2fa/verify"


def test_wrong_codes_are_throttled(test_app: TestApp) -> None:
    bob, _, _ = _enrolled_bob(test_app)
    bob.login("bob")
    statuses = [bob.form(_VERIFY, {"code": f"{n:06d}"}, page=_VERIFY).status_code for n in range(8)]
    assert statuses[0] == 400
    assert statuses[-1] == 429


def test_a_recovery_code_signs_in_once(test_app: TestApp) -> None:
    bob, _, codes = _enrolled_bob(test_app)
    bob.login("bob")
    used = bob.form(_VERIFY, {"recovery_code": codes[0]}, page=_VERIFY)
    assert used.status_code == 303
    assert bob.get("/home").get_data(as_text=True) == "home of bob"
    assert any(isinstance(e, RecoveryCodeUsed) for e in test_app.events)
    bob.post("/logout")
    bob.login("bob")
    reused = bob.form(_VERIFY, {"recovery_code": codes[0]}, page=_VERIFY)
    assert reused.status_code == 400
    assert bob.get("/home").get_data(as_text=True) == "home of nobody"


def test_the_pending_sign_in_expires(test_app: TestApp) -> None:
    """It lives less than the TTL: the core's rule for lifetimes, 0 <= age < ttl."""
    bob, _, _ = _enrolled_bob(test_app)
    bob.login("bob")
    test_app.clock.advance(test_app.app.config["STEPUP_TWO_FACTOR_LOGIN_TTL"] - 1)
    assert bob.get(_VERIFY).status_code == 200  # just younger than the TTL: still waiting
    test_app.clock.advance(1)  # exactly the TTL old
    expired = bob.get(_VERIFY)
    assert expired.status_code == 400
    assert "expired" in expired.get_data(as_text=True)
    assert test_app.client().get(_VERIFY).status_code == 400  # nothing pending at all


def test_regenerating_recovery_codes_is_behind_reauth(test_app: TestApp) -> None:
    _flag_on(test_app)
    bob, secret, old_codes = _enrolled_bob(test_app)
    bob.login("bob")
    test_app.clock.advance(30)
    bob.form(_VERIFY, {"code": test_app.totp_code(secret)}, page=_VERIFY)

    refused = bob.form("/stepup/2fa/recovery-codes", {})
    assert refused.status_code == 303
    assert "action=2fa.recovery.regenerate" in refused.headers["Location"]
    # The interrupted form POST is sent again after the re-authentication (resume page).
    resumed = bob.reauth(refused.headers["Location"], "battery staple")
    assert resumed.status_code == 200
    assert 'action="/stepup/2fa/recovery-codes"' in resumed.get_data(as_text=True)
    fresh = bob.form("/stepup/2fa/recovery-codes", {})
    assert fresh.status_code == 200
    assert fresh.headers["Cache-Control"] == "no-store"
    new_codes = _CODES.findall(fresh.get_data(as_text=True))
    assert len(new_codes) == 10
    assert not set(new_codes) & set(old_codes)

    bob.post("/logout")
    bob.login("bob")
    assert bob.form(_VERIFY, {"recovery_code": old_codes[1]}, page=_VERIFY).status_code == 400
    assert bob.form(_VERIFY, {"recovery_code": new_codes[0]}, page=_VERIFY).status_code == 303


def test_removal_by_the_user_is_behind_reauth(test_app: TestApp) -> None:
    _flag_on(test_app)
    bob, secret, _ = _enrolled_bob(test_app)
    bob.login("bob")
    test_app.clock.advance(30)
    bob.form(_VERIFY, {"code": test_app.totp_code(secret)}, page=_VERIFY)

    refused = bob.form("/stepup/2fa/remove", {})
    assert refused.status_code == 303
    assert "action=2fa.disable" in refused.headers["Location"]
    assert "is on" in bob.get("/stepup/2fa").get_data(as_text=True)

    assert (
        bob.reauth(refused.headers["Location"], "battery staple").status_code == 200
    )  # the resume page
    # (the resume page would send the form again; here the test sends it)
    removed = bob.form("/stepup/2fa/remove", {})
    assert removed.status_code == 303
    assert "is off" in bob.get("/stepup/2fa").get_data(as_text=True)
    events = [e for e in test_app.events if isinstance(e, TwoFactorRemoved)]
    assert [(e.user_id, e.removed_by) for e in events] == [("bob", "bob")]

    # Signing in no longer asks for a code.
    bob.post("/logout")
    assert bob.login("bob").headers["Location"] == "/home"


def test_removal_by_an_admin_with_full_access(test_app: TestApp) -> None:
    admin = _flag_on(test_app)
    bob, _, _ = _enrolled_bob(test_app)
    assert bob.login("bob").headers["Location"] == "/stepup/2fa/verify"

    # The flag is on: the admin must re-authenticate first.
    refused = admin.form("/stepup/users/bob/2fa/remove", {"next": "/admin/users"})
    assert refused.status_code == 303
    assert "action=2fa.disable" in refused.headers["Location"]
    assert "next=%2Fadmin%2Fusers" in refused.headers["Location"]
    assert (
        admin.reauth(refused.headers["Location"], "correct horse").status_code == 200
    )  # the resume page
    # (the resume page would send the form again; here the test sends it)
    removed = admin.form("/stepup/users/bob/2fa/remove", {"next": "/admin/users"})
    assert removed.status_code == 303
    assert removed.headers["Location"] == "/admin/users"
    events = [e for e in test_app.events if isinstance(e, TwoFactorRemoved)]
    assert [(e.user_id, e.removed_by) for e in events] == [("bob", "alice")]
    assert bob.login("bob").headers["Location"] == "/home"

    # Nothing left to remove.
    assert admin.form("/stepup/users/bob/2fa/remove", {}).status_code == 404


def test_a_user_without_full_access_cannot_remove_others(test_app: TestApp) -> None:
    alice = test_app.client()
    alice.login("alice")
    alice.enrol()
    bob = test_app.client()
    bob.login("bob")
    assert bob.form("/stepup/users/alice/2fa/remove", {}).status_code == 403
    assert "is on" in alice.get("/stepup/2fa").get_data(as_text=True)


def test_admin_removal_answers_json_clients_with_204(test_app: TestApp) -> None:
    _enrolled_bob(test_app)
    admin = test_app.client()
    admin.login("alice")
    response = admin.form(
        "/stepup/users/bob/2fa/remove", {}, headers={"Accept": "application/json"}
    )
    assert response.status_code == 204


def test_two_factor_is_only_asked_on_the_web(test_app: TestApp) -> None:
    _enrolled_bob(test_app)
    with test_app.app.test_request_context():
        assert test_app.stepup.two_factor_required("bob")
        assert not test_app.stepup.two_factor_required("bob", Channel.API)
        assert not test_app.stepup.two_factor_required("bob", Channel.API_KEY)
        assert not test_app.stepup.two_factor_required("bob", Channel.MESSAGE_INJECTION)
        assert not test_app.stepup.two_factor_required("alice")
