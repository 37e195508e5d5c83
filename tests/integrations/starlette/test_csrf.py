"""CSRF: every stepup form needs a token signed for this browser's cookie and session."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from integrations.starlette.starlette_support import PASSWORDS, Browser, TestApp, csrf_token
from stepup.testing import SettableClock

PAGE = "/stepup/reauth?action=api_key.read&next=/api-key"


def post(browser: Browser, token: str | None) -> int:
    data = {"password": PASSWORDS["alice"]}
    if token is not None:
        data["csrf_token"] = token
    return int(browser.post(PAGE, data=data).status_code)


def test_valid_token_passes(alice: Browser) -> None:
    assert post(alice, csrf_token(alice.get(PAGE).text)) == 303


def test_missing_token_is_refused(alice: Browser) -> None:
    alice.get(PAGE)  # the cookie is set, but the form carries no token
    assert post(alice, None) == 403


def test_token_without_its_cookie_is_refused(alice: Browser) -> None:
    token = csrf_token(alice.get(PAGE).text)
    alice.client.cookies.delete("stepup_csrf")
    assert post(alice, token) == 403


def test_token_from_another_browser_is_refused(alice: Browser, bob: Browser) -> None:
    # bob's token, signed for bob's cookie and session, posted by alice's browser.
    stolen = csrf_token(bob.get("/stepup/reauth?action=api_key.read").text)
    alice.get(PAGE)
    assert post(alice, stolen) == 403


def test_token_from_an_earlier_session_is_refused(alice: Browser) -> None:
    token = csrf_token(alice.get(PAGE).text)
    alice.logout()
    alice.login("alice")  # same browser and cookie, new session
    assert post(alice, token) == 403


def test_token_expires(alice: Browser, clock: SettableClock) -> None:
    token = csrf_token(alice.get(PAGE).text)
    clock.advance(8 * 3600 + 1)
    assert post(alice, token) == 403


def test_cookie_is_http_only_and_lax(test_app: TestApp) -> None:
    browser = test_app.browser()
    try:
        browser.login("alice")
        header = browser.get(PAGE).headers["set-cookie"].lower()
        assert header.startswith("stepup_csrf=")
        assert "httponly" in header
        assert "samesite=lax" in header
    finally:
        browser.close()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    forged=st.text(st.characters(blacklist_categories=("Cs",)), max_size=200)
    | st.from_regex(r"[A-Za-z0-9_\-]{10,80}\.[A-Za-z0-9_\-]{6}\.[A-Za-z0-9_\-]{27}", fullmatch=True)
)
def test_forged_tokens_never_pass(alice: Browser, forged: str) -> None:
    alice.get(PAGE)
    assert post(alice, forged) == 403
