"""docs/examples/flask_app.py is safe as written (issue 12, item 7): copied out of the
source tree and imported from there, as someone would copy it, its sign-in never sends
anyone off-site and its own forms refuse a POST without the session's CSRF token."""

from __future__ import annotations

import importlib
import re
import shutil
import sys
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import argon2
import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given, settings
from hypothesis import strategies as st

from stepup import TOTP
from stepup.adapters.storage.memory import MemoryStore
from stepup.testing import SettableClock

EXAMPLE = Path(__file__).resolve().parents[3] / "docs" / "examples" / "flask_app.py"
EVIL = [
    "https://evil.example",
    "//evil.example",
    "/\\evil.example",
    "\\\\evil.example/x",
    "https:evil.example",
    "javascript:alert(1)",
    "http://localhost@evil.example/",
    "/%2F%2Fevil.example",
]


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    where = tmp_path_factory.mktemp("copied")
    shutil.copy(EXAMPLE, where / "my_flask_app.py")
    sys.path.insert(0, str(where))
    try:
        module = importlib.import_module("my_flask_app")
    finally:
        sys.path.remove(str(where))
    assert Path(module.__file__ or "").parent == where  # the copy, not the docs
    yield module
    sys.modules.pop("my_flask_app", None)


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock()


@pytest.fixture
def app(example: ModuleType, clock: SettableClock) -> Flask:
    created: Flask = example.create_app(
        {"TESTING": True, "STEPUP_STORE": "memory://", "STEPUP_CLOCK": clock}
    )
    return created


def _token(client: FlaskClient, page: str = "/login") -> str:
    body = client.get(page).get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', body)
    assert found, f"no CSRF token on {page}"
    return found.group(1)


def _sign_in(client: FlaskClient, user: str, password: str, next: str, token: str | None) -> Any:
    data = {"username": user, "password": password, "next": next}
    if token is not None:
        data["csrf_token"] = token
    return client.post("/login", data=data)


def _on_site(location: str) -> bool:
    parts = urlsplit(location)
    return not parts.scheme and not parts.netloc and location.startswith("/")


@pytest.mark.parametrize("target", EVIL)
def test_sign_in_never_sends_anyone_off_site(app: Flask, target: str) -> None:
    client = app.test_client()
    page = client.get("/login", query_string={"next": target}).get_data(as_text=True)
    assert "evil.example" not in page
    assert "javascript" not in page
    done = _sign_in(client, "bob", "bob password", target, _token(client))
    assert done.status_code == 303
    assert _on_site(done.headers["Location"])
    assert "evil.example" not in done.headers["Location"]


def test_a_path_on_this_site_is_kept(app: Flask) -> None:
    client = app.test_client()
    done = _sign_in(client, "bob", "bob password", "/settings/api-key", _token(client))
    assert done.headers["Location"] == "/settings/api-key"


def test_the_second_factor_step_does_not_send_anyone_off_site(
    app: Flask, clock: SettableClock
) -> None:
    client = app.test_client()
    _sign_in(client, "bob", "bob password", "/", _token(client))
    enrol = client.post("/stepup/2fa/enrol", data={"csrf_token": _token(client, "/stepup/2fa")})
    secret = re.search(r'id="stepup-manual-key">([^<]+)</code>', enrol.get_data(as_text=True))
    assert secret
    totp = TOTP(secret.group(1).replace(" ", ""))
    confirm = {"csrf_token": _token(client, "/stepup/2fa"), "code": totp.at(clock())}
    assert client.post("/stepup/2fa/confirm", data=confirm).status_code == 200
    client.post("/logout", data={"csrf_token": _token(client, "/")})
    handed_over = _sign_in(client, "bob", "bob password", "https://evil.example", _token(client))
    assert handed_over.headers["Location"] == "/stepup/2fa/verify"
    clock.advance(30)
    form = {"csrf_token": _token(client, "/stepup/2fa/verify"), "code": totp.at(clock())}
    done = client.post("/stepup/2fa/verify", data=form)
    assert done.headers["Location"] == "/"


@pytest.mark.parametrize("token", [None, "", "forged", "other-session"])
def test_sign_in_without_this_sessions_token_is_refused(app: Flask, token: str | None) -> None:
    client = app.test_client()
    client.get("/login")
    if token == "other-session":
        token = _token(app.test_client())
    refused = _sign_in(client, "bob", "bob password", "/", token)
    assert refused.status_code == 403
    assert client.get("/").status_code == 302  # not signed in


@pytest.mark.parametrize("path", ["/logout", "/settings/api-key/regenerate"])
def test_the_apps_own_posts_without_a_token_are_refused(app: Flask, path: str) -> None:
    client = app.test_client()
    assert _sign_in(client, "alice", "alice password", "/", _token(client)).status_code == 303
    assert client.post(path).status_code == 403
    assert client.post(path, data={"csrf_token": "forged"}).status_code == 403
    assert "Hello alice" in client.get("/").get_data(as_text=True)  # still signed in
    with_token = client.post(path, data={"csrf_token": _token(client, "/")})
    assert with_token.status_code == 303


# Sign-in: the same work and answer for an unknown user, and guesses throttled -------


def _verified_hashes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The argon2 parameters of every hash argon2 verifies from now on."""
    seen: list[str] = []
    verify = argon2.PasswordHasher.verify

    def spy(self: argon2.PasswordHasher, hash: str | bytes, password: str | bytes) -> Any:
        seen.append(str(hash).rsplit("$", 2)[0])  # $argon2id$v=19$m=...,t=...,p=...
        return verify(self, hash, password)

    monkeypatch.setattr(argon2.PasswordHasher, "verify", spy)
    return seen


#: Passwords that reach the hash (a NUL is refused before it; no form carries a lone surrogate).
PASSWORDS = st.text(
    st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), min_size=1, max_size=30
)


@given(password=PASSWORDS.filter(lambda p: p != "bob password"))
@settings(max_examples=5, deadline=None)
def test_an_unknown_user_costs_what_a_wrong_password_costs_and_gets_the_same_answer(
    example: ModuleType, password: str
) -> None:
    app = example.create_app({"TESTING": True, "STEPUP_STORE": "memory://"})
    client = app.test_client()
    # One hash per form tried: as typed, then its NFKC form when that differs.
    forms = 1 if unicodedata.normalize("NFKC", password) == password else 2
    with pytest.MonkeyPatch.context() as patch:
        seen = _verified_hashes(patch)
        wrong = _sign_in(client, "bob", password, "/", _token(client))
        against_bob = len(seen)
        unknown = _sign_in(client, "nobody", password, "/", _token(client))
    assert (wrong.status_code, unknown.status_code) == (401, 401)
    assert wrong.get_data() == unknown.get_data()
    assert b"Wrong user name or password." in wrong.get_data()
    assert against_bob == forms
    assert len(seen) == 2 * forms, "as many hashes each: the unknown user's against a dummy"
    assert len(set(seen)) == 1, "the dummy hash has the real hashes' parameters"


@pytest.mark.parametrize("user", ["bob", "nobody"])
def test_guesses_at_one_user_name_are_throttled_known_or_not(
    app: Flask, clock: SettableClock, user: str
) -> None:
    client = app.test_client()
    answers = [_sign_in(client, user, "guess", "/", _token(client)).status_code for _ in range(5)]
    assert answers == [401, 401, 401, 401, 429]  # three free, then paused 30 s
    paused = _sign_in(client, "bob", "bob password", "/", _token(client))
    if user == "bob":  # even the right password waits: nothing is checked while paused
        assert paused.status_code == 429
        assert b"Too many attempts" in paused.get_data()
        clock.advance(31)
        assert _sign_in(client, "bob", "bob password", "/", _token(client)).status_code == 303
    else:  # another user name is not held up
        assert paused.status_code == 303


# Keys: TOTP secrets are stored sealed, and the app does not start without its keys ----

KEYS = ("SECRET_KEY", "STEPUP_ENCRYPTION_KEY")


def _enrol(client: FlaskClient, clock: SettableClock, user: str) -> tuple[TOTP, str]:
    """Sign ``user`` in and turn on two-factor authentication; the TOTP and its secret."""
    _sign_in(client, user, f"{user} password", "/", _token(client))
    enrol = client.post("/stepup/2fa/enrol", data={"csrf_token": _token(client, "/stepup/2fa")})
    shown = re.search(r'id="stepup-manual-key">([^<]+)</code>', enrol.get_data(as_text=True))
    assert shown
    secret = shown.group(1).replace(" ", "")
    confirm = {"csrf_token": _token(client, "/stepup/2fa"), "code": TOTP(secret).at(clock())}
    assert client.post("/stepup/2fa/confirm", data=confirm).status_code == 200
    return TOTP(secret), secret


@pytest.mark.parametrize("mode", ["keys from the environment", "STEPUP_DEV=1"])
def test_the_example_stores_totp_secrets_sealed(
    example: ModuleType,
    clock: SettableClock,
    mode: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    if mode == "STEPUP_DEV=1":
        monkeypatch.setenv("STEPUP_DEV", "1")
        for name in KEYS:
            monkeypatch.delenv(name)
    store = MemoryStore()
    app = example.create_app({"TESTING": True, "STEPUP_STORE": store, "STEPUP_CLOCK": clock})
    _, secret = _enrol(app.test_client(), clock, "bob")
    stored = store.get_credential("bob")
    assert stored is not None
    # The development key has its own id, so it can stand next to k1 to reseal.
    key_id = "dev" if mode == "STEPUP_DEV=1" else "k1"
    assert stored.totp_devices[0].secret.startswith(f"v1:{key_id}:"), (
        "the example stored a TOTP secret unsealed, or under the other key's id"
    )
    assert secret not in stored.totp_devices[0].secret


@pytest.mark.parametrize(
    "unset", [KEYS, ("SECRET_KEY",), ("STEPUP_ENCRYPTION_KEY",)], ids=" and ".join
)
def test_without_its_keys_the_example_refuses_to_start(
    example: ModuleType, unset: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in unset:
        monkeypatch.delenv(name)
    monkeypatch.setenv("STEPUP_DEV", "0")  # only "1" is the local-development switch
    with pytest.raises(SystemExit) as stopped:
        example.create_app({"TESTING": True, "STEPUP_STORE": "memory://"})
    message = str(stopped.value.code)
    assert message.startswith(f"set {' and '.join(unset)} (or STEPUP_DEV=1 to try it locally)")
    assert "\n" not in message
    for name in set(KEYS) - set(unset):
        assert name not in message  # names only what is missing


@pytest.mark.parametrize("key", ["short", "not base64 at all!", "QUFB" * 20])
def test_a_sealing_key_that_is_not_32_bytes_is_refused(
    example: ModuleType, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STEPUP_ENCRYPTION_KEY", key)
    with pytest.raises(SystemExit) as stopped:
        example.create_app({"TESTING": True, "STEPUP_STORE": "memory://"})
    assert str(stopped.value.code).startswith("STEPUP_ENCRYPTION_KEY must be 32 bytes")
    assert key not in str(stopped.value.code)


def test_stepup_dev_keeps_its_key_in_a_file_so_enrolments_survive_a_restart(
    example: ModuleType,
    clock: SettableClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STEPUP_DEV", "1")
    for name in KEYS:
        monkeypatch.delenv(name)
    config = {"TESTING": True, "STEPUP_CLOCK": clock}  # the example's own SQLite database
    first = example.create_app(config)
    key_file = tmp_path / "stepup-dev.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    key = key_file.read_text()
    assert f"development key in {key_file}" in capsys.readouterr().out
    totp, _ = _enrol(first.test_client(), clock, "bob")

    restarted = example.create_app(config)  # a new process would read the same file
    assert key_file.read_text() == key
    client = restarted.test_client()  # sessions end with a restart: sign in again
    handed_over = _sign_in(client, "bob", "bob password", "/", _token(client))
    assert handed_over.headers["Location"] == "/stepup/2fa/verify"
    clock.advance(30)
    form = {"csrf_token": _token(client, "/stepup/2fa/verify"), "code": totp.at(clock())}
    assert client.post("/stepup/2fa/verify", data=form).headers["Location"] == "/"
