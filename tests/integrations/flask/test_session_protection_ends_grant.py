"""Flask-Login's session protection ("basic", its default, or "strong" with a permanent
session) keeps a session cookie used from another machine signed in but no longer fresh:
``fresh_login_required`` refuses it. ``reauth_required`` let it through all the same, on
the grant the person re-authenticated for on their own machine. The grant now ends there:
the session gets a new stepup id and the old id's grant is revoked. The machine that was
flagged may re-authenticate and keep its own grant (no loop on the re-auth page for a
person whose address or browser changed), and that grant is ended for any other machine."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask, session
from flask.testing import FlaskClient

from integrations.flask.flask_support import Browser, TestApp, fresh_grant, make_app, set_flag
from integrations.outage_support import FailingWrites
from stepup.events import GrantsRevoked
from stepup.integrations.flask import Stepup
from stepup.subject import Subject
from stepup.testing import SettableClock

HOME, ELSEWHERE, THIRD = "home machine", "another machine", "a third machine"


def _permanent_sessions(app: Flask, stepup: Stepup) -> None:
    @app.before_request
    def permanent() -> None:
        session.permanent = True


MODES = {"basic": ("basic", None), "strong, permanent": ("strong", _permanent_sessions)}


@pytest.fixture(params=list(MODES))
def protected_app(request: pytest.FixtureRequest, clock: SettableClock) -> TestApp:
    protection, setup = MODES[request.param]
    test_app = make_app(
        "flask_login",
        clock=clock,
        store=FailingWrites(),
        config={"SESSION_PROTECTION": protection},
        setup=setup,
    )
    admin = test_app.client()
    admin.login("alice")
    assert set_flag(admin).status_code == 200
    return test_app


def _on(client: FlaskClient, machine: str) -> FlaskClient:
    client.environ_base["HTTP_USER_AGENT"] = machine
    return client


def _reauthenticated(test_app: TestApp, machine: str = HOME) -> Browser:
    bob = test_app.client()
    _on(bob.client, machine)
    assert bob.login("bob").status_code == 303
    _reauth(bob)
    return bob


def _reauth(browser: Browser) -> None:
    refused = browser.get("/api-key")
    assert refused.status_code == 303
    assert browser.reauth(refused.headers["Location"], "battery staple").status_code == 303
    assert browser.get("/api-key").status_code == 200


def _stepup_id(client: FlaskClient) -> str:
    with client.session_transaction() as kept:
        sid: Any = kept["_stepup_sid"]
    assert isinstance(sid, str)
    return sid


def _copy(test_app: TestApp, of: FlaskClient, machine: str) -> FlaskClient:
    cookie = of.get_cookie("session")
    assert cookie is not None
    thief = _on(test_app.app.test_client(), machine)
    thief.set_cookie("session", cookie.value)
    return thief


def test_a_copy_used_from_another_machine_gets_no_grant(protected_app: TestApp) -> None:
    bob = _reauthenticated(protected_app)
    granted_under = _stepup_id(bob.client)
    store = protected_app.app.extensions["stepup"].store
    assert store.get_grant("bob", granted_under) is not None

    thief = _copy(protected_app, bob.client, ELSEWHERE)
    assert thief.get("/home").get_data(as_text=True) == "home of bob"  # still signed in
    refused = thief.get("/api-key")
    assert refused.status_code == 303
    assert refused.headers["Location"].startswith("/stepup/reauth?")
    assert thief.get("/api-key").status_code == 303  # on every request
    assert store.get_grant("bob", granted_under) is None  # revoked, not only unmatched
    revoked = [e for e in protected_app.events if isinstance(e, GrantsRevoked)]
    assert [(e.user_id, e.session_id) for e in revoked][-1:] == [("bob", granted_under)]


def test_the_flagged_machine_may_reauthenticate_and_keep_its_grant(
    protected_app: TestApp,
) -> None:
    bob = _reauthenticated(protected_app)
    _on(bob.client, ELSEWHERE)  # the person's address or browser changed
    _reauth(bob)  # asked once, and the re-authentication holds
    assert bob.get("/api-key").status_code == 200
    assert bob.get("/api-key").status_code == 200


def test_a_grant_the_flagged_machine_got_is_ended_for_a_third(protected_app: TestApp) -> None:
    bob = _reauthenticated(protected_app)
    _on(bob.client, ELSEWHERE)
    _reauth(bob)
    thief = _copy(protected_app, bob.client, THIRD)
    assert thief.get("/api-key").status_code == 303


def test_the_grant_ends_when_the_store_cannot_revoke_it(protected_app: TestApp) -> None:
    bob = _reauthenticated(protected_app)
    store = protected_app.app.extensions["stepup"].store
    store.broken = True  # revoke_grants fails; reads answer
    thief = _copy(protected_app, bob.client, ELSEWHERE)
    assert thief.get("/api-key").status_code == 303


def test_the_machine_that_signed_in_keeps_its_grant(protected_app: TestApp) -> None:
    bob = _reauthenticated(protected_app)
    granted_under = _stepup_id(bob.client)
    assert bob.get("/api-key").status_code == 200
    assert _stepup_id(bob.client) == granted_under
    revoked = [e for e in protected_app.events if isinstance(e, GrantsRevoked)]
    assert not [e for e in revoked if e.user_id == "bob"]


def _remember_me(app: Flask, stepup: Stepup) -> None:
    @app.post("/login/remember")
    def sign_in_remembered() -> Any:
        from flask_login import login_user

        login_user(app.login_manager._user_callback("bob"), remember=True)  # type: ignore[attr-defined]
        return "signed in"


def test_a_sign_in_from_the_remember_me_cookie_keeps_its_reauthentication(
    clock: SettableClock,
) -> None:
    """Flask-Login notes no machine for a sign-in from its remember-me cookie, so its
    session protection flags every request after it: asked once, the person's
    re-authentication holds."""
    test_app = make_app(
        "flask_login",
        clock=clock,
        store=FailingWrites(),
        config={"SESSION_PROTECTION": "basic"},
        setup=_remember_me,
    )
    admin = test_app.client()
    admin.login("alice")
    assert set_flag(admin).status_code == 200
    bob = test_app.client()
    _on(bob.client, HOME)
    assert bob.post("/login/remember").status_code == 200
    bob.client.delete_cookie("session")  # the browser closed; the remember-me cookie stays
    assert bob.get("/home").get_data(as_text=True) == "home of bob"
    _reauth(bob)
    assert bob.get("/api-key").status_code == 200
    thief = _copy(test_app, bob.client, ELSEWHERE)
    assert thief.get("/api-key").status_code == 303


def _own_subject_loader(kind: str) -> Any:
    """An app's ``subject_loader`` that reads the session before Flask-Login's session
    protection ran in the request (it runs when ``current_user`` is first loaded):
    ``"stepup id first"`` reads stepup's id, then ``current_user``; ``"session only"``
    reads Flask-Login's ``_user_id`` and never ``current_user``, which only the view
    loads, after the guard."""

    def setup(app: Flask, stepup: Stepup) -> None:
        @stepup.subject_loader
        def load_subject() -> Subject | None:
            if kind == "stepup id first":
                sid = stepup.session_id()
                from flask_login import current_user

                if not current_user.is_authenticated:
                    return None
                return Subject(str(current_user.get_id()), sid)
            user_id = session.get("_user_id")
            return Subject(user_id, stepup.session_id()) if user_id else None

        @app.get("/greeting")
        @stepup.reauth_required("api_key.read")
        def greeting() -> str:
            from flask_login import current_user

            return f"hello {current_user.get_id()}"

    return setup


@pytest.mark.parametrize("kind", ["stepup id first", "session only"])
@pytest.mark.parametrize("revocation_fails", [False, True], ids=["store fine", "writes fail"])
def test_the_grant_ends_before_an_own_subject_loader_reads_the_session(
    clock: SettableClock, kind: str, revocation_fails: bool
) -> None:
    """The guard has Flask-Login's check run before the app's loader builds the subject:
    the decision sees the renewed stepup id, whether or not the store could revoke the
    old id's grant."""
    test_app = make_app(
        "flask_login",
        clock=clock,
        store=FailingWrites(),
        config={"SESSION_PROTECTION": "basic"},
        setup=_own_subject_loader(kind),
    )
    admin = test_app.client()
    admin.login("alice")
    assert set_flag(admin).status_code == 200
    bob = test_app.client()
    _on(bob.client, HOME)
    assert bob.login("bob").status_code == 303
    refused = bob.get("/greeting")
    assert refused.status_code == 303
    assert bob.reauth(refused.headers["Location"], "battery staple").status_code == 303
    assert bob.get("/greeting").get_data(as_text=True) == "hello bob"
    granted_under = _stepup_id(bob.client)

    test_app.app.extensions["stepup"].store.broken = revocation_fails
    for _ in range(2):  # the same copy, replayed
        thief = _copy(test_app, bob.client, ELSEWHERE)
        answer = thief.get("/greeting")
        assert answer.status_code == 303
        assert answer.headers["Location"].startswith("/stepup/reauth?")
    store = test_app.app.extensions["stepup"].store
    assert (store.get_grant("bob", granted_under) is None) is not revocation_fails


def test_without_session_protection_an_own_loader_loads_no_user(clock: SettableClock) -> None:
    """With Flask-Login's session protection off, the guard loads no user the app's own
    subject loader does not ask for (Flask-Login's user loader is not called)."""
    loaded: list[str] = []

    def setup(app: Flask, stepup: Stepup) -> None:
        _own_subject_loader("session only")(app, stepup)
        load_user = app.login_manager._user_callback  # type: ignore[attr-defined]

        @app.login_manager.user_loader  # type: ignore[attr-defined]
        def counting(user_id: str) -> Any:
            loaded.append(user_id)
            return load_user(user_id)

    test_app = make_app(
        "flask_login",
        clock=clock,
        store=FailingWrites(),
        config={"SESSION_PROTECTION": None},
        setup=setup,
    )
    bob = test_app.client()
    assert bob.login("bob").status_code == 303
    fresh_grant(bob)
    loaded.clear()
    assert bob.get("/api-key").status_code == 200
    assert loaded == []
