"""Starlette: a client that goes away in the middle of a passkey endpoint's JSON body
gets the 400 ``malformed`` (nothing read, nothing changed), as the tenant endpoint
answers its ``invalid_json``, not a 500 from Starlette's ``ClientDisconnect``."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from integrations.starlette.starlette_support import (
    Browser,
    TestApp,
    confirm_factors,
    csrf_token,
    make_app,
)
from integrations.starlette.test_passkeys import OPTIONS
from stepup.adapters.storage.memory import MemoryStore
from stepup.testing import SettableClock


@pytest.fixture
def test_app(clock: SettableClock) -> TestApp:
    return make_app(clock=clock, store=MemoryStore(), **OPTIONS)


def _post_then_go(browser: Browser, path: str, first: bytes) -> tuple[int, bytes]:
    """POST JSON to ``path`` straight into the ASGI app: ``first`` with more to come, then
    the client's ``http.disconnect``; answers (status, body)."""
    token = csrf_token(browser.get("/stepup/passkeys").text)
    cookie = "; ".join(f"{name}={value}" for name, value in browser.client.cookies.items())
    headers = [
        (b"host", b"testserver"),
        (b"content-type", b"application/json"),
        (b"accept", b"application/json"),
        (b"x-csrf-token", token.encode()),
        (b"cookie", cookie.encode()),
    ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("testclient", 50000),
        "server": ("testserver", 80),
    }
    messages = [{"type": "http.request", "body": first, "more_body": True}]
    answer: dict[str, Any] = {"status": 0, "body": b""}

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        elif message["type"] == "http.response.body":
            answer["body"] += message.get("body", b"")

    asyncio.run(browser.test_app.app(scope, receive, send))
    return answer["status"], answer["body"]


@pytest.mark.parametrize(
    "path",
    ["/stepup/reauth/passkey/begin", "/stepup/passkeys/register/finish"],
)
def test_a_client_gone_mid_body_is_the_400_malformed(alice: Browser, path: str) -> None:
    confirm_factors(alice)  # register/finish is guarded: the body is read after the grant
    status, body = _post_then_go(alice, path, b'{"action": "api_key.re')
    assert status == 400, body
    assert json.loads(body)["error"] == "malformed"
    assert "Laptop" not in alice.get("/stepup/passkeys").text
