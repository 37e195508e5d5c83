"""The isolation contract's sign-out check: after signing out, neither the browser nor a
copy of its session taken before the sign-out (its cookies replayed) may still do the
guarded action. An app whose sign-out forgets stepup keeps the grant alive for the copy,
and the check says so; a sign-out the check cannot test is a ``TypeError``."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask, redirect, session
from flask.testing import FlaskClient

from integrations.flask.flask_support import MODES, TestApp, make_app, set_flag
from stepup.adapters.storage.memory import MemoryStore
from stepup.testing import SettableClock
from stepup.testing.isolation import check_grant_isolation, copy_cookies


@pytest.fixture(params=MODES)
def test_app(request: pytest.FixtureRequest, clock: SettableClock) -> TestApp:
    test_app = make_app(str(request.param), clock=clock, store=MemoryStore())
    admin = test_app.client()
    admin.login("alice")
    assert set_flag(admin).status_code == 200
    return test_app


def _client(test_app: TestApp, user: str) -> FlaskClient:
    client = test_app.app.test_client()
    password = test_app.users[user].password
    assert client.post("/login", data={"username": user, "password": password}).status_code == 303
    client.user = user  # type: ignore[attr-defined]
    return client


def _reauthenticate(test_app: TestApp, client: FlaskClient) -> None:
    browser = test_app.client()
    browser.client = client
    refused = client.get("/api-key")
    password = test_app.users[client.user].password  # type: ignore[attr-defined]
    assert browser.reauth(refused.headers["Location"], password).status_code == 303
    assert client.get("/api-key").status_code == 200


def _contract(test_app: TestApp, **extra: Any) -> None:
    def sign_in_again(client: FlaskClient, user: str) -> None:
        client.post("/login", data={"username": user, "password": test_app.users[user].password})

    check_grant_isolation(
        sign_in=lambda user: _client(test_app, user),
        reauthenticate=lambda client: _reauthenticate(test_app, client),
        allowed=lambda client: client.get("/api-key").status_code == 200,
        users=("alice", "bob"),
        **{"sign_in_again": sign_in_again, **extra},
    )


def _forget_stepup_on_sign_out(app: Flask) -> None:
    """The bug: the sign-out forgets the session but never tells stepup (nor Flask-Login)."""

    def logout() -> Any:
        session.clear()
        return redirect("/public", 303)

    app.view_functions["logout"] = logout


def test_a_sign_out_that_revokes_the_grant_passes(test_app: TestApp) -> None:
    _contract(test_app, sign_out=lambda client: client.post("/logout"))
    _contract(test_app, sign_out=lambda client: client.post("/logout"), sign_in_again=None)


def test_a_sign_out_that_forgets_stepup_is_caught(test_app: TestApp) -> None:
    _forget_stepup_on_sign_out(test_app.app)
    with pytest.raises(AssertionError, match="a copy of the session taken before the sign-out"):
        _contract(test_app, sign_out=lambda client: client.post("/logout"))
    # The leak it names is real: the old cookies still do the guarded action.
    victim = _client(test_app, "alice")
    _reauthenticate(test_app, victim)
    thief = _client(test_app, "bob")
    copy_cookies(victim, thief)
    victim.post("/logout")
    assert victim.get("/api-key").status_code != 200
    assert thief.get("/api-key").status_code == 200


def test_a_sign_out_that_does_nothing_is_caught_without_sign_in_again(test_app: TestApp) -> None:
    with pytest.raises(AssertionError, match="the same browser still did the guarded action"):
        _contract(test_app, sign_out=lambda client: None, sign_in_again=None)


def test_a_sign_out_the_check_cannot_test_is_a_type_error(test_app: TestApp) -> None:
    class Wrapped:  # a client of the app's own the kit cannot copy
        def __init__(self, user: str) -> None:
            self.inner = _client(test_app, user)

    with pytest.raises(TypeError, match="cannot copy the cookies of a Wrapped"):
        check_grant_isolation(
            sign_in=Wrapped,
            reauthenticate=lambda wrapped: None,
            allowed=lambda wrapped: wrapped.inner.get("/api-key").status_code == 200,
            users=("alice", "bob"),
            sign_out=lambda wrapped: wrapped.inner.post("/logout"),
        )
    with pytest.raises(TypeError, match="`sign_out` must be a function"):
        _contract(test_app, sign_out="/logout")
    # With its own copy_session, the same client is checked (and the bug caught).
    _forget_stepup_on_sign_out(test_app.app)

    def copy_session(source: Wrapped, target: Wrapped) -> None:
        copy_cookies(source.inner, target.inner)

    with pytest.raises(AssertionError, match="a copy of the session taken before the sign-out"):
        check_grant_isolation(
            sign_in=Wrapped,
            reauthenticate=lambda wrapped: _reauthenticate(test_app, wrapped.inner),
            allowed=lambda wrapped: wrapped.inner.get("/api-key").status_code == 200,
            users=("alice", "bob"),
            sign_out=lambda wrapped: wrapped.inner.post("/logout"),
            copy_session=copy_session,
        )
