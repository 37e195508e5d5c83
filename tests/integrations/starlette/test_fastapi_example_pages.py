"""docs/examples/fastapi_app.py: signing in lands on a page, and there is a way out
(the guide's step 3 asks for a new session)."""

from __future__ import annotations

from starlette.testclient import TestClient

from integrations.starlette.starlette_support import CHEAP, csrf_token
from integrations.starlette.test_docs import load_example, sign_in
from stepup.adapters.storage.memory import MemoryStore
from stepup.testing import SettableClock


def _app() -> object:
    example = load_example("fastapi_app")
    return example.create_app(store=MemoryStore(), clock=SettableClock(), hasher=CHEAP)


def test_signing_in_lands_on_the_home_page() -> None:
    with TestClient(_app(), base_url="https://testserver", follow_redirects=False) as alice:  # type: ignore[arg-type]
        assert "/login" in alice.get("/").text  # signed out: a way in
        signed_in = sign_in(alice, "alice")
        assert signed_in.status_code == 303
        home = alice.get(signed_in.headers["location"])
        assert home.status_code == 200
        assert "Hello alice" in home.text
        assert 'action="/logout"' in home.text


def test_sign_out_needs_the_csrf_token_and_ends_the_session() -> None:
    with TestClient(_app(), base_url="https://testserver", follow_redirects=False) as alice:  # type: ignore[arg-type]
        sign_in(alice, "alice")
        assert alice.get("/api/key").status_code == 200
        assert alice.post("/logout").status_code == 403  # no token: refused
        assert alice.get("/api/key").status_code == 200  # still signed in
        token = csrf_token(alice.get("/").text)
        out = alice.post("/logout", data={"csrf_token": token})
        assert out.status_code == 303
        assert out.headers["location"] == "/"
        assert alice.get("/api/key").status_code == 401  # signed out
        assert "Hello" not in alice.get("/").text
