"""Starlette answers as Flask and Django do: a guard that cannot decide (the store is
down) gives a browser the "try again" page (503) and a script the JSON; an admin's 2FA
removal answers a script 204; someone without full access gets the 403 at once, never a
re-authentication first."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from integrations.record_outage_support import TRY_AGAIN, ReadOutage
from integrations.starlette.starlette_support import Browser, TestApp, csrf_token, enrol, make_app
from stepup.adapters.storage.memory import MemoryStore
from stepup.testing import SettableClock


@pytest.fixture
def test_app() -> TestApp:
    return make_app(clock=SettableClock(), store=MemoryStore())


@pytest.fixture
def browsers(test_app: TestApp) -> Iterator[list[Browser]]:
    opened: list[Browser] = []
    yield opened
    for browser in opened:
        browser.close()


def test_a_guard_that_cannot_decide_shows_a_browser_the_page() -> None:
    store = ReadOutage()
    alice = make_app(clock=SettableClock(), store=store).browser()
    try:
        assert alice.login("alice").status_code == 303
        assert alice.patch_tenant(True).status_code == 200
        store.down = True
        page = alice.get("/api-key", headers={"Accept": "text/html"})
        assert page.status_code == 503
        assert page.headers["content-type"].startswith("text/html")
        assert TRY_AGAIN in page.text
        assert page.headers["retry-after"] == "5"
        script = alice.get("/api-key", headers={"Accept": "application/json"})
        assert script.status_code == 503
        assert script.json()["error"] == "reauth_unavailable"
    finally:
        alice.close()


def test_an_admin_removal_answers_a_script_204(test_app: TestApp, browsers: list[Browser]) -> None:
    alice, bob = test_app.browser(), test_app.browser()
    browsers += [alice, bob]
    alice.login("alice")
    bob.login("bob")
    enrol(bob)
    assert alice.client.post("/_test/grant", data={"method": ["pwd"]}).status_code == 204
    token = csrf_token(alice.get("/stepup/2fa/users/bob/remove").text)
    removed = alice.post(
        "/stepup/2fa/users/bob/remove",
        data={"csrf_token": token},
        headers={"Accept": "application/json"},
    )
    assert removed.status_code == 204
    assert test_app.store.get_credential("bob") is None


def test_no_full_access_is_a_403_before_any_re_authentication(
    test_app: TestApp, browsers: list[Browser]
) -> None:
    alice, bob = test_app.browser(), test_app.browser()
    browsers += [alice, bob]
    alice.login("alice")
    enrol(alice)
    assert alice.patch_tenant(True).status_code == 200
    bob.login("bob")  # bob has no full access, and no fresh grant
    for answer in (
        bob.get("/stepup/2fa/users/alice/remove"),
        bob.post("/stepup/2fa/users/alice/remove", data={"csrf_token": "x"}),
    ):
        assert answer.status_code == 403
        assert "location" not in answer.headers
    assert test_app.store.get_credential("alice") is not None
