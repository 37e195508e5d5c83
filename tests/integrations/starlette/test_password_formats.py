"""The Starlette re-auth form (async twin) checks the hashes apps already have and
awaits the app's rehash saver with an argon2id hash."""

from __future__ import annotations

import bcrypt
import pytest
from werkzeug.security import generate_password_hash

from integrations.starlette.starlette_support import CHEAP, PASSWORDS, Browser, TestApp

MAKERS = {
    "bcrypt": lambda p: bcrypt.hashpw(p.encode(), bcrypt.gensalt(4)).decode(),
    "werkzeug scrypt": lambda p: generate_password_hash(p, "scrypt:1024:8:1"),
}


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_reauth_form_accepts_and_upgrades_an_existing_hash(
    test_app: TestApp, alice: Browser, name: str
) -> None:
    test_app.hashes["alice"] = MAKERS[name](PASSWORDS["alice"])
    location = "/stepup/reauth?next=/api-key"
    assert alice.reauth(location, "not alice's password").status_code == 400
    assert test_app.rehashed == []
    assert alice.reauth(location, PASSWORDS["alice"]).status_code == 303
    assert test_app.rehashed == ["alice"]
    assert test_app.hashes["alice"].startswith("$argon2id$")
    assert CHEAP.verify(test_app.hashes["alice"], PASSWORDS["alice"])
