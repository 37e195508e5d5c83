"""Flask: a browser that opens a page guarded by a rule this session can never reach
(its level only a provider's ``acr`` proves; alice signed in with a password) is sent
where a browser goes for a re-authentication, the re-auth page for that action, which
says in the browser's language why and offers no form. It got the JSON 403
``reauth_unreachable``, raw, in the window. A script keeps the JSON 403, and a form POST
is not kept for a replay that could never come."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask

from integrations.flask.flask_support import app_policy, make_app, set_flag
from stepup.assurance import Level, Levels
from stepup.integrations.flask import Stepup
from stepup.policy import Policy, Rule, Sensitivity

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
    return app_policy().with_levels(levels).extend({"money.wire": wire})


def _setup(app: Flask, stepup: Stepup) -> None:
    @app.get("/wire")
    @stepup.reauth_required("money.wire")
    def wire() -> str:
        return "wired"

    @app.post("/wire")
    @stepup.reauth_required("money.wire", return_to="/payments")
    def send_wire() -> str:
        return "wired"


@pytest.fixture
def alice() -> Any:
    test_app = make_app(policy=_policy(), setup=_setup)
    browser = test_app.client()
    assert browser.login("alice").status_code == 303
    set_flag(browser)
    return browser


@pytest.mark.parametrize("language", ["en", "de"])
def test_a_browser_is_sent_to_the_page_that_says_why(alice: Any, language: str) -> None:
    headers = {**BROWSER, "Accept-Language": language}
    refused = alice.get("/wire?amount=5", headers=headers)
    assert refused.status_code == 303
    assert refused.headers["Cache-Control"] == "no-store"
    target = urlsplit(refused.headers["Location"])
    assert target.path == "/stepup/reauth"
    assert parse_qs(target.query) == {"next": ["/wire?amount=5"], "action": ["money.wire"]}
    page = alice.get(refused.headers["Location"], headers=headers)
    assert page.mimetype == "text/html"
    text = page.get_data(as_text=True)
    assert UNREACHABLE[language] in text
    assert 'name="password"' not in text


def test_a_browser_form_post_goes_to_the_page_and_is_not_kept(alice: Any) -> None:
    refused = alice.post("/wire", data={"amount": "5"}, headers=BROWSER)
    assert refused.status_code == 303
    target = urlsplit(refused.headers["Location"])
    assert target.path == "/stepup/reauth"
    query = parse_qs(target.query)
    assert query == {"next": ["/payments"], "action": ["money.wire"]}  # no resume token


def test_a_script_keeps_the_json_403(alice: Any) -> None:
    refused = alice.get("/wire", headers=SCRIPT)
    assert refused.status_code == 403
    assert refused.mimetype == "application/json"
    body = refused.get_json()
    assert (body["error"], body["reason"], body["level"]) == (
        "reauth_unreachable",
        "unreachable",
        "top",
    )
