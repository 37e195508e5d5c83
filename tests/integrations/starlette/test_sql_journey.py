"""One whole journey on the async SQLite store, so nothing in a request blocks the loop
and everything the views write survives in the database."""

from __future__ import annotations

from pathlib import Path

from integrations.starlette.starlette_support import PASSWORDS, enrol, make_app, next_of
from stepup.adapters.storage.sql import AsyncSQLStore
from stepup.testing import SettableClock


def test_journey_on_sqlite(tmp_path: Path, clock: SettableClock) -> None:
    store = AsyncSQLStore.sqlite(tmp_path / "stepup.sqlite3")
    test_app = make_app(clock=clock, store=store, setup=store.create_schema, teardown=store.aclose)
    # One browser (one event loop for the store's connections); users take turns in it.
    browser = test_app.browser()
    try:
        browser.login("bob")
        assert browser.get("/api-key").status_code == 200
        assert browser.patch_tenant(True).status_code == 403
        browser.logout()

        browser.login("alice")
        assert browser.patch_tenant(True).status_code == 200
        denied = browser.get("/api-key")
        assert denied.status_code == 303
        location = denied.headers["location"]
        assert browser.reauth(location, "wrong").status_code == 400
        assert browser.reauth(location, PASSWORDS["alice"]).headers["location"] == next_of(location)
        assert browser.get("/api-key").text == "the key"
        clock.advance(6 * 3600)
        assert browser.get("/api-key").status_code == 303

        totp, _ = enrol(browser)
        confirming = totp.at(clock())
        browser.logout()
        assert browser.login("alice").headers["location"] == "/stepup/2fa/verify"
        assert browser.form("/stepup/2fa/verify", {"code": confirming}).status_code == 400
        clock.advance(30)
        assert browser.form("/stepup/2fa/verify", {"code": totp.at(clock())}).status_code == 303

        asked = browser.get("/stepup/2fa/remove")
        assert browser.reauth(asked.headers["location"], PASSWORDS["alice"]).status_code == 303
        assert browser.form("/stepup/2fa/remove").status_code == 303
        browser.logout()
        assert browser.login("alice").headers["location"] == "/"
    finally:
        browser.close()
