"""Starlette under a path prefix (``root_path="/sub"``: a proxy's prefix, uvicorn's
``--root-path``): where a missing or unsafe return location falls back to is the app's
root, ``/sub/``, not ``/`` (outside the app), nor stepup's own mount: the re-auth
page's default ``next`` and its Cancel link, and ``begin_sign_in`` without ``next``."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from integrations.starlette.starlette_support import (
    PASSWORDS,
    TestApp,
    csrf_token,
    enrol,
    make_app,
)
from stepup.adapters.storage.memory import MemoryStore
from stepup.integrations.starlette import Stepup
from stepup.testing import SettableClock

_CANCEL = re.compile(r'<a class="stepup-cancel" href="([^"]*)"')
_NEXT = re.compile(r'<input type="hidden" name="next" value="([^"]*)"')


def _login_without_next(stepup: Stepup) -> list[Any]:
    async def login(request: Request) -> Response:
        user = str((await request.form())["user"])
        waiting = await stepup.begin_sign_in(request, user)
        assert waiting is not None
        return waiting

    return [Route("/login/default-next", login, methods=["POST"])]


def _app() -> TestApp:
    store = MemoryStore()
    return make_app(clock=SettableClock(), store=store, extra_routes=_login_without_next)


def _client(test_app: TestApp, user: str | None = None) -> TestClient:
    client = TestClient(test_app.app, root_path="/sub", follow_redirects=False)
    client.__enter__()
    if user is not None:
        login = {"user": user, "password": PASSWORDS[user], "next": "/sub/"}
        assert client.post("/sub/login", data=login).status_code == 303
    return client


def test_the_reauth_page_without_next() -> None:
    client = _client(_app(), "alice")
    page = client.get("/sub/stepup/reauth?action=api_key.read")
    assert page.status_code == 200
    assert set(_CANCEL.findall(page.text)) == {"/sub/"}
    assert set(_NEXT.findall(page.text)) == {"/sub/"}
    form = {"csrf_token": csrf_token(page.text), "password": PASSWORDS["alice"]}
    done = client.post("/sub/stepup/reauth?action=api_key.read", data=form)
    assert (done.status_code, done.headers["location"]) == (303, "/sub/")


def test_an_unsafe_next_and_a_foreign_referer() -> None:
    client = _client(_app(), "alice")
    page = client.get(
        "/sub/stepup/reauth?action=api_key.read&next=//evil.example/",
        headers={"Referer": "https://evil.example/page"},
    )
    assert set(_CANCEL.findall(page.text)) == {"/sub/"}
    assert set(_NEXT.findall(page.text)) == {"/sub/"}


def test_begin_sign_in_without_next() -> None:
    test_app = _app()
    bob = test_app.browser()
    assert bob.login("bob").status_code == 303
    totp, _ = enrol(bob)
    client = _client(test_app)
    waiting = client.post("/sub/login/default-next", data={"user": "bob"})
    assert (waiting.status_code, waiting.headers["location"]) == (303, "/sub/stepup/2fa/verify")
    page = client.get("/sub/stepup/2fa/verify")
    test_app.clock.advance(30)
    form = {"csrf_token": csrf_token(page.text), "code": totp.at(test_app.clock())}
    done = client.post("/sub/stepup/2fa/verify", data=form)
    assert (done.status_code, done.headers["location"]) == (303, "/sub/")
