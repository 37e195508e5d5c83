"""Django: a right password with a wrong code at re-authentication sends the
reauth_failed signal (ReauthFailed, method "otp"), once."""

from __future__ import annotations

from integrations.django.django_support import Browser, Site, set_flag, user_id
from stepup.events import ReauthFailed, ReauthSucceeded


def test_a_wrong_code_is_a_failed_reauthentication(site: Site, bob: Browser) -> None:
    assert set_flag(site.browser("alice")).status_code == 200
    secret, _ = bob.enrol()
    refused = bob.get("/billing/export/")
    site.clock.advance(30)
    site.events.clear()
    wrong = bob.reauth(refused["Location"], "battery staple", code=site.totp_code(secret, -3600))
    assert wrong.status_code == 400
    failed = [e for e in site.events if isinstance(e, ReauthFailed)]
    assert [(e.user_id, e.method, e.reason) for e in failed] == [(user_id("bob"), "otp", "invalid")]
    site.events.clear()
    ok = bob.reauth(refused["Location"], "battery staple", code=site.totp_code(secret))
    assert ok.status_code == 303
    assert not [e for e in site.events if isinstance(e, ReauthFailed)]
    assert [e.method for e in site.events if isinstance(e, ReauthSucceeded)] == ["otp,pwd"]
