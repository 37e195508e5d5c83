"""The Flask re-auth form checks the hashes Flask apps already have (Werkzeug's) and
hands the app an argon2id hash to store instead."""

from __future__ import annotations

import bcrypt
import pytest
from argon2 import PasswordHasher
from werkzeug.security import generate_password_hash

from integrations.flask.flask_support import Browser, TestApp
from stepup.adapters.idp.password import CHEAPEST

MAKERS = {
    "werkzeug scrypt": lambda p: generate_password_hash(p, "scrypt:1024:8:1"),
    "werkzeug pbkdf2": lambda p: generate_password_hash(p, "pbkdf2:sha256:1000"),
    "bcrypt": lambda p: bcrypt.hashpw(p.encode(), bcrypt.gensalt(4)).decode(),
}


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_reauth_form_accepts_and_upgrades_an_existing_hash(
    test_app: TestApp, bob: Browser, name: str
) -> None:
    user = test_app.users["bob"]
    user.password_hash = MAKERS[name](user.password)
    old = user.password_hash
    location = "/stepup/reauth?next=/api-key"
    wrong = bob.reauth(location, "not " + user.password)
    assert wrong.status_code == 400
    assert test_app.users["bob"].password_hash == old
    right = bob.reauth(location, user.password)
    assert right.status_code == 303
    upgraded = test_app.users["bob"].password_hash
    assert upgraded.startswith("$argon2id$")
    assert PasswordHasher.from_parameters(CHEAPEST).verify(upgraded, user.password)
