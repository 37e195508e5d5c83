"""The re-authentication journey through the Starlette test client, end to end."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import anyio
from argon2 import PasswordHasher, Type
from starlette.endpoints import HTTPEndpoint
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from integrations.starlette.starlette_support import (
    CHEAP,
    PASSWORDS,
    Browser,
    TestApp,
    enrol,
    make_app,
    next_of,
)
from stepup.adapters.idp.password import CHEAPEST, hash_password
from stepup.adapters.storage.memory import MemoryStore
from stepup.events import ReauthFailed, ReauthSucceeded, TenantFlagChanged
from stepup.integrations.views import default_policy
from stepup.policy import SENSITIVE
from stepup.testing import SettableClock

SIX_HOURS = 6 * 3600
TENANT_ON = {
    "data": {
        "type": "tenant",
        "id": "acme",
        "attributes": {"feature_flags": {"sensitive_actions_reauth": True}},
    }
}


def test_whole_password_journey(
    test_app: TestApp, alice: Browser, bob: Browser, clock: SettableClock
) -> None:
    # The flag is off: the sensitive action is allowed.
    assert alice.get("/api-key").text == "the key"

    # Only a tenant admin may turn it on.
    refused = bob.patch_tenant(True)
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/vnd.api+json"
    assert refused.json()["errors"][0]["status"] == "403"
    assert alice.get("/api-key").status_code == 200

    turned_on = alice.patch_tenant(True)
    assert turned_on.status_code == 200
    assert turned_on.json() == TENANT_ON
    changes = [e for e in test_app.events if isinstance(e, TenantFlagChanged)]
    assert [(e.actor_id, e.old, e.new) for e in changes] == [("alice", False, True)]

    # Now a browser is sent to re-authenticate, with a safe way back.
    redirected = alice.get("/api-key", headers={"accept": "text/html"})
    assert redirected.status_code == 303
    location = redirected.headers["location"]
    assert location.startswith("/stepup/reauth?")
    assert next_of(location) == "/api-key"

    # A wrong password: what to do about it, and still no access.
    wrong = alice.reauth(location, "not alice's password")
    assert wrong.status_code == 400
    assert "That password is not right. Check it and try again." in wrong.text
    assert alice.get("/api-key").status_code == 303

    # The right password: back to the original page, which now works.
    right = alice.reauth(location, PASSWORDS["alice"])
    assert right.status_code == 303
    assert right.headers["location"] == "/api-key"
    assert alice.get("/api-key").text == "the key"
    assert any(isinstance(e, ReauthSucceeded) for e in test_app.events)

    # Within the lifetime it keeps working; one second after, it asks again.
    clock.advance(SIX_HOURS - 1)
    assert alice.get("/api-key").status_code == 200
    clock.advance(1)
    assert alice.get("/api-key").status_code == 303


def test_json_and_bearer_clients_get_401(test_app: TestApp, alice: Browser) -> None:
    api = test_app.browser()
    try:
        bearer = {"authorization": "Bearer alice-token"}
        assert api.get("/api-key", headers=bearer).status_code == 200  # flag off
        assert alice.patch_tenant(True).status_code == 200

        as_json = alice.get("/api-key", headers={"accept": "application/json"})
        assert as_json.status_code == 401
        body = as_json.json()
        assert body["error"] == "reauth_required"
        assert body["action"] == "api_key.read"
        assert body["methods"] == ["pwd"]
        assert body["max_age"] == SIX_HOURS
        assert next_of(body["reauth_url"]) == "/api-key"
        assert as_json.headers["www-authenticate"] == 'Session realm="stepup"'  # RFC 9110

        challenged = api.get("/api-key", headers=bearer)
        assert challenged.status_code == 401
        header = challenged.headers["www-authenticate"]
        assert header.startswith("Bearer ")
        assert 'error="insufficient_user_authentication"' in header
        assert f'max_age="{SIX_HOURS}"' in header
    finally:
        api.close()


def test_grant_is_bound_to_the_session(test_app: TestApp, alice: Browser, bob: Browser) -> None:
    assert alice.patch_tenant(True).status_code == 200
    location = alice.get("/api-key").headers["location"]
    assert alice.reauth(location, PASSWORDS["alice"]).status_code == 303
    assert alice.get("/api-key").status_code == 200

    assert bob.get("/api-key").status_code == 303  # another user
    second = test_app.browser()
    try:
        assert second.login("alice").status_code == 303
        assert second.get("/api-key").status_code == 303  # another session of alice
    finally:
        second.close()

    # Signing out revokes the grant; so does a password change.
    alice.logout()
    alice.login("alice")
    assert alice.get("/api-key").status_code == 303
    assert alice.reauth(location, PASSWORDS["alice"]).status_code == 303
    assert alice.get("/api-key").status_code == 200
    assert anyio.run(test_app.stepup.password_changed, "alice") == 1
    assert alice.get("/api-key").status_code == 303


def test_post_action_and_context(alice: Browser) -> None:
    assert alice.patch_tenant(True).status_code == 200
    # A sandbox workspace is not sensitive; a full one is.
    assert alice.client.delete("/workspaces/sandbox").text == "deleted"
    denied = alice.client.delete("/workspaces/full")
    assert denied.status_code == 303
    # A redirect cannot repeat a DELETE: back to the page it came from, else home (as
    # in Flask, Django and FastAPI), never to a URL that would answer 405.
    assert next_of(denied.headers["location"]) == "/"
    came_from = {"Referer": "http://testserver/workspaces?tab=full"}
    denied = alice.client.delete("/workspaces/full", headers=came_from)
    assert next_of(denied.headers["location"]) == "/workspaces?tab=full"

    posted = alice.post("/api-key/regenerate")
    assert posted.status_code == 303
    assert alice.reauth(posted.headers["location"], PASSWORDS["alice"]).status_code == 303
    assert alice.post("/api-key/regenerate").text == "regenerated"  # a sync endpoint
    assert alice.client.delete("/workspaces/full").text == "deleted"


def test_throttled_password_then_retry_later(alice: Browser, clock: SettableClock) -> None:
    assert alice.patch_tenant(True).status_code == 200
    location = alice.get("/api-key").headers["location"]
    for _ in range(4):
        assert alice.reauth(location, "guess").status_code == 400
    throttled = alice.reauth(location, PASSWORDS["alice"])
    assert throttled.status_code == 429
    # The right password while paused: say so, and until when (not "failed").
    assert "That password is not right. Check it and try again." not in throttled.text
    assert "trying again is paused until" in throttled.text
    clock.advance(30)
    assert alice.reauth(location, PASSWORDS["alice"]).status_code == 303


def test_hostile_next_is_replaced(alice: Browser) -> None:
    assert alice.patch_tenant(True).status_code == 200
    for hostile in ("//evil.example", "https://evil.example/", "/\\evil.example", "javascript:x"):
        url = f"/stepup/reauth?action=api_key.read&next={hostile}"
        done = alice.reauth(url, PASSWORDS["alice"])
        assert done.status_code == 303
        assert done.headers["location"] == "/"


def test_unknown_action_on_the_reauth_page(alice: Browser) -> None:
    assert alice.get("/stepup/reauth?action=api_key.raed&next=/").status_code == 400


def test_outdated_hash_is_saved_again(clock: SettableClock) -> None:
    # argon2i: below the app's argon2id profile (CHEAPEST is the floor of every number)
    older = PasswordHasher.from_parameters(replace(CHEAPEST, type=Type.I))
    test_app = make_app(clock=clock, store=MemoryStore())
    test_app.hashes["bob"] = hash_password(PASSWORDS["bob"], hasher=older)
    bob = test_app.browser()
    try:
        assert bob.login("bob").status_code == 303
        # The page works with the flag off too (an app may link to it directly).
        done = bob.reauth("/stepup/reauth?action=api_key.read&next=/", PASSWORDS["bob"])
        assert done.status_code == 303
        assert test_app.rehashed == ["bob"]
        new_hash = test_app.hashes["bob"]
        assert CHEAP.verify(new_hash, PASSWORDS["bob"])
        assert not CHEAP.check_needs_rehash(new_hash)
    finally:
        bob.close()


def test_second_factor_rule_asks_for_a_code(clock: SettableClock) -> None:
    policy = default_policy().extend({"api_key.read": replace(SENSITIVE, second_factor=True)})
    test_app = make_app(clock=clock, store=MemoryStore(), policy=policy)
    alice = test_app.browser()
    try:
        assert alice.login("alice").status_code == 303
        totp, _ = enrol(alice)
        assert alice.patch_tenant(True).status_code == 200
        location = alice.get("/api-key").headers["location"]
        assert 'name="code"' in alice.get(location).text
        clock.advance(30)
        test_app.events.clear()
        bad_code = alice.form(location, {"password": PASSWORDS["alice"], "code": "12345x"})
        assert bad_code.status_code == 400
        # A refused code is a failed re-authentication, reported once, as in Flask/Django.
        failed = [e for e in test_app.events if isinstance(e, ReauthFailed)]
        assert [(e.user_id, e.method, e.reason) for e in failed] == [("alice", "otp", "malformed")]
        assert alice.get("/api-key").status_code == 303
        both = alice.form(location, {"password": PASSWORDS["alice"], "code": totp.at(clock())})
        assert both.status_code == 303
        assert alice.get("/api-key").status_code == 200
        granted = [e for e in test_app.events if isinstance(e, ReauthSucceeded)]
        assert granted[-1].method == "otp,pwd"
    finally:
        alice.close()


def test_guard_on_an_http_endpoint_method(clock: SettableClock) -> None:
    def routes(stepup: Any) -> list[Any]:
        class Keys(HTTPEndpoint):
            async def get(self, request: Request) -> Response:
                return PlainTextResponse("listed")

            @stepup.requires_reauth("api_key.copy")
            async def post(self, request: Request) -> Response:
                return PlainTextResponse("copied")

        return [Route("/keys", Keys)]

    test_app = make_app(clock=clock, store=MemoryStore(), extra_routes=routes)
    alice = test_app.browser()
    try:
        alice.login("alice")
        assert alice.patch_tenant(True).status_code == 200
        assert alice.get("/keys").text == "listed"
        denied = alice.post("/keys")
        assert denied.status_code == 303
        assert alice.reauth(denied.headers["location"], PASSWORDS["alice"]).status_code == 303
        assert alice.post("/keys").text == "copied"
    finally:
        alice.close()
