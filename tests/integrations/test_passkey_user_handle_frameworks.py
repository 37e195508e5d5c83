"""Each integration gives its ``Passkeys`` a key from the secret it already has (Flask's
SECRET_KEY or STEPUP_SECRET_KEY, Starlette's ``secret_key``, Django's SECRET_KEY, tested with Django's project): the
``user.id`` a registration sends is opaque, never the user id (WebAuthn §14.6.1)."""

from __future__ import annotations

import base64

from integrations.flask import flask_support
from integrations.starlette import starlette_support
from stepup.adapters.storage.memory import MemoryStore
from stepup.testing import SettableClock

ORIGIN = "http://localhost"


def _user_id(options: dict[str, object]) -> bytes:
    user = options["publicKey"]["user"]  # type: ignore[index]
    text = user["id"]  # type: ignore[index]
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_flask_sends_an_opaque_handle() -> None:
    config = {"STEPUP_PASSKEYS_RP_ID": "localhost", "STEPUP_PASSKEYS_ORIGINS": [ORIGIN]}
    app = flask_support.make_app(
        "subject_loader", clock=SettableClock(), store=MemoryStore(), config=config
    )
    alice = app.client()
    assert alice.login("alice").status_code == 303
    flask_support.confirm_factors(alice)
    options = alice.post(
        "/stepup/passkeys/register/begin",
        data="{}",
        content_type="application/json",
        headers={"X-CSRF-Token": alice.csrf("/stepup/passkeys")},
    ).get_json()
    handle = _user_id(options)
    assert len(handle) == 32
    assert handle != b"alice"
    assert options["publicKey"]["user"]["name"] == "alice"  # the name the app has


def test_starlette_sends_an_opaque_handle() -> None:
    app = starlette_support.make_app(
        clock=SettableClock(),
        store=MemoryStore(),
        passkeys_rp_id="localhost",
        passkeys_origins=(ORIGIN,),
    )
    alice = app.browser()
    try:
        assert alice.login("alice").status_code == 303
        starlette_support.confirm_factors(alice)
        token = starlette_support.csrf_token(alice.get("/stepup/passkeys").text)
        headers = {"Content-Type": "application/json", "X-CSRF-Token": token}
        options = alice.post("/stepup/passkeys/register/begin", content="{}", headers=headers)
        handle = _user_id(options.json())
        assert len(handle) == 32
        assert handle != b"alice"
    finally:
        alice.close()
