"""Django answers as Flask and Starlette do: HEAD on its pages (RFC 9110 section 9.1: a
server that answers GET answers HEAD; it was 405), and a guard that cannot decide (the
store is down) gives a browser the "try again" page (503) and a script the JSON."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from integrations.django.django_support import Site, running_site, set_flag
from integrations.record_outage_support import TRY_AGAIN, ReadOutage
from stepup.integrations.django.services import get_stepup
from stepup.testing import SettableClock


@pytest.mark.parametrize(
    "url",
    [
        "/stepup/reauth/status?action=api_key.read",
        "/stepup/reauth/?next=/&action=api_key.read",
        "/stepup/reauth/done",
        "/stepup/stepup-reauth.js",
        "/stepup/stepup.css",
        "/stepup/2fa/",
    ],
)
def test_head_answers_as_get_without_a_body(site: Site, url: str) -> None:
    alice = site.browser("alice")
    get, head = alice.get(url), alice.client.head(url)
    assert head.status_code == get.status_code == 200
    assert head["Content-Type"] == get["Content-Type"]
    assert head.content == b""


@pytest.fixture
def outage() -> Iterator[tuple[Site, ReadOutage]]:
    store = ReadOutage()
    with running_site(store, SettableClock()) as site:
        get_stepup().tenant_settings.ensure("acme")
        yield site, store


def test_a_guard_that_cannot_decide_shows_a_browser_the_page(
    outage: tuple[Site, ReadOutage],
) -> None:
    site, store = outage
    alice = site.browser("alice")
    assert set_flag(alice).status_code == 200
    store.down = True
    page = alice.get("/api-key/", HTTP_ACCEPT="text/html")
    assert page.status_code == 503
    assert page["Content-Type"].startswith("text/html")
    assert TRY_AGAIN in page.content.decode()
    assert page["Retry-After"] == "5"
    script = alice.get("/api-key/", HTTP_ACCEPT="application/json")
    assert script.status_code == 503
    assert script.json()["error"] == "reauth_unavailable"
    inline = alice.get("/profile/update/", HTTP_ACCEPT="text/html")  # require() in the view
    assert inline.status_code == 503
    assert TRY_AGAIN in inline.content.decode()
