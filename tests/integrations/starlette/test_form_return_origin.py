"""Starlette (and FastAPI, which asks ``Stepup.return_path``): a refused request other
than GET comes back, after re-authenticating, to the page its Referer names only when
that page is on this app's origin (``request.url``'s scheme and host); a form on another
site (``Referer: https://evil.example/x``) sends the person to the app's root instead."""

from __future__ import annotations

import pytest

from integrations.starlette.starlette_support import TENANT, make_app, next_of
from stepup.adapters.storage.memory import MemoryStore
from stepup.testing import SettableClock


@pytest.mark.parametrize(
    ("referer", "expected"),
    [
        ("http://testserver/workspaces?tab=2", "/workspaces?tab=2"),
        ("https://evil.example/x", "/"),
        ("https://testserver/x", "/"),  # the app answers on http
        ("http://testserver:8080/x", "/"),
        ("http://testserver.evil.example/x", "/"),
    ],
)
def test_a_guarded_request_follows_only_a_referer_on_this_origin(
    referer: str, expected: str
) -> None:
    test_app = make_app(clock=SettableClock(), store=MemoryStore())
    alice = test_app.browser()
    try:
        assert alice.login("alice").status_code == 303
        assert alice.patch_tenant(True).status_code == 200
        refused = alice.client.delete("/workspaces/full", headers={"Referer": referer})
        assert refused.status_code == 303
        assert next_of(refused.headers["location"]) == expected
    finally:
        alice.close()


@pytest.mark.parametrize(
    ("referer", "expected"),
    [("http://testserver/settings/tenant", "/settings/tenant"), ("https://evil.example/x", "/")],
)
def test_the_tenant_endpoint_too(referer: str, expected: str) -> None:
    test_app = make_app(clock=SettableClock(), store=MemoryStore())
    alice = test_app.browser()
    try:
        assert alice.login("alice").status_code == 303
        body = {
            "data": {
                "type": "tenant",
                "attributes": {"feature_flags": {"sensitive_actions_reauth": True}},
            }
        }
        headers = {"Content-Type": "application/vnd.api+json", "Referer": referer}
        refused = alice.client.patch(f"/stepup/tenants/{TENANT}", json=body, headers=headers)
        assert refused.status_code == 401
        assert next_of(refused.json()["errors"][0]["meta"]["reauth_url"]) == expected
    finally:
        alice.close()
