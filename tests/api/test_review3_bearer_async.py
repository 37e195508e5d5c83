"""Flask's ``bearer_required`` on an ``async def`` view: the view is awaited once the
token allows it (it was called and its coroutine handed to Flask, a 500 for every
allowed request), and a refused request still never reaches it. Django's async views:
tests/integrations/django/test_review3_bearer_async.py."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from flask import Flask, g

from api.tokens_support import LOW_ACR_CHALLENGE, T0, guard, parse_challenge, sign
from stepup.integrations.flask.bearer import bearer_required
from stepup.integrations.marks import actions_of
from stepup.testing import SettableClock
from stepup.tokens import AccessToken


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(T0)


def _app(clock: SettableClock, reached: list[str], looked_up: list[str]) -> Flask:
    app = Flask(__name__)

    def lookup(name: str) -> dict[str, str]:
        looked_up.append(name)
        return {}

    @app.delete("/workspaces/<name>")
    @bearer_required(guard(clock), "workspace.delete", context=lookup, scope="api:write")
    async def delete(name: str) -> dict[str, str]:
        await asyncio.sleep(0)  # a real coroutine, suspended once
        token: AccessToken = g.stepup_token
        reached.append(name)
        return {"deleted": name, "by": token.subject}

    assert actions_of(delete) == ("workspace.delete",)
    assert asyncio.iscoroutinefunction(delete)
    return app


def test_an_allowed_request_runs_the_async_view(clock: SettableClock) -> None:
    reached: list[str] = []
    looked_up: list[str] = []
    client = _app(clock, reached, looked_up).test_client()
    token = sign(scope="api:write")
    answer = client.delete("/workspaces/prod", headers={"Authorization": f"Bearer {token}"})
    assert (answer.status_code, answer.json) == (200, {"deleted": "prod", "by": "alice"})
    assert (reached, looked_up) == (["prod"], ["prod"])


def test_a_refused_request_never_reaches_the_async_view(clock: SettableClock) -> None:
    reached: list[str] = []
    looked_up: list[str] = []
    client = _app(clock, reached, looked_up).test_client()

    def send(token: str | None) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return client.delete("/workspaces/prod", headers=headers)

    weak = send(sign(acr="urn:pwd", amr=["pwd"], scope="api:write"))
    assert (weak.status_code, weak.headers["WWW-Authenticate"]) == (401, LOW_ACR_CHALLENGE)
    stale = send(sign(auth_time=T0 - 301, scope="api:write"))
    assert (stale.status_code, parse_challenge(stale.headers["WWW-Authenticate"])[1]) == (
        401,
        {
            "error": "insufficient_user_authentication",
            "error_description": "A more recent authentication is required",
            "acr_values": "urn:mfa",
            "max_age": "300",
        },
    )
    unscoped = send(sign())
    assert unscoped.status_code == 403
    invalid = send(sign(aud="https://other", scope="api:write"))
    assert invalid.status_code == 401
    assert invalid.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')
    nobody = send(None)
    assert nobody.status_code == 401
    assert parse_challenge(nobody.headers["WWW-Authenticate"])[0] == "Bearer"
    assert reached == []
    assert looked_up == ["prod", "prod", "prod"]  # only once the token was valid


def test_a_sync_view_stays_sync(clock: SettableClock) -> None:
    app = Flask(__name__)

    @app.get("/workspaces")
    @bearer_required(guard(clock), "workspace.read")
    def workspaces() -> dict[str, str]:
        return {"by": g.stepup_token.subject}

    assert not asyncio.iscoroutinefunction(workspaces)
    answer = app.test_client().get("/workspaces", headers={"Authorization": f"Bearer {sign()}"})
    assert (answer.status_code, answer.json) == (200, {"by": "alice"})
