"""The getting-started pages: their example apps work as shown, and the pages show them."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from starlette.testclient import TestClient

from integrations.starlette.starlette_support import CHEAP, csrf_token
from integrations.tenant_answers import only_error
from stepup.adapters.storage.memory import MemoryStore
from stepup.testing import SettableClock
from stepup.totp import TOTP

DOCS = Path(__file__).resolve().parents[3] / "docs"
SEED_BODY = {
    "data": {"type": "tenant", "attributes": {"feature_flags": {"sensitive_actions_reauth": True}}}
}
JSONAPI = {"Content-Type": "application/vnd.api+json"}


def load_example(name: str) -> ModuleType:
    path = DOCS / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"docs_example_{name}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("framework", ["starlette", "fastapi"])
def test_page_includes_the_example_verbatim(framework: str) -> None:
    page = (DOCS / f"getting-started-{framework}.md").read_text()
    marker = f"<!-- literalinclude: examples/{framework}_app.py -->\n```python\n"
    assert marker in page
    shown = page.split(marker, 1)[1].split("\n```\n", 1)[0] + "\n"
    assert shown == (DOCS / "examples" / f"{framework}_app.py").read_text()


def sign_in(client: TestClient, user: str) -> Any:
    token = csrf_token(client.get("/login").text)
    data = {"username": user, "password": f"{user} password", "next": "/", "csrf_token": token}
    return client.post("/login", data=data)


def reauthenticate(client: TestClient, location: str, password: str) -> Any:
    page = client.get(location)
    return client.post(location, data={"csrf_token": csrf_token(page.text), "password": password})


def patch_flag_as_admin(client: TestClient, password: str) -> None:
    """Changing tenant settings needs a fresh re-authentication, flag on or off."""
    stale = client.patch("/stepup/tenants/acme", json=SEED_BODY, headers=JSONAPI)
    assert stale.status_code == 401
    asked = only_error(stale.json())["meta"]
    assert asked["action"] == "tenant.settings.update"
    assert reauthenticate(client, asked["reauth_url"], password).status_code == 303
    assert client.patch("/stepup/tenants/acme", json=SEED_BODY, headers=JSONAPI).status_code == 200


def test_starlette_example_journey() -> None:
    clock = SettableClock()
    app = load_example("starlette_app").create_app(store=MemoryStore(), clock=clock, hasher=CHEAP)
    with (
        TestClient(app, base_url="https://testserver", follow_redirects=False) as alice,
        TestClient(app, base_url="https://testserver", follow_redirects=False) as bob,
    ):
        assert alice.get("/api-key").headers["location"] == "/login?next=%2Fapi-key"
        assert sign_in(alice, "alice").status_code == 303
        assert sign_in(bob, "bob").status_code == 303
        assert bob.get("/api-key").status_code == 200  # flag off

        assert bob.patch("/stepup/tenants/acme", json=SEED_BODY, headers=JSONAPI).status_code == 403
        patch_flag_as_admin(alice, "alice password")

        location = bob.get("/api-key").headers["location"]
        done = reauthenticate(bob, location, "bob password")
        assert done.headers["location"] == "/api-key"
        assert "sk_example_123" in bob.get("/api-key").text

        # Two-factor: enrol, then the next sign-in asks for the code.
        begin = {"csrf_token": csrf_token(alice.get("/stepup/2fa").text)}
        enrolment = alice.post("/stepup/2fa/enrol", data=begin)
        secret = re.search(r'id="stepup-manual-key">([A-Z2-7 ]+)<', enrolment.text)
        assert secret is not None
        totp = TOTP(secret.group(1).replace(" ", ""))
        confirm = {"csrf_token": csrf_token(enrolment.text), "code": totp.at(clock())}
        assert alice.post("/stepup/2fa/confirm", data=confirm).status_code == 200
        alice.post("/logout", data={"csrf_token": csrf_token(alice.get("/").text)})
        assert sign_in(alice, "alice").headers["location"] == "/stepup/2fa/verify"
        clock.advance(30)
        verify = alice.get("/stepup/2fa/verify")
        code = {"csrf_token": csrf_token(verify.text), "code": totp.at(clock())}
        assert alice.post("/stepup/2fa/verify", data=code).status_code == 303
        assert "Hello alice" in alice.get("/").text


def test_fastapi_example_journey() -> None:
    clock = SettableClock()
    app = load_example("fastapi_app").create_app(store=MemoryStore(), clock=clock, hasher=CHEAP)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as alice:
        assert alice.get("/api/key").status_code == 401  # not signed in
        assert sign_in(alice, "alice").status_code == 303
        assert alice.get("/api/key").json()["key"] == "sk_example_123"
        patch_flag_as_admin(alice, "alice password")
        clock.advance(6 * 3600)  # that re-authentication has run out

        def csrf() -> dict[str, str]:
            return {"X-CSRF-Token": alice.get("/api/csrf-token").json()["csrf_token"]}

        denied = alice.get("/api/key", headers={"accept": "application/json"})
        assert denied.status_code == 401
        assert denied.json()["error"] == "reauth_required"
        assert alice.delete("/api/workspaces/scratch", headers=csrf()).json() == {
            "deleted": "scratch"
        }
        assert alice.delete("/api/workspaces/prod", headers=csrf()).status_code == 303

        location = denied.json()["reauth_url"]
        assert reauthenticate(alice, location, "alice password").headers["location"] == "/api/key"
        assert alice.get("/api/key").json()["valid_until"] == clock() + 6 * 3600
        assert alice.post("/api/key/regenerate", headers=csrf()).status_code == 200
        assert alice.delete("/api/workspaces/prod", headers=csrf()).json() == {"deleted": "prod"}
