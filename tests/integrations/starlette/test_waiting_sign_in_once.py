"""Starlette and FastAPI: a sign-in waiting for its second factor completes once. The
session is a signed cookie: a copy kept from while the sign-in waited, put in another
browser after the owner finished, is refused with a new code, an unused recovery code or
a passkey, as an expired sign-in, and signs nobody in. A wrong code leaves the sign-in
waiting; a store that cannot keep or spend it fails closed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette

from integrations.starlette.starlette_support import (
    Browser,
    TestApp,
    changes_factors,
    confirm_factors,
    csrf_token,
    enrol,
    make_app,
)
from integrations.waiting_sign_in_support import WaitingSignInsDown
from stepup.integrations.starlette import Stepup
from stepup.testing import SettableClock
from stepup.testing.webauthn import SoftAuthenticator
from stepup.totp import TOTP

VERIFY = "/stepup/2fa/verify"
BEGIN = "/stepup/2fa/verify/passkey/begin"
FINISH = "/stepup/2fa/verify/passkey/finish"
EXPIRED = "Your sign-in has expired"
ORIGIN = "http://localhost"
PASSKEYS = {"passkeys_rp_id": "localhost", "passkeys_origins": (ORIGIN,)}


def _classes(flavour: str) -> dict[str, Any]:
    if flavour == "starlette":
        return {"stepup_class": Stepup, "app_class": Starlette}
    from fastapi import FastAPI

    from stepup.integrations.fastapi import Stepup as FastAPIStepup

    return {"stepup_class": FastAPIStepup, "app_class": FastAPI}


@pytest.fixture(params=["starlette", "fastapi"])
def flavour(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store() -> WaitingSignInsDown:
    return WaitingSignInsDown()


@pytest.fixture
def test_app(flavour: str, clock: SettableClock, store: WaitingSignInsDown) -> TestApp:
    return make_app(clock=clock, store=store, **_classes(flavour), **PASSKEYS)


@pytest.fixture
def opened() -> Iterator[list[Browser]]:
    browsers: list[Browser] = []
    yield browsers
    for browser in browsers:
        browser.close()


def _browser(test_app: TestApp, opened: list[Browser]) -> Browser:
    browser = test_app.browser()
    opened.append(browser)
    return browser


def _enrolled_bob(test_app: TestApp, opened: list[Browser]) -> tuple[TOTP, list[str]]:
    bob = _browser(test_app, opened)
    bob.login("bob")
    totp, codes = enrol(bob)
    bob.logout()
    test_app.clock.advance(30)  # the code that confirmed the enrolment is spent
    return totp, codes


def _waiting(test_app: TestApp, opened: list[Browser], user: str = "bob") -> Browser:
    browser = _browser(test_app, opened)
    started = browser.login(user)
    assert started.status_code == 303
    assert started.headers["location"].endswith(VERIFY)
    return browser


def _copy(test_app: TestApp, opened: list[Browser], browser: Browser) -> Browser:
    """Another browser holding the cookies ``browser`` has now (the session's among them)."""
    copy = _browser(test_app, opened)
    for name, value in browser.client.cookies.items():
        copy.client.cookies.set(name, value, domain="testserver.local")
    return copy


def _code(test_app: TestApp, totp: TOTP) -> str:
    return totp.at(test_app.clock())


def _who(browser: Browser) -> str:
    return str(browser.get("/").text.removeprefix("hello "))


def _refused_as_expired(answer: Any, browser: Browser) -> None:
    assert answer.status_code == 400, answer.text
    assert EXPIRED in answer.text
    assert _who(browser) == "stranger"


def test_a_copy_of_the_waiting_session_is_refused_a_new_code(
    test_app: TestApp, opened: list[Browser]
) -> None:
    totp, _ = _enrolled_bob(test_app, opened)
    owner = _waiting(test_app, opened)
    copy = _copy(test_app, opened, owner)
    assert owner.form(VERIFY, {"code": _code(test_app, totp)}).status_code == 303
    assert _who(owner) == "bob"
    test_app.clock.advance(30)
    _refused_as_expired(copy.form(VERIFY, {"code": _code(test_app, totp)}), copy)


def test_a_copy_of_the_waiting_session_is_refused_a_recovery_code(
    test_app: TestApp, opened: list[Browser]
) -> None:
    totp, codes = _enrolled_bob(test_app, opened)
    owner = _waiting(test_app, opened)
    copy = _copy(test_app, opened, owner)
    assert owner.form(VERIFY, {"code": _code(test_app, totp)}).status_code == 303
    _refused_as_expired(copy.form(VERIFY, {"recovery_code": codes[0]}), copy)


def test_a_recovery_code_spends_the_waiting_sign_in_too(
    test_app: TestApp, opened: list[Browser]
) -> None:
    _, codes = _enrolled_bob(test_app, opened)
    owner = _waiting(test_app, opened)
    copy = _copy(test_app, opened, owner)
    assert owner.form(VERIFY, {"recovery_code": codes[0]}).status_code == 303
    _refused_as_expired(copy.form(VERIFY, {"recovery_code": codes[1]}), copy)


def test_a_wrong_code_leaves_the_sign_in_waiting(test_app: TestApp, opened: list[Browser]) -> None:
    totp, _ = _enrolled_bob(test_app, opened)
    bob = _waiting(test_app, opened)
    wrong = f"{(int(_code(test_app, totp)) + 1) % 1_000_000:06d}"
    assert bob.form(VERIFY, {"code": wrong}).status_code == 400
    assert _who(bob) == "stranger"
    assert bob.form(VERIFY, {"code": _code(test_app, totp)}).status_code == 303
    assert _who(bob) == "bob"


def test_the_waiting_sign_in_lives_its_whole_lifetime_and_no_longer(
    test_app: TestApp, opened: list[Browser]
) -> None:
    totp, _ = _enrolled_bob(test_app, opened)
    ttl = test_app.stepup.sign_in_ttl
    late = _waiting(test_app, opened)
    test_app.clock.advance(ttl - 1)  # just younger than its lifetime: the store still holds it
    assert late.form(VERIFY, {"code": _code(test_app, totp)}).status_code == 303
    assert _who(late) == "bob"
    test_app.clock.advance(30)
    expired = _waiting(test_app, opened)
    token = csrf_token(expired.get(VERIFY).text)
    test_app.clock.advance(ttl)
    answer = expired.post(VERIFY, data={"code": _code(test_app, totp), "csrf_token": token})
    _refused_as_expired(answer, expired)


def test_a_copy_is_refused_a_passkey(test_app: TestApp, opened: list[Browser]) -> None:
    key = _with_passkey(test_app, opened)
    owner = _waiting(test_app, opened, "alice")
    copy = _copy(test_app, opened, owner)
    for browser, status in ((owner, 200), (copy, 400)):
        token = csrf_token(browser.get(VERIFY).text)
        options = _json(browser, BEGIN, {}, token)
        assert options.status_code == 200, options.text
        done = _json(browser, FINISH, {"credential": key.get(options.json())}, token)
        assert done.status_code == status, done.text
    assert done.json()["error"] == "sign_in_expired"
    assert _who(owner) == "alice"
    assert _who(copy) == "stranger"


def test_an_outage_when_the_sign_in_begins_keeps_nothing(
    test_app: TestApp, opened: list[Browser], store: WaitingSignInsDown
) -> None:
    _enrolled_bob(test_app, opened)
    bob = _browser(test_app, opened)
    store.down = True
    answer = bob.login("bob")
    store.down = False
    assert answer.status_code == 503  # the app's login view answers the outage
    assert bob.get(VERIFY).status_code == 400  # nothing waits
    assert _who(bob) == "stranger"


def test_an_outage_when_the_sign_in_completes_signs_nobody_in(
    test_app: TestApp, opened: list[Browser], store: WaitingSignInsDown
) -> None:
    totp, _ = _enrolled_bob(test_app, opened)
    bob = _waiting(test_app, opened)
    store.down = True
    answer = bob.form(VERIFY, {"code": _code(test_app, totp)})
    store.down = False
    assert answer.status_code == 503
    assert "Try again in a moment" in answer.text
    assert _who(bob) == "stranger"
    test_app.clock.advance(30)  # still waiting: the next code finishes it
    assert bob.form(VERIFY, {"code": _code(test_app, totp)}).status_code == 303
    assert _who(bob) == "bob"


def _json(browser: Browser, url: str, body: Any, token: str) -> Any:
    if changes_factors(url):
        confirm_factors(browser)
    headers = {"Content-Type": "application/json", "X-CSRF-Token": token}
    return browser.post(url, content=json.dumps(body), headers=headers)


def _with_passkey(test_app: TestApp, opened: list[Browser]) -> SoftAuthenticator:
    """alice adds a passkey (her second factor), then signs out."""
    browser = _browser(test_app, opened)
    assert browser.login("alice").status_code == 303
    key = SoftAuthenticator(origin=ORIGIN, counter=1)
    token = csrf_token(browser.get("/stepup/passkeys").text)
    options = _json(browser, "/stepup/passkeys/register/begin", {}, token)
    assert options.status_code == 200, options.text
    body = {"credential": key.create(options.json())}
    assert _json(browser, "/stepup/passkeys/register/finish", body, token).status_code == 200
    browser.logout()
    return key


@pytest.mark.parametrize("abandoned_by", ["sign-out", "a new sign-in"])
def test_an_abandoned_waiting_sign_in_is_refused_to_a_copy(
    test_app: TestApp, opened: list[Browser], abandoned_by: str
) -> None:
    """Signed out, or replaced by a new sign-in, the waiting sign-in is spent in the store
    too: a copy of the cookie kept while it waited cannot finish it later."""
    totp, _ = _enrolled_bob(test_app, opened)
    owner = _waiting(test_app, opened)
    copy = _copy(test_app, opened, owner)
    if abandoned_by == "sign-out":
        owner.logout()
    else:
        assert owner.login("bob").status_code == 303  # waits again, anew
    _refused_as_expired(copy.form(VERIFY, {"code": _code(test_app, totp)}), copy)
    if abandoned_by == "a new sign-in":
        test_app.clock.advance(30)  # the copy's code was checked (and spent) first
        assert owner.form(VERIFY, {"code": _code(test_app, totp)}).status_code == 303
        assert _who(owner) == "bob"


def test_a_sign_in_without_a_second_step_spends_the_waiting_one(
    test_app: TestApp, opened: list[Browser]
) -> None:
    """A new sign-in spends the waiting one also when it needs no second step
    (``begin_sign_in`` answers ``None`` and the app signs alice in): a copy taken while
    bob waited cannot finish his sign-in after alice signed in."""
    totp, _ = _enrolled_bob(test_app, opened)
    owner = _waiting(test_app, opened)  # bob waits for his code
    copy = _copy(test_app, opened, owner)
    assert owner.login("alice").status_code == 303  # no second factor: the app signs her in
    assert _who(owner) == "alice"
    assert owner.get(VERIFY).status_code == 400  # nothing waits in her session
    _refused_as_expired(copy.form(VERIFY, {"code": _code(test_app, totp)}), copy)
