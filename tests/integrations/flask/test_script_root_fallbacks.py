"""Flask under a path prefix (``SCRIPT_NAME=/app``): where a missing or unsafe return
location falls back to is the app's root, ``/app/``, not ``/`` (outside the app): the
re-auth page's default ``next`` and its Cancel link, and ``begin_two_factor`` without
``next``."""

from __future__ import annotations

import html
import re
from typing import Any

from flask import Flask, request

from integrations.flask.flask_support import TestApp, make_app
from stepup.adapters.storage.memory import MemoryStore
from stepup.integrations.flask import Stepup

BASE = "http://localhost/app/"
_HIDDEN = re.compile(r'<input type="hidden" name="(\w+)" value="([^"]*)"')
_CANCEL = re.compile(r'<a class="stepup-cancel" href="([^"]*)"')
_NEXT = re.compile(r'<input type="hidden" name="next" value="([^"]*)"')


def _login_without_next(app: Flask, stepup: Stepup) -> None:
    @app.post("/login/default-next")
    def login_default_next() -> Any:
        return stepup.begin_two_factor(request.form["user_id"])


def _app() -> TestApp:
    return make_app(store=MemoryStore(), setup=_login_without_next)


def _signed_in(test_app: TestApp, user: str) -> Any:
    client = test_app.app.test_client()
    password = test_app.users[user].password
    login = {"username": user, "password": password, "next": "/app/home"}
    assert client.post("/login", data=login, base_url=BASE).status_code == 303
    return client


def _fields(page: str) -> dict[str, str]:
    return {name: html.unescape(value) for name, value in _HIDDEN.findall(page)}


def test_the_reauth_page_without_next() -> None:
    client = _signed_in(_app(), "alice")
    page = client.get("/stepup/reauth?action=api_key.read", base_url=BASE)
    body = page.get_data(as_text=True)
    assert set(_CANCEL.findall(body)) == {"/app/"}
    assert set(_NEXT.findall(body)) == {"/app/"}
    form = {**_fields(body), "password": "correct horse"}
    done = client.post("/stepup/reauth/password", data=form, base_url=BASE)
    assert (done.status_code, done.headers["Location"]) == (303, "/app/")


def test_an_unsafe_next_and_a_foreign_referer() -> None:
    client = _signed_in(_app(), "alice")
    page = client.get(
        "/stepup/reauth?action=api_key.read&next=//evil.example/",
        headers={"Referer": "https://evil.example/page"},
        base_url=BASE,
    )
    body = page.get_data(as_text=True)
    assert set(_CANCEL.findall(body)) == {"/app/"}
    assert set(_NEXT.findall(body)) == {"/app/"}


def test_begin_two_factor_without_next() -> None:
    test_app = _app()
    bob = test_app.client()
    assert bob.login("bob").status_code == 303
    secret, _ = bob.enrol()
    client = test_app.app.test_client()
    waiting = client.post("/login/default-next", data={"user_id": "bob"}, base_url=BASE)
    assert waiting.status_code == 303
    assert waiting.headers["Location"] == "/app/stepup/2fa/verify"
    page = client.get("/stepup/2fa/verify", base_url=BASE).get_data(as_text=True)
    test_app.clock.advance(30)
    form = {**_fields(page), "code": test_app.totp_code(secret)}
    done = client.post("/stepup/2fa/verify", data=form, base_url=BASE)
    assert (done.status_code, done.headers["Location"]) == (303, "/app/")
