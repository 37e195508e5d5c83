"""Flask (both sign-in modes): a sign-in waiting for its second factor completes once.
The session is a signed cookie: a copy kept from while the sign-in waited, put in another
browser after the owner finished, is refused with a new code, an unused recovery code or
a passkey, as an expired sign-in, and signs nobody in. A wrong code leaves the sign-in
waiting; a store that cannot keep or spend it fails closed."""

from __future__ import annotations

import json

import pytest
from flask import Flask, request

from integrations.flask.flask_support import (
    CHEAP,
    Browser,
    TestApp,
    User,
    changes_factors,
    confirm_factors,
    make_app,
)
from integrations.waiting_sign_in_support import WaitingSignInsDown
from stepup.adapters.idp.password import hash_password
from stepup.adapters.storage.memory import MemoryStore
from stepup.integrations.flask import Stepup
from stepup.testing import SettableClock
from stepup.testing.webauthn import SoftAuthenticator

VERIFY = "/stepup/2fa/verify"
BEGIN = "/stepup/2fa/verify/passkey/begin"
FINISH = "/stepup/2fa/verify/passkey/finish"
EXPIRED = "Your sign-in has expired"
ORIGIN = "http://localhost"
PASSKEYS = {"STEPUP_PASSKEYS_RP_ID": "localhost", "STEPUP_PASSKEYS_ORIGINS": [ORIGIN]}


def _enrolled_bob(test_app: TestApp) -> tuple[str, list[str]]:
    bob = test_app.client()
    bob.login("bob")
    secret, codes = bob.enrol()
    bob.post("/logout")
    test_app.clock.advance(30)  # the code that confirmed the enrolment is spent
    return secret, codes


def _waiting(test_app: TestApp, user_id: str = "bob") -> Browser:
    browser = test_app.client()
    started = browser.login(user_id)
    assert started.status_code == 303
    assert started.headers["Location"] == VERIFY
    return browser


def _copy(test_app: TestApp, browser: Browser) -> Browser:
    """Another browser holding the session cookie ``browser`` has now."""
    cookie = browser.client.get_cookie("session")
    assert cookie is not None
    copy = test_app.client()
    copy.client.set_cookie("session", cookie.value)
    return copy


def _who(browser: Browser) -> str:
    return browser.get("/home").get_data(as_text=True).removeprefix("home of ")


def _refused_as_expired(answer: object, browser: Browser) -> None:
    assert answer.status_code == 400  # type: ignore[attr-defined]
    assert EXPIRED in answer.get_data(as_text=True)  # type: ignore[attr-defined]
    assert _who(browser) == "nobody"


def test_a_copy_of_the_waiting_session_is_refused_a_new_code(test_app: TestApp) -> None:
    secret, _ = _enrolled_bob(test_app)
    owner = _waiting(test_app)
    copy = _copy(test_app, owner)
    done = owner.form(VERIFY, {"code": test_app.totp_code(secret)}, page=VERIFY)
    assert done.status_code == 303
    assert _who(owner) == "bob"
    test_app.clock.advance(30)
    replayed = copy.form(VERIFY, {"code": test_app.totp_code(secret)}, page=VERIFY)
    _refused_as_expired(replayed, copy)


def test_a_copy_of_the_waiting_session_is_refused_a_recovery_code(test_app: TestApp) -> None:
    secret, codes = _enrolled_bob(test_app)
    owner = _waiting(test_app)
    copy = _copy(test_app, owner)
    assert owner.form(VERIFY, {"code": test_app.totp_code(secret)}, page=VERIFY).status_code == 303
    replayed = copy.form(VERIFY, {"recovery_code": codes[0]}, page=VERIFY)
    _refused_as_expired(replayed, copy)


def test_a_recovery_code_spends_the_waiting_sign_in_too(test_app: TestApp) -> None:
    _, codes = _enrolled_bob(test_app)
    owner = _waiting(test_app)
    copy = _copy(test_app, owner)
    assert owner.form(VERIFY, {"recovery_code": codes[0]}, page=VERIFY).status_code == 303
    replayed = copy.form(VERIFY, {"recovery_code": codes[1]}, page=VERIFY)
    _refused_as_expired(replayed, copy)


def test_a_wrong_code_leaves_the_sign_in_waiting(test_app: TestApp) -> None:
    secret, _ = _enrolled_bob(test_app)
    bob = _waiting(test_app)
    wrong = f"{(int(test_app.totp_code(secret)) + 1) % 1_000_000:06d}"
    refused = bob.form(VERIFY, {"code": wrong}, page=VERIFY)
    assert refused.status_code == 400
    assert _who(bob) == "nobody"
    assert bob.form(VERIFY, {"code": test_app.totp_code(secret)}, page=VERIFY).status_code == 303
    assert _who(bob) == "bob"


def test_the_waiting_sign_in_lives_its_whole_lifetime_and_no_longer(test_app: TestApp) -> None:
    secret, _ = _enrolled_bob(test_app)
    ttl = test_app.app.config["STEPUP_TWO_FACTOR_LOGIN_TTL"]
    late = _waiting(test_app)
    test_app.clock.advance(ttl - 1)  # just younger than its lifetime: the store still holds it
    assert late.form(VERIFY, {"code": test_app.totp_code(secret)}, page=VERIFY).status_code == 303
    assert _who(late) == "bob"
    test_app.clock.advance(30)
    expired = _waiting(test_app)
    token = expired.csrf(VERIFY)
    test_app.clock.advance(ttl)
    answer = expired.post(VERIFY, data={"code": test_app.totp_code(secret), "csrf_token": token})
    _refused_as_expired(answer, expired)


def test_a_copy_is_refused_a_passkey(mode: str) -> None:
    app = make_app(mode, clock=SettableClock(), store=WaitingSignInsDown(), config=PASSKEYS)
    key = _with_passkey(app)
    owner = _waiting(app, "alice")
    copy = _copy(app, owner)
    for browser, status in ((owner, 200), (copy, 400)):
        csrf = browser.csrf(VERIFY)
        options = _json(browser, BEGIN, {}, csrf)
        assert options.status_code == 200
        done = _json(browser, FINISH, {"credential": key.get(options.get_json())}, csrf)
        assert done.status_code == status, done.get_data(as_text=True)
    assert done.get_json()["error"] == "sign_in_expired"
    assert _who(owner) == "alice"
    assert _who(copy) == "nobody"


def test_an_outage_when_the_sign_in_begins_keeps_nothing(mode: str) -> None:
    store = WaitingSignInsDown()
    app = make_app(mode, clock=SettableClock(), store=store)
    _enrolled_bob(app)
    bob = app.client()
    store.down = True
    answer = bob.login("bob")
    store.down = False
    assert answer.status_code == 503  # stepup's "try again" page, for the app's view too
    assert bob.get(VERIFY).status_code == 400  # nothing waits
    assert _who(bob) == "nobody"


def test_an_outage_when_the_sign_in_completes_signs_nobody_in(mode: str) -> None:
    store = WaitingSignInsDown()
    app = make_app(mode, clock=SettableClock(), store=store)
    secret, _ = _enrolled_bob(app)
    bob = _waiting(app)
    store.down = True
    answer = bob.form(VERIFY, {"code": app.totp_code(secret)}, page=VERIFY)
    store.down = False
    assert answer.status_code == 503
    assert "Try again in a moment" in answer.get_data(as_text=True)
    assert _who(bob) == "nobody"
    app.clock.advance(30)  # still waiting: the next code finishes it
    assert bob.form(VERIFY, {"code": app.totp_code(secret)}, page=VERIFY).status_code == 303
    assert _who(bob) == "bob"


def _json(browser: Browser, url: str, body: object, csrf: str) -> object:
    if changes_factors(url):
        confirm_factors(browser)
    headers = {"X-CSRF-Token": csrf}
    return browser.post(
        url, data=json.dumps(body), content_type="application/json", headers=headers
    )


def _with_passkey(app: TestApp) -> SoftAuthenticator:
    """alice adds a passkey (her second factor), then signs out."""
    browser = app.client()
    assert browser.login("alice").status_code == 303
    key = SoftAuthenticator(origin=ORIGIN, counter=1)
    csrf = browser.csrf("/stepup/passkeys")
    options = _json(browser, "/stepup/passkeys/register/begin", {}, csrf)
    credential = {"credential": key.create(options.get_json())}  # type: ignore[attr-defined]
    done = _json(browser, "/stepup/passkeys/register/finish", credential, csrf)
    assert done.status_code == 200  # type: ignore[attr-defined]
    browser.post("/logout")
    return key


@pytest.mark.parametrize("abandoned_by", ["sign-out", "a new sign-in"])
def test_an_abandoned_waiting_sign_in_is_refused_to_a_copy(
    test_app: TestApp, abandoned_by: str
) -> None:
    """Signed out, or replaced by a new sign-in, the waiting sign-in is spent in the store
    too: a copy of the cookie kept while it waited cannot finish it later."""
    secret, _ = _enrolled_bob(test_app)
    owner = _waiting(test_app)
    copy = _copy(test_app, owner)
    if abandoned_by == "sign-out":
        owner.post("/logout")
    else:
        assert owner.login("bob").status_code == 303  # waits again, anew
    replayed = copy.form(VERIFY, {"code": test_app.totp_code(secret)}, page=VERIFY)
    _refused_as_expired(replayed, copy)
    if abandoned_by == "a new sign-in":
        test_app.clock.advance(30)  # the copy's code was checked (and spent) first
        done = owner.form(VERIFY, {"code": test_app.totp_code(secret)}, page=VERIFY)
        assert done.status_code == 303
        assert _who(owner) == "bob"


@pytest.mark.parametrize("abandoned_by", ["sign-out", "a new sign-in"])
def test_an_abandoned_sign_in_of_an_integer_user_id_is_spent_too(abandoned_by: str) -> None:
    """An app may give ``begin_two_factor`` its integer id as it is: the store keeps the
    waiting sign-in under its text, and the sign-out and a new sign-in spend it there."""

    def setup(app: Flask, stepup: Stepup) -> None:
        @app.post("/login-int")
        def login_int() -> object:
            return stepup.begin_two_factor(int(request.form["username"]), next="/home")

    app = make_app("subject_loader", clock=SettableClock(), store=MemoryStore(), setup=setup)
    app.users["7"] = User("7", "pw seven", hash_password("pw seven", hasher=CHEAP), False, False)
    seven = app.client()
    assert seven.login("7").status_code == 303
    secret, _ = seven.enrol()
    seven.post("/logout")
    app.clock.advance(30)
    owner = app.client()
    started = owner.post("/login-int", data={"username": "7"})
    assert (started.status_code, started.headers["Location"]) == (303, VERIFY)
    copy = _copy(app, owner)
    if abandoned_by == "sign-out":
        owner.post("/logout")
    else:
        assert owner.post("/login-int", data={"username": "7"}).status_code == 303
    _refused_as_expired(copy.form(VERIFY, {"code": app.totp_code(secret)}, page=VERIFY), copy)


def test_a_remember_me_cookie_restoring_another_user_leaves_the_sign_in_waiting() -> None:
    """alice (no second factor) was remembered; her browser session ended but the cookie
    stayed. bob types his password: Flask-Login restoring alice from the cookie on the
    code page's load is no sign-in by a person, and bob's waiting sign-in stands."""

    def setup(app: Flask, stepup: Stepup) -> None:
        @app.post("/remember-alice")
        def remember_alice() -> str:
            from flask_login import login_user

            login_user(app.login_manager._user_callback("alice"), remember=True)  # type: ignore[attr-defined]
            return "ok"

    app = make_app("flask_login", clock=SettableClock(), store=MemoryStore(), setup=setup)
    secret, _ = _enrolled_bob(app)
    browser = app.client()
    assert browser.post("/remember-alice").status_code == 200
    assert browser.client.get_cookie("remember_token") is not None
    browser.client.delete_cookie("session")  # the browser session ended; the cookie stays
    assert browser.login("bob").headers["Location"] == VERIFY
    done = browser.form(VERIFY, {"code": app.totp_code(secret)}, page=VERIFY)
    assert done.status_code == 303
    assert _who(browser) == "bob"
