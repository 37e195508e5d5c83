"""The tenant settings endpoint: JSON:API in and out, admin only, CSRF-exempt only for
JSON content types (which a cross-site form cannot send)."""

from __future__ import annotations

import json

import pytest

from integrations.django.django_support import (
    TENANT,
    Browser,
    Site,
    flag_body,
    fresh_grant,
    set_flag,
)

URL = f"/stepup/tenants/{TENANT}"
JSONAPI = "application/vnd.api+json"


def _patch(browser: Browser, body: str, content_type: str = JSONAPI, url: str = URL) -> object:
    if browser.client.session.get("_auth_user_id"):
        fresh_grant(browser)  # tenant.settings.update needs one whatever the flag says
    return browser.patch(url, data=body, content_type=content_type)


def test_admin_patch_with_either_json_type(site: Site, alice: Browser) -> None:
    for content_type in (JSONAPI, "application/json", "application/json; charset=utf-8"):
        response = _patch(alice, flag_body(True), content_type)
        assert response.status_code == 200  # type: ignore[attr-defined]


def test_other_attributes_and_flags_are_kept(site: Site, alice: Browser) -> None:
    from stepup.integrations.django.services import get_stepup
    from stepup.records import Tenant

    store = get_stepup().store
    store.put_tenant(Tenant(TENANT, {"name": "Acme", "feature_flags": {"beta": True}}))
    response = set_flag(alice)
    assert response.json()["data"]["attributes"] == {
        "name": "Acme",
        "feature_flags": {"beta": True, "sensitive_actions_reauth": True},
    }


@pytest.mark.parametrize(
    ("body", "status", "pointer"),
    [
        ("{not json", 400, ""),
        ('["data"]', 400, ""),
        ('{"data": {"type": "user", "attributes": {}}}', 409, "/data/type"),
        (
            '{"data": {"type": "tenant", "id": "other", "attributes": {}}}',
            409,
            "/data/id",
        ),
        (
            '{"data": {"type": "tenant", "attributes": '
            '{"feature_flags": {"sensitive_actions_reauth": "yes"}}}}',
            422,
            "/data/attributes/feature_flags/sensitive_actions_reauth",
        ),
        ('{"data": {"type": "tenant"}, "extra": 1}', 400, "/extra"),
    ],
)
def test_invalid_bodies_get_jsonapi_errors_and_change_nothing(
    site: Site, alice: Browser, body: str, status: int, pointer: str
) -> None:
    response = _patch(alice, body)
    assert response.status_code == status  # type: ignore[attr-defined]
    assert response["Content-Type"] == JSONAPI  # type: ignore[index]
    errors = json.loads(response.content)["errors"]  # type: ignore[attr-defined]
    assert errors[0]["status"] == str(status)
    assert errors[0]["source"]["pointer"] == pointer
    assert alice.get("/api-key/").json()["reason"] == "flag_off"


def test_an_unknown_tenant_is_404_for_its_admin(site: Site, alice: Browser) -> None:
    response = _patch(alice, flag_body(True), url="/stepup/tenants/ghost")
    assert response.status_code == 404  # type: ignore[attr-defined]


def test_non_admins_and_strangers_are_refused(site: Site, bob: Browser) -> None:
    refused = set_flag(bob)
    assert refused.status_code == 403
    assert refused.json()["errors"][0]["code"] == "forbidden"
    anonymous = set_flag(site.browser())
    assert anonymous.status_code == 401
    assert anonymous["Content-Type"] == JSONAPI


def test_form_content_types_are_refused_before_anything_else(site: Site, alice: Browser) -> None:
    # What a cross-site form could send (without a preflight) is never read.
    for content_type in (
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "text/plain",
    ):
        response = _patch(alice, flag_body(True), content_type)
        assert response.status_code == 415  # type: ignore[attr-defined]
    assert alice.get("/api-key/").json()["reason"] == "flag_off"


def test_only_patch_is_allowed(site: Site, alice: Browser) -> None:
    assert alice.get(URL).status_code == 405
    assert alice.post(URL, {}).status_code == 405


def test_forms_without_the_csrf_token_are_refused(site: Site, bob: Browser) -> None:
    # The browser fixture enforces CSRF like a real browser would be protected.
    assert set_flag(site.browser("alice")).status_code == 200
    forged = bob.post(
        "/stepup/reauth/password/", {"password": "battery staple", "next": "/api-key/"}
    )
    assert forged.status_code == 403
    assert bob.post("/stepup/2fa/enrol/").status_code == 403
    assert bob.get("/api-key/").status_code == 303
