"""Django: a refused POST comes back, after re-authenticating, to the page its Referer
names only when that page is on this site's origin (``request.scheme`` and
``get_host()``); a form on another site (``Referer: https://evil.example/x``) sends the
person to the project's root instead. The guarded view and the tenant endpoint alike."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from integrations.django.django_support import (
    TENANT,
    Browser,
    Site,
    flag_body,
    reauth_target,
    set_flag,
)


@pytest.mark.parametrize(
    ("referer", "expected"),
    [
        ("http://testserver/workspaces/full/?tab=2", "/workspaces/full/?tab=2"),
        ("https://evil.example/x", "/"),
        ("https://testserver/x", "/"),  # the site answers on http
        ("http://testserver:8080/x", "/"),
        ("http://testserver.evil.example/x", "/"),
    ],
)
def test_a_guarded_post_follows_only_a_referer_on_this_origin(
    site: Site, bob: Browser, referer: str, expected: str
) -> None:
    assert set_flag(site.browser("alice")).status_code == 200
    refused = bob.post("/workspaces/full/delete/", headers={"Referer": referer})
    assert refused.status_code == 303
    assert reauth_target(refused)[1]["next"] == expected


@pytest.mark.parametrize(
    ("referer", "expected"),
    [("http://testserver/settings/tenant/", "/settings/tenant/"), ("https://evil.example/x", "/")],
)
def test_the_tenant_endpoint_too(site: Site, referer: str, expected: str) -> None:
    alice = site.browser("alice")
    refused = alice.patch(
        f"/stepup/tenants/{TENANT}",
        data=flag_body(True),
        content_type="application/vnd.api+json",
        headers={"Referer": referer},
    )
    assert refused.status_code == 401
    reauth_url = json.loads(refused.content)["errors"][0]["meta"]["reauth_url"]
    assert parse_qs(urlsplit(reauth_url).query)["next"] == [expected]
