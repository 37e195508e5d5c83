"""Flask with Flask-Login: a sign-in that skips stepup's second step (a view that calls
``login_user`` without ``begin_two_factor``: another extension's login view, a password
reset that signs the user in) is held for it when the user has a second factor, as
``begin_two_factor`` would have held it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, redirect, request

from integrations.flask.flask_support import Browser, TestApp, make_app, set_flag
from integrations.outage_support import StoreDown
from stepup.adapters.storage.memory import MemoryStore
from stepup.errors import ConfigurationError
from stepup.integrations.flask import Stepup
from stepup.reauth import SignInCounted, SignInNotCounted, SignInReason
from stepup.testing import SettableClock

VERIFY = "/stepup/2fa/verify"


def _elsewhere_view(app: Flask, stepup: Stepup) -> None:
    @app.post("/login/elsewhere")
    def sign_in_elsewhere() -> Any:
        from flask_login import login_user

        user = app.login_manager._user_callback(request.form["username"])  # type: ignore[attr-defined]
        login_user(user, remember=request.form.get("remember") == "yes")
        return redirect(request.form.get("to", "/api-key"), 302)

    @app.before_request
    def remote_user() -> None:
        """Header SSO, as a proxy in front of the app sets it: sign in on every
        request while nobody is signed in."""
        from flask_login import current_user, login_user

        name = request.headers.get("X-Remote-User")
        if name and not current_user.is_authenticated:
            login_user(app.login_manager._user_callback(name))  # type: ignore[attr-defined]

    @stepup.subject_loader
    def bearer_first() -> Any:
        """The guide's pattern: API credentials first, then the session's user."""
        from flask_login import current_user

        from stepup.subject import Subject
        from stepup.twofactor import Channel

        if request.headers.get("Authorization", "").startswith("Bearer "):
            return Subject("alice", "api-token", channel=Channel.API)
        if not current_user.is_authenticated:
            return None
        return Subject(current_user.get_id(), stepup.session_id())


def _app(store: Any = None, **config: Any) -> TestApp:
    return make_app(
        "flask_login",
        store=store if store is not None else MemoryStore(),
        clock=SettableClock(),
        setup=_elsewhere_view,
        config=config,
    )


def _enrolled(test_app: TestApp, name: str = "bob") -> tuple[Browser, str]:
    browser = test_app.client()
    assert browser.login(name).status_code == 303
    secret, _ = browser.enrol()
    browser.client.post("/logout")
    return browser, secret


def _elsewhere(browser: Browser, name: str) -> Any:
    return browser.client.post("/login/elsewhere", data={"username": name})


def _home(browser: Browser) -> str:
    return str(browser.client.get("/home").get_data(as_text=True))


def test_an_enrolled_users_other_sign_in_is_held_for_the_code() -> None:
    test_app = _app()
    bob, secret = _enrolled(test_app)
    answer = _elsewhere(bob, "bob")
    assert (answer.status_code, answer.headers["Location"]) == (303, VERIFY)
    assert answer.headers["Cache-Control"] == "no-store"
    assert _home(bob) == "home of nobody"
    test_app.clock.advance(30)
    done = bob.form(VERIFY, {"code": test_app.totp_code(secret)}, page=VERIFY)
    assert (done.status_code, done.headers["Location"]) == (303, "/api-key")
    assert _home(bob) == "home of bob"


def test_a_user_without_a_second_factor_signs_in_as_before() -> None:
    bob = _app().client()
    answer = _elsewhere(bob, "bob")
    assert (answer.status_code, answer.headers["Location"]) == (302, "/api-key")
    assert _home(bob) == "home of bob"


def test_the_second_step_after_begin_two_factor_is_not_asked_twice() -> None:
    test_app = _app()
    bob, secret = _enrolled(test_app)
    assert bob.login("bob").headers["Location"] == VERIFY
    test_app.clock.advance(30)
    done = bob.form(VERIFY, {"code": test_app.totp_code(secret)}, page=VERIFY)
    assert (done.status_code, done.headers["Location"]) == (303, "/home")
    assert _home(bob) == "home of bob"


def test_turned_off_the_other_sign_in_goes_through() -> None:
    test_app = _app(STEPUP_SECOND_STEP_FOR_EVERY_SIGN_IN=False)
    bob, _ = _enrolled(test_app)
    assert _elsewhere(bob, "bob").status_code == 302
    assert _home(bob) == "home of bob"


@pytest.mark.parametrize("value", ["False", 0, None])
def test_the_setting_must_be_a_bool(value: object) -> None:
    with pytest.raises(ConfigurationError, match="STEPUP_SECOND_STEP_FOR_EVERY_SIGN_IN"):
        _app(STEPUP_SECOND_STEP_FOR_EVERY_SIGN_IN=value)


def test_a_store_that_cannot_answer_signs_nobody_in() -> None:
    store = StoreDown()
    bob = _app(store).client()
    store.down = True
    assert _elsewhere(bob, "bob").status_code == 503
    store.down = False
    assert _home(bob) == "home of nobody"


def test_a_held_sign_in_never_counts_as_a_re_authentication(tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text("sign_in_counts = true\n")
    test_app = _app(STEPUP_POLICY_FILE=str(policy))
    bob, secret = _enrolled(test_app)
    alice = test_app.client()
    assert alice.login("alice").status_code == 303
    set_flag(alice)
    assert _elsewhere(bob, "bob").headers["Location"] == VERIFY
    test_app.clock.advance(30)
    assert bob.form(VERIFY, {"code": test_app.totp_code(secret)}, page=VERIFY).status_code == 303
    assert bob.client.get("/api-key").status_code == 303  # asked to re-authenticate


def _recording_view(outcomes: list[Any]) -> Callable[[Flask, Stepup], None]:
    def setup(app: Flask, stepup: Stepup) -> None:
        _elsewhere_view(app, stepup)

        @app.post("/login/recorded")
        def sign_in_and_record() -> Any:
            """The guide's own login view: ``login_user``, then ``record_sign_in``."""
            from flask_login import login_user

            name = request.form.get("username")
            if name:
                login_user(app.login_manager._user_callback(name))  # type: ignore[attr-defined]
            outcomes.append(stepup.record_sign_in(("pwd",)))
            return redirect("/api-key", 302)

    return setup


@pytest.mark.parametrize("counts", [False, True], ids=["policy-off", "sign-in-counts"])
def test_recording_a_held_sign_in_answers_second_step(tmp_path: Path, counts: bool) -> None:
    """After its own ``login_user`` the app calls ``record_sign_in`` (as the guide
    says). A user with a second factor is held for it, so nobody is signed in: the
    answer is ``second_step`` (no ConfigurationError), nothing is granted, and the
    browser still goes to the code step. Anybody else not signed in still raises."""
    policy = tmp_path / "policy.toml"
    policy.write_text(f"sign_in_counts = {str(counts).lower()}\n")
    outcomes: list[Any] = []
    test_app = make_app(
        "flask_login",
        store=MemoryStore(),
        clock=SettableClock(),
        setup=_recording_view(outcomes),
        config={"STEPUP_POLICY_FILE": str(policy)},
    )
    bob, _ = _enrolled(test_app)
    answer = bob.client.post("/login/recorded", data={"username": "bob"})
    assert (answer.status_code, answer.headers["Location"]) == (303, VERIFY)
    assert outcomes == [SignInNotCounted(SignInReason.SECOND_STEP)]
    assert _home(bob) == "home of nobody"
    alice = test_app.client()  # no second factor: recorded as before
    assert alice.client.post("/login/recorded", data={"username": "alice"}).status_code == 302
    assert isinstance(outcomes[1], SignInCounted if counts else SignInNotCounted)
    with pytest.raises(ConfigurationError, match="signed in first"):
        test_app.client().client.post("/login/recorded")


def test_a_bearer_header_on_the_request_does_not_skip_the_hold() -> None:
    """Who signed in is the user Flask-Login reports, on the web: a bearer token on the
    same request (the app's loader reads it first) changes nothing."""
    test_app = _app()
    bob, _ = _enrolled(test_app)
    answer = bob.client.post(
        "/login/elsewhere", data={"username": "bob"}, headers={"Authorization": "Bearer x"}
    )
    assert (answer.status_code, answer.headers["Location"]) == (303, VERIFY)
    assert _home(bob) == "home of nobody"


def test_an_sso_hook_signing_in_on_every_request_can_finish() -> None:
    test_app = _app()
    bob, secret = _enrolled(test_app)
    sso = {"X-Remote-User": "bob"}
    first = bob.client.get("/home", headers=sso)
    assert (first.status_code, first.headers["Location"]) == (303, VERIFY)
    page = bob.client.get(VERIFY, headers=sso)
    assert page.status_code == 200
    assert 'name="code"' in page.get_data(as_text=True)
    test_app.clock.advance(30)
    token = bob.csrf(VERIFY)
    done = bob.client.post(
        VERIFY, data={"code": test_app.totp_code(secret), "csrf_token": token}, headers=sso
    )
    assert (done.status_code, done.headers["Location"]) == (303, "/home")
    assert bob.client.get("/home", headers=sso).get_data(as_text=True) == "home of bob"


def test_remember_me_is_kept_for_after_the_second_step() -> None:
    test_app = _app()
    bob, secret = _enrolled(test_app)
    held = bob.client.post("/login/elsewhere", data={"username": "bob", "remember": "yes"})
    assert held.headers["Location"] == VERIFY
    assert "remember_token=" not in " ".join(held.headers.getlist("Set-Cookie"))
    test_app.clock.advance(30)
    done = bob.form(VERIFY, {"code": test_app.totp_code(secret)}, page=VERIFY)
    assert done.status_code == 303
    assert bob.client.get_cookie("remember_token") is not None


def test_an_absolute_redirect_to_this_site_is_kept_as_its_path() -> None:
    test_app = _app()
    bob, secret = _enrolled(test_app)
    data = {"username": "bob", "to": "http://localhost/api-key?x=1"}
    assert bob.client.post("/login/elsewhere", data=data).headers["Location"] == VERIFY
    test_app.clock.advance(30)
    done = bob.form(VERIFY, {"code": test_app.totp_code(secret)}, page=VERIFY)
    assert done.headers["Location"] == "/api-key?x=1"


def test_a_remember_me_cookie_from_before_enrolment_asks_for_the_code() -> None:
    """Flask-Login's remember-me cookie is a way in too (``user_loaded_from_cookie``, not
    ``user_logged_in``): one issued before the user enrolled no longer skips the code."""
    test_app = _app()
    bob = test_app.client()
    assert _elsewhere_remembered(bob).status_code == 302  # no second factor yet
    cookie = bob.client.get_cookie("remember_token")
    assert cookie is not None
    secret, _ = bob.enrol()
    stranger = test_app.client()  # another browser, with a copy of the cookie only
    stranger.client.set_cookie("remember_token", cookie.value)
    answer = stranger.client.get("/home")
    assert (answer.status_code, answer.headers["Location"]) == (303, VERIFY)
    assert _home(stranger) == "home of nobody"
    test_app.clock.advance(30)
    done = stranger.form(VERIFY, {"code": test_app.totp_code(secret)}, page=VERIFY)
    assert (done.status_code, done.headers["Location"]) == (303, "/home")
    assert _home(stranger) == "home of bob"
    assert stranger.client.get_cookie("remember_token") is not None  # remembered again


def _elsewhere_remembered(browser: Browser) -> Any:
    return browser.client.post("/login/elsewhere", data={"username": "bob", "remember": "yes"})


def test_the_same_user_signed_in_again_stays_signed_in() -> None:
    test_app = _app()
    bob, secret = _enrolled(test_app)
    assert bob.login("bob").headers["Location"] == VERIFY
    test_app.clock.advance(30)
    assert bob.form(VERIFY, {"code": test_app.totp_code(secret)}, page=VERIFY).status_code == 303
    assert _elsewhere(bob, "bob").status_code == 302  # login_user(bob) again
    assert _home(bob) == "home of bob"


def test_another_user_signed_in_over_a_session_is_held() -> None:
    test_app = _app()
    _enrolled(test_app)
    shared = test_app.client()
    assert shared.login("alice").status_code == 303
    assert _elsewhere(shared, "bob").headers["Location"] == VERIFY
    assert _home(shared) == "home of nobody"


def test_a_sign_in_dropped_by_session_protection_no_longer_stands() -> None:
    """Flask-Login's strong session protection signs a replayed cookie out without
    ``user_logged_out``: someone who knows the password but not the code, signing in
    again in that session, is asked for the code."""
    test_app = _app()
    bob, secret = _enrolled(test_app)
    assert bob.login("bob").headers["Location"] == VERIFY
    test_app.clock.advance(30)
    assert bob.form(VERIFY, {"code": test_app.totp_code(secret)}, page=VERIFY).status_code == 303
    assert _home(bob) == "home of bob"
    test_app.app.login_manager.session_protection = "strong"  # type: ignore[attr-defined]
    elsewhere = {"User-Agent": "another machine"}
    assert bob.client.get("/home", headers=elsewhere).get_data(as_text=True) == "home of nobody"
    answer = bob.client.post("/login/elsewhere", data={"username": "bob"}, headers=elsewhere)
    assert (answer.status_code, answer.headers["Location"]) == (303, VERIFY)
    assert bob.client.get("/home", headers=elsewhere).get_data(as_text=True) == "home of nobody"


def _stable_ids(app: Flask, stepup: Stepup) -> None:
    """An app that gives stepup another id than Flask-Login's ``get_id()`` (as a
    Flask-Security-Too app gives its primary key, since ``fs_uniquifier`` changes at every
    password change): its own subject_loader and login_completer."""
    from flask_login import current_user, login_user

    from stepup.subject import Subject

    _elsewhere_view(app, stepup)

    @stepup.subject_loader
    def stable_subject() -> Any:
        if not current_user.is_authenticated:
            return None
        return Subject(f"stable-{current_user.get_id()}", stepup.session_id())

    @stepup.login_completer
    def complete(user_id: str, remember: bool) -> None:
        user = app.login_manager._user_callback(user_id.removeprefix("stable-"))  # type: ignore[attr-defined]
        login_user(user, remember=remember)


def test_the_apps_own_id_for_the_user_is_held_too() -> None:
    """The second factor is enrolled under the app's id (``stable-bob``), not Flask-Login's
    (``bob``): a sign-in through another view is held all the same, and completes."""
    test_app = make_app(
        "flask_login", store=MemoryStore(), clock=SettableClock(), setup=_stable_ids
    )
    bob = test_app.client()
    assert _elsewhere(bob, "bob").status_code == 302
    secret, _ = bob.enrol()
    assert test_app.app.extensions["stepup"].second_factors("stable-bob")
    bob.client.post("/logout")
    answer = _elsewhere(bob, "bob")
    assert (answer.status_code, answer.headers["Location"]) == (303, VERIFY)
    assert _home(bob) == "home of nobody"
    test_app.clock.advance(30)
    done = bob.form(VERIFY, {"code": test_app.totp_code(secret)}, page=VERIFY)
    assert (done.status_code, done.headers["Location"]) == (303, "/api-key")
    assert _home(bob) == "home of stable-bob"


def _refusing_loader(app: Flask, stepup: Stepup) -> None:
    """An app whose subject loader refuses a header it does not like, and a login view
    that swallows whatever ``login_user`` raises."""
    from flask_login import current_user, login_user

    from stepup.subject import Subject

    @stepup.subject_loader
    def refusing() -> Any:
        if request.headers.get("X-Tenant", "acme") != "acme":
            raise ValueError("unknown tenant")
        if not current_user.is_authenticated:
            return None
        return Subject(current_user.get_id(), stepup.session_id())

    @app.post("/login/catching")
    def sign_in_catching() -> Any:
        user = app.login_manager._user_callback(request.form["username"])  # type: ignore[attr-defined]
        try:
            login_user(user)
        except Exception:
            return redirect("/home?failed", 302)
        return redirect("/home", 302)


def test_an_error_while_holding_signs_nobody_in() -> None:
    """Whatever stops the hold (the app's loader refusing, a malformed id), not only a
    store outage, undoes the sign-in: also when the view swallows the error."""
    test_app = make_app(
        "flask_login", store=MemoryStore(), clock=SettableClock(), setup=_refusing_loader
    )
    bob = test_app.client()
    assert bob.login("bob").status_code == 303
    bob.enrol()
    bob.client.post("/logout")
    answer = bob.client.post(
        "/login/catching", data={"username": "bob"}, headers={"X-Tenant": "evil"}
    )
    assert answer.status_code == 302
    assert _home(bob) == "home of nobody"
