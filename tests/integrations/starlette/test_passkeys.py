"""Starlette: the passkeys page, the JSON endpoints and re-authentication with a passkey,
with a software authenticator answering as the browser would."""

from __future__ import annotations

import html
import json
import re
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
from stepup.errors import ConfigurationError
from stepup.passkeys import MAX_PAYLOAD_BYTES, PasskeyRemoved
from stepup.testing import SettableClock
from stepup.testing.webauthn import SoftAuthenticator

ORIGIN = "http://localhost"
OPTIONS = {"passkeys_rp_id": "localhost", "passkeys_origins": (ORIGIN,)}


@pytest.fixture
def test_app(clock: SettableClock) -> TestApp:
    return make_app(clock=clock, store=MemoryStore(), **OPTIONS)


def _token(browser: Browser) -> str:
    page = browser.get("/stepup/passkeys")
    assert page.status_code == 200, page.text
    return csrf_token(page.text)


def _json(
    browser: Browser, url: str, body: Any, *, token: str | None = None, confirm: bool = True
) -> Any:
    """POST JSON; adding or removing a passkey with a fresh grant first unless not
    ``confirm`` (the guard's own tests)."""
    if confirm and changes_factors(url):
        confirm_factors(browser)
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    headers = {
        "Content-Type": "application/json",
        "X-CSRF-Token": _token(browser) if token is None else token,
    }
    return browser.post(url, content=data, headers=headers)


def _add(browser: Browser, name: str = "Laptop") -> tuple[SoftAuthenticator, Any]:
    key = SoftAuthenticator(origin=ORIGIN, counter=1)
    options = _json(browser, "/stepup/passkeys/register/begin", {})
    assert options.status_code == 200, options.text
    body = {"credential": key.create(options.json()), "name": name}
    return key, _json(browser, "/stepup/passkeys/register/finish", body)


def _form_fields(text: str, form_marker: str) -> tuple[str, dict[str, str]]:
    start = text.index(form_marker)
    form = text[text.rindex("<form", 0, start) : text.index("</form>", start)]
    action = html.unescape(re.search(r'action="([^"]*)"', form).group(1))  # type: ignore[union-attr]
    fields = re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form)
    return action, {k: html.unescape(v) for k, v in fields}


def test_add_list_rename_and_remove(test_app: TestApp, alice: Browser) -> None:
    _, finish = _add(alice, "Work laptop")
    assert finish.status_code == 200
    credential_id = finish.json()["passkey"]["id"]
    page = alice.get("/stepup/passkeys")
    assert "Work laptop" in page.text
    rename = f"/stepup/passkeys/{credential_id}/rename"
    data = {"csrf_token": csrf_token(page.text), "name": "Desk"}
    assert alice.post(rename, data=data).status_code == 303
    assert "Desk" in alice.get("/stepup/passkeys").text
    remove = f"/stepup/passkeys/{credential_id}/remove"
    confirm_factors(alice)  # removing is guarded whatever the flag
    assert alice.post(remove, data={"csrf_token": _token(alice)}).status_code == 303
    assert "You have no passkey yet." in alice.get("/stepup/passkeys").text
    assert any(isinstance(e, PasskeyRemoved) for e in test_app.events)


def test_reauthenticate_with_a_passkey_on_the_page(alice: Browser) -> None:
    key, _ = _add(alice)
    alice.patch_tenant(True)
    guarded = alice.get("/api-key")
    assert guarded.status_code == 303
    page = alice.get(guarded.headers["location"])
    assert "Use a passkey" in page.text
    assert 'type="password"' not in page.text
    action, fields = _form_fields(page.text, 'data-stepup-passkey="authenticate"')
    assert action.startswith("/stepup/reauth/passkey/finish?")
    options = _json(alice, "/stepup/reauth/passkey/begin", {"action": "api_key.read"})
    assert options.status_code == 200, options.text
    fields["credential"] = json.dumps(key.get(options.json()))
    done = alice.post(action, data=fields)
    assert done.status_code == 303, done.text
    assert done.headers["location"] == "/api-key"
    assert alice.get("/api-key").status_code == 200


def test_json_reauth_then_guarded_removal(alice: Browser) -> None:
    key, finish = _add(alice)
    credential_id = finish.json()["passkey"]["id"]
    alice.patch_tenant(True)
    remove = f"/stepup/passkeys/{credential_id}/remove"
    refused = alice.post(remove, data={"csrf_token": _token(alice)})
    assert refused.status_code == 303
    assert "action=passkey.remove" in refused.headers["location"]
    options = _json(alice, "/stepup/reauth/passkey/begin", {"action": "passkey.remove"})
    body = {"credential": key.get(options.json()), "action": "passkey.remove", "next": "/x"}
    done = _json(alice, "/stepup/reauth/passkey/finish", body)
    assert done.status_code == 200, done.text
    renewed = done.json()["csrf_token"]  # the session was renewed: its token with it
    assert done.json() == {"ok": True, "next": "/x", "csrf_token": renewed}
    assert alice.post(remove, data={"csrf_token": renewed}).status_code == 303
    assert "You have no passkey yet." in alice.get("/stepup/passkeys").text
    assert alice.get("/api-key").status_code == 303  # the grant went with the factor


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", json.dumps({"x": "y" * (MAX_PAYLOAD_BYTES + 4096)})],
    ids=["not-json", "not-an-object", "oversized"],
)
def test_malformed_or_oversized_is_a_clear_400(alice: Browser, body: Any) -> None:
    for url in ("/stepup/passkeys/register/finish", "/stepup/reauth/passkey/finish"):
        answer = _json(alice, url, body)
        assert answer.status_code == 400, url
        assert answer.json()["error"] == "malformed"
    assert "You have no passkey yet." in alice.get("/stepup/passkeys").text


def test_another_users_passkey_is_refused(alice: Browser, bob: Browser) -> None:
    bobs_key, _ = _add(bob)
    _add(alice)
    options = _json(alice, "/stepup/reauth/passkey/begin", {"action": "api_key.read"})
    bobs_key.user_handle = None
    body = {"credential": bobs_key.get(options.json()), "action": "api_key.read"}
    refused = _json(alice, "/stepup/reauth/passkey/finish", body)
    assert refused.status_code == 400
    assert refused.json()["error"] == "unknown_credential"


def test_csrf_is_checked(alice: Browser) -> None:
    assert _json(alice, "/stepup/passkeys/register/begin", {}, token="forged").status_code == 403


def test_without_passkey_options_the_routes_do_not_exist(clock: SettableClock) -> None:
    app = make_app(clock=clock, store=MemoryStore())
    browser = app.browser()
    try:
        assert browser.login("alice").status_code == 303
        assert browser.get("/stepup/passkeys").status_code == 404
        assert "passkey.add" not in app.stepup.policy
    finally:
        browser.close()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"passkeys_rp_id": "localhost:8000", "passkeys_origins": (ORIGIN,)}, "passkeys_rp_id"),
        ({"passkeys_origins": (ORIGIN,)}, "set passkeys_rp_id"),
        ({"passkeys_rp_id": "example.com", "passkeys_origins": (ORIGIN,)}, "not within"),
    ],
)
def test_bad_options_fail_at_start_up(
    clock: SettableClock, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        make_app(clock=clock, store=MemoryStore(), **options)


class _Outage(MemoryStore):
    """A memory store whose passkey reads fail once ``down`` is set."""

    down = False

    def list_passkeys(self, user_id: str) -> Any:
        if self.down:
            raise ConnectionError("store down")
        return super().list_passkeys(user_id)


def test_a_store_outage_is_a_503_not_a_500(clock: SettableClock) -> None:
    store = _Outage()
    app = make_app(clock=clock, store=store, **OPTIONS)
    alice = app.browser()
    try:
        assert alice.login("alice").status_code == 303
        _add(alice)
        token = _token(alice)
        store.down = True
        assert alice.get("/stepup/passkeys").status_code == 503
        answer = _json(
            alice, "/stepup/reauth/passkey/begin", {"action": "api_key.read"}, token=token
        )
        assert answer.status_code == 503
        page = alice.get("/stepup/reauth?action=api_key.read&next=/api-key")
        assert page.status_code == 503
    finally:
        alice.close()


def _grant(browser: Browser) -> None:
    assert browser.client.post("/_test/grant", data={"method": ["pwd"]}).status_code == 204


def _sid(browser: Browser) -> str:
    import base64

    from itsdangerous import TimestampSigner

    from integrations.starlette.starlette_support import SECRET_KEY

    raw = TimestampSigner(SECRET_KEY).unsign(browser.client.cookies["session"].encode())
    sid = json.loads(base64.b64decode(raw))["sid"]
    assert isinstance(sid, str)
    return sid


def test_adding_a_passkey_revokes_the_users_grants_in_every_session(
    test_app: TestApp, alice: Browser, browsers: list[Browser]
) -> None:
    """Issue 12 item 9: a passkey is a factor; adding one ends every re-authentication."""
    second = test_app.browser()
    browsers.append(second)
    assert second.login("alice").status_code == 303
    assert alice.patch_tenant(True).status_code == 200
    for browser in (alice, second):
        _grant(browser)
        assert browser.get("/api-key").status_code == 200
    sids = [_sid(browser) for browser in (alice, second)]
    assert all(test_app.store.get_grant("alice", sid) for sid in sids)
    _, finish = _add(alice)
    assert finish.status_code == 200, finish.text
    # The grants are gone (not only outranked by the passkey strongest-available asks for).
    assert [test_app.store.get_grant("alice", sid) for sid in sids] == [None, None]
    for browser in (alice, second):
        assert browser.get("/api-key").status_code == 303


def test_reauthenticating_with_a_passkey_renews_the_session_id(
    test_app: TestApp, alice: Browser
) -> None:
    """Issue 12 item 9 (ASVS 5.0 §7.2.4): a new id, and the grant is bound to it."""
    key, _ = _add(alice)
    alice.patch_tenant(True)
    options = _json(alice, "/stepup/reauth/passkey/begin", {"action": "api_key.read"})
    before = _sid(alice)
    body = {"credential": key.get(options.json()), "action": "api_key.read", "next": "/"}
    assert _json(alice, "/stepup/reauth/passkey/finish", body).status_code == 200
    after = _sid(alice)
    assert after != before
    assert test_app.store.get_grant("alice", before) is None
    assert test_app.store.get_grant("alice", after) is not None
    assert alice.get("/api-key").status_code == 200
