"""Flask's ``STEPUP_PASSWORD_DUMMY_HASH``: an unknown user's check in the app's format.

An unknown user's password is checked against a dummy hash so that it costs what a known
user's check costs. Flask had no way to give one: an app whose users have Werkzeug's
pbkdf2 hashes (a million iterations) answered unknown names with stepup's argon2id dummy,
about half the time, which tells an attacker which names exist. The setting takes a hash
in the app's own format, checked at ``init_app``.
"""

from __future__ import annotations

import secrets

import pytest
from flask import Flask
from werkzeug.security import generate_password_hash

from stepup.adapters.idp.password import CHEAPEST, PasswordReason
from stepup.adapters.idp.password_formats import (
    Argon2Verifier,
    FlaskSecurityVerifier,
    WerkzeugVerifier,
)
from stepup.errors import ConfigurationError
from stepup.integrations.flask import Stepup

KEY = "test-secret-key-0123456789"
KEY_NAME = "STEPUP_PASSWORD_DUMMY_HASH"


def werkzeug_dummy() -> str:
    return generate_password_hash(secrets.token_urlsafe(32), "pbkdf2:sha256:1000")


def started(**config: object) -> Flask:
    app = Flask(__name__)
    app.config.update(
        {"SECRET_KEY": KEY, "STEPUP_STORE": "memory://", "STEPUP_PASSWORD_HASHER": CHEAPEST}
    )
    app.config.update(config)
    Stepup(app)
    return app


def test_an_unknown_user_is_checked_against_the_apps_dummy_hash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dummy = werkzeug_dummy()
    checked: list[str] = []
    werkzeug_verify = WerkzeugVerifier.verify

    def recording(self: WerkzeugVerifier, stored_hash: str, password: str) -> bool:
        checked.append(stored_hash)
        return werkzeug_verify(self, stored_hash, password)

    monkeypatch.setattr(WerkzeugVerifier, "verify", recording)
    passwords = started(**{KEY_NAME: dummy}).extensions["stepup"].passwords

    assert passwords.verify("ghost", "a guess", None).reason is PasswordReason.UNKNOWN_USER
    assert checked == [dummy]
    # A known user with the app's Werkzeug hash: the same verifier, the same work.
    stored = generate_password_hash("battery staple", "pbkdf2:sha256:1000")
    assert passwords.verify("bob", "battery staple", stored).ok
    assert checked == [dummy, stored]


def test_without_the_setting_the_dummy_is_argon2id_as_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checked: list[str] = []
    argon2_verify = Argon2Verifier.verify

    def recording(self: Argon2Verifier, stored_hash: str, password: str) -> bool:
        checked.append(stored_hash)
        return argon2_verify(self, stored_hash, password)

    monkeypatch.setattr(Argon2Verifier, "verify", recording)
    passwords = started().extensions["stepup"].passwords
    assert passwords.verify("ghost", "a guess", None).reason is PasswordReason.UNKNOWN_USER
    assert len(checked) == 1
    assert checked[0].startswith("$argon2id$")


def test_the_dummy_is_read_by_the_apps_own_verifiers() -> None:
    """With STEPUP_PASSWORD_VERIFIERS set, the dummy must be in one of those formats."""
    verifiers = [FlaskSecurityVerifier("app-salt")]  # Flask-Security-Too: argon2 and the rest
    argon2_dummy = started().extensions["stepup"].passwords.hasher.hash("x")
    app = started(STEPUP_PASSWORD_VERIFIERS=verifiers, **{KEY_NAME: argon2_dummy})
    passwords = app.extensions["stepup"].passwords
    assert passwords.verify("ghost", "guess", None).reason is PasswordReason.UNKNOWN_USER

    werkzeug = werkzeug_dummy()  # the default formats read it; Flask-Security-Too's do not
    with pytest.raises(ConfigurationError, match=KEY_NAME) as refused:
        started(STEPUP_PASSWORD_VERIFIERS=verifiers, **{KEY_NAME: werkzeug})
    assert "no verifier recognises" in str(refused.value)
    assert werkzeug not in str(refused.value)


@pytest.mark.parametrize(
    ("value", "said"),
    [
        (123, "a password hash"),
        ("", "a password hash"),
        (b"pbkdf2:sha256:1000$salt$00", "a password hash"),
        ("hunter2", "no verifier recognises"),  # a password, not a hash
        ("pbkdf2:sha256$salt$" + "00" * 32, "without explicit parameters"),
        ("$2b$99$" + "a" * 53, "bcrypt hash"),  # cost out of range
        ("{SSHA}c2FsdHNhbHQ=", "no verifier recognises"),
    ],
)
def test_a_value_no_verifier_reads_stops_init_app_naming_the_key(value: object, said: str) -> None:
    with pytest.raises(ConfigurationError, match=KEY_NAME) as refused:
        started(**{KEY_NAME: value})
    assert said in str(refused.value)
    if isinstance(value, str) and len(value) > 8:
        assert value not in str(refused.value)
