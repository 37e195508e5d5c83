"""Flask (both sign-in modes): every sign-in in the browser spends the sign-in it had
waiting for a second factor, with or without a second step of its own: ``login_user``
of a user without a second factor (with or without
``STEPUP_SECOND_STEP_FOR_EVERY_SIGN_IN``), the app's ``note_sign_in`` without
Flask-Login, and the same user signed in again. The session is a signed cookie: without
that, a copy taken while bob waited would finish bob's sign-in after alice signed in."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from integrations.flask.flask_support import Browser, TestApp, make_app
from integrations.flask.test_waiting_sign_in_once import (
    EXPIRED,
    VERIFY,
    _copy,
    _enrolled_bob,
    _refused_as_expired,
    _waiting,
    _who,
)
from stepup.adapters.storage.memory import MemoryStore
from stepup.integrations.flask import Stepup
from stepup.testing import SettableClock


def _bob_refused_to(copy: Browser, test_app: TestApp, secret: str) -> Any:
    return copy.form(VERIFY, {"code": test_app.totp_code(secret)}, page=VERIFY)


def test_a_sign_in_without_a_second_step_spends_the_waiting_one(test_app: TestApp) -> None:
    secret, _ = _enrolled_bob(test_app)
    owner = _waiting(test_app)  # bob waits for his code
    copy = _copy(test_app, owner)
    assert owner.login("alice").status_code == 303  # no second factor: signed in
    assert _who(owner) == "alice"
    assert owner.get(VERIFY).status_code == 400  # nothing waits in her session
    _refused_as_expired(_bob_refused_to(copy, test_app, secret), copy)


def test_without_a_second_step_for_every_sign_in_login_spends_it_too() -> None:
    config = {"STEPUP_SECOND_STEP_FOR_EVERY_SIGN_IN": False}
    app = make_app("flask_login", clock=SettableClock(), store=MemoryStore(), config=config)
    secret, _ = _enrolled_bob(app)
    owner = _waiting(app)
    copy = _copy(app, owner)
    assert owner.login("alice").status_code == 303
    assert _who(owner) == "alice"
    _refused_as_expired(_bob_refused_to(copy, app, secret), copy)


def test_the_same_user_signed_in_again_spends_it() -> None:
    """alice is signed in; bob types his password in her browser and waits; alice's
    sign-in made again (a view that renews it) stands, and bob's is spent."""

    def setup(app: Flask, stepup: Stepup) -> None:
        @app.post("/again")
        def again() -> str:
            from flask_login import current_user, login_user

            login_user(current_user._get_current_object())
            return "renewed"

    app = make_app("flask_login", clock=SettableClock(), store=MemoryStore(), setup=setup)
    secret, _ = _enrolled_bob(app)
    owner = app.client()
    assert owner.login("alice").status_code == 303
    assert owner.login("bob").headers["Location"] == VERIFY
    copy = _copy(app, owner)
    assert owner.post("/again").get_data(as_text=True) == "renewed"
    assert _who(owner) == "alice"
    answer = _bob_refused_to(copy, app, secret)
    assert (answer.status_code, EXPIRED in answer.get_data(as_text=True)) == (400, True)
    assert _who(copy) == "alice"  # the copy holds alice's session, never bob's


@pytest.mark.usefixtures("mode")
def test_bob_still_finishes_his_own_waiting_sign_in(test_app: TestApp) -> None:
    secret, _ = _enrolled_bob(test_app)
    owner = _waiting(test_app)
    done = owner.form(VERIFY, {"code": test_app.totp_code(secret)}, page=VERIFY)
    assert done.status_code == 303
    assert _who(owner) == "bob"


def test_a_sign_in_spends_a_held_sign_in_of_another_user() -> None:
    """bob's ``login_user`` elsewhere was held for his code; alice (no second factor)
    signs in: bob's held sign-in is spent (only bob signed in again keeps it)."""

    def setup(app: Flask, stepup: Stepup) -> None:
        @app.post("/elsewhere")
        def elsewhere() -> str:
            from flask import request
            from flask_login import login_user

            login_user(app.login_manager._user_callback(request.form["username"]))  # type: ignore[attr-defined]
            return "signed in"

    app = make_app("flask_login", clock=SettableClock(), store=MemoryStore(), setup=setup)
    secret, _ = _enrolled_bob(app)
    owner = app.client()
    held = owner.post("/elsewhere", data={"username": "bob"})
    assert (held.status_code, held.headers["Location"]) == (303, VERIFY)
    copy = _copy(app, owner)
    assert owner.post("/elsewhere", data={"username": "alice"}).status_code == 200
    assert _who(owner) == "alice"
    _refused_as_expired(_bob_refused_to(copy, app, secret), copy)
