"""The isolation contract's sign-out check with Starlette's TestClient (an httpx client):
a copy of the session taken before signing out is replayed after it. A sign-out that
clears the session cookie but never calls ``stepup.sign_out`` leaves the grant alive
for the copy, and the check says so."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from integrations.starlette.starlette_support import PASSWORDS, Browser, TestApp, make_app
from stepup.adapters.storage.memory import MemoryStore
from stepup.testing import SettableClock
from stepup.testing.isolation import check_grant_isolation


def _routes(stepup: Any) -> list[Any]:
    async def forgetful_logout(request: Request) -> Response:  # the bug: no stepup.sign_out
        request.session.clear()
        return RedirectResponse("/", 303)

    return [Route("/logout-forgets-stepup", forgetful_logout, methods=["POST"])]


@pytest.fixture
def browsers(clock: SettableClock) -> Iterator[tuple[TestApp, list[Browser]]]:
    test_app = make_app(clock=clock, store=MemoryStore(), extra_routes=_routes)
    opened: list[Browser] = []
    try:
        admin = test_app.browser()
        opened.append(admin)
        admin.login("alice")
        assert admin.patch_tenant(True).status_code == 200
        yield test_app, opened
    finally:
        for browser in opened:
            browser.close()


def _contract(test_app: TestApp, opened: list[Browser], sign_out_path: str) -> None:
    def sign_in(user: str) -> Browser:
        browser = test_app.browser()
        opened.append(browser)
        assert browser.login(user).status_code == 303
        browser.user = user  # type: ignore[attr-defined]
        return browser

    def reauthenticate(browser: Browser) -> None:
        refused = browser.get("/api-key")
        browser.reauth(refused.headers["location"], PASSWORDS[browser.user])  # type: ignore[attr-defined]

    check_grant_isolation(
        sign_in=sign_in,
        reauthenticate=reauthenticate,
        allowed=lambda browser: browser.get("/api-key").status_code == 200,
        users=("alice", "bob"),
        sign_in_again=lambda browser, user: browser.login(user),
        sign_out=lambda browser: browser.post(sign_out_path),
    )


def test_a_sign_out_that_revokes_the_grant_passes(
    browsers: tuple[TestApp, list[Browser]],
) -> None:
    _contract(*browsers, "/logout")


def test_a_sign_out_that_forgets_stepup_is_caught(
    browsers: tuple[TestApp, list[Browser]],
) -> None:
    with pytest.raises(AssertionError, match="did not revoke the session's grant"):
        _contract(*browsers, "/logout-forgets-stepup")
