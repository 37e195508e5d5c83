"""Starlette: a passkey as the second factor at sign-in, with a software authenticator
answering as the browser would (the page's form and the JSON endpoints)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from integrations.starlette.starlette_support import (
    Browser,
    TestApp,
    changes_factors,
    confirm_factors,
    csrf_token,
    make_app,
)
from stepup.adapters.storage.memory import MemoryStore
from stepup.integrations.views import default_policy
from stepup.passkeys import MAX_PAYLOAD_BYTES, PasskeySignInRejected, PasskeySignInVerified
from stepup.testing import SettableClock
from stepup.testing.webauthn import SoftAuthenticator
from stepup.twofactor import Channel

ORIGIN = "http://localhost"
OPTIONS = {"passkeys_rp_id": "localhost", "passkeys_origins": (ORIGIN,)}
VERIFY = "/stepup/2fa/verify"
BEGIN = "/stepup/2fa/verify/passkey/begin"
FINISH = "/stepup/2fa/verify/passkey/finish"


@pytest.fixture
def test_app(clock: SettableClock) -> TestApp:
    policy = default_policy().with_sign_in_counts()
    return make_app(clock=clock, store=MemoryStore(), policy=policy, **OPTIONS)


@pytest.fixture
def opened(test_app: TestApp) -> Iterator[list[Browser]]:
    browsers: list[Browser] = []
    yield browsers
    for browser in browsers:
        browser.close()


def _browser(test_app: TestApp, opened: list[Browser]) -> Browser:
    browser = test_app.browser()
    opened.append(browser)
    return browser


def _json(browser: Browser, url: str, body: Any, token: str) -> Any:
    """POST JSON; adding a passkey with a fresh grant first (guarded whatever the flag)."""
    if changes_factors(url):
        confirm_factors(browser)
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    headers = {"Content-Type": "application/json", "X-CSRF-Token": token}
    return browser.post(url, content=data, headers=headers)


def _token(browser: Browser, page: str = VERIFY) -> str:
    answer = browser.get(page)
    assert answer.status_code == 200, answer.text
    return csrf_token(answer.text)


def _who(browser: Browser) -> str:
    return str(browser.get("/").text.removeprefix("hello "))


def _with_passkey(test_app: TestApp, opened: list[Browser], user: str) -> SoftAuthenticator:
    browser = _browser(test_app, opened)
    assert browser.login(user).status_code == 303
    key = SoftAuthenticator(origin=ORIGIN, counter=1)
    token = _token(browser, "/stepup/passkeys")
    options = _json(browser, "/stepup/passkeys/register/begin", {}, token)
    assert options.status_code == 200, options.text
    body = {"credential": key.create(options.json())}
    assert _json(browser, "/stepup/passkeys/register/finish", body, token).status_code == 200
    browser.logout()
    return key


def _at_second_step(
    test_app: TestApp, opened: list[Browser], user: str = "alice", next: str = "/api-key"
) -> Browser:
    browser = _browser(test_app, opened)
    answer = browser.login(user, next=next)
    assert answer.status_code == 303
    assert answer.headers["location"].endswith(VERIFY)
    return browser


def test_sign_in_with_password_then_passkey_counts(
    test_app: TestApp, opened: list[Browser]
) -> None:
    key = _with_passkey(test_app, opened, "alice")
    admin = _browser(test_app, opened)
    admin.login("bob")
    browser = _at_second_step(test_app, opened)
    page = browser.get(VERIFY).text
    assert "Use a passkey" in page
    assert 'name="code"' not in page
    assert 'name="recovery_code"' not in page
    token = csrf_token(page)
    assert _who(browser) == "stranger"
    options = _json(browser, BEGIN, {}, token)
    assert options.status_code == 200, options.text
    credential = json.dumps(key.get(options.json()))
    done = browser.post(FINISH, data={"credential": credential, "csrf_token": token})
    assert done.status_code == 303, done.text
    assert done.headers["location"] == "/api-key"
    assert _who(browser) == "alice"
    assert browser.patch_tenant(True).status_code == 200  # critical: counted too
    # The sign-in counts (pwd + the passkey): the guarded page opens without asking.
    assert browser.get("/api-key").status_code == 200
    assert any(isinstance(e, PasskeySignInVerified) for e in test_app.events)


async def test_second_factors_and_the_channel_rule(
    test_app: TestApp, opened: list[Browser]
) -> None:
    _with_passkey(test_app, opened, "alice")
    assert (await test_app.stepup.second_factors("alice")).passkeys == 1
    assert not await test_app.stepup.second_factors("alice", Channel.API_KEY)
    assert not await test_app.stepup.second_factors("bob")


def test_json_endpoints(test_app: TestApp, opened: list[Browser]) -> None:
    key = _with_passkey(test_app, opened, "alice")
    browser = _at_second_step(test_app, opened, next="/")
    token = _token(browser)
    options = _json(browser, BEGIN, {}, token).json()
    done = _json(browser, FINISH, {"credential": key.get(options)}, token)
    assert done.status_code == 200
    answer = done.json()
    assert answer == {"ok": True, "next": "/", "csrf_token": answer["csrf_token"]}
    assert answer["csrf_token"]  # for the signed-in session: the script's next request
    assert _who(browser) == "alice"


def test_another_users_passkey_and_another_sign_ins_challenge_are_refused(
    test_app: TestApp, opened: list[Browser]
) -> None:
    key = _with_passkey(test_app, opened, "alice")
    bobs = _with_passkey(test_app, opened, "bob")
    browser = _at_second_step(test_app, opened)
    token = _token(browser)
    options = _json(browser, BEGIN, {}, token).json()
    bobs.user_handle = None
    refused = _json(browser, FINISH, {"credential": bobs.get(options)}, token)
    assert refused.status_code == 400
    assert refused.json()["error"] == "unknown_credential"
    other = _at_second_step(test_app, opened)
    other_options = _json(other, BEGIN, {}, _token(other)).json()
    crossed = _json(browser, FINISH, {"credential": key.get(other_options)}, token)
    assert crossed.status_code == 400
    assert crossed.json()["error"] == "challenge"
    # The other sign-in's page token is bound to that sign-in: refused here.
    assert _json(browser, BEGIN, {}, _token(other)).status_code == 403
    assert _who(browser) == "stranger"
    rejected = [e.reason for e in test_app.events if isinstance(e, PasskeySignInRejected)]
    assert rejected == ["unknown_credential", "challenge"]


@pytest.mark.parametrize(
    "body", ["{", "[]", json.dumps({"credential": "x" * (MAX_PAYLOAD_BYTES + 4096)})]
)
def test_malformed_or_oversized_body_is_a_clear_400(
    test_app: TestApp, opened: list[Browser], body: str
) -> None:
    key = _with_passkey(test_app, opened, "alice")
    browser = _at_second_step(test_app, opened)
    token = _token(browser)
    options = _json(browser, BEGIN, {}, token).json()
    refused = _json(browser, FINISH, body, token)
    assert refused.status_code == 400
    assert refused.json()["error"] == "malformed"
    assert _json(browser, FINISH, {"credential": key.get(options)}, token).status_code == 200


def test_no_pending_sign_in_is_refused(test_app: TestApp, opened: list[Browser]) -> None:
    """Without a token the CSRF check answers first (403 csrf, as in Flask and Django);
    a request with no sign-in waiting and nothing else wrong is sign_in_expired (see
    test_review3_passkey_answers for a page's token after the sign-in expired)."""
    stranger = _browser(test_app, opened)
    refused = _json(stranger, BEGIN, {}, "")
    assert refused.status_code == 403
    assert refused.json()["error"] == "csrf"


def test_attempts_are_throttled(test_app: TestApp, opened: list[Browser]) -> None:
    key = _with_passkey(test_app, opened, "alice")
    browser = _at_second_step(test_app, opened)
    token = _token(browser)
    statuses = []
    for _ in range(5):
        options = _json(browser, BEGIN, {}, token).json()
        wrong = SoftAuthenticator(origin=ORIGIN).get(options)
        statuses.append(_json(browser, FINISH, {"credential": wrong}, token).status_code)
    assert statuses[-1] == 429
    options = _json(browser, BEGIN, {}, token).json()
    assert _json(browser, FINISH, {"credential": key.get(options)}, token).status_code == 429


@pytest.mark.parametrize("token", [None, "", "forged"])
def test_the_sign_in_passkey_endpoints_check_csrf(
    test_app: TestApp, opened: list[Browser], token: str | None
) -> None:
    """A cross-site post cannot start or finish the waiting sign-in's passkey step
    (and spends nothing: the genuine answer still passes)."""
    key = _with_passkey(test_app, opened, "alice")
    browser = _at_second_step(test_app, opened)
    genuine = _token(browser)
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["X-CSRF-Token"] = token
    assert browser.post(BEGIN, content="{}", headers=headers).status_code == 403
    options = _json(browser, BEGIN, {}, genuine).json()
    body = json.dumps({"credential": key.get(options)})
    assert browser.post(FINISH, content=body, headers=headers).status_code == 403
    assert _who(browser) != "alice"
    assert _json(browser, FINISH, {"credential": key.get(options)}, genuine).status_code == 200
    assert _who(browser) == "alice"
