"""Flask: the passkeys page, the JSON endpoints and re-authentication with a passkey,
with a software authenticator answering as the browser would."""

from __future__ import annotations

import html
import json
import re
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
from stepup.errors import ConfigurationError
from stepup.passkeys import MAX_PAYLOAD_BYTES, PasskeyRemoved
from stepup.testing import SettableClock
from stepup.testing.webauthn import SoftAuthenticator

ORIGIN = "http://localhost"
CONFIG = {"STEPUP_PASSKEYS_RP_ID": "localhost", "STEPUP_PASSKEYS_ORIGINS": [ORIGIN]}


@pytest.fixture
def app(mode: str) -> TestApp:
    return make_app(mode, clock=SettableClock(), store=MemoryStore(), config=CONFIG)


@pytest.fixture
def alice(app: TestApp) -> Browser:
    browser = app.client()
    assert browser.login("alice").status_code == 303
    return browser


def _csrf(browser: Browser) -> str:
    return browser.csrf("/stepup/passkeys")


def _json(
    browser: Browser, url: str, body: Any, *, csrf: str | None = None, confirm: bool = True
) -> Any:
    """POST JSON; adding or removing a passkey with a fresh grant first unless not
    ``confirm`` (the guard's own tests)."""
    if confirm and changes_factors(url):
        confirm_factors(browser)
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    headers = {"X-CSRF-Token": _csrf(browser) if csrf is None else csrf}
    return browser.post(url, data=data, content_type="application/json", headers=headers)


def _add(browser: Browser, name: str = "Laptop", key: SoftAuthenticator | None = None) -> Any:
    key = key or SoftAuthenticator(origin=ORIGIN, counter=1)
    options = _json(browser, "/stepup/passkeys/register/begin", {})
    assert options.status_code == 200, options.get_data(as_text=True)
    answer = key.create(options.get_json())
    finish = _json(
        browser, "/stepup/passkeys/register/finish", {"credential": answer, "name": name}
    )
    return key, finish


def _hidden(body: str) -> dict[str, str]:
    fields = re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', body)
    return {k: html.unescape(v) for k, v in fields}


def test_add_list_rename_and_remove_a_passkey(alice: Browser, app: TestApp) -> None:
    _key, finish = _add(alice, "Work  laptop")
    assert finish.status_code == 200
    answer = finish.get_json()
    assert answer["ok"] is True
    assert answer["passkey"]["name"] == "Work laptop"
    assert "credential_data" not in json.dumps(answer)
    page = alice.get("/stepup/passkeys").get_data(as_text=True)
    assert "Work laptop" in page
    assert "stepup-passkeys.js" in page
    credential_id = answer["passkey"]["id"]
    renamed = alice.form(
        f"/stepup/passkeys/{credential_id}/rename", {"name": "Desk"}, page="/stepup/passkeys"
    )
    assert renamed.status_code == 303
    assert "Desk" in alice.get("/stepup/passkeys").get_data(as_text=True)
    confirm_factors(alice)  # removing is guarded whatever the flag
    removed = alice.form(f"/stepup/passkeys/{credential_id}/remove", {}, page="/stepup/passkeys")
    assert removed.status_code == 303
    assert "Desk" not in alice.get("/stepup/passkeys").get_data(as_text=True)
    assert any(isinstance(e, PasskeyRemoved) for e in app.events)


def test_the_page_adds_a_passkey_with_a_form_post(alice: Browser) -> None:
    key = SoftAuthenticator(origin=ORIGIN)
    options = _json(alice, "/stepup/passkeys/register/begin", {}).get_json()
    credential = json.dumps(key.create(options))
    done = alice.form(
        "/stepup/passkeys/register/finish",
        {"credential": credential, "name": "Phone"},
        page="/stepup/passkeys",
    )
    assert done.status_code == 303
    assert done.headers["Location"].endswith("/stepup/passkeys")
    page = alice.get("/stepup/passkeys").get_data(as_text=True)
    assert "Phone" in page
    assert "The passkey was added." in page


def test_reauthenticate_with_a_passkey(alice: Browser) -> None:
    key, _ = _add(alice)
    set_flag(alice)
    guarded = alice.get("/api-key")
    assert guarded.status_code == 303
    page = alice.get(guarded.headers["Location"])
    body = page.get_data(as_text=True)
    assert "Use a passkey" in body
    assert 'type="password"' not in body  # strongest available: no password for her
    fields = _hidden(body)
    # a password is not what the page offers her, so it is refused
    refused = alice.post("/stepup/reauth/password", data={**fields, "password": "correct horse"})
    assert refused.status_code == 400
    options = _json(alice, "/stepup/reauth/passkey/begin", {"action": fields["action"]})
    assert options.status_code == 200
    credential = json.dumps(key.get(options.get_json()))
    done = alice.post("/stepup/reauth/passkey/finish", data={**fields, "credential": credential})
    assert done.status_code == 303
    assert done.headers["Location"] == "/api-key"
    assert alice.get("/api-key").status_code == 200


def test_reauthenticate_with_a_passkey_as_json(alice: Browser) -> None:
    key, _ = _add(alice)
    set_flag(alice)
    refused = alice.get("/api-key", headers={"Accept": "application/json"})
    assert refused.status_code == 401
    assert refused.get_json()["methods"] == ["phr"]
    assert refused.get_json()["alternatives"] == [["phr"], ["pwd"]]
    options = _json(alice, "/stepup/reauth/passkey/begin", {"action": "api_key.read"})
    answer = key.get(options.get_json())
    body = {"credential": answer, "action": "api_key.read", "next": "/api-key"}
    done = _json(alice, "/stepup/reauth/passkey/finish", body)
    assert done.status_code == 200
    assert done.get_json() == {"ok": True, "next": "/api-key", "csrf_token": alice.csrf()}
    assert alice.get("/api-key").status_code == 200


def test_a_user_without_a_passkey_is_asked_for_the_password(alice: Browser) -> None:
    set_flag(alice)
    location = alice.get("/api-key").headers["Location"]
    body = alice.get(location).get_data(as_text=True)
    assert 'type="password"' in body
    assert "Use a passkey" not in body
    begin = _json(alice, "/stepup/reauth/passkey/begin", {"action": "api_key.read"})
    assert begin.status_code == 400
    assert begin.get_json()["error"] == "not_offered"


@pytest.mark.parametrize("flag", [False, True], ids=["flag-off", "flag-on"])
def test_adding_and_removing_are_sensitive_actions(
    alice: Browser, app: TestApp, flag: bool
) -> None:
    """Guarded whatever the tenant's flag (``always``): a passkey added to a stolen
    session while the flag is off would otherwise satisfy everything once it is on."""
    key, finish = _add(alice)  # re-authenticated first (test plumbing)
    credential_id = finish.get_json()["passkey"]["id"]
    if flag:
        set_flag(alice)
    begin = _json(alice, "/stepup/passkeys/register/begin", {}, confirm=False)
    assert begin.status_code == 401
    assert begin.get_json()["action"] == "passkey.add"
    assert "next=%2Fstepup%2Fpasskeys" in begin.get_json()["reauth_url"]
    remove = alice.form(f"/stepup/passkeys/{credential_id}/remove", {}, page="/stepup/passkeys")
    assert remove.status_code == 303
    assert "action=passkey.remove" in remove.headers["Location"]
    assert "Laptop" in alice.get("/stepup/passkeys").get_data(as_text=True)  # still there
    # confirm with the passkey, then the removal goes through and revokes the grant
    options = _json(alice, "/stepup/reauth/passkey/begin", {"action": "passkey.remove"})
    body = {"credential": key.get(options.get_json()), "action": "passkey.remove"}
    assert _json(alice, "/stepup/reauth/passkey/finish", body).status_code == 200
    remove = alice.form(f"/stepup/passkeys/{credential_id}/remove", {}, page="/stepup/passkeys")
    assert remove.status_code == 303
    assert remove.headers["Location"].endswith("/stepup/passkeys")
    # grants revoked with the factor: adding one asks again
    assert _json(alice, "/stepup/passkeys/register/begin", {}, confirm=False).status_code == 401
    if flag:
        assert alice.get("/api-key").status_code == 303


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1, 2]", b"{" * 100_000, json.dumps({"x": "y" * (MAX_PAYLOAD_BYTES + 4096)})],
    ids=["not-json", "not-an-object", "deep", "oversized"],
)
def test_a_malformed_or_oversized_body_is_a_clear_400(alice: Browser, body: bytes | str) -> None:
    for url in ("/stepup/passkeys/register/finish", "/stepup/reauth/passkey/finish"):
        answer = _json(alice, url, body)
        assert answer.status_code == 400, url
        assert answer.get_json()["error"] == "malformed"
    assert "You have no passkey yet." in alice.get("/stepup/passkeys").get_data(as_text=True)


def test_a_credential_that_is_not_an_object_changes_nothing(alice: Browser) -> None:
    answer = _json(alice, "/stepup/passkeys/register/finish", {"credential": "x", "name": "A"})
    assert answer.status_code == 400
    assert answer.get_json()["error"] == "malformed"


def test_another_users_passkey_is_refused(app: TestApp, alice: Browser) -> None:
    bob = app.client()
    assert bob.login("bob").status_code == 303
    bobs_key, _ = _add(bob)
    _add(alice)
    options = _json(alice, "/stepup/reauth/passkey/begin", {"action": "api_key.read"})
    bobs_key.user_handle = None
    body = {"credential": bobs_key.get(options.get_json()), "action": "api_key.read"}
    refused = _json(alice, "/stepup/reauth/passkey/finish", body)
    assert refused.status_code == 400
    assert refused.get_json()["error"] == "unknown_credential"
    assert refused.get_json()["title"] == "This passkey is not registered to your account."


def test_a_replayed_assertion_is_refused(alice: Browser) -> None:
    key, _ = _add(alice)
    options = _json(alice, "/stepup/reauth/passkey/begin", {"action": "api_key.read"})
    body = {"credential": key.get(options.get_json()), "action": "api_key.read"}
    assert _json(alice, "/stepup/reauth/passkey/finish", body).status_code == 200
    again = _json(alice, "/stepup/reauth/passkey/finish", body)
    assert again.status_code == 400
    assert again.get_json()["error"] == "challenge"


def test_a_wrong_origin_is_refused_on_the_page(alice: Browser) -> None:
    key, _ = _add(alice)
    set_flag(alice)
    location = alice.get("/api-key").headers["Location"]
    fields = _hidden(alice.get(location).get_data(as_text=True))
    options = _json(alice, "/stepup/reauth/passkey/begin", {"action": fields["action"]})
    key.origin = "http://localhost.evil.example"
    credential = json.dumps(key.get(options.get_json()))
    refused = alice.post("/stepup/reauth/passkey/finish", data={**fields, "credential": credential})
    assert refused.status_code == 400
    assert "The passkey could not be verified." in refused.get_data(as_text=True)
    assert alice.get("/api-key").status_code == 303


def test_csrf_is_checked_on_the_json_endpoints(alice: Browser) -> None:
    for url in ("/stepup/passkeys/register/begin", "/stepup/reauth/passkey/begin"):
        refused = _json(alice, url, {}, csrf="forged")
        assert (refused.status_code, refused.get_json()["error"]) == (403, "csrf")


def test_signed_out_is_refused(app: TestApp) -> None:
    client = app.client()
    assert client.get("/stepup/passkeys").status_code in {302, 401}


def test_the_script_is_served() -> None:
    app = make_app(config=CONFIG)
    response = app.client().get("/stepup/stepup-passkeys.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert b"navigator.credentials.create" in response.data
    assert b"parseCreationOptionsFromJSON" in response.data


def test_without_passkey_settings_the_routes_answer_404_and_the_policy_is_unchanged() -> None:
    app = make_app()
    browser = app.client()
    assert browser.login("alice").status_code == 303
    assert browser.get("/stepup/passkeys").status_code == 404
    policy = app.app.extensions["stepup"].policy
    assert "passkey.add" not in policy
    assert not policy.passkeys


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"STEPUP_PASSKEYS_RP_ID": "https://localhost"}, "STEPUP_PASSKEYS"),
        ({"STEPUP_PASSKEYS_ORIGINS": [ORIGIN]}, "set STEPUP_PASSKEYS_RP_ID"),
        (
            {"STEPUP_PASSKEYS_RP_ID": "example.com", "STEPUP_PASSKEYS_ORIGINS": [ORIGIN]},
            "not within the RP id",
        ),
        ({"STEPUP_PASSKEYS_RP_ID": "localhost", "STEPUP_PASSKEYS_ORIGINS": 5}, "ORIGINS"),
    ],
)
def test_settings_are_checked_at_start_up(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        make_app(config=config)


class _Outage(MemoryStore):
    """A memory store whose passkey reads fail once ``down`` is set."""

    down = False

    def list_passkeys(self, user_id: str) -> Any:
        if self.down:
            raise ConnectionError("store down")
        return super().list_passkeys(user_id)


def test_a_store_outage_is_a_503_not_a_500(mode: str) -> None:
    store = _Outage()
    app = make_app(mode, clock=SettableClock(), store=store, config=CONFIG)
    alice = app.client()
    assert alice.login("alice").status_code == 303
    _add(alice)
    token = _csrf(alice)
    store.down = True
    assert alice.get("/stepup/passkeys").status_code == 503
    answer = _json(alice, "/stepup/reauth/passkey/begin", {"action": "api_key.read"}, csrf=token)
    assert answer.status_code == 503
    assert answer.get_json()["error"] == "unavailable"
    page = alice.get("/stepup/reauth?action=api_key.read&next=/api-key")
    assert page.status_code == 503  # which way to offer cannot be known: fail closed


def _sid(browser: Browser) -> str:
    with browser.client.session_transaction() as session:
        sid = session.get("_stepup_sid")
    assert isinstance(sid, str)
    return sid


def test_adding_a_passkey_revokes_the_users_grants_in_every_session(app: TestApp) -> None:
    """Issue 12 item 9: a passkey is a factor; adding one ends every re-authentication."""
    from integrations.flask.flask_support import fresh_grant

    first, second = app.client(), app.client()
    for browser in (first, second):
        assert browser.login("alice").status_code == 303
    set_flag(first)
    for browser in (first, second):
        fresh_grant(browser)
        assert browser.get("/api-key").status_code == 200
    sids = [_sid(browser) for browser in (first, second)]
    with app.app.app_context():
        assert all(app.stepup.store.get_grant("alice", sid) for sid in sids)
    _, finish = _add(first)
    assert finish.status_code == 200
    # The grants are gone (not only outranked by the passkey strongest-available asks for).
    with app.app.app_context():
        assert [app.stepup.store.get_grant("alice", sid) for sid in sids] == [None, None]
    for browser in (first, second):
        assert browser.get("/api-key").status_code == 303


def test_reauthenticating_with_a_passkey_renews_the_session_id(alice: Browser) -> None:
    """Issue 12 item 9 (ASVS 5.0 §7.2.4): a new id, and the grant is bound to it."""
    key, _ = _add(alice)
    set_flag(alice)
    options = _json(alice, "/stepup/reauth/passkey/begin", {"action": "api_key.read"})
    before = _sid(alice)
    body = {"credential": key.get(options.get_json()), "action": "api_key.read", "next": "/"}
    assert _json(alice, "/stepup/reauth/passkey/finish", body).status_code == 200
    after = _sid(alice)
    assert after != before
    with alice.test_app.app.app_context():
        store = alice.test_app.stepup.store
        assert store.get_grant("alice", before) is None
        assert store.get_grant("alice", after) is not None
    assert alice.get("/api-key").status_code == 200
