"""Starlette's own confirm pages, "New recovery codes" (GET /2fa/recovery-codes) and
"Remove two-factor authentication" (GET /2fa/remove), for a user without two-factor:
they showed the whole page, and its button answered a 404 "Two-factor authentication is
not on for this account." with no way on. Now the page is not shown: a 303 to the
two-factor settings page, which says it is off, where Flask and Django send the same
POST; the POST itself answers that way too. An admin removing the two-factor of a user
who has none reads Flask's and Django's 404 "This user has no two-factor
authentication."."""

from __future__ import annotations

import pytest

from integrations.starlette.starlette_support import Browser, TestApp, csrf_token, enrol

SETTINGS = "/stepup/2fa"
REGENERATE = "/stepup/2fa/recovery-codes"
REMOVE = "/stepup/2fa/remove"
IS_OFF = "Two-factor authentication is off."


def _post(browser: Browser, url: str) -> object:
    token = csrf_token(browser.get(SETTINGS).text)
    return browser.post(url, data={"csrf_token": token})


@pytest.mark.parametrize("url", [REGENERATE, REMOVE])
def test_the_confirm_page_of_nothing_goes_to_the_settings_page(bob: Browser, url: str) -> None:
    answer = bob.get(url)
    assert answer.status_code == 303
    assert answer.headers["location"] == SETTINGS
    settings = bob.get(answer.headers["location"])
    assert settings.status_code == 200
    assert IS_OFF in settings.text
    head = bob.client.request("HEAD", url)  # HEAD as GET
    assert (head.status_code, head.headers["location"]) == (303, SETTINGS)


def test_new_codes_for_nobody_go_to_the_settings_page(bob: Browser) -> None:
    answer = _post(bob, REGENERATE)
    assert answer.status_code == 303  # type: ignore[attr-defined]
    assert answer.headers["location"] == SETTINGS  # type: ignore[attr-defined]


def test_removing_what_is_off_says_it_is_off(bob: Browser) -> None:
    """As Flask and Django answer: the settings page, with the note that it is off."""
    answer = _post(bob, REMOVE)
    assert answer.status_code == 303  # type: ignore[attr-defined]
    assert answer.headers["location"] == SETTINGS  # type: ignore[attr-defined]
    settings = bob.get(SETTINGS).text
    assert settings.count(IS_OFF) == 2  # the note, and the page's own status
    assert "not on for this account" not in settings


def test_with_two_factor_on_the_confirm_pages_are_shown(bob: Browser) -> None:
    enrol(bob)
    regenerate = bob.get(REGENERATE)
    assert regenerate.status_code == 200
    assert "<h1>New recovery codes</h1>" in regenerate.text
    remove = bob.get(REMOVE)
    assert remove.status_code == 200
    assert "<h1>Remove two-factor authentication</h1>" in remove.text


def test_an_admin_removing_nothing_reads_that_the_user_has_none(
    test_app: TestApp, alice: Browser
) -> None:
    url = "/stepup/2fa/users/bob/remove"
    page = alice.get(url)
    assert page.status_code == 200
    answer = alice.post(url, data={"csrf_token": csrf_token(page.text)})
    assert answer.status_code == 404
    assert "This user has no two-factor authentication." in answer.text
