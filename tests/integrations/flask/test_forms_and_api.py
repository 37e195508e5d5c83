"""CSRF on every ready-made form, the tenant endpoint's JSON:API errors, and the
responses for bearer, API-key and JSON clients."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from integrations.flask.flask_support import (
    TENANT,
    Browser,
    TestApp,
    flag_body,
    fresh_grant,
    make_app,
    set_flag,
)
from stepup.adapters.storage.memory import MemoryStore

FORMS = [
    "/stepup/reauth/password",
    "/stepup/reauth/oidc/start",
    "/stepup/reauth/saml/start",
    "/stepup/2fa/enrol",
    "/stepup/2fa/confirm",
    "/stepup/2fa/verify",
    "/stepup/2fa/recovery-codes",
    "/stepup/2fa/remove",
    "/stepup/users/bob/2fa/remove",
]


@pytest.mark.parametrize("url", FORMS)
def test_every_form_needs_this_sessions_token(test_app: TestApp, url: str) -> None:
    alice, bob = test_app.client(), test_app.client()
    alice.login("alice")
    bob.login("bob")
    bobs_token = bob.csrf()
    for data in ({}, {"csrf_token": ""}, {"csrf_token": bobs_token}):
        response = alice.post(url, data={**data, "password": "correct horse"})
        assert response.status_code == 403, (url, data)
        assert "expired" in response.get_data(as_text=True)


def test_a_valid_token_passes(test_app: TestApp, bob: Browser) -> None:
    assert bob.form("/stepup/2fa/enrol", {}).status_code == 200
    assert bob.post("/stepup/2fa/enrol", headers={"X-CSRF-Token": bob.csrf()}).status_code in {
        200,
        303,
    }


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(token=st.text(max_size=120))
def test_forged_tokens_never_pass(test_app: TestApp, token: str) -> None:
    bob = test_app.client()
    bob.login("bob")
    bob.csrf()  # the session has a token; the forged one must still fail
    response = bob.post("/stepup/2fa/enrol", data={"csrf_token": token})
    assert response.status_code == 403


def test_a_token_dies_with_the_session(test_app: TestApp, bob: Browser) -> None:
    token = bob.csrf()
    bob.post("/logout")
    bob.login("bob")
    assert bob.post("/stepup/2fa/enrol", data={"csrf_token": token}).status_code == 403


# the tenant endpoint -----------------------------------------------------------------


def _patch(
    browser: Browser, body: object, content_type: str = "application/vnd.api+json"
) -> object:
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    fresh_grant(browser)  # tenant.settings.update needs one whatever the flag says
    return browser.patch(f"/stepup/tenants/{TENANT}", data=data, content_type=content_type)


def test_plain_json_is_accepted(test_app: TestApp, alice: Browser) -> None:
    response = _patch(alice, flag_body(True), "application/json; charset=utf-8")
    assert response.status_code == 200  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("body", "status", "pointer"),
    [
        ("{not json", 400, ""),
        ({"data": {"type": "user", "attributes": {}}}, 409, "/data/type"),
        ({"data": {"type": "tenant", "id": "other", "attributes": {}}}, 409, "/data/id"),
        (
            {
                "data": {
                    "type": "tenant",
                    "attributes": {"feature_flags": {"sensitive_actions_reauth": "yes"}},
                }
            },
            422,
            "/data/attributes/feature_flags/sensitive_actions_reauth",
        ),
        (
            {"data": {"type": "tenant", "attributes": {"colour": "red"}}},
            422,
            "/data/attributes/colour",
        ),
        ({"data": {"type": "tenant"}, "extra": 1}, 400, "/extra"),
    ],
)
def test_bad_bodies_get_jsonapi_errors_and_change_nothing(
    test_app: TestApp, alice: Browser, body: object, status: int, pointer: str
) -> None:
    response = _patch(alice, body)
    assert response.status_code == status  # type: ignore[attr-defined]
    assert response.headers["Content-Type"] == "application/vnd.api+json"  # type: ignore[attr-defined]
    errors = response.json["errors"]  # type: ignore[attr-defined]
    assert pointer in [e.get("source", {}).get("pointer") for e in errors]
    assert alice.get("/api-key").json["reason"] == "flag_off"


def test_wrong_media_type_is_415(test_app: TestApp, alice: Browser) -> None:
    response = _patch(alice, flag_body(True), "application/x-www-form-urlencoded")
    assert response.status_code == 415  # type: ignore[attr-defined]
    assert response.json["errors"][0]["status"] == "415"  # type: ignore[attr-defined]


def test_unknown_tenant_is_404(test_app: TestApp, alice: Browser) -> None:
    fresh_grant(alice)
    response = alice.patch(
        "/stepup/tenants/ghost", data=json.dumps(flag_body(True)), content_type="application/json"
    )
    assert response.status_code == 404


def test_an_admin_of_another_tenant_is_refused(test_app: TestApp, alice: Browser) -> None:
    with test_app.app.app_context():
        test_app.stepup.tenant_settings.ensure("globex")
    response = alice.patch(
        "/stepup/tenants/globex", data=json.dumps(flag_body(True)), content_type="application/json"
    )
    assert response.status_code == 403


def test_anonymous_patch_is_401(test_app: TestApp) -> None:
    response = test_app.client().patch(
        f"/stepup/tenants/{TENANT}",
        data=json.dumps(flag_body(True)),
        content_type="application/vnd.api+json",
    )
    assert response.status_code == 401  # type: ignore[attr-defined]
    assert response.json["errors"][0]["code"] == "unauthenticated"  # type: ignore[attr-defined]


# clients that are not browsers --------------------------------------------------------


@pytest.fixture
def api_app(clock: object) -> TestApp:
    return make_app("subject_loader", clock=clock, store=MemoryStore())  # type: ignore[arg-type]


def _flag_on(test_app: TestApp) -> None:
    admin = test_app.client()
    admin.login("alice")
    assert set_flag(admin).status_code == 200


def test_a_bearer_client_gets_the_rfc_9470_challenge(api_app: TestApp) -> None:
    client = api_app.client()
    headers = {"Authorization": "Bearer token-bob"}
    assert client.get("/api-key", headers=headers).status_code == 200
    _flag_on(api_app)
    response = client.get("/api-key", headers=headers)
    assert response.status_code == 401
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer error="insufficient_user_authentication"')
    assert 'max_age="21600"' in challenge
    assert response.json["error"] == "reauth_required"


def test_an_api_key_request_follows_the_rules_api_key_setting(api_app: TestApp) -> None:
    _flag_on(api_app)
    response = api_app.client().get("/api-key", headers={"X-API-Key": "bob"})
    assert response.status_code == 200
    assert response.json["reason"] == "exempt_channel"


def test_the_app_can_replace_the_response(clock: object) -> None:
    def setup(app: object, stepup: object) -> None:
        @stepup.response_handler  # type: ignore[attr-defined]
        def handle(decision: object, request: object) -> object:
            if request.path == "/api-key":  # type: ignore[attr-defined]
                return {"custom": decision.action}, 418  # type: ignore[attr-defined]
            return None

    test_app = make_app("subject_loader", clock=clock, store=MemoryStore(), setup=setup)  # type: ignore[arg-type]
    _flag_on(test_app)
    bob = test_app.client()
    bob.login("bob")
    replaced = bob.get("/api-key")
    assert (replaced.status_code, replaced.json) == (418, {"custom": "api_key.read"})
    assert bob.get("/billing/export").status_code == 303  # the handler kept the default


def test_an_unreachable_store_fails_closed(clock: object) -> None:
    from stepup.adapters.storage.redis import RedisStore
    from support import port_open

    assert not port_open("127.0.0.1", 1)
    test_app = make_app(
        "subject_loader",
        clock=clock,  # type: ignore[arg-type]
        config={"STEPUP_STORE": RedisStore("redis://127.0.0.1:1/0")},
        ensure_tenant=False,
    )
    bob = test_app.client()
    with bob.client.session_transaction() as session:
        session["user_id"] = "bob"
    page = bob.get("/api-key")  # a browser reads the "try again" page
    assert page.status_code == 503
    assert "Try again in a moment." in page.get_data(as_text=True)
    response = bob.get("/api-key", headers={"Accept": "application/json"})
    assert response.status_code == 503
    assert response.json == {
        "error": "reauth_unavailable",
        "title": "Your identity cannot be confirmed right now. Try again soon.",
        "action": "api_key.read",
    }
    assert bob.get("/public").status_code == 200
