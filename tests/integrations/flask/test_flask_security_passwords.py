"""A Flask app on Flask-Security-Too gives stepup its hash format with one setting,
``STEPUP_PASSWORD_VERIFIERS``, and its users' stored hashes then verify and stay as they
are (Flask-Security-Too's own sign-in must keep reading them)."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from integrations.flask.flask_support import make_app
from reauth_password.flask_security_vectors import SALT, UNSET, VECTORS, Vector
from stepup.adapters.idp.password_formats import FlaskSecurityVerifier
from stepup.adapters.storage.memory import MemoryStore
from stepup.errors import ConfigurationError
from stepup.integrations.flask import Stepup

LOCATION = "/stepup/reauth?next=/api-key"


def _vector(scheme: str) -> Vector:
    return next(
        v for v in VECTORS if v.scheme == scheme and v.single_hash == UNSET and v.salt == SALT
    )


@pytest.mark.parametrize("scheme", ["argon2", "bcrypt", "pbkdf2_sha512", "pbkdf2_sha256"])
def test_the_reauth_form_accepts_a_flask_security_too_hash_and_keeps_it(scheme: str) -> None:
    vector = _vector(scheme)
    config = {"SECURITY_PASSWORD_SALT": SALT}
    test_app = make_app(
        store=MemoryStore(),
        config={
            **config,
            "STEPUP_PASSWORD_VERIFIERS": [FlaskSecurityVerifier.from_config(config)],
        },
    )
    bob = test_app.client()
    assert bob.login("bob").status_code == 303
    test_app.users["bob"].password_hash = vector.stored

    assert bob.reauth(LOCATION, "not " + vector.password).status_code == 400
    assert bob.reauth(LOCATION, vector.password).status_code == 303
    # Never re-hashed: a plain argon2id hash would lock bob out of Flask-Security-Too.
    assert test_app.users["bob"].password_hash == vector.stored
    assert bob.get("/api-key").status_code == 200


def test_without_the_setting_the_same_hash_is_refused() -> None:
    """The default formats take the HMAC'd argon2 hash for a plain one: only the app can
    say which it has, hence the setting."""
    vector = _vector("argon2")
    test_app = make_app(store=MemoryStore())
    bob = test_app.client()
    assert bob.login("bob").status_code == 303
    test_app.users["bob"].password_hash = vector.stored
    assert bob.reauth(LOCATION, vector.password).status_code == 400


def _app(**config: object) -> Flask:
    app = Flask(__name__)
    app.config.update(
        {"SECRET_KEY": "test-secret-key-0123456789", "STEPUP_STORE": "memory://", **config}
    )
    return app


@pytest.mark.parametrize(
    "value",
    [
        "flask-security",
        [],
        (),
        [FlaskSecurityVerifier],  # the class, not a verifier
        [FlaskSecurityVerifier(SALT), "argon2"],
        [object()],
        {"fs": FlaskSecurityVerifier(SALT)},
        FlaskSecurityVerifier(SALT),  # one, not a list
    ],
)
def test_a_value_that_is_no_list_of_verifiers_stops_the_app(value: Any) -> None:
    with pytest.raises(ConfigurationError, match="STEPUP_PASSWORD_VERIFIERS") as stopped:
        Stepup(_app(STEPUP_PASSWORD_VERIFIERS=value))
    assert SALT not in str(stopped.value)


def test_the_verifiers_given_are_the_ones_used_in_order() -> None:
    verifiers = [FlaskSecurityVerifier(SALT)]
    app = _app(STEPUP_PASSWORD_VERIFIERS=verifiers)
    Stepup(app)
    assert app.extensions["stepup"].passwords.verifiers == tuple(verifiers)
    default = _app()
    Stepup(default)
    assert [v.name for v in default.extensions["stepup"].passwords.verifiers] == [
        "argon2",
        "bcrypt",
        "werkzeug",
        "django",
    ]
