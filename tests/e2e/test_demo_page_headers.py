"""The demo's own pages carry the headers of stepup's pages: never cached, never framed
(a framed "Regenerate" or "Save" button is a clickjacking target), no Referer to another
site, no content sniffing."""

from __future__ import annotations

from typing import Any

from e2e.journeys import ADMIN
from e2e.test_demo_app import sign_in
from stepup.integrations.pages import PAGE_HEADERS
from stepup.testing import SettableClock

EXPECTED = {
    "cache-control": "no-store",
    "x-frame-options": "DENY",
    "content-security-policy": "frame-ancestors 'none'",
    "referrer-policy": "same-origin",
    "x-content-type-options": "nosniff",
}


def _headers(answer: Any) -> dict[str, str | None]:
    return {name: answer.headers.get(name) for name in EXPECTED}


def test_the_demos_pages_carry_stepups_page_headers(
    app_client: tuple[Any, SettableClock],
) -> None:
    client, _ = app_client
    assert {name.lower(): value for name, value in PAGE_HEADERS.items()} == EXPECTED
    login = client.get("/login")
    assert login.status_code == 200
    assert _headers(login) == EXPECTED
    assert sign_in(client, ADMIN).status_code == 303
    for path in ("/account", "/api-keys"):
        page = client.get(path)
        assert page.status_code == 200, path
        assert _headers(page) == EXPECTED, path
    # Pages a guard let through say so to shared caches too (ASVS 5.0 14.3.2).
    for path in ("/account/edit", "/api-keys/1", "/api-keys/1/regenerate"):
        page = client.get(path)
        assert page.status_code == 200, path
        assert _headers(page) == EXPECTED | {"cache-control": "private, no-store"}, path
    refused = client.post("/account/edit", data={"csrf_token": "forged"})  # the 403 page
    assert refused.status_code == 403
    # The guard let the POST through before the view refused its form token.
    assert _headers(refused) == EXPECTED | {"cache-control": "private, no-store"}
