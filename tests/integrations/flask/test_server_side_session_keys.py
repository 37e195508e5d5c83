"""With sessions kept on the server (Flask-Session), the cookie holds only the session's
key: stepup renewing its own id inside the session left the key as it was, so a copy of
the cookie taken before a re-authentication got its grant, and a key planted before the
sign-in (session fixation) was signed in with the victim. stepup now asks a session
interface that offers ``regenerate(session)`` (Flask-Session 0.6+) for a new key at every
sign-in and re-authentication: the old key opens nothing."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from flask import Flask, Request, Response
from flask.sessions import SecureCookieSession, SessionInterface

from integrations.flask.flask_support import TestApp, make_app, set_flag
from stepup.adapters.storage.memory import MemoryStore
from stepup.integrations.flask import Stepup
from stepup.testing import SettableClock


class KeyedSession(SecureCookieSession):
    def __init__(self, initial: dict[str, Any], key: str) -> None:
        super().__init__(initial)
        self.key = key


class ServerSessions(SessionInterface):
    """Flask-Session in a few lines: the sessions in a dict keyed by the cookie's value,
    and its ``regenerate(session)``, which drops the old key and gives the session a new
    one."""

    def __init__(self) -> None:
        self.kept: dict[str, dict[str, Any]] = {}

    def open_session(self, app: Flask, request: Request) -> KeyedSession:
        key = request.cookies.get(self.get_cookie_name(app), "")
        if key in self.kept:
            return KeyedSession(dict(self.kept[key]), key)
        return KeyedSession({}, secrets.token_urlsafe(16))

    def save_session(self, app: Flask, session: Any, response: Response) -> None:
        name = self.get_cookie_name(app)
        if not session:
            self.kept.pop(session.key, None)
            if session.modified:
                response.delete_cookie(name)
            return
        self.kept[session.key] = dict(session)
        response.set_cookie(name, session.key, httponly=True)

    def regenerate(self, session: KeyedSession) -> None:
        if session:
            self.kept.pop(session.key, None)
            session.key = secrets.token_urlsafe(16)
            session.modified = True


@pytest.fixture
def sessions() -> ServerSessions:
    return ServerSessions()


@pytest.fixture
def server_app(mode: str, clock: SettableClock, sessions: ServerSessions) -> TestApp:
    def keep_sessions_on_the_server(app: Flask, stepup: Stepup) -> None:
        app.session_interface = sessions

    test_app = make_app(mode, clock=clock, store=MemoryStore(), setup=keep_sessions_on_the_server)
    admin = test_app.client()
    admin.login("alice")
    assert set_flag(admin).status_code == 200
    return test_app


def _key(client: Any) -> str:
    cookie = client.get_cookie("session")
    assert cookie is not None
    return str(cookie.value)


def test_a_copy_of_the_key_from_before_the_reauthentication_gets_no_grant(
    server_app: TestApp,
) -> None:
    bob = server_app.client()
    assert bob.login("bob").status_code == 303
    before = _key(bob.client)
    refused = bob.get("/api-key")
    assert refused.status_code == 303
    assert bob.reauth(refused.headers["Location"], "battery staple").status_code == 303
    assert _key(bob.client) != before
    assert bob.get("/api-key").status_code == 200

    thief = server_app.app.test_client()
    thief.set_cookie("session", before)
    assert thief.get("/api-key").status_code != 200
    assert thief.get("/home").get_data(as_text=True) == "home of nobody"


def test_a_key_planted_before_the_sign_in_is_not_signed_in(
    server_app: TestApp, sessions: ServerSessions
) -> None:
    sessions.kept["planted"] = {"visited": True}  # the attacker's session, before sign-in
    victim = server_app.client()
    victim.client.set_cookie("session", "planted")
    assert victim.login("bob").status_code == 303
    assert _key(victim.client) != "planted"
    assert victim.get("/home").get_data(as_text=True) == "home of bob"

    attacker = server_app.app.test_client()
    attacker.set_cookie("session", "planted")
    assert attacker.get("/home").get_data(as_text=True) == "home of nobody"
    assert "planted" not in sessions.kept
