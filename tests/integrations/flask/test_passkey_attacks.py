"""Flask: a hostile browser against the passkey endpoints. Every state-changing one
checks the CSRF token; a body of the wrong shape is a clear 400 that changes nothing;
a name with markup is shown escaped."""

from __future__ import annotations

import json
from typing import Any

import pytest

from integrations.flask.flask_support import (
    Browser,
    TestApp,
    changes_factors,
    confirm_factors,
    make_app,
    set_flag,
)
from stepup.adapters.storage.memory import MemoryStore
from stepup.testing import SettableClock
from stepup.testing.webauthn import SoftAuthenticator

ORIGIN = "http://localhost"
CONFIG = {"STEPUP_PASSKEYS_RP_ID": "localhost", "STEPUP_PASSKEYS_ORIGINS": [ORIGIN]}


STORES: dict[int, MemoryStore] = {}


@pytest.fixture
def app(mode: str) -> TestApp:
    store = MemoryStore()
    test_app = make_app(mode, clock=SettableClock(), store=store, config=CONFIG)
    STORES[id(test_app)] = store
    return test_app


@pytest.fixture
def alice(app: TestApp) -> Browser:
    browser = app.client()
    assert browser.login("alice").status_code == 303
    return browser


def _json(
    browser: Browser, url: str, body: Any, *, csrf: str | None = None, confirm: bool = True
) -> Any:
    """POST JSON; adding or removing a passkey with a fresh grant first unless not
    ``confirm``."""
    if confirm and changes_factors(url):
        confirm_factors(browser)
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    headers = {"X-CSRF-Token": browser.csrf("/stepup/passkeys") if csrf is None else csrf}
    return browser.post(url, data=data, content_type="application/json", headers=headers)


def _add(browser: Browser, name: str = "Laptop") -> tuple[SoftAuthenticator, str]:
    key = SoftAuthenticator(origin=ORIGIN, counter=1)
    options = _json(browser, "/stepup/passkeys/register/begin", {}).get_json()
    body = {"credential": key.create(options), "name": name}
    finish = _json(browser, "/stepup/passkeys/register/finish", body)
    assert finish.status_code == 200, finish.get_data(as_text=True)
    return key, finish.get_json()["passkey"]["id"]


def _stored(app: TestApp) -> list[tuple[str, str, int]]:
    return [(p.credential_id, p.name, p.sign_count) for p in STORES[id(app)].list_passkeys("alice")]


def _endpoints(credential_id: str) -> list[str]:
    return [
        "/stepup/passkeys/register/begin",
        "/stepup/passkeys/register/finish",
        f"/stepup/passkeys/{credential_id}/rename",
        f"/stepup/passkeys/{credential_id}/remove",
        "/stepup/reauth/passkey/begin",
        "/stepup/reauth/passkey/finish",
        "/stepup/2fa/verify/passkey/begin",
        "/stepup/2fa/verify/passkey/finish",
    ]


@pytest.mark.parametrize("token", [None, "", "forged"])
def test_every_state_changing_endpoint_checks_csrf(
    alice: Browser, app: TestApp, token: str | None
) -> None:
    _key, credential_id = _add(alice)
    before = _stored(app)
    for url in _endpoints(credential_id):
        body = {"name": "Renamed", "action": "api_key.read", "credential": {}}
        headers = {} if token is None else {"X-CSRF-Token": token}
        as_json = alice.post(
            url, data=json.dumps(body), content_type="application/json", headers=headers
        )
        assert as_json.status_code == 403, url  # a script's refusal: JSON, as everywhere
        assert as_json.get_json()["error"] == "csrf", url
        form = {"name": "Renamed"} if token is None else {"name": "Renamed", "csrf_token": token}
        assert alice.post(url, data=form).status_code == 403, url
    assert _stored(app) == before


@pytest.mark.parametrize(
    "credential",
    [[], 7, True, "not json", "[]", "null", {"id": 7}, {"response": []}, "{" * 5000],
    ids=["list", "int", "bool", "text", "json-list", "json-null", "id-int", "resp-list", "deep"],
)
def test_a_credential_of_the_wrong_shape_is_a_clear_400(
    alice: Browser, app: TestApp, credential: Any
) -> None:
    _add(alice)
    before = _stored(app)
    for url, extra in [
        ("/stepup/passkeys/register/finish", {"name": "x"}),
        ("/stepup/reauth/passkey/finish", {"action": "api_key.read"}),
    ]:
        answer = _json(alice, url, {"credential": credential, **extra})
        assert answer.status_code == 400, (url, answer.get_data(as_text=True))
        assert answer.get_json()["error"] == "malformed"
    assert _stored(app) == before


@pytest.mark.parametrize("body", ["[]", "7", "not json", '"x"', "{" * 100_000])
def test_a_body_that_is_not_a_json_object_is_a_clear_400(
    alice: Browser, app: TestApp, body: str
) -> None:
    _add(alice)
    before = _stored(app)
    for url in ["/stepup/passkeys/register/finish", "/stepup/reauth/passkey/finish"]:
        answer = _json(alice, url, body)
        assert answer.status_code == 400
        assert answer.get_json()["error"] == "malformed"
    assert _stored(app) == before


def test_a_name_with_markup_is_escaped_and_stripped_of_controls(
    alice: Browser, app: TestApp
) -> None:
    _key, credential_id = _add(alice, '<script>alert("x")</script>\u202e\x00')
    page = alice.get("/stepup/passkeys").get_data(as_text=True)
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(" in page
    (stored,) = STORES[id(app)].list_passkeys("alice")
    assert stored.name == '<script>alert("x")</script>'
    renamed = _json(alice, f"/stepup/passkeys/{credential_id}/rename", {"name": "<b>" * 100})
    assert renamed.status_code == 200
    (stored,) = STORES[id(app)].list_passkeys("alice")
    assert len(stored.name) <= 64
    assert "<b>" not in alice.get("/stepup/passkeys").get_data(as_text=True)


def test_a_challenge_begun_before_sign_out_is_refused_after(alice: Browser, app: TestApp) -> None:
    """Signing out ends the session the challenge was bound to: signing in again (a
    new session) does not revive it, and the re-authentication is not recorded."""
    key, _ = _add(alice)
    set_flag(alice)
    options = _json(alice, "/stepup/reauth/passkey/begin", {"action": "api_key.read"})
    assert options.status_code == 200
    answer = key.get(options.get_json())
    alice.post("/logout")
    assert alice.login("alice").headers["Location"] == "/stepup/2fa/verify"
    token = alice.csrf("/stepup/2fa/verify")  # her passkey is now her second factor
    second = _json(alice, "/stepup/2fa/verify/passkey/begin", {}, csrf=token).get_json()
    signed_in = {"credential": key.get(second)}
    assert (
        _json(alice, "/stepup/2fa/verify/passkey/finish", signed_in, csrf=token).status_code == 200
    )
    body = {"credential": answer, "action": "api_key.read", "next": "/api-key"}
    refused = _json(alice, "/stepup/reauth/passkey/finish", body)
    assert refused.status_code == 400
    assert refused.get_json()["error"] == "challenge"
    assert alice.get("/api-key", headers={"Accept": "application/json"}).status_code == 401


def test_a_replayed_assertion_is_refused(alice: Browser, app: TestApp) -> None:
    key, _ = _add(alice)
    set_flag(alice)
    options = _json(alice, "/stepup/reauth/passkey/begin", {"action": "api_key.read"})
    body = {"credential": key.get(options.get_json()), "action": "api_key.read"}
    assert _json(alice, "/stepup/reauth/passkey/finish", body).status_code == 200
    again = _json(alice, "/stepup/reauth/passkey/finish", body)
    assert again.status_code == 400
    assert again.get_json()["error"] == "challenge"


@pytest.mark.parametrize("name", [7, None, ["x"], {"x": 1}, True])
def test_a_name_that_is_not_text_is_a_clear_400(alice: Browser, app: TestApp, name: Any) -> None:
    _key, credential_id = _add(alice)
    before = _stored(app)
    renamed = _json(alice, f"/stepup/passkeys/{credential_id}/rename", {"name": name})
    assert renamed.status_code == 400
    assert renamed.get_json()["error"] == "malformed"
    key = SoftAuthenticator(origin=ORIGIN)
    options = _json(alice, "/stepup/passkeys/register/begin", {}).get_json()
    body = {"credential": key.create(options), "name": name}
    added = _json(alice, "/stepup/passkeys/register/finish", body)
    assert added.status_code == 400
    assert added.get_json()["error"] == "malformed"
    assert _stored(app) == before


def test_at_sign_in_malformed_costs_nothing_and_a_wrong_answer_is_charged(
    alice: Browser, app: TestApp
) -> None:
    key, _ = _add(alice)
    alice.post("/logout")
    assert alice.login("alice").headers["Location"] == "/stepup/2fa/verify"
    token = alice.csrf("/stepup/2fa/verify")
    begin, finish = "/stepup/2fa/verify/passkey/begin", "/stepup/2fa/verify/passkey/finish"
    store = STORES[id(app)]
    for credential in [7, [], "not json", {"id": 7}, {"response": []}]:
        _json(alice, begin, {}, csrf=token)
        answer = _json(alice, finish, {"credential": credential}, csrf=token)
        assert answer.status_code == 400
        assert answer.get_json()["error"] == "malformed"
    for body in ["[]", "{", "x" * 40_000]:
        assert _json(alice, finish, body, csrf=token).status_code == 400
    assert store.throttle_state("passkey-sign-in:alice").failures == 0
    options = _json(alice, begin, {}, csrf=token).get_json()
    key.origin = "https://evil.example"  # well formed, and wrong
    wrong = _json(alice, finish, {"credential": key.get(options)}, csrf=token)
    assert wrong.status_code == 400
    assert wrong.get_json()["error"] == "invalid"
    assert store.throttle_state("passkey-sign-in:alice").failures == 1
