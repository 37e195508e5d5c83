"""Starlette's two-factor pages: a pending enrolment's secret is shown again only in the
session that began it; the manual-entry line states the device's own settings; users
from a configuration file get answers, not 500s, for recovery codes; HEAD is GET
without the body (RFC 9110 section 9.3.2), never the form's POST."""

from __future__ import annotations

import re
from typing import Any

import pytest

from integrations.starlette.starlette_support import (
    Browser,
    TestApp,
    csrf_token,
    enrol,
    make_app,
)
from stepup import AsyncTwoFactor
from stepup.adapters.storage.memory import MemoryStore
from stepup.config_users import ConfigUsers
from stepup.events import RecoveryCodesRegenerated
from stepup.testing import SettableClock
from stepup.totp import TOTP

_KEY = re.compile(r'id="stepup-manual-key">([^<]+)</code>')
_DEVICE = re.compile(r'data-device-id="([^"]+)"')
_EXPIRED = "The set-up was not finished in time, or was replaced."
ENROL = "/stepup/2fa/enrol"
CONFIRM = "/stepup/2fa/confirm"
SETTINGS = "/stepup/2fa"
VERIFY = "/stepup/2fa/verify"
FILE_SECRET = "R5FMWNWXYSDC4XNLMZUX7IK2JRORGNCX"


def _key(text: str) -> str:
    found = _KEY.search(text)
    assert found is not None, text
    return found.group(1).replace(" ", "")


def _signed_in(test_app: TestApp, browsers: list[Browser], user: str) -> Browser:
    browser = test_app.browser()
    browsers.append(browser)
    assert browser.login(user).status_code == 303
    return browser


def _settings_post(browser: Browser, url: str, data: dict[str, str], **kwargs: Any) -> Any:
    token = csrf_token(browser.get(SETTINGS).text)
    return browser.post(url, data={"csrf_token": token, **data}, **kwargs)


def _head(browser: Browser, url: str, token: str, **fields: str) -> Any:
    """HEAD with a form body holding the page's token: what a POST would send."""
    body = "&".join(f"{k}={v}" for k, v in {"csrf_token": token, **fields}.items())
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    return browser.client.request("HEAD", url, content=body.encode(), headers=headers)


# the pending secret stays with its session -------------------------------------


def test_another_session_never_receives_the_pending_secret(
    test_app: TestApp, browsers: list[Browser], clock: SettableClock
) -> None:
    mine = _signed_in(test_app, browsers, "bob")
    other = _signed_in(test_app, browsers, "bob")
    page_a = _settings_post(mine, ENROL, {})
    key_a = _key(page_a.text)
    clock.advance(60)
    assert _key(_settings_post(mine, ENROL, {}).text) == key_a  # a reload: the same secret
    key_b = _key(_settings_post(other, ENROL, {}).text)
    assert key_b != key_a
    clock.advance(30)
    refused = mine.post(
        CONFIRM, data={"csrf_token": csrf_token(page_a.text), "code": TOTP(key_a).at(clock())}
    )
    assert refused.status_code == 400
    assert _EXPIRED in refused.text
    assert key_b not in refused.text.replace(" ", "")
    assert test_app.store.get_credential("bob").confirmed is False
    key_c = _key(_settings_post(mine, ENROL, {}).text)  # a reload begins anew
    assert key_c not in (key_a, key_b)


def test_a_wrong_code_shows_this_sessions_secret_again(
    test_app: TestApp, browsers: list[Browser], clock: SettableClock
) -> None:
    mine = _signed_in(test_app, browsers, "bob")
    page = _settings_post(mine, ENROL, {})
    key_a = _key(page.text)
    token = csrf_token(page.text)
    wrong = mine.post(CONFIRM, data={"csrf_token": token, "code": "000000"})
    assert wrong.status_code == 400
    assert _key(wrong.text) == key_a
    done = mine.post(CONFIRM, data={"csrf_token": token, "code": TOTP(key_a).at(clock())})
    assert done.status_code == 200
    assert test_app.store.get_credential("bob").confirmed is True


def test_another_session_never_receives_the_device_being_added(
    test_app: TestApp, browsers: list[Browser], clock: SettableClock
) -> None:
    mine = _signed_in(test_app, browsers, "bob")
    other = _signed_in(test_app, browsers, "bob")
    enrol(mine)
    clock.advance(30)
    added = _settings_post(
        mine, "/stepup/2fa/devices/add", {"name": "Tablet"}, follow_redirects=True
    )
    assert added.status_code == 200, added.text
    key_a = _key(added.text)
    key_b = _key(
        _settings_post(
            other, "/stepup/2fa/devices/add", {"name": "Tablet"}, follow_redirects=True
        ).text
    )
    assert key_b != key_a
    clock.advance(30)
    code = TOTP(key_a).at(clock())
    refused = _settings_post(mine, "/stepup/2fa/devices/confirm", {"code": code})
    assert refused.status_code == 400
    assert _EXPIRED in refused.text
    assert key_b not in refused.text.replace(" ", "")
    assert len(_DEVICE.findall(mine.get(SETTINGS).text)) == 1
    again = _settings_post(other, "/stepup/2fa/devices/confirm", {"code": "000000"})
    assert again.status_code == 400
    assert _key(again.text) == key_b


# the manual-entry line is the device's own -------------------------------------


def test_the_page_states_an_algorithm_other_than_sha1(browsers: list[Browser]) -> None:
    clock, store = SettableClock(), MemoryStore()
    two_factor = AsyncTwoFactor(store, issuer="Acme", clock=clock, algorithm="SHA256")
    test_app = make_app(clock=clock, store=store, two_factor=two_factor)
    bob = _signed_in(test_app, browsers, "bob")
    page = _settings_post(bob, ENROL, {}).text
    assert "(6 digits, every 30 seconds, algorithm SHA256):" in page


def test_an_added_device_states_its_own_period(
    test_app: TestApp, browsers: list[Browser], clock: SettableClock
) -> None:
    bob = _signed_in(test_app, browsers, "bob")
    enrol(bob)
    test_app.stepup.two_factor.period = 60  # the app's setting changed since
    test_app.stepup.two_factor.digits = 8
    page = _settings_post(
        bob, "/stepup/2fa/devices/add", {"name": "Tablet"}, follow_redirects=True
    ).text
    # The device steps with the first one: the page says what its Key URI says.
    assert "(8 digits, every 30 seconds):" in page


# users from a configuration file -------------------------------------------------


@pytest.fixture
def file_app() -> TestApp:
    clock, store = SettableClock(), MemoryStore()
    users = ConfigUsers.from_mapping({"users": {"bob": {"otp_secret": FILE_SECRET}}})
    two_factor = AsyncTwoFactor(store, issuer="Acme", clock=clock, config_users=users)
    return make_app(clock=clock, store=store, two_factor=two_factor)


def test_a_recovery_code_at_sign_in_asks_for_the_code(
    file_app: TestApp, browsers: list[Browser]
) -> None:
    bob = file_app.browser()
    browsers.append(bob)
    assert bob.login("bob").status_code == 303
    token = csrf_token(bob.get(VERIFY).text)
    recovery = "aaaa-bbbb-cccc-dddd-eeee-ffff"
    answer = bob.post(VERIFY, data={"csrf_token": token, "recovery_code": recovery})
    assert answer.status_code == 400
    assert "Enter the code from your authenticator app." in answer.text
    assert bob.get("/").text == "hello stranger"
    token = csrf_token(answer.text)
    code = TOTP(FILE_SECRET).at(file_app.clock())
    assert bob.post(VERIFY, data={"csrf_token": token, "code": code}).status_code == 303


def test_regenerating_recovery_codes_says_they_are_in_the_file(
    file_app: TestApp, browsers: list[Browser]
) -> None:
    bob = file_app.browser()
    browsers.append(bob)
    bob.login("bob")
    token = csrf_token(bob.get(VERIFY).text)
    code = TOTP(FILE_SECRET).at(file_app.clock())
    assert bob.post(VERIFY, data={"csrf_token": token, "code": code}).status_code == 303
    assert bob.post("/_test/grant", data={"method": ["pwd", "otp"]}).status_code == 204
    answer = bob.form("/stepup/2fa/recovery-codes")
    assert answer.status_code == 409
    assert "Two-factor authentication is set in the configuration file." in answer.text


# HEAD is GET without the body ------------------------------------------------------


def _same_as_get(browser: Browser, url: str, **fields: str) -> None:
    got = browser.get(url)
    assert got.status_code == 200, got.text
    head = _head(browser, url, csrf_token(got.text), **fields)
    assert head.status_code == got.status_code
    assert head.content == b""


def test_head_of_the_sign_in_step_signs_nobody_in(
    test_app: TestApp, browsers: list[Browser]
) -> None:
    bob = _signed_in(test_app, browsers, "bob")
    totp, _ = enrol(bob)
    bob.logout()
    assert bob.login("bob").status_code == 303
    test_app.clock.advance(30)
    _same_as_get(bob, VERIFY, code=totp.at(test_app.clock()))
    assert bob.get("/").text == "hello stranger"
    # The code was not spent either: the POST signs in with it.
    token = csrf_token(bob.get(VERIFY).text)
    done = bob.post(VERIFY, data={"csrf_token": token, "code": totp.at(test_app.clock())})
    assert done.status_code == 303
    assert bob.get("/").text == "hello bob"


def test_head_regenerates_no_recovery_codes(test_app: TestApp, browsers: list[Browser]) -> None:
    bob = _signed_in(test_app, browsers, "bob")
    enrol(bob)
    before = test_app.store.get_credential("bob").recovery_hashes
    assert bob.post("/_test/grant", data={"method": ["pwd", "otp"]}).status_code == 204
    _same_as_get(bob, "/stepup/2fa/recovery-codes")
    assert test_app.store.get_credential("bob").recovery_hashes == before
    assert not [e for e in test_app.events if isinstance(e, RecoveryCodesRegenerated)]


def test_head_removes_no_two_factor(test_app: TestApp, browsers: list[Browser]) -> None:
    alice = _signed_in(test_app, browsers, "alice")
    bob = _signed_in(test_app, browsers, "bob")
    enrol(alice)
    enrol(bob)
    assert alice.post("/_test/grant", data={"method": ["pwd", "otp"]}).status_code == 204
    _same_as_get(alice, "/stepup/2fa/remove")
    _same_as_get(alice, "/stepup/2fa/users/bob/remove")
    assert test_app.store.get_credential("alice").confirmed is True
    assert test_app.store.get_credential("bob").confirmed is True
