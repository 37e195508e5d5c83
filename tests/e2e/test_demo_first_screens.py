"""The demo's first screens without a browser: the language each part of a page is in,
what the sign-in page and the banner tell a newcomer to do, and the Tenant page's form,
which turns the flag on without JavaScript under the JSON:API endpoint's rules."""

from __future__ import annotations

import re
from typing import Any

import pytest

from e2e.journeys import ADMIN, MEMBER, PASSWORDS
from e2e.test_demo_app import banner, csrf, sign_in
from stepup.reauth import FEATURE_FLAG
from stepup.testing import SettableClock

STEPUP_PAGES = (
    "/stepup/2fa",
    "/stepup/passkeys",
    "/stepup/reauth?next=/account&action=user.update",
)


def _lang_of(html: str, opening: str) -> str | None:
    """The ``lang`` of the first element whose opening tag starts with ``opening``
    (``None``: the element says none)."""
    tag = re.search(re.escape(opening) + r"[^>]*>", html)
    assert tag is not None, f"no {opening} on the page"
    found = re.search(r'\slang="([^"]*)"', tag.group(0))
    return found.group(1) if found else None


def _flag(client: Any) -> bool:
    demo = client.app.state.demo
    tenant = client.portal.call(demo.store.get_tenant, "acme")
    return bool(tenant.flag(FEATURE_FLAG))


@pytest.mark.parametrize("path", STEPUP_PAGES)
def test_a_german_stepup_page_says_so_and_marks_the_demo_chrome_english(
    app_client: tuple[Any, SettableClock], path: str
) -> None:
    client, _ = app_client
    sign_in(client, ADMIN)
    german = client.get(path, headers={"Accept-Language": "de"})
    assert german.status_code == 200
    assert _lang_of(german.text, "<html") == "de"
    assert _lang_of(german.text, '<header class="top"') == "en"  # the menu, in English
    assert _lang_of(german.text, '<p id="grant-status"') == "en"  # the banner too
    english = client.get(path).text
    assert _lang_of(english, "<html") == "en"
    assert _lang_of(english, '<header class="top"') is None  # nothing to mark


def test_the_demo_own_pages_stay_english(app_client: tuple[Any, SettableClock]) -> None:
    client, _ = app_client
    sign_in(client, ADMIN)
    account = client.get("/account", headers={"Accept-Language": "de"}).text
    assert _lang_of(account, "<html") == "en"


def test_the_sign_in_page_says_what_to_try_first(app_client: tuple[Any, SettableClock]) -> None:
    client, _ = app_client
    first = re.search(r'<p id="first-step">([^<]+)</p>', client.get("/login").text)
    assert first is not None
    assert "tenant admin" in first.group(1)
    assert "Tenant page" in first.group(1)


def test_the_banner_says_who_turns_the_flag_on_and_where(
    app_client: tuple[Any, SettableClock],
) -> None:
    client, _ = app_client
    sign_in(client, ADMIN)
    admin = client.get("/account").text
    assert banner(admin) == "off"
    assert '<a href="/tenant" id="grant-status-tenant">Turn it on from the Tenant page</a>' in admin
    client.post("/logout", data={"csrf_token": csrf(admin)})
    sign_in(client, MEMBER)
    member = client.get("/account").text
    assert banner(member) == "off"
    assert "A tenant admin can turn it on from the Tenant page." in member
    assert 'id="grant-status-tenant"' not in member


def test_the_tenant_form_turns_the_flag_on_after_a_reauthentication(
    app_client: tuple[Any, SettableClock],
) -> None:
    client, _ = app_client
    sign_in(client, ADMIN)
    page = client.get("/tenant").text
    form = re.search(
        r'<form method="post" action="/tenant/flag" id="flag-form">.*?</form>', page, re.S
    )
    assert form is not None
    assert '<input type="hidden" name="on" value="true">' in form.group(0)
    assert '<button type="submit" id="toggle-flag"' in form.group(0)

    # As the PATCH endpoint: a fresh re-authentication first, whatever the flag.
    asked = client.post("/tenant/flag", data={"csrf_token": csrf(form.group(0)), "on": "true"})
    assert asked.status_code == 303
    assert asked.headers["location"].startswith("/stepup/reauth?")
    assert "action=tenant.settings.update" in asked.headers["location"]
    assert not _flag(client)

    prompt = client.get(asked.headers["location"]).text
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', prompt))
    client.post(asked.headers["location"], data={**fields, "password": PASSWORDS[ADMIN]})
    page = client.get("/tenant").text
    done = client.post("/tenant/flag", data={"csrf_token": csrf(page), "on": "true"})
    assert done.status_code == 303
    assert done.headers["location"] == "/tenant"
    assert _flag(client)
    after = client.get("/tenant").text
    assert "Re-authentication for sensitive actions is on." in after
    assert '<input type="hidden" name="on" value="false">' in after


def test_the_tenant_form_refuses_what_the_endpoint_refuses(
    app_client: tuple[Any, SettableClock],
) -> None:
    client, _ = app_client
    sign_in(client, MEMBER)
    page = client.get("/tenant").text
    assert 'id="flag-form"' not in page  # a member has the note, not the form
    refused = client.post("/tenant/flag", data={"csrf_token": csrf(page), "on": "true"})
    assert refused.status_code == 403  # before any re-authentication, as the endpoint
    forged = client.post("/tenant/flag", data={"csrf_token": "forged", "on": "true"})
    assert forged.status_code == 403
    assert not _flag(client)


@pytest.mark.parametrize("value", ["", "yes", "TRUE", "1"])
def test_the_tenant_form_takes_only_true_or_false(
    app_client: tuple[Any, SettableClock], value: str
) -> None:
    client, _ = app_client
    sign_in(client, ADMIN)
    page = client.get("/tenant").text
    answer = client.post("/tenant/flag", data={"csrf_token": csrf(page), "on": value})
    assert answer.status_code == 400
    assert "Nothing was changed" in answer.text
    assert not _flag(client)
