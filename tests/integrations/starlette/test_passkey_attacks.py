"""Starlette: a hostile browser against the passkey endpoints. Every state-changing one
checks the CSRF token; a body of the wrong shape is a clear 400 that changes nothing;
a name with markup is shown escaped."""

from __future__ import annotations

import json
from typing import Any

import pytest

from integrations.starlette.starlette_support import (
    Browser,
    TestApp,
    changes_factors,
    confirm_factors,
    csrf_token,
    make_app,
)
from stepup.adapters.storage.memory import MemoryStore
from stepup.testing import SettableClock
from stepup.testing.webauthn import SoftAuthenticator

ORIGIN = "http://localhost"
OPTIONS = {"passkeys_rp_id": "localhost", "passkeys_origins": (ORIGIN,)}
STORES: dict[int, MemoryStore] = {}


@pytest.fixture
def test_app(clock: SettableClock) -> TestApp:
    store = MemoryStore()
    app = make_app(clock=clock, store=store, **OPTIONS)
    STORES[id(app)] = store
    return app


def _json(
    browser: Browser, url: str, body: Any, *, token: str | None = None, confirm: bool = True
) -> Any:
    """POST JSON; adding or removing a passkey with a fresh grant first unless not
    ``confirm``."""
    if confirm and changes_factors(url):
        confirm_factors(browser)
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    if token is None:
        token = csrf_token(browser.get("/stepup/passkeys").text)
    headers = {"Content-Type": "application/json", "X-CSRF-Token": token}
    return browser.post(url, content=data, headers=headers)


def _add(browser: Browser, name: str = "Laptop") -> str:
    key = SoftAuthenticator(origin=ORIGIN, counter=1)
    options = _json(browser, "/stepup/passkeys/register/begin", {}).json()
    body = {"credential": key.create(options), "name": name}
    finish = _json(browser, "/stepup/passkeys/register/finish", body)
    assert finish.status_code == 200, finish.text
    return str(finish.json()["passkey"]["id"])


def _stored(app: TestApp) -> list[tuple[str, str, int]]:
    return [(p.credential_id, p.name, p.sign_count) for p in STORES[id(app)].list_passkeys("alice")]


@pytest.mark.parametrize("token", [None, "", "forged"])
def test_every_state_changing_endpoint_checks_csrf(
    test_app: TestApp, alice: Browser, token: str | None
) -> None:
    credential_id = _add(alice)
    before = _stored(test_app)
    for url in [
        "/stepup/passkeys/register/begin",
        "/stepup/passkeys/register/finish",
        f"/stepup/passkeys/{credential_id}/rename",
        f"/stepup/passkeys/{credential_id}/remove",
        "/stepup/reauth/passkey/begin",
        "/stepup/reauth/passkey/finish",
    ]:
        body = json.dumps({"name": "Renamed", "action": "api_key.read", "credential": {}})
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["X-CSRF-Token"] = token
        assert alice.post(url, content=body, headers=headers).status_code == 403, url
        form = {"name": "Renamed"} if token is None else {"name": "Renamed", "csrf_token": token}
        assert alice.post(url, data=form).status_code == 403, url
    assert _stored(test_app) == before
    # (the sign-in's passkey endpoints: test_passkey_sign_in.py, with a waiting sign-in)


@pytest.mark.parametrize("credential", [[], 7, "not json", {"id": 7}, {"response": []}])
def test_a_credential_of_the_wrong_shape_is_a_clear_400(
    test_app: TestApp, alice: Browser, credential: Any
) -> None:
    _add(alice)
    before = _stored(test_app)
    for url, extra in [
        ("/stepup/passkeys/register/finish", {"name": "x"}),
        ("/stepup/reauth/passkey/finish", {"action": "api_key.read"}),
    ]:
        answer = _json(alice, url, {"credential": credential, **extra})
        assert answer.status_code == 400, (url, answer.text)
        assert answer.json()["error"] == "malformed"
    assert _stored(test_app) == before


def test_a_name_with_markup_is_escaped(test_app: TestApp, alice: Browser) -> None:
    _add(alice, '<script>alert("x")</script>\u202e\x00')
    page = alice.get("/stepup/passkeys").text
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(" in page
    assert [name for _, name, _ in _stored(test_app)] == ['<script>alert("x")</script>']


@pytest.mark.parametrize("name", [7, None, ["x"], {"x": 1}, True])
def test_a_name_that_is_not_text_is_a_clear_400(
    test_app: TestApp, alice: Browser, name: Any
) -> None:
    credential_id = _add(alice)
    before = _stored(test_app)
    renamed = _json(alice, f"/stepup/passkeys/{credential_id}/rename", {"name": name})
    assert renamed.status_code == 400
    assert renamed.json()["error"] == "malformed"
    key = SoftAuthenticator(origin=ORIGIN)
    options = _json(alice, "/stepup/passkeys/register/begin", {}).json()
    body = {"credential": key.create(options), "name": name}
    added = _json(alice, "/stepup/passkeys/register/finish", body)
    assert added.status_code == 400
    assert added.json()["error"] == "malformed"
    assert _stored(test_app) == before
