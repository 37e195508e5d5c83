"""ASGI: the journey through Django's ``AsyncClient`` (async views, the async mixin,
and the ready-made views running under the ASGI handler)."""

from __future__ import annotations

import html
import re

from django.test import AsyncClient

from integrations.django.django_support import PASSWORDS, Site, flag_body
from integrations.tenant_answers import only_error

_FIELD = re.compile(r'<input type="hidden" name="(\w+)" value="([^"]*)"')


async def _signed_in(name: str) -> AsyncClient:
    client = AsyncClient(enforce_csrf_checks=True)
    response = await client.post("/login/", {"username": name, "password": PASSWORDS[name]})
    assert response.status_code == 303
    return client


async def _reauth(client: AsyncClient, location: str, password: str) -> object:
    page = await client.get(location)
    assert page.status_code == 200
    fields = {k: html.unescape(v) for k, v in _FIELD.findall(page.content.decode())}
    return await client.post("/stepup/reauth/password/", {**fields, "password": password})


async def _patch_as_admin(client: AsyncClient) -> object:
    """Changing tenant settings needs a fresh re-authentication, flag on or off."""
    body, jsonapi = flag_body(True), "application/vnd.api+json"
    stale = await client.patch("/stepup/tenants/acme", body, content_type=jsonapi)
    assert stale.status_code == 401
    asked = only_error(stale.json())["meta"]
    assert asked["action"] == "tenant.settings.update"
    done = await _reauth(client, asked["reauth_url"], PASSWORDS["alice"])
    assert done.status_code == 303  # type: ignore[attr-defined]
    return await client.patch("/stepup/tenants/acme", body, content_type=jsonapi)


async def test_the_journey_over_asgi(site: Site) -> None:
    alice, bob = await _signed_in("alice"), await _signed_in("bob")

    allowed = await bob.get("/api-key/async/")
    assert allowed.status_code == 200
    assert allowed.json() == {"api_key": "key-async", "reason": "flag_off"}
    assert (await bob.get("/api-key/copy/")).content == b"copied"

    refused = await bob.patch(
        "/stepup/tenants/acme", flag_body(True), content_type="application/vnd.api+json"
    )
    assert refused.status_code == 403
    turned_on = await _patch_as_admin(alice)
    assert turned_on.status_code == 200

    sent_away = await bob.get("/api-key/async/")
    assert sent_away.status_code == 303
    assert sent_away["Location"].startswith("/stepup/reauth/?next=%2Fapi-key%2Fasync%2F")
    as_json = await bob.get("/api-key/async/", headers={"Accept": "application/json"})
    assert as_json.status_code == 401
    assert (await bob.get("/api-key/copy/")).status_code == 303  # the async class view

    wrong = await _reauth(bob, sent_away["Location"], "not it")
    assert wrong.status_code == 400  # type: ignore[attr-defined]
    right = await _reauth(bob, sent_away["Location"], "battery staple")
    assert right["Location"] == "/api-key/async/"  # type: ignore[index]

    back = await bob.get("/api-key/async/")
    assert back.status_code == 200
    assert back.json()["reason"] == "fresh_grant"
    assert (await bob.get("/api-key/copy/")).content == b"copied"

    site.clock.advance(6 * 3600)
    assert (await bob.get("/api-key/async/")).status_code == 303


async def test_the_sync_views_run_under_asgi_too(site: Site) -> None:
    alice = await _signed_in("alice")
    turned_on = await _patch_as_admin(alice)
    assert turned_on.status_code == 200
    site.clock.advance(6 * 3600)  # that re-authentication has run out
    assert (await alice.get("/api-key/")).status_code == 303
    assert (await alice.get("/profile/update/")).status_code == 303  # require() in a view
