"""Flask: a refused POST comes back, after re-authenticating, to the page its Referer
names only when that page is on this app's origin; a form on another site (``Referer:
https://evil.example/x``) sends the person to the app's root instead. The guarded view
and the tenant endpoint alike."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from integrations.flask.flask_support import TENANT, Browser, TestApp, flag_body, set_flag
from integrations.tenant_answers import only_error


def _next(location: str) -> str:
    return parse_qs(urlsplit(location).query)["next"][0]


def _refused_post(test_app: TestApp, bob: Browser, referer: str) -> Any:
    admin = test_app.client()
    assert admin.login("alice").status_code == 303
    assert set_flag(admin).status_code == 200
    return bob.post("/workspaces/full/delete", headers={"Referer": referer})


@pytest.mark.parametrize(
    ("referer", "expected"),
    [
        ("http://localhost/workspaces?tab=2", "/workspaces?tab=2"),
        ("https://evil.example/x", "/"),
        ("https://localhost/x", "/"),  # the app answers on http
        ("http://localhost:8080/x", "/"),
        ("http://localhost.evil.example/x", "/"),
    ],
)
def test_a_guarded_post_follows_only_a_referer_on_this_origin(
    test_app: TestApp, bob: Browser, referer: str, expected: str
) -> None:
    refused = _refused_post(test_app, bob, referer)
    assert refused.status_code == 303
    assert _next(refused.headers["Location"]) == expected


def test_a_foreign_referer_goes_to_the_apps_root_under_its_prefix(
    test_app: TestApp, bob: Browser
) -> None:
    admin = test_app.client()
    assert admin.login("alice").status_code == 303
    assert set_flag(admin).status_code == 200
    refused = bob.client.post(
        "/workspaces/full/delete",
        headers={"Referer": "https://evil.example/app/x"},
        environ_overrides={"SCRIPT_NAME": "/app"},
    )
    assert refused.status_code == 303
    assert _next(refused.headers["Location"]) == "/app/"


@pytest.mark.parametrize(
    ("referer", "expected"),
    [("http://localhost/settings/tenant", "/settings/tenant"), ("https://evil.example/x", "/")],
)
def test_the_tenant_endpoint_too(alice: Browser, referer: str, expected: str) -> None:
    refused = alice.patch(
        f"/stepup/tenants/{TENANT}",
        data=json.dumps(flag_body(True)),
        content_type="application/vnd.api+json",
        headers={"Referer": referer},
    )
    assert refused.status_code == 401
    assert _next(only_error(refused.json)["meta"]["reauth_url"]) == expected
