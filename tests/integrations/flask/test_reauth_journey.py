"""The whole re-authentication journey, in Flask-Login mode and in subject_loader mode."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

from integrations.flask.flask_support import TENANT, Browser, TestApp, set_flag
from stepup.events import ReauthFailed, ReauthSucceeded, TenantFlagChanged

SIX_HOURS = 6 * 3600


def _reauth_target(response: object) -> tuple[str, dict[str, list[str]]]:
    location = response.headers["Location"]  # type: ignore[attr-defined]
    parts = urlsplit(location)
    return parts.path, parse_qs(parts.query)


def test_sensitive_action_journey(test_app: TestApp, alice: Browser, bob: Browser) -> None:
    # Flag off: the sensitive action is allowed, and says why.
    allowed = alice.get("/api-key")
    assert allowed.status_code == 200
    assert allowed.json == {"api_key": "key-123", "reason": "flag_off"}

    # A non-admin cannot turn the flag on; an admin can.
    refused = set_flag(bob)
    assert refused.status_code == 403
    assert refused.headers["Content-Type"] == "application/vnd.api+json"
    assert refused.json["errors"][0]["status"] == "403"
    turned_on = set_flag(alice)
    assert turned_on.status_code == 200
    assert turned_on.json["data"]["attributes"]["feature_flags"] == {
        "sensitive_actions_reauth": True
    }
    changes = [e for e in test_app.events if isinstance(e, TenantFlagChanged)]
    assert [(e.actor_id, e.old, e.new) for e in changes] == [("alice", False, True)]

    # Now the browser is sent to the re-auth page, with a safe way back.
    sent_away = bob.get("/api-key?tab=keys")
    assert sent_away.status_code == 303
    path, query = _reauth_target(sent_away)
    assert path == "/stepup/reauth"
    assert query == {"next": ["/api-key?tab=keys"], "action": ["api_key.read"]}
    page = bob.get(sent_away.headers["Location"])
    assert page.status_code == 200
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["Referrer-Policy"] == "same-origin"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    body = page.get_data(as_text=True)
    assert 'type="password"' in body
    assert 'name="code"' not in body  # this rule wants no second factor
    assert "Reading user API keys is a sensitive action." in body

    # A wrong password: what to do about it, nothing else.
    wrong = bob.reauth(sent_away.headers["Location"], "not my password")
    assert wrong.status_code == 400
    assert "That password is not right. Check it and try again." in wrong.get_data(as_text=True)
    assert bob.get("/api-key").status_code == 303

    # The right password: back to the original page, which now works.
    right = bob.reauth(sent_away.headers["Location"], "battery staple")
    assert right.status_code == 303
    assert right.headers["Location"] == "/api-key?tab=keys"
    back = bob.get(right.headers["Location"])
    assert back.status_code == 200
    assert back.json["reason"] == "fresh_grant"

    # Within the lifetime, the grant still serves; just past it, it does not.
    test_app.clock.advance(SIX_HOURS - 1)
    assert bob.get("/api-key").status_code == 200
    test_app.clock.advance(1)
    assert bob.get("/api-key").status_code == 303

    # The grant was bob's and this session's only: alice still has to re-authenticate.
    assert alice.get("/api-key").status_code == 303

    outcomes = [type(e) for e in test_app.events if isinstance(e, ReauthFailed | ReauthSucceeded)]
    assert ReauthFailed in outcomes
    # One re-authentication, one event (the password adapter emitted a second one, under
    # the session id the renewal had just revoked).
    succeeded = [e for e in test_app.events if isinstance(e, ReauthSucceeded)]
    assert [e.method for e in succeeded if e.user_id == "bob"] == ["pwd"]


def test_another_session_of_the_same_user_does_not_benefit(test_app: TestApp) -> None:
    first, second = test_app.client(), test_app.client()
    first.login("bob")
    second.login("bob")
    _admin(test_app)
    assert first.reauth("/stepup/reauth?next=/api-key", "battery staple").status_code == 303
    assert first.get("/api-key").status_code == 200
    assert second.get("/api-key").status_code == 303


def test_signing_out_revokes_the_grant(test_app: TestApp, bob: Browser) -> None:
    _admin(test_app)
    assert bob.reauth("/stepup/reauth?next=/api-key", "battery staple").status_code == 303
    assert bob.get("/api-key").status_code == 200
    with bob.client.session_transaction() as session:
        old_sid = session["_stepup_sid"]
    store = test_app.app.extensions["stepup"].store
    assert store.get_grant("bob", old_sid) is not None
    bob.post("/logout")
    assert store.get_grant("bob", old_sid) is None
    bob.login("bob")
    with bob.client.session_transaction() as session:
        assert session["_stepup_sid"] != old_sid
    assert bob.get("/api-key").status_code == 303


def test_password_change_revokes_grants_in_every_session(test_app: TestApp, bob: Browser) -> None:
    _admin(test_app)
    assert bob.reauth("/stepup/reauth?next=/api-key", "battery staple").status_code == 303
    with test_app.app.test_request_context():
        assert test_app.stepup.password_changed("bob") == 1
    assert bob.get("/api-key").status_code == 303


def test_a_json_client_gets_401_with_the_details(test_app: TestApp, bob: Browser) -> None:
    _admin(test_app)
    response = bob.get("/api-key", headers={"Accept": "application/json"})
    assert response.status_code == 401
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json
    assert body["error"] == "reauth_required"
    assert body["action"] == "api_key.read"
    assert body["methods"] == ["pwd"]
    assert body["max_age"] == SIX_HOURS
    assert body["last_reauth_at"] is None
    assert body["reauth_url"].startswith("/stepup/reauth?")


def test_a_post_comes_back_to_its_return_page(test_app: TestApp, bob: Browser) -> None:
    _admin(test_app)
    refused = bob.post("/api-key/regenerate")
    assert refused.status_code == 303
    _, query = _reauth_target(refused)
    assert query["next"] == ["/api-key"]
    assert bob.reauth(refused.headers["Location"], "battery staple").headers["Location"] == (
        "/api-key"
    )
    assert bob.post("/api-key/regenerate").get_data(as_text=True) == "regenerated"


def test_context_makes_only_production_workspaces_sensitive(
    test_app: TestApp, bob: Browser
) -> None:
    _admin(test_app)
    assert bob.post("/workspaces/sandbox/delete").status_code == 200
    assert bob.post("/workspaces/full/delete").status_code == 303


def test_a_rule_with_a_second_factor_asks_for_both(test_app: TestApp, bob: Browser) -> None:
    _admin(test_app)
    secret, _ = bob.enrol()
    refused = bob.get("/billing/export")
    assert refused.status_code == 303
    page = bob.get(refused.headers["Location"]).get_data(as_text=True)
    assert 'name="code"' in page

    test_app.clock.advance(30)  # the confirming code is burned
    wrong_code = bob.reauth(refused.headers["Location"], "battery staple", code="000000")
    assert wrong_code.status_code == 400
    assert "not right" in wrong_code.get_data(as_text=True)
    ok = bob.reauth(refused.headers["Location"], "battery staple", code=test_app.totp_code(secret))
    assert ok.status_code == 303
    assert bob.get("/billing/export").status_code == 200


def test_a_second_factor_rule_without_enrolment_says_so(test_app: TestApp, bob: Browser) -> None:
    _admin(test_app)
    refused = bob.get("/billing/export")
    page = bob.get(refused.headers["Location"]).get_data(as_text=True)
    assert "Set it up first" in page
    assert 'type="password"' not in page


def test_hostile_next_is_replaced_by_the_root(test_app: TestApp, bob: Browser) -> None:
    _admin(test_app)
    response = bob.reauth("/stepup/reauth?next=//evil.example/x", "battery staple")
    assert response.status_code == 303
    assert response.headers["Location"] == "/"


def test_unknown_action_on_the_page_is_refused(test_app: TestApp, bob: Browser) -> None:
    assert bob.get("/stepup/reauth?action=api_key.raed").status_code == 400


def test_the_page_needs_a_signed_in_user(test_app: TestApp) -> None:
    anonymous = test_app.client()
    assert anonymous.get("/stepup/reauth").status_code == 401
    assert anonymous.get("/api-key").status_code == 401


def test_rehash_on_outdated_parameters(test_app: TestApp, bob: Browser) -> None:
    from argon2 import PasswordHasher, Type

    # argon2i: below the app's argon2id profile (CHEAPEST is the floor of every number)
    weak = PasswordHasher(
        time_cost=1, memory_cost=8, parallelism=1, hash_len=16, salt_len=8, type=Type.I
    )
    test_app.users["bob"].password_hash = weak.hash("battery staple")
    before = test_app.users["bob"].password_hash
    _admin(test_app)
    assert bob.reauth("/stepup/reauth?next=/api-key", "battery staple").status_code == 303
    assert test_app.users["bob"].password_hash != before


def test_tenant_document_and_flag_off_again(test_app: TestApp, alice: Browser) -> None:
    assert set_flag(alice, True).status_code == 200
    off = set_flag(alice, False)
    assert off.json == {
        "data": {
            "type": "tenant",
            "id": TENANT,
            "attributes": {"feature_flags": {"sensitive_actions_reauth": False}},
        }
    }
    assert json.loads(off.get_data())["data"]["id"] == TENANT


def _admin(test_app: TestApp) -> Browser:
    admin = test_app.client()
    admin.login("alice")
    assert set_flag(admin).status_code == 200
    return admin
