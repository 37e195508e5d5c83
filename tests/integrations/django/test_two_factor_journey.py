"""Two-factor journeys: enrol, verify at sign-in, replay refused, recovery codes,
removal by the user (behind re-auth) and by an admin with full access."""

from __future__ import annotations

import logging

import pytest

from integrations.django.django_support import (
    Browser,
    Site,
    recovery_codes,
    set_flag,
    user_id,
)
from stepup import Channel
from stepup.events import (
    RecoveryCodeUsed,
    ReplayDetected,
    TwoFactorEnabled,
    TwoFactorRemoved,
    TwoFactorVerified,
)
from stepup.integrations.django.services import get_stepup

VERIFY = "/stepup/2fa/verify/"


def _enrolled_bob(site: Site) -> tuple[Browser, str, list[str]]:
    bob = site.browser("bob")
    secret, codes = bob.enrol()
    bob.logout()
    return bob, secret, codes


def _flag_on(site: Site) -> Browser:
    admin = site.browser("alice")
    assert set_flag(admin).status_code == 200
    return admin


def _signed_in_with_code(site: Site, bob: Browser, secret: str) -> None:
    assert bob.login("bob")["Location"] == VERIFY
    site.clock.advance(30)
    assert bob.form(VERIFY, {"code": site.totp_code(secret)}, page=VERIFY).status_code == 303


def test_enrolment_shows_qr_key_and_codes_once(site: Site, bob: Browser) -> None:
    assert "is off" in bob.get("/stepup/2fa/").content.decode()
    page = bob.form("/stepup/2fa/enrol/", {})
    assert page.status_code == 200
    assert page["Cache-Control"] == "no-store"
    body = page.content.decode()
    assert "<svg" in body
    assert "otpauth" not in body.split("<svg", 1)[0]  # the URI is only inside the QR code
    key = body.split('id="stepup-manual-key">', 1)[1].split("<", 1)[0].replace(" ", "")
    assert len(key) == 32

    wrong = bob.form("/stepup/2fa/confirm/", {"code": "123456"})
    assert wrong.status_code == 400
    assert "not right" in wrong.content.decode()
    assert "is off" in bob.get("/stepup/2fa/").content.decode()

    confirmed = bob.form("/stepup/2fa/confirm/", {"code": site.totp_code(key)})
    assert confirmed.status_code == 200
    assert confirmed["Cache-Control"] == "no-store"
    codes = recovery_codes(confirmed)
    assert len(set(codes)) == 10
    assert "is on" in bob.get("/stepup/2fa/").content.decode()
    assert [e.user_id for e in site.events if isinstance(e, TwoFactorEnabled)] == [user_id("bob")]
    # Nothing shows the secret again; the account label is the username.
    again = bob.form("/stepup/2fa/enrol/", {})
    assert again.status_code == 303
    status_page = bob.get("/stepup/2fa/").content.decode()
    assert key not in status_page
    assert "already on" in status_page  # Django's messages framework


def test_sign_in_asks_for_the_code_and_refuses_a_replay(site: Site) -> None:
    bob, secret, _ = _enrolled_bob(site)

    started = bob.login("bob", next="/home/")
    assert started.status_code == 303
    assert started["Location"] == VERIFY
    assert bob.get("/home/").content == b"home of nobody"  # not signed in yet
    assert 'name="code"' in bob.get(VERIFY).content.decode()

    # The code that confirmed the enrolment is burned: it cannot also sign in.
    replayed = bob.form(VERIFY, {"code": site.totp_code(secret)}, page=VERIFY)
    assert replayed.status_code == 400
    assert "already used" in replayed.content.decode()
    assert any(isinstance(e, ReplayDetected) for e in site.events)

    site.clock.advance(30)
    code = site.totp_code(secret)
    signed_in = bob.form(VERIFY, {"code": code}, page=VERIFY)
    assert signed_in.status_code == 303
    assert signed_in["Location"] == "/home/"
    assert bob.get("/home/").content == b"home of bob"
    assert any(isinstance(e, TwoFactorVerified) for e in site.events)

    # Sign out and straight back in within the same 30 seconds: the same code is refused.
    bob.logout()
    bob.login("bob")
    again = bob.form(VERIFY, {"code": code}, page=VERIFY)
    assert again.status_code == 400
    assert "already used" in again.content.decode()
    assert bob.get("/home/").content == b"home of nobody"
    site.clock.advance(30)
    assert bob.form(VERIFY, {"code": site.totp_code(secret)}, page=VERIFY).status_code == 303


def test_the_code_step_needs_the_csrf_token(site: Site) -> None:
    bob, secret, _ = _enrolled_bob(site)
    bob.login("bob")
    site.clock.advance(30)
    forged = bob.post(VERIFY, {"code": site.totp_code(secret)})
    assert forged.status_code == 403
    assert bob.form(VERIFY, {"code": site.totp_code(secret)}, page=VERIFY).status_code == 303


def test_wrong_codes_are_throttled(site: Site) -> None:
    bob, _, _ = _enrolled_bob(site)
    bob.login("bob")
    statuses = [bob.form(VERIFY, {"code": f"{n:06d}"}, page=VERIFY).status_code for n in range(8)]
    assert statuses[0] == 400
    assert statuses[-1] == 429


def test_a_recovery_code_signs_in_once(site: Site) -> None:
    bob, _, codes = _enrolled_bob(site)
    bob.login("bob")
    used = bob.form(VERIFY, {"recovery_code": codes[0]}, page=VERIFY)
    assert used.status_code == 303
    assert bob.get("/home/").content == b"home of bob"
    assert any(isinstance(e, RecoveryCodeUsed) for e in site.events)
    bob.logout()
    bob.login("bob")
    reused = bob.form(VERIFY, {"recovery_code": codes[0]}, page=VERIFY)
    assert reused.status_code == 400
    assert bob.get("/home/").content == b"home of nobody"


def test_the_pending_sign_in_expires(site: Site) -> None:
    """It lives less than the TTL: the core's rule for lifetimes, 0 <= age < ttl."""
    bob, _, _ = _enrolled_bob(site)
    bob.login("bob")
    site.clock.advance(get_stepup().sign_in_ttl - 1)
    assert bob.get(VERIFY).status_code == 200  # just younger than the TTL: still waiting
    site.clock.advance(1)  # exactly the TTL old
    expired = bob.get(VERIFY)
    assert expired.status_code == 400
    assert "expired" in expired.content.decode()
    assert site.browser().get(VERIFY).status_code == 400  # nothing pending at all


def test_regenerating_recovery_codes_is_behind_reauth(site: Site) -> None:
    _flag_on(site)
    bob, secret, old_codes = _enrolled_bob(site)
    _signed_in_with_code(site, bob, secret)

    refused = bob.form("/stepup/2fa/recovery-codes/", {})
    assert refused.status_code == 303
    assert "action=2fa.recovery.regenerate" in refused["Location"]
    resumed = bob.reauth(refused["Location"], "battery staple")  # sends the form again
    assert 'action="/stepup/2fa/recovery-codes/"' in resumed.content.decode()
    fresh = bob.form("/stepup/2fa/recovery-codes/", {})
    assert fresh.status_code == 200
    assert fresh["Cache-Control"] == "private, no-store"  # guarded: no cache keeps it
    new_codes = recovery_codes(fresh)
    assert len(new_codes) == 10
    assert not set(new_codes) & set(old_codes)

    bob.logout()
    bob.login("bob")
    assert bob.form(VERIFY, {"recovery_code": old_codes[1]}, page=VERIFY).status_code == 400
    assert bob.form(VERIFY, {"recovery_code": new_codes[0]}, page=VERIFY).status_code == 303


def test_removal_by_the_user_is_behind_reauth(site: Site) -> None:
    _flag_on(site)
    bob, secret, _ = _enrolled_bob(site)
    _signed_in_with_code(site, bob, secret)

    refused = bob.form("/stepup/2fa/remove/", {})
    assert refused.status_code == 303
    assert "action=2fa.disable" in refused["Location"]
    assert "is on" in bob.get("/stepup/2fa/").content.decode()

    assert bob.reauth(refused["Location"], "wrong password").status_code == 400
    assert bob.reauth(refused["Location"], "battery staple").status_code == 200  # the resume page
    removed = bob.form("/stepup/2fa/remove/", {})
    assert removed.status_code == 303
    assert "is off" in bob.get("/stepup/2fa/").content.decode()
    events = [e for e in site.events if isinstance(e, TwoFactorRemoved)]
    assert [(e.user_id, e.removed_by) for e in events] == [(user_id("bob"), user_id("bob"))]

    # Signing in no longer asks for a code.
    bob.logout()
    assert bob.login("bob")["Location"] == "/home/"


def test_removal_by_an_admin_with_full_access(site: Site) -> None:
    admin = _flag_on(site)
    bob, _, _ = _enrolled_bob(site)
    assert bob.login("bob")["Location"] == VERIFY
    url = f"/stepup/users/{user_id('bob')}/2fa/remove/"

    # The flag is on: the admin must re-authenticate first.
    refused = admin.form(url, {"next": "/admin/users/"})
    assert refused.status_code == 303
    assert "action=2fa.disable" in refused["Location"]
    assert "next=%2Fadmin%2Fusers%2F" in refused["Location"]
    assert admin.reauth(refused["Location"], "correct horse").status_code == 200  # the resume page
    removed = admin.form(url, {"next": "/admin/users/"})
    assert removed.status_code == 303
    assert removed["Location"] == "/admin/users/"
    events = [e for e in site.events if isinstance(e, TwoFactorRemoved)]
    assert [(e.user_id, e.removed_by) for e in events] == [(user_id("bob"), user_id("alice"))]
    assert bob.login("bob")["Location"] == "/home/"

    # Nothing left to remove.
    assert admin.form(url, {}).status_code == 404


def test_a_user_without_full_access_cannot_remove_others(site: Site) -> None:
    alice = site.browser("alice")
    alice.enrol()
    bob = site.browser("bob")
    assert bob.form(f"/stepup/users/{user_id('alice')}/2fa/remove/", {}).status_code == 403
    assert "is on" in alice.get("/stepup/2fa/").content.decode()


def test_a_full_access_hook_may_answer_for_the_user_acted_on(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HAS_FULL_ACCESS taking ``(subject, user_id)`` answers for that user: an admin of
    one tenant is no admin of another tenant's users."""
    from dataclasses import replace

    _enrolled_bob(site)
    asked: list[str] = []

    def only_carol(subject: object, target: str) -> bool:
        asked.append(target)
        return target == "carol-in-another-tenant"

    services = get_stepup()
    monkeypatch.setattr(services, "hooks", replace(services.hooks, has_full_access=only_carol))
    admin = site.browser("alice")
    url = f"/stepup/users/{user_id('bob')}/2fa/remove/"
    assert admin.form(url, {}).status_code == 403
    assert asked == [user_id("bob")]
    assert services.two_factor.is_enrolled(user_id("bob"))


def test_admin_removal_answers_json_clients_with_204(site: Site) -> None:
    _enrolled_bob(site)
    admin = site.browser("alice")
    url = f"/stepup/users/{user_id('bob')}/2fa/remove/"
    response = admin.form(url, {}, headers={"Accept": "application/json"})
    assert response.status_code == 204


def test_two_factor_is_only_asked_on_the_web(site: Site) -> None:
    _enrolled_bob(site)
    two_factor = get_stepup().two_factor
    bob = user_id("bob")
    assert two_factor.required_for(Channel.WEB)
    assert two_factor.is_enrolled(bob)
    for channel in (Channel.API, Channel.API_KEY, Channel.MESSAGE_INJECTION):
        assert not two_factor.required_for(channel)
    assert not two_factor.is_enrolled(user_id("alice"))


def test_secrets_are_sealed_with_a_key_from_secret_key(site: Site) -> None:
    _bob, secret, _ = _enrolled_bob(site)
    stored = site.store.get_credential(user_id("bob"))
    assert stored.totp_devices[0].secret.startswith("v1:dj")
    assert secret not in stored.totp_devices[0].secret


def test_no_secret_code_or_password_leaks(site: Site, caplog: pytest.LogCaptureFixture) -> None:
    _flag_on(site)
    with caplog.at_level(logging.DEBUG):
        bob = site.browser("bob")
        secret, codes = bob.enrol()
        wrong = bob.reauth("/stepup/reauth/?next=/api-key/", "battery staplf")
        site.clock.advance(30)
        code = site.totp_code(secret)
        bob.logout()
        bob.login("bob")
        bob.form(VERIFY, {"code": code}, page=VERIFY)
    shown = [caplog.text, repr(site.events), repr(get_stepup()), wrong.content.decode()]
    shown.append(repr(site.store.get_credential(user_id("bob"))))
    for text in shown:
        for secret_value in (secret, code, codes[0], "battery staplf", "battery staple"):
            assert secret_value not in text
