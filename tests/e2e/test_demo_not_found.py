"""The demo answers an address it does not have (404), and a method an address does not
take (405), with a page in its own layout: a title, the page's language, the header
(with its menu for a signed-in user) and a link back to the start, not Starlette's bare
"Not Found" (WCAG 2.4.2 and 3.1.1). A script still gets Starlette's plain text."""

from __future__ import annotations

import re
from typing import Any

import pytest

from e2e.journeys import ADMIN
from e2e.test_demo_app import sign_in
from stepup.testing import SettableClock

_TITLE = re.compile(r"<title>([^<]*)</title>")


def _page(answer: Any) -> tuple[str, str]:
    """The page's language and title."""
    lang = re.search(r'<html lang="([^"]+)"', answer.text)
    title = _TITLE.search(answer.text)
    assert lang is not None, answer.text
    assert title is not None, answer.text
    return lang.group(1), title.group(1)


@pytest.mark.parametrize("path", ["/no-such-page", "/stepup/no-such-page", "/static/nothing.css"])
def test_an_unknown_address_is_a_page_of_the_demo(
    app_client: tuple[Any, SettableClock], path: str
) -> None:
    client, _ = app_client
    missing = client.get(path)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert _page(missing) == ("en", "Page not found · Acme")
    assert "<h1>Page not found</h1>" in missing.text
    assert '<a href="/">Back to the start page</a>' in missing.text
    assert '<a class="brand" href="/">' in missing.text  # the demo's header


def test_a_signed_in_user_keeps_the_menu(app_client: tuple[Any, SettableClock]) -> None:
    client, _ = app_client
    sign_in(client, ADMIN)
    missing = client.get("/no-such-page")
    assert missing.status_code == 404
    assert _page(missing) == ("en", "Page not found · Acme")
    assert '<nav aria-label="Main">' in missing.text
    assert 'href="/account"' in missing.text


def test_a_method_the_address_does_not_take(app_client: tuple[Any, SettableClock]) -> None:
    client, _ = app_client
    refused = client.delete("/account")
    assert refused.status_code == 405
    assert "GET" in refused.headers["allow"]
    assert _page(refused) == ("en", "Request not allowed · Acme")
    assert '<a href="/">Back to the start page</a>' in refused.text


def test_a_script_still_gets_plain_text(app_client: tuple[Any, SettableClock]) -> None:
    client, _ = app_client
    missing = client.get("/no-such-page", headers={"Accept": "application/json"})
    assert (missing.status_code, missing.text) == (404, "Not Found")
    assert missing.headers["content-type"].startswith("text/plain")
