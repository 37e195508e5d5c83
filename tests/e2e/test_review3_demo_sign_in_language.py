"""The demo's sign-in page is English (``<html lang="en">``), whatever the browser asks
for: a pause there is said in English too, in stepup's words with the time it ends, so
the page reads in one language (WCAG 2.1 SC 3.1.1 and 3.1.2), not with one unmarked
German sentence."""

from __future__ import annotations

import re
from typing import Any

from e2e.journeys import MEMBER
from e2e.test_demo_app import csrf
from stepup.integrations.views import throttled_message
from stepup.testing import SettableClock

GERMAN = {"Accept-Language": "de"}


def _sign_in(client: Any, password: str) -> Any:
    page = client.get("/login", headers=GERMAN)
    data = {"csrf_token": csrf(page.text), "email": MEMBER, "password": password}
    return client.post("/login", data=data, headers=GERMAN)


def _html_lang(html: str) -> str:
    found = re.search(r'<html lang="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def _error(html: str) -> tuple[str | None, str]:
    """The sign-in error's own ``lang`` (``None``: the page's) and its text."""
    found = re.search(r'<p class="error"[^>]*id="login-error"([^>]*)>([^<]*)</p>', html)
    assert found is not None, "no error on the page"
    lang = re.search(r'\slang="([^"]*)"', found.group(1))
    return (lang.group(1) if lang else None), found.group(2)


def test_a_pause_on_the_english_sign_in_page_is_english(
    app_client: tuple[Any, SettableClock],
) -> None:
    client, clock = app_client
    answers = [_sign_in(client, "wrong") for _ in range(5)]
    assert [answer.status_code for answer in answers] == [401, 401, 401, 401, 429]
    paused = answers[-1]
    assert _html_lang(paused.text) == "en"
    lang, text = _error(paused.text)
    assert lang is None  # the page's own language
    # stepup's words, until when: three free guesses, then 30 s from the fourth's time.
    assert text == str(throttled_message(clock() + 30))
    assert text.startswith("Too many attempts: trying again is paused until")
    assert "Zu viele" not in paused.text
