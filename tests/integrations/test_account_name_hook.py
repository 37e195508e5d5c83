"""``account_name``: how an authenticator app and a passkey name the account (an e-mail
address or username instead of an opaque user id), in Flask and Starlette as Django's
username already does; without the hook, or when it gives no text, the user id."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from integrations.flask import flask_support
from integrations.starlette import starlette_support
from stepup.adapters.storage.memory import MemoryStore
from stepup.testing import SettableClock

ORIGIN = "http://localhost"


def _recorded(two_factor: Any, seen: list[str]) -> None:
    """Note the account each enrolment is begun for (the label inside its QR code)."""
    begin = two_factor.begin_enrolment

    def recording(user_id: str, account: str, **kwargs: Any) -> Any:
        seen.append(account)
        return begin(user_id, account, **kwargs)

    two_factor.begin_enrolment = recording


@pytest.mark.parametrize("named", [lambda uid: f"{uid}@example.com", lambda uid: None])
def test_flask_names_the_account_for_the_app_and_the_passkey(named: Any) -> None:
    config = {"STEPUP_PASSKEYS_RP_ID": "localhost", "STEPUP_PASSKEYS_ORIGINS": [ORIGIN]}
    test_app = flask_support.make_app(
        "subject_loader", clock=SettableClock(), store=MemoryStore(), config=config
    )
    test_app.stepup.account_name(named)
    expected = named("alice") or "alice"
    seen: list[str] = []
    with test_app.app.app_context():
        _recorded(test_app.app.extensions["stepup"].two_factor, seen)
    alice = test_app.client()
    assert alice.login("alice").status_code == 303
    alice.enrol()
    assert seen == [expected]
    flask_support.confirm_factors(alice)
    begin = alice.post(
        "/stepup/passkeys/register/begin",
        data="{}",
        content_type="application/json",
        headers={"X-CSRF-Token": alice.csrf("/stepup/passkeys")},
    )
    assert begin.status_code == 200, begin.get_data(as_text=True)
    assert begin.get_json()["publicKey"]["user"]["name"] == expected


@pytest.mark.parametrize("named", [lambda uid: f"{uid}@example.com", lambda uid: ""])
def test_starlette_names_the_account_for_the_app_and_the_passkey(named: Any) -> None:
    async def account_name(user_id: str) -> str | None:
        return named(user_id)  # type: ignore[no-any-return]

    test_app = starlette_support.make_app(
        clock=SettableClock(),
        store=MemoryStore(),
        passkeys_rp_id="localhost",
        passkeys_origins=(ORIGIN,),
        account_name=account_name,
    )
    expected = named("alice") or "alice"
    seen: list[str] = []
    _recorded(test_app.stepup.two_factor, seen)
    alice = test_app.browser()
    try:
        assert alice.login("alice").status_code == 303
        starlette_support.enrol(alice)
        assert seen == [expected]
        starlette_support.confirm_factors(alice)
        token = starlette_support.csrf_token(alice.get("/stepup/passkeys").text)
        begin = alice.client.post(
            "/stepup/passkeys/register/begin",
            content=json.dumps({}),
            headers={"Content-Type": "application/json", "X-CSRF-Token": token},
        )
        assert begin.status_code == 200, begin.text
        assert begin.json()["publicKey"]["user"]["name"] == expected
    finally:
        alice.close()


_USERNAME = re.compile(r'<input id="stepup-username" type="text" name="username" value="([^"]*)"')
REAUTH = "/stepup/reauth?action=api_key.read&next=/somewhere"


@pytest.mark.parametrize(
    ("named", "shown"),
    [
        (lambda uid: f"{uid}@example.com", "alice@example.com"),
        (lambda uid: None, "alice"),
        (lambda uid: '<b>"alice" & co</b>', "&lt;b&gt;&#34;alice&#34; &amp; co&lt;/b&gt;"),
    ],
)
def test_flask_reauth_form_names_the_account_and_ignores_it(named: Any, shown: str) -> None:
    test_app = flask_support.make_app("subject_loader", clock=SettableClock(), store=MemoryStore())
    test_app.stepup.account_name(named)
    alice = test_app.client()
    assert alice.login("alice").status_code == 303
    field = _USERNAME.search(alice.get(REAUTH).get_data(as_text=True))
    assert field is not None
    assert field.group(1) == shown
    # Only the session says whose password it is: another name posted changes nothing.
    password = test_app.users["alice"].password
    refused = alice.reauth(REAUTH, "wrong", username="alice")
    assert refused.status_code == 400
    assert _USERNAME.search(refused.get_data(as_text=True)) is not None  # shown again
    done = alice.reauth(REAUTH, password, username="bob")
    assert done.status_code == 303
    assert done.headers["Location"] == "/somewhere"


@pytest.mark.parametrize(
    ("named", "shown"),
    [(lambda uid: f"{uid}@example.com", "alice@example.com"), (lambda uid: "", "alice")],
)
def test_starlette_reauth_form_names_the_account_and_ignores_it(named: Any, shown: str) -> None:
    async def account_name(user_id: str) -> str | None:
        return named(user_id)  # type: ignore[no-any-return]

    test_app = starlette_support.make_app(
        clock=SettableClock(), store=MemoryStore(), account_name=account_name
    )
    alice = test_app.browser()
    try:
        assert alice.login("alice").status_code == 303
        field = _USERNAME.search(alice.get(REAUTH).text)
        assert field is not None
        assert field.group(1) == shown
        wrong = alice.form(REAUTH, {"password": "wrong", "username": "alice"})
        assert wrong.status_code == 400
        assert _USERNAME.search(wrong.text) is not None
        password = starlette_support.PASSWORDS["alice"]
        done = alice.form(REAUTH, {"password": password, "username": "bob"})
        assert done.status_code == 303
        assert done.headers["location"] == "/somewhere"
    finally:
        alice.close()


#: Account names no Key URI can carry: a colon (the label's separator), a control
#: character, or one that makes the URI longer than any QR code holds.
UNUSABLE = ["alice:admin", "alice\x1b[2J", "\u00e9" * 800]
_CAUSE = "cannot be put into an authenticator app"


@pytest.mark.parametrize("name", UNUSABLE, ids=["colon", "control", "too-long"])
def test_flask_an_unusable_account_name_is_a_400_naming_the_cause(name: str) -> None:
    test_app = flask_support.make_app("subject_loader", clock=SettableClock(), store=MemoryStore())
    test_app.stepup.account_name(lambda uid: name)
    alice = test_app.client()
    assert alice.login("alice").status_code == 303
    page = alice.form("/stepup/2fa/enrol", {})
    assert page.status_code == 400
    assert _CAUSE in page.get_data(as_text=True)
    with test_app.app.app_context():
        assert test_app.app.extensions["stepup"].store.get_credential("alice") is None


@pytest.mark.parametrize("name", UNUSABLE, ids=["colon", "control", "too-long"])
def test_starlette_an_unusable_account_name_is_a_400_naming_the_cause(name: str) -> None:
    store = MemoryStore()
    test_app = starlette_support.make_app(
        clock=SettableClock(), store=store, account_name=lambda uid: name
    )
    alice = test_app.browser()
    try:
        assert alice.login("alice").status_code == 303
        token = starlette_support.csrf_token(alice.get("/stepup/2fa").text)
        page = alice.post("/stepup/2fa/enrol", data={"csrf_token": token})
        assert page.status_code == 400
        assert _CAUSE in page.text
        assert store.get_credential("alice") is None
    finally:
        alice.close()


def test_adding_another_app_with_an_unusable_account_name_is_a_400_too() -> None:
    test_app = flask_support.make_app("subject_loader", clock=SettableClock(), store=MemoryStore())
    alice = test_app.client()
    assert alice.login("alice").status_code == 303
    alice.enrol()
    flask_support.confirm_factors(alice)
    test_app.stepup.account_name(lambda uid: "alice:admin")
    page = alice.form("/stepup/2fa/devices/add", {"name": "Tablet"})
    assert page.status_code == 400
    assert _CAUSE in page.get_data(as_text=True)
    with test_app.app.app_context():
        stored = test_app.app.extensions["stepup"].store.get_credential("alice")
    assert len(stored.totp_devices) == 1  # nothing pending was added
