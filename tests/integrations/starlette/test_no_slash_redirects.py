"""Starlette: stepup's routes never redirect a trailing slash. Starlette's own
``redirect_slashes`` answers any method (a ``PATCH`` of the tenant settings included)
with a 307 to an absolute URL built from the request's ``Host`` header; stepup's paths
have no trailing slash, so one with a slash is a 404, as in Flask and Django."""

from __future__ import annotations

import pytest

from integrations.starlette.starlette_support import make_app
from stepup.adapters.storage.memory import MemoryStore
from stepup.testing import SettableClock


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PATCH", "/stepup/tenants/acme/"),
        ("GET", "/stepup/reauth/"),
        ("GET", "/stepup/stepup.css/"),
        ("POST", "/stepup/2fa/verify/"),
    ],
)
def test_a_trailing_slash_is_not_redirected_to_the_host_header(method: str, path: str) -> None:
    browser = make_app(clock=SettableClock(), store=MemoryStore()).browser()
    answer = browser.client.request(method, path, headers={"Host": "evil.example"})
    assert answer.status_code == 404
    assert "location" not in answer.headers


def test_the_routes_without_the_slash_still_answer() -> None:
    browser = make_app(clock=SettableClock(), store=MemoryStore()).browser()
    assert browser.client.get("/stepup/stepup.css").status_code == 200
    assert browser.client.get("/stepup/reauth?action=api_key.read").status_code == 401  # sign in
    tenant = browser.client.patch("/stepup/tenants/acme", headers={"Host": "evil.example"})
    assert tenant.status_code == 401  # the route, asking for a sign-in
