"""Starlette: a browser that opens a page guarded by a rule this session can never reach
(its level only a provider's ``acr`` proves; alice signed in with a password) is sent
where a browser goes for a re-authentication, the re-auth page for that action, which
says in the browser's language why and offers no form. It got the JSON 403
``reauth_unreachable``, raw, in the window. A script keeps the JSON 403, and a form POST
is not kept for a replay that could never come (see the Flask and Django twins)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from integrations.starlette.starlette_support import Browser, make_app
from stepup.adapters.storage.memory import MemoryStore
from stepup.assurance import Level, Levels
from stepup.integrations.starlette import Stepup
from stepup.policy import Policy, Rule, Sensitivity
from stepup.testing import SettableClock

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
SCRIPT = {"Accept": "application/json"}
UNREACHABLE = {
    "en": "This action needs a stronger confirmation than this sign-in can give.",
    "de": "Diese Aktion erfordert eine stärkere Bestätigung",
}


def _policy() -> Policy:
    levels = Levels(
        (
            Level("password", acr=("urn:x:pwd",), methods=(("pwd",),)),
            Level("mfa", acr=("urn:x:mfa",), methods=(("pwd", "otp"),)),
            Level("phr", methods=(("phr",),)),
            Level("top", acr=("urn:x:top",)),
        )
    )
    wire = Rule(Sensitivity.SENSITIVE, level="top", description="Wiring")
    return Policy.default().with_levels(levels).extend({"money.wire": wire})


def _routes(stepup: Stepup) -> list[Any]:
    @stepup.requires_reauth("money.wire")
    async def wire(request: Request) -> Response:
        return PlainTextResponse("wired")

    @stepup.requires_reauth("money.wire", return_to="/payments")
    async def send_wire(request: Request) -> Response:
        return PlainTextResponse("wired")

    return [Route("/wire", wire), Route("/wire", send_wire, methods=["POST"])]


@pytest.fixture
def alice() -> Iterator[Browser]:
    test_app = make_app(
        clock=SettableClock(), store=MemoryStore(), policy=_policy(), extra_routes=_routes
    )
    browser = test_app.browser()
    try:
        assert browser.login("alice").status_code == 303
        assert browser.patch_tenant(True).status_code == 200
        yield browser
    finally:
        browser.close()


@pytest.mark.parametrize("language", ["en", "de"])
def test_a_browser_is_sent_to_the_page_that_says_why(alice: Browser, language: str) -> None:
    headers = {**BROWSER, "Accept-Language": language}
    refused = alice.get("/wire?amount=5", headers=headers)
    assert refused.status_code == 303
    assert refused.headers["Cache-Control"] == "no-store"
    target = urlsplit(refused.headers["Location"])
    assert target.path == "/stepup/reauth"
    assert parse_qs(target.query) == {"next": ["/wire?amount=5"], "action": ["money.wire"]}
    page = alice.get(refused.headers["Location"], headers=headers)
    assert page.headers["Content-Type"].startswith("text/html")
    assert UNREACHABLE[language] in page.text
    assert 'name="password"' not in page.text


def test_a_browser_form_post_goes_to_the_page_and_is_not_kept(alice: Browser) -> None:
    refused = alice.post("/wire", data={"amount": "5"}, headers=BROWSER)
    assert refused.status_code == 303
    target = urlsplit(refused.headers["Location"])
    assert target.path == "/stepup/reauth"
    query = parse_qs(target.query)
    assert query == {"next": ["/payments"], "action": ["money.wire"]}  # no resume token


def test_a_script_keeps_the_json_403(alice: Browser) -> None:
    refused = alice.get("/wire", headers=SCRIPT)
    assert refused.status_code == 403
    assert refused.headers["Content-Type"] == "application/json"
    body = refused.json()
    assert (body["error"], body["reason"], body["level"]) == (
        "reauth_unreachable",
        "unreachable",
        "top",
    )
