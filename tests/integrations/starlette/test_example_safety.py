"""docs/examples/starlette_app.py and fastapi_app.py are safe as written (issue 12,
item 7): copied out of the source tree and imported from there, their sign-in never
sends anyone off-site and their own forms and state-changing endpoints refuse a request
without the session's CSRF token."""

from __future__ import annotations

import importlib
import re
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import argon2
import pytest
from starlette.testclient import TestClient

from integrations.starlette.starlette_support import CHEAP, csrf_token
from stepup.adapters.storage.memory import MemoryStore
from stepup.testing import SettableClock
from stepup.totp import TOTP

EXAMPLES = Path(__file__).resolve().parents[3] / "docs" / "examples"
EVIL = [
    "https://evil.example",
    "//evil.example",
    "/\\evil.example",
    "https:evil.example",
    "javascript:alert(1)",
    "http://localhost@evil.example/",
]


def _copied(name: str, where: Path) -> ModuleType:
    shutil.copy(EXAMPLES / f"{name}.py", where / f"my_{name}.py")
    sys.path.insert(0, str(where))
    try:
        module = importlib.import_module(f"my_{name}")
    finally:
        sys.path.remove(str(where))
    assert Path(module.__file__ or "").parent == where  # the copy, not the docs
    return module


@pytest.fixture(scope="module", params=["starlette_app", "fastapi_app"])
def example(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    module = _copied(request.param, tmp_path_factory.mktemp(request.param))
    yield module
    sys.modules.pop(module.__name__, None)


@pytest.fixture
def client(example: ModuleType) -> Any:
    app = example.create_app(store=MemoryStore(), clock=SettableClock(), hasher=CHEAP)
    # Over https, as in production: the session cookie is Secure unless STEPUP_DEV=1.
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as test_client:
        yield test_client


def _sign_in(client: TestClient, user: str, next: str, token: str | None) -> Any:
    data = {"username": user, "password": f"{user} password", "next": next}
    if token is not None:
        data["csrf_token"] = token
    return client.post("/login", data=data)


def _login_token(client: TestClient, next: str = "/") -> str:
    return csrf_token(client.get("/login", params={"next": next}).text)


@pytest.mark.parametrize("target", EVIL)
def test_sign_in_never_sends_anyone_off_site(client: TestClient, target: str) -> None:
    page = client.get("/login", params={"next": target}).text
    assert "evil.example" not in page
    assert "javascript" not in page
    done = _sign_in(client, "bob", target, _login_token(client, target))
    assert done.status_code == 303
    location = done.headers["location"]
    parts = urlsplit(location)
    assert location.startswith("/")
    assert not parts.scheme
    assert not parts.netloc


def test_a_path_on_this_site_is_kept(client: TestClient) -> None:
    done = _sign_in(client, "bob", "/somewhere?x=1", _login_token(client))
    assert done.headers["location"] == "/somewhere?x=1"


@pytest.mark.parametrize("token", [None, "", "forged", "other-browser"])
def test_sign_in_without_this_browsers_token_is_refused(
    client: TestClient, example: ModuleType, token: str | None
) -> None:
    client.get("/login")  # this browser has its CSRF cookie
    if token == "other-browser":
        other = TestClient(client.app, base_url="https://testserver", follow_redirects=False)
        token = _login_token(other)
    refused = _sign_in(client, "bob", "/", token)
    assert refused.status_code == 403
    key = "/api/key" if example.__name__.endswith("fastapi_app") else "/api-key"
    assert client.get(key).status_code in {303, 401}  # not signed in


def test_the_apps_own_state_changes_need_the_token(client: TestClient, example: ModuleType) -> None:
    assert _sign_in(client, "alice", "/", _login_token(client)).status_code == 303
    if example.__name__.endswith("fastapi_app"):
        for method, path in (("POST", "/api/key/regenerate"), ("DELETE", "/api/workspaces/x")):
            assert client.request(method, path).status_code == 403
            forged = client.request(method, path, headers={"X-CSRF-Token": "forged"})
            assert forged.status_code == 403
            token = client.get("/api/csrf-token").json()["csrf_token"]
            assert client.request(method, path, headers={"X-CSRF-Token": token}).status_code == 200
        return
    assert client.post("/logout").status_code == 403
    assert client.post("/logout", data={"csrf_token": "forged"}).status_code == 403
    assert "Hello alice" in client.get("/").text  # still signed in
    token = csrf_token(client.get("/").text)
    assert client.post("/logout", data={"csrf_token": token}).status_code == 303
    assert "Hello alice" not in client.get("/").text


# Sign-in: the same work and answer for an unknown user, and guesses throttled -------


def _try(client: TestClient, user: str, password: str) -> Any:
    data = {"username": user, "password": password, "next": "/"}
    return client.post("/login", data={**data, "csrf_token": _login_token(client)})


def _verified_hashes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The argon2 parameters of every hash argon2 verifies from now on."""
    seen: list[str] = []
    verify = argon2.PasswordHasher.verify

    def spy(self: argon2.PasswordHasher, hash: str | bytes, password: str | bytes) -> Any:
        seen.append(str(hash).rsplit("$", 2)[0])  # $argon2id$v=19$m=...,t=...,p=...
        return verify(self, hash, password)

    monkeypatch.setattr(argon2.PasswordHasher, "verify", spy)
    return seen


def test_an_unknown_user_costs_one_hash_like_a_wrong_password_and_gets_the_same_answer(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _verified_hashes(monkeypatch)
    wrong, unknown = _try(client, "bob", "guess"), _try(client, "nobody", "guess")
    assert (wrong.status_code, unknown.status_code) == (401, 401)
    assert _without_token(wrong.text) == _without_token(unknown.text)
    assert len(seen) == 2, "one hash each: the unknown user's against a dummy"
    assert seen[0] == seen[1], "the dummy hash has the real hashes' parameters"


def _without_token(page: str) -> str:
    return re.sub(r'value="[^"]*"', "", page)


@pytest.mark.parametrize("user", ["bob", "nobody"])
def test_guesses_at_one_user_name_are_throttled_known_or_not(
    example: ModuleType, user: str
) -> None:
    clock = SettableClock()
    app = example.create_app(store=MemoryStore(), clock=clock, hasher=CHEAP)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        answers = [_try(client, user, "guess").status_code for _ in range(5)]
        assert answers == [401, 401, 401, 401, 429]  # three free, then paused 30 s
        paused = _try(client, "bob", "bob password")
        if user == "bob":  # even the right password waits: nothing is checked while paused
            assert paused.status_code == 429
            assert "too many attempts" in paused.text.lower()
            clock.advance(31)
            assert _try(client, "bob", "bob password").status_code == 303
        else:  # another user name is not held up
            assert paused.status_code == 303


# Keys: TOTP secrets are stored sealed, and the app does not start without its keys ----

KEYS = ("SECRET_KEY", "STEPUP_ENCRYPTION_KEY")


@pytest.mark.parametrize("mode", ["keys from the environment", "STEPUP_DEV=1"])
def test_the_example_stores_totp_secrets_sealed(
    example: ModuleType, mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    if mode == "STEPUP_DEV=1":
        monkeypatch.setenv("STEPUP_DEV", "1")
        for name in KEYS:
            monkeypatch.delenv(name)
    store, clock = MemoryStore(), SettableClock()
    app = example.create_app(store=store, clock=clock, hasher=CHEAP)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        assert _sign_in(client, "bob", "/", _login_token(client)).status_code == 303
        begin = {"csrf_token": csrf_token(client.get("/stepup/2fa").text)}
        enrolment = client.post("/stepup/2fa/enrol", data=begin)
        shown = re.search(r'id="stepup-manual-key">([A-Z2-7 ]+)<', enrolment.text)
        assert shown is not None
        secret = shown.group(1).replace(" ", "")
        confirm = {"csrf_token": csrf_token(enrolment.text), "code": TOTP(secret).at(clock())}
        assert client.post("/stepup/2fa/confirm", data=confirm).status_code == 200
    stored = store.get_credential("bob")
    assert stored is not None
    assert stored.confirmed
    # The development key has its own id, so it can stand next to k1 to reseal.
    key_id = "dev" if mode == "STEPUP_DEV=1" else "k1"
    assert stored.totp_devices[0].secret.startswith(f"v1:{key_id}:"), (
        "the example stored a TOTP secret unsealed, or under the other key's id"
    )
    assert secret not in stored.totp_devices[0].secret
    if mode == "STEPUP_DEV=1":
        key_file = tmp_path / "stepup-dev.key"
        assert key_file.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    "unset", [KEYS, ("SECRET_KEY",), ("STEPUP_ENCRYPTION_KEY",)], ids=" and ".join
)
def test_without_its_keys_the_example_refuses_to_start(
    example: ModuleType, unset: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in unset:
        monkeypatch.delenv(name)
    monkeypatch.setenv("STEPUP_DEV", "true")  # only "1" is the local-development switch
    with pytest.raises(SystemExit) as stopped:
        example.create_app(store=MemoryStore(), clock=SettableClock(), hasher=CHEAP)
    message = str(stopped.value.code)
    assert message.startswith(f"set {' and '.join(unset)} (or STEPUP_DEV=1 to try it locally)")
    assert "secrets.token_urlsafe(32)" in message  # how to make one
    assert "\n" not in message
    for name in set(KEYS) - set(unset):
        assert name not in message  # names only what is missing


@pytest.mark.parametrize("key", ["short", "QUFB" * 20])
def test_a_sealing_key_that_is_not_32_bytes_is_refused(
    example: ModuleType, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STEPUP_ENCRYPTION_KEY", key)
    with pytest.raises(SystemExit) as stopped:
        example.create_app(store=MemoryStore(), clock=SettableClock(), hasher=CHEAP)
    assert str(stopped.value.code).startswith("STEPUP_ENCRYPTION_KEY must be 32 bytes")
