"""PATCH <prefix>/tenants/<id>: admin only, JSON:API in and out, nothing changed on error."""

from __future__ import annotations

import json

import anyio
import pytest

from integrations.starlette.starlette_support import Browser, TestApp

URL = "/stepup/tenants/acme"
JSONAPI = "application/vnd.api+json"


def patch(browser: Browser, body: object, content_type: str = JSONAPI, url: str = URL) -> object:
    """The PATCH by a session with a fresh grant (tenant.settings.update needs one
    whatever the flag says; tests of that are in test_hardening)."""
    if "session" in browser.client.cookies:
        browser.client.post("/_test/grant", data={"method": ["pwd"]})
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return browser.client.patch(url, content=raw, headers={"Content-Type": content_type})


def flag_of(test_app: TestApp) -> object:
    tenant = anyio.run(test_app.stepup.tenants.ensure, "acme")
    return tenant.feature_flags.get("sensitive_actions_reauth")


def seed_body(value: object) -> dict[str, object]:
    return {
        "data": {
            "type": "tenant",
            "attributes": {"feature_flags": {"sensitive_actions_reauth": value}},
        }
    }


def test_application_json_is_accepted_too(test_app: TestApp, alice: Browser) -> None:
    answer = patch(alice, seed_body(True), "application/json; charset=utf-8")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == JSONAPI
    assert flag_of(test_app) is True
    assert patch(alice, seed_body(False)).status_code == 200
    assert flag_of(test_app) is False


def test_not_signed_in(test_app: TestApp) -> None:
    stranger = test_app.browser()
    try:
        answer = patch(stranger, seed_body(True))
        assert answer.status_code == 401
        assert answer.json()["errors"][0]["code"] == "unauthenticated"
    finally:
        stranger.close()
    assert flag_of(test_app) is False


@pytest.mark.parametrize(
    ("body", "content_type", "status", "pointer"),
    [
        (seed_body(True), "text/plain", 415, None),
        (seed_body(True), "application/x-www-form-urlencoded", 415, None),
        (b"{not json", JSONAPI, 400, ""),
        (seed_body("yes"), JSONAPI, 422, "/data/attributes/feature_flags/sensitive_actions_reauth"),
        ({"data": {"type": "user", "attributes": {}}}, JSONAPI, 409, "/data/type"),
        ({"data": {"type": "tenant", "id": "other", "attributes": {}}}, JSONAPI, 409, "/data/id"),
    ],
)
def test_invalid_requests_change_nothing(
    test_app: TestApp,
    alice: Browser,
    body: object,
    content_type: str,
    status: int,
    pointer: str | None,
) -> None:
    answer = patch(alice, body, content_type)
    assert answer.status_code == status
    error = answer.json()["errors"][0]
    assert error["status"] == str(status)
    if pointer is not None:
        assert error["source"]["pointer"] == pointer
    assert flag_of(test_app) is False


def test_unknown_tenant_is_404(alice: Browser) -> None:
    # alice is admin of acme only; our test hook says yes for any tenant id she names.
    answer = patch(alice, seed_body(True), url="/stepup/tenants/nowhere")
    assert answer.status_code == 404


def test_non_admin_is_403_even_with_a_bad_body(test_app: TestApp, bob: Browser) -> None:
    answer = patch(bob, b"{not json")
    assert answer.status_code == 403
    assert answer.json()["errors"][0]["code"] == "forbidden"
    assert flag_of(test_app) is False
