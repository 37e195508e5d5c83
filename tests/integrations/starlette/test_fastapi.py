"""FastAPI: the same Stepup with dependencies; the journeys through FastAPI's TestClient.

(No ``from __future__ import annotations`` here: FastAPI must see the real ``Annotated``
objects, which name a local ``stepup``.)
"""

from typing import Annotated, Any

from fastapi import Depends, FastAPI

from integrations.starlette.starlette_support import (
    PASSWORDS,
    Browser,
    TestApp,
    enrol,
    make_app,
    next_of,
)
from stepup.adapters.storage.memory import MemoryStore
from stepup.integrations.fastapi import Stepup
from stepup.reauth import Allowed
from stepup.testing import SettableClock

SIX_HOURS = 6 * 3600


def workspace_context(kind: str) -> dict[str, str]:
    """A context dependency: FastAPI hands it the path parameter."""
    return {"workspace_type": kind}


def fastapi_app(clock: SettableClock) -> TestApp:
    test_app = make_app(clock=clock, store=MemoryStore(), stepup_class=Stepup, app_class=FastAPI)
    app, stepup = test_app.app, test_app.stepup
    assert isinstance(app, FastAPI)
    assert isinstance(stepup, Stepup)

    @app.get("/fa/key")
    async def read_key(
        allowed: Annotated[Allowed, Depends(stepup.require_reauth("api_key.read"))],
    ) -> dict[str, Any]:
        return {"key": "the key", "reason": allowed.reason.value}

    production_check = stepup.require_reauth("workspace.delete", context=workspace_context)

    @app.delete("/fa/workspaces/{kind}")
    async def delete_workspace(
        kind: str, allowed: Annotated[Allowed, Depends(production_check)]
    ) -> dict[str, Any]:
        return {"deleted": kind, "reason": allowed.reason.value}

    return test_app


def test_fastapi_password_journey(clock: SettableClock) -> None:
    test_app = fastapi_app(clock)
    alice, bob, api = test_app.browser(), test_app.browser(), test_app.browser()
    try:
        assert alice.login("alice").status_code == 303
        assert bob.login("bob").status_code == 303
        assert alice.get("/fa/key").json() == {"key": "the key", "reason": "flag_off"}

        assert bob.patch_tenant(True).status_code == 403
        assert alice.patch_tenant(True).status_code == 200

        browser = alice.get("/fa/key", headers={"accept": "text/html"})
        assert browser.status_code == 303
        location = browser.headers["location"]
        assert next_of(location) == "/fa/key"

        as_json = alice.get("/fa/key", headers={"accept": "application/json"})
        assert as_json.status_code == 401
        assert as_json.json()["methods"] == ["pwd"]

        bearer = api.get("/fa/key", headers={"authorization": "Bearer alice-token"})
        assert bearer.status_code == 401
        assert 'error="insufficient_user_authentication"' in bearer.headers["www-authenticate"]
        assert f'max_age="{SIX_HOURS}"' in bearer.headers["www-authenticate"]

        assert alice.reauth(location, "wrong").status_code == 400
        back = alice.reauth(location, PASSWORDS["alice"])
        assert back.headers["location"] == "/fa/key"
        assert alice.get("/fa/key").json()["reason"] == "fresh_grant"

        clock.advance(SIX_HOURS - 1)
        assert alice.get("/fa/key").status_code == 200
        clock.advance(1)
        assert alice.get("/fa/key").status_code == 303
    finally:
        for browser in (alice, bob, api):
            browser.close()


def test_context_dependency_gets_path_parameters(clock: SettableClock) -> None:
    test_app = fastapi_app(clock)
    alice = test_app.browser()
    try:
        alice.login("alice")
        assert alice.patch_tenant(True).status_code == 200
        sandbox = alice.client.delete("/fa/workspaces/sandbox")
        assert sandbox.json() == {"deleted": "sandbox", "reason": "not_sensitive"}
        full = alice.client.delete("/fa/workspaces/full", headers={"accept": "application/json"})
        assert full.status_code == 401
        assert full.json()["action"] == "workspace.delete"
    finally:
        alice.close()


def test_fastapi_two_factor_journey(clock: SettableClock) -> None:
    test_app = fastapi_app(clock)
    alice = test_app.browser()
    try:
        alice.login("alice")
        totp, _ = enrol(alice)
        confirming = totp.at(clock())
        alice.logout()
        assert alice.login("alice").headers["location"] == "/stepup/2fa/verify"
        assert alice.form("/stepup/2fa/verify", {"code": confirming}).status_code == 400
        clock.advance(30)
        assert alice.form("/stepup/2fa/verify", {"code": totp.at(clock())}).status_code == 303
        assert alice.get("/").text == "hello alice"
    finally:
        alice.close()


def test_openapi_still_builds(clock: SettableClock) -> None:
    browser: Browser = fastapi_app(clock).browser()
    try:
        schema = browser.get("/openapi.json").json()
        assert "/fa/key" in schema["paths"]
        parameters = schema["paths"]["/fa/workspaces/{kind}"]["delete"]["parameters"]
        assert [p["name"] for p in parameters] == ["kind"]
    finally:
        browser.close()
