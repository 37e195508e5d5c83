"""A demo on loopback has one address, ``http://localhost:PORT``: what ``stepup demo``
prints, what its SSO redirect URIs and its passkey origin are built on. A request under
127.0.0.1 (or [::1]), which a browser keeps other cookies for, is sent to the same path
at localhost (303 for GET and HEAD); any other method is refused with a page that says
where the demo is. Opened at 127.0.0.1, an SSO sign-in used to come back to the other
address and sign nobody in, without a word."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from starlette.testclient import TestClient

from e2e.demo_server import START
from e2e.journeys import ADMIN
from e2e.test_demo_app import csrf, sign_in
from stepup.adapters.idp.password import CHEAPEST
from stepup.demo import DemoSettings, create_app
from stepup.demo.sso import OIDC_CALLBACK
from stepup.testing import SettableClock

LOCALHOST = "http://localhost:8123"


def _client(tmp_path: Path, base_url: str, client_url: str, **settings: Any) -> TestClient:
    demo = DemoSettings(db_path=tmp_path / "demo.sqlite3", base_url=base_url, **settings)
    hasher = PasswordHasher.from_parameters(CHEAPEST)
    app = create_app(demo, clock=SettableClock(START), hasher=hasher)
    return TestClient(app, base_url=client_url, follow_redirects=False)


@pytest.fixture
def at_localhost(tmp_path: Path) -> Iterator[TestClient]:
    """The demo as ``stepup demo`` makes it on 127.0.0.1, asked under 127.0.0.1."""
    with _client(tmp_path, LOCALHOST, "http://127.0.0.1:8123") as client:
        yield client


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("host", ["127.0.0.1:8123", "[::1]:8123", "127.0.0.2:8123"])
def test_a_read_under_a_loopback_ip_goes_to_the_same_path_at_localhost(
    at_localhost: TestClient, method: str, host: str
) -> None:
    answer = at_localhost.request(
        method, "/stepup/reauth?next=%2Fapi-keys%2F1%2Fcopy", headers={"Host": host}
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == f"{LOCALHOST}/stepup/reauth?next=%2Fapi-keys%2F1%2Fcopy"
    assert "set-cookie" not in answer.headers  # nothing is kept for the other address


def test_the_sso_callback_under_127_0_0_1_goes_to_localhost(at_localhost: TestClient) -> None:
    """Where the authorization code landed before, on a page that signed nobody in."""
    answer = at_localhost.get(f"{OIDC_CALLBACK}?code=abc&state=xyz")
    assert answer.status_code == 303
    assert answer.headers["location"] == f"{LOCALHOST}{OIDC_CALLBACK}?code=abc&state=xyz"


@pytest.mark.parametrize("method", ["POST", "PATCH", "PUT", "DELETE"])
def test_a_change_under_127_0_0_1_is_refused_with_a_page_naming_the_address(
    at_localhost: TestClient, method: str
) -> None:
    answer = at_localhost.request(
        method, "/login", data={"email": ADMIN}, headers={"Accept": "text/html"}
    )
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("text/html")
    assert "<h1>Open the demo at its address</h1>" in answer.text
    assert f"This demo is at {LOCALHOST}/." in answer.text
    assert "so it was not carried out" in answer.text
    assert f'<a href="{LOCALHOST}/">Go to {LOCALHOST}/</a>' in answer.text


def test_a_script_under_127_0_0_1_gets_the_same_words_as_text(at_localhost: TestClient) -> None:
    answer = at_localhost.patch(
        "/stepup/tenants/acme",
        json={},
        headers={"Accept": "application/vnd.api+json", "Content-Type": "application/vnd.api+json"},
    )
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("text/plain")
    assert answer.text.startswith(f"This demo is at {LOCALHOST}/.")


def test_at_localhost_the_demo_answers_and_signs_in(tmp_path: Path) -> None:
    with _client(tmp_path, LOCALHOST, LOCALHOST) as client:
        page = client.get("/login")
        assert page.status_code == 200
        assert sign_in(client, ADMIN).headers["location"] == "/account"
        assert client.get("/account").status_code == 200


@pytest.mark.parametrize(
    ("base_url", "client_url"),
    [
        ("http://127.0.0.2:8123", "http://127.0.0.2:8123"),  # another loopback address
        ("http://192.0.2.7:8123", "http://192.0.2.7:8123"),  # a network address
        ("http://127.0.0.1:8123", "http://127.0.0.1:8123"),  # built so by hand (the tests)
    ],
)
def test_a_demo_elsewhere_keeps_its_own_address(
    tmp_path: Path, base_url: str, client_url: str
) -> None:
    with _client(tmp_path, base_url, client_url) as client:
        assert client.get("/login").status_code == 200
        page = client.get("/login")
        data = {"csrf_token": csrf(page.text), "email": ADMIN, "password": "wrong"}
        assert client.post("/login", data=data).status_code == 401  # served, not refused


@pytest.mark.parametrize(
    ("target", "path"),
    [
        (b"@evil.example/x", "/@evil.example/x"),
        (b".evil.example/", "/.evil.example/"),
        (b"http://127.0.0.1:8123/x", "/http://127.0.0.1:8123/x"),
    ],
)
def test_a_request_target_not_starting_with_a_slash_stays_at_localhost(
    at_localhost: TestClient, target: bytes, path: str
) -> None:
    """A raw client (never a browser) may send a request-target without its leading
    "/": glued to the address, "@evil.example/x" named another host."""
    import asyncio
    from urllib.parse import urlsplit

    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": target.decode(),
        "raw_path": target,
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8123")],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8123),
    }
    asyncio.run(at_localhost.app(scope, receive, send))  # type: ignore[arg-type]
    start = sent[0]
    assert start["status"] == 303
    location = dict(start["headers"])[b"location"].decode()  # type: ignore[call-overload]
    assert urlsplit(location).netloc == urlsplit(LOCALHOST).netloc
    assert location == LOCALHOST + path
