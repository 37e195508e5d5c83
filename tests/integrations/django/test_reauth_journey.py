"""The whole re-authentication journey through Django's test client, CSRF checks on."""

from __future__ import annotations

import json
from typing import Any

from integrations.django.django_support import (
    TENANT,
    Browser,
    Site,
    reauth_target,
    set_flag,
    user_id,
)
from integrations.resume_support import as_multidict, resume_form
from stepup.events import ReauthFailed, ReauthSucceeded, TenantFlagChanged
from stepup.integrations.django.services import get_stepup

SIX_HOURS = 6 * 3600


def _flag_on(site: Site) -> Browser:
    admin = site.browser("alice")
    assert set_flag(admin).status_code == 200
    return admin


def test_sensitive_action_journey(site: Site, alice: Browser, bob: Browser) -> None:
    # Flag off: the sensitive action is allowed, and says why.
    allowed = alice.get("/api-key/")
    assert allowed.status_code == 200
    assert allowed.json() == {"api_key": "key-123", "reason": "flag_off"}

    # A non-admin cannot turn the flag on; an admin can.
    refused = set_flag(bob)
    assert refused.status_code == 403
    assert refused["Content-Type"] == "application/vnd.api+json"
    assert refused.json()["errors"][0]["status"] == "403"
    turned_on = set_flag(alice)
    assert turned_on.status_code == 200
    assert turned_on.json()["data"]["attributes"]["feature_flags"] == {
        "sensitive_actions_reauth": True
    }
    changes = [e for e in site.events if isinstance(e, TenantFlagChanged)]
    assert [(e.actor_id, e.old, e.new) for e in changes] == [(user_id("alice"), False, True)]

    # Now the browser is sent to the re-auth page, with a safe way back.
    sent_away = bob.get("/api-key/?tab=keys")
    assert sent_away.status_code == 303
    assert sent_away["Cache-Control"] == "no-store"
    path, query = reauth_target(sent_away)
    assert path == "/stepup/reauth/"
    assert query == {"next": "/api-key/?tab=keys", "action": "api_key.read"}
    page = bob.get(sent_away["Location"]).content.decode()
    assert 'type="password"' in page
    assert 'name="code"' not in page  # this rule wants no second factor
    assert "Reading user API keys is a sensitive action." in page

    # A wrong password: what to do about it, nothing else.
    wrong = bob.reauth(sent_away["Location"], "not my password")
    assert wrong.status_code == 400
    assert "That password is not right. Check it and try again." in wrong.content.decode()
    assert bob.get("/api-key/").status_code == 303

    # The right password: back to the original page, which now works.
    right = bob.reauth(sent_away["Location"], "battery staple")
    assert right.status_code == 303
    assert right["Location"] == "/api-key/?tab=keys"
    back = bob.get(right["Location"])
    assert back.status_code == 200
    assert back.json()["reason"] == "fresh_grant"

    # Within the lifetime, the grant still serves; just past it, it does not.
    site.clock.advance(SIX_HOURS - 1)
    assert bob.get("/api-key/").status_code == 200
    site.clock.advance(1)
    assert bob.get("/api-key/").status_code == 303

    # The grant was bob's and this session's only: alice still has to re-authenticate.
    assert alice.get("/api-key/").status_code == 303

    outcomes = {type(e) for e in site.events if isinstance(e, ReauthFailed | ReauthSucceeded)}
    assert outcomes == {ReauthFailed, ReauthSucceeded}


def test_a_json_client_gets_401_with_the_details(site: Site, bob: Browser) -> None:
    _flag_on(site)
    response = bob.get("/api-key/", headers={"Accept": "application/json"})
    assert response.status_code == 401
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["error"] == "reauth_required"
    assert body["action"] == "api_key.read"
    assert body["methods"] == ["pwd"]
    assert body["max_age"] == SIX_HOURS
    assert body["last_reauth_at"] is None
    assert body["reauth_url"].startswith("/stepup/reauth/?")


def test_a_bearer_client_gets_the_rfc_9470_challenge(site: Site) -> None:
    _flag_on(site)
    client = site.browser()
    response = client.get("/api-key/", headers={"Authorization": "Bearer token-bob"})
    assert response.status_code == 401
    challenge = response["WWW-Authenticate"]
    assert challenge.startswith('Bearer error="insufficient_user_authentication"')
    assert f'max_age="{SIX_HOURS}"' in challenge
    assert response.json()["error"] == "reauth_required"


def test_an_api_key_request_follows_the_rules_api_key_setting(site: Site) -> None:
    _flag_on(site)
    client = site.browser()
    allowed = client.get("/api-key/", headers={"X-API-Key": "bob"})
    assert allowed.status_code == 200
    assert allowed.json()["reason"] == "exempt_channel"


def test_nobody_signed_in_goes_to_the_login_page(site: Site) -> None:
    anonymous = site.browser()
    browser = anonymous.get("/api-key/?x=1")
    assert browser.status_code == 302
    assert browser["Location"] == "/login/?next=/api-key/%3Fx%3D1"
    api = anonymous.get("/api-key/", headers={"Accept": "application/json"})
    assert api.status_code == 401
    assert api.json() == {"error": "authentication_required", "title": "Sign in first."}
    assert anonymous.get("/stepup/reauth/").status_code == 302


def test_another_session_of_the_same_user_does_not_benefit(site: Site) -> None:
    _flag_on(site)
    first, second = site.browser("bob"), site.browser("bob")
    assert first.reauth("/stepup/reauth/?next=/api-key/", "battery staple").status_code == 303
    assert first.get("/api-key/").status_code == 200
    assert second.get("/api-key/").status_code == 303


def test_signing_out_revokes_the_grant(site: Site, bob: Browser) -> None:
    _flag_on(site)
    assert bob.reauth("/stepup/reauth/?next=/api-key/", "battery staple").status_code == 303
    old_sid = bob.client.session["_stepup_sid"]
    bob_id = user_id("bob")
    assert site.store.get_grant(bob_id, old_sid) is not None
    bob.logout()
    assert site.store.get_grant(bob_id, old_sid) is None
    bob.login("bob")
    assert bob.client.session["_stepup_sid"] != old_sid
    assert bob.get("/api-key/").status_code == 303


def test_signing_in_again_starts_a_new_stepup_session(site: Site, bob: Browser) -> None:
    _flag_on(site)
    assert bob.reauth("/stepup/reauth/?next=/api-key/", "battery staple").status_code == 303
    bob.login("bob")  # over the top of the signed-in session
    assert bob.get("/api-key/").status_code == 303


def test_password_change_revokes_grants_in_every_session(site: Site, bob: Browser) -> None:
    _flag_on(site)
    other = site.browser("bob")
    for browser in (bob, other):
        assert browser.reauth("/stepup/reauth/?next=/api-key/", "battery staple").status_code == 303
    assert get_stepup().reauth.password_changed(user_id("bob")) == 2
    assert bob.get("/api-key/").status_code == 303
    assert other.get("/api-key/").status_code == 303


def test_a_post_resumes_after_the_reauth(site: Site, bob: Browser) -> None:
    _flag_on(site)
    refused = bob.post("/api-key/regenerate/")
    assert refused.status_code == 303
    _, query = reauth_target(refused)
    assert query["next"] == "/api-key/"  # where Cancel and a lost resume go
    resumed = bob.reauth(refused["Location"], "battery staple")
    target, fields = resume_form(resumed.content.decode())
    assert target == "/api-key/regenerate/"
    assert bob.post(target, as_multidict(fields)).content == b"regenerated"


def test_context_makes_only_production_workspaces_sensitive(site: Site, bob: Browser) -> None:
    _flag_on(site)
    assert bob.post("/workspaces/sandbox/delete/").status_code == 200
    refused = bob.post("/workspaces/full/delete/", headers={"Referer": "/workspaces/full/"})
    assert refused.status_code == 303
    assert reauth_target(refused)[1]["next"] == "/workspaces/full/"


def test_the_middleware_answers_require_raised_in_a_view(site: Site, bob: Browser) -> None:
    assert bob.get("/profile/update/").content == b"updated"
    _flag_on(site)
    refused = bob.get("/profile/update/")
    assert refused.status_code == 303
    assert reauth_target(refused)[1] == {"next": "/profile/update/", "action": "user.update"}
    assert site.browser().get("/profile/update/").status_code == 302  # to the login page


def test_a_rule_with_a_second_factor_asks_for_both(site: Site, bob: Browser) -> None:
    _flag_on(site)
    secret, _ = bob.enrol()
    refused = bob.get("/billing/export/")  # a class-based view with the mixin
    assert refused.status_code == 303
    assert 'name="code"' in bob.get(refused["Location"]).content.decode()

    site.clock.advance(30)  # the confirming code is burned
    wrong_code = bob.reauth(refused["Location"], "battery staple", code="000000")
    assert wrong_code.status_code == 400
    assert "not right" in wrong_code.content.decode()
    ok = bob.reauth(refused["Location"], "battery staple", code=site.totp_code(secret))
    assert ok.status_code == 303
    assert bob.get("/billing/export/").content == b"billing.csv"


def test_a_second_factor_rule_without_enrolment_says_so(site: Site, bob: Browser) -> None:
    _flag_on(site)
    refused = bob.get("/billing/export/")
    page = bob.get(refused["Location"]).content.decode()
    assert "Set it up first" in page
    assert 'type="password"' not in page


def test_hostile_next_is_replaced_by_the_root(site: Site, bob: Browser) -> None:
    _flag_on(site)
    response = bob.reauth("/stepup/reauth/?next=//evil.example/x", "battery staple")
    assert response.status_code == 303
    assert response["Location"] == "/"


def test_unknown_action_on_the_page_is_refused(site: Site, bob: Browser) -> None:
    assert bob.get("/stepup/reauth/?action=api_key.raed").status_code == 400


def test_rehash_on_outdated_parameters(site: Site) -> None:
    from argon2 import PasswordHasher
    from django.contrib.auth import get_user_model

    from integrations.django.django_support import CHEAP, create_users
    from integrations.django.testapp.hooks import REHASHED

    weak = PasswordHasher(time_cost=2, memory_cost=8, parallelism=1, hash_len=16, salt_len=8)
    users = get_user_model()._default_manager
    users.filter(username="bob").update(password="argon2" + weak.hash("battery staple"))
    _flag_on(site)
    try:
        bob = site.browser("bob")
        assert bob.reauth("/stepup/reauth/?next=/api-key/", "battery staple").status_code == 303
        new_hash = REHASHED.pop(user_id("bob"))
        assert new_hash.startswith("$argon2id$v=19$m=8,t=1,p=1$")  # the configured hasher's
        assert CHEAP.verify(new_hash, "battery staple")
        assert bob.get("/api-key/").status_code == 200
    finally:
        create_users()


def test_a_response_hook_replaces_the_refusal(site: Site, bob: Browser) -> None:
    from django.test import override_settings

    from integrations.django.django_support import BASE_STEPUP

    calls: list[Any] = []

    def teapot(request: Any, decision: Any) -> Any:
        from django.http import HttpResponse

        calls.append(decision.action)
        return HttpResponse("ask again", status=418) if request.path == "/api-key/" else None

    _flag_on(site)
    stepup = {**BASE_STEPUP, "STORE": site.store, "CLOCK": site.clock, "REAUTH_RESPONSE": teapot}
    with override_settings(STEPUP=stepup):
        assert bob.get("/api-key/").status_code == 418
        assert bob.post("/api-key/regenerate/").status_code == 303  # None keeps the default
    assert calls == ["api_key.read", "api_key.regenerate"]


def test_tenant_document_and_flag_off_again(site: Site, alice: Browser) -> None:
    assert set_flag(alice, True).status_code == 200
    off = set_flag(alice, False)
    assert off.json() == {
        "data": {
            "type": "tenant",
            "id": TENANT,
            "attributes": {"feature_flags": {"sensitive_actions_reauth": False}},
        }
    }
    assert json.loads(off.content)["data"]["id"] == TENANT


def test_pages_are_never_cached_or_framed(site: Site, bob: Browser) -> None:
    for page in ("/stepup/reauth/?next=/api-key/", "/stepup/2fa/", "/stepup/reauth/?action=x"):
        response = bob.get(page)
        assert response["Cache-Control"] == "no-store"
        assert response["X-Frame-Options"] == "DENY"
        assert response["Content-Security-Policy"] == "frame-ancestors 'none'"
        assert response["Referrer-Policy"] == "same-origin"
        assert response["X-Content-Type-Options"] == "nosniff"
