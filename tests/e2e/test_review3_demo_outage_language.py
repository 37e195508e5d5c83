"""While stepup's store is down, each demo page reads in one language (WCAG 2.1 SC 3.1.1
and 3.1.2): the demo's own pages are English (``<html lang="en">``) and say stepup's
"try again" in English to a German browser too; stepup's own "try again" page is German
for it (``<html lang="de">``, the demo's chrome marked English)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from e2e.journeys import ADMIN, MEMBER, PASSWORDS
from e2e.test_demo_app import csrf, sign_in
from e2e.test_demo_outage import TRY_AGAIN, Outage, outage  # noqa: F401 (the fixture)
from stepup.i18n import translate
from stepup.integrations.views import TEXT

GERMAN = {"Accept-Language": "de"}
TRY_AGAIN_DE = translate(TEXT["unavailable"], "de")


def _lang(html: str) -> str:
    found = re.search(r'<html lang="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def _heading(html: str) -> str:
    found = re.search(r"<h1>([^<]*)</h1>", html)
    assert found is not None
    return found.group(1)


def test_the_sign_in_page_says_try_again_in_its_own_language(
    outage: Outage,  # noqa: F811
) -> None:
    client = outage.client
    page = client.get("/login", headers=GERMAN)
    outage.down()
    data = {"csrf_token": csrf(page.text), "email": MEMBER, "password": PASSWORDS[MEMBER]}
    answer = client.post("/login", data=data, headers=GERMAN)
    assert answer.status_code == 503
    assert _lang(answer.text) == "en"
    error = re.search(r'<p class="error" role="alert" id="login-error">([^<]*)</p>', answer.text)
    assert error is not None
    assert error.group(1) == TRY_AGAIN
    assert TRY_AGAIN_DE != TRY_AGAIN
    assert TRY_AGAIN_DE not in answer.text


def test_stepup_s_try_again_page_is_in_the_browser_s_language(
    outage: Outage,  # noqa: F811
) -> None:
    client = outage.client
    sign_in(client, ADMIN)
    outage.down()
    page = client.get("/security", headers=GERMAN)
    assert page.status_code == 503
    assert _lang(page.text) == "de"
    assert TRY_AGAIN_DE in page.text
    assert TRY_AGAIN not in page.text
    assert '<header class="top" lang="en">' in page.text  # the demo's chrome, marked


def test_the_demo_s_own_try_again_page_is_english_title_and_text(
    outage: Outage,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without stepup's page (a Stepup without pages answers ``None``), the demo's own:
    its English title above English text, not above German."""
    client = outage.client
    demo: Any = client.app.state.demo  # type: ignore[attr-defined]

    async def no_page(request: Any) -> None:
        return None

    monkeypatch.setattr(demo.stepup, "outage_page", no_page)
    sign_in(client, ADMIN)
    outage.down()
    page = client.get("/security", headers=GERMAN)
    assert page.status_code == 503
    assert _lang(page.text) == "en"
    assert _heading(page.text) == "Please try again"
    assert f"<p>{TRY_AGAIN}</p>" in page.text
    assert TRY_AGAIN_DE not in page.text
