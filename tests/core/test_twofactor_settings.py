"""TwoFactor's settings are checked when it is built, not at the first enrolment.

A value with which every enrolment fails (an issuer holding ':', 7 digits, a float or
zero period, ``"sha256"``) used to pass construction, and then every user's enrolment
failed with a message about something else (the issuer "Acme: Payments" told each user
that their account name cannot be put into an authenticator app). Now it is a
:class:`ConfigurationError` naming the setting and its rule, so Flask's ``init_app``,
Django's system check (stepup.E010) and Starlette's ``Stepup()`` refuse it at start-up.
"""

from __future__ import annotations

from typing import Any

import pytest

from stepup.adapters.storage.memory import MemoryStore
from stepup.errors import ConfigurationError
from stepup.totp import MAX_KEY_URI_LENGTH, TOTP
from stepup.twofactor import AsyncTwoFactor, TwoFactor

BAD = [
    ({"digits": 7}, "digits must be 6 or 8"),
    ({"digits": 6.0}, "digits must be 6 or 8"),
    ({"digits": True}, "digits must be 6 or 8"),
    ({"digits": "6"}, "digits must be 6 or 8"),
    ({"period": 0}, "period must be a whole number of seconds from 1 to 300"),
    ({"period": -30}, "period must be a whole number of seconds from 1 to 300"),
    ({"period": 301}, "period must be a whole number of seconds from 1 to 300"),
    ({"period": 30.0}, "period must be a whole number of seconds from 1 to 300"),
    ({"period": True}, "period must be a whole number of seconds from 1 to 300"),
    ({"algorithm": "sha256"}, "algorithm must be 'SHA1', 'SHA256' or 'SHA512'"),
    ({"algorithm": "SHA-256"}, "algorithm must be 'SHA1', 'SHA256' or 'SHA512'"),
    ({"algorithm": "MD5"}, "algorithm must be 'SHA1', 'SHA256' or 'SHA512'"),
    ({"algorithm": None}, "algorithm must be 'SHA1', 'SHA256' or 'SHA512'"),
    ({"issuer": ""}, "issuer must be non-empty text"),
    ({"issuer": "Acme: Payments"}, "without ':'"),
    ({"issuer": "Acme\n"}, "control characters"),
    ({"issuer": "Acme\ud800"}, "lone surrogates"),
    ({"issuer": "a" * 1025}, "at most 1024 characters"),
    ({"issuer": None}, "issuer must be non-empty text"),
    ({"issuer": b"Acme"}, "issuer must be non-empty text"),
    # Percent-encoded, each "é" is 6 characters and the issuer is written twice: no Key
    # URI with it fits a QR code, whatever the account.
    ({"issuer": "é" * 200}, f"issuer is too long.*{MAX_KEY_URI_LENGTH}"),
    ({"window": 11}, "window must be a whole number of steps from 0 to 10"),
    ({"max_devices": 0}, "max_devices must be a whole number of at least 1"),
]


@pytest.mark.parametrize("cls", [TwoFactor, AsyncTwoFactor])
@pytest.mark.parametrize(("options", "rule"), BAD)
def test_a_setting_no_enrolment_can_use_is_refused_at_construction(
    cls: Any, options: dict[str, object], rule: str
) -> None:
    with pytest.raises(ConfigurationError, match=rule):
        cls(MemoryStore(), **options)


@pytest.mark.parametrize(
    "options",
    [
        {"digits": 8},
        {"period": 1},
        {"period": 300},
        {"algorithm": "SHA256"},
        {"algorithm": "SHA512"},
        {"issuer": "Acme Payments"},
        {"issuer": "Ächme & Co. / Zahlungen"},
        {"issuer": "a" * 1024},
        {"issuer": "é" * 180, "digits": 8, "period": 300, "algorithm": "SHA512"},
    ],
)
def test_every_setting_that_is_accepted_enrols(options: dict[str, Any]) -> None:
    """The edge of each rule: what construction accepts, enrolment can use."""
    tf = TwoFactor(MemoryStore(), **options)
    enrolment = tf.begin_enrolment("alice", "a")
    assert len(enrolment.uri) <= MAX_KEY_URI_LENGTH
    assert enrolment.qr_svg().startswith("<svg")
    assert TOTP(enrolment.secret, digits=tf.digits, period=tf.period, algorithm=tf.algorithm)
    assert "issuer=" in enrolment.uri


def test_the_issuers_length_limit_is_where_the_shortest_key_uri_stops_fitting() -> None:
    """Not a guess: one character more and even a one-character account fails."""
    longest = next(n for n in range(400, 0, -1) if _enrols("é" * n))
    TwoFactor(MemoryStore(), issuer="é" * longest)
    with pytest.raises(ConfigurationError, match="issuer is too long"):
        TwoFactor(MemoryStore(), issuer="é" * (longest + 1))


def _enrols(issuer: str) -> bool:
    try:
        uri = TOTP.from_key(bytes(20)).provisioning_uri("a", issuer)
    except ValueError:
        return False
    return len(uri) <= MAX_KEY_URI_LENGTH


# start-up in each framework ------------------------------------------------------------


def test_flask_init_app_refuses_the_issuer() -> None:
    from integrations.flask.flask_support import make_app

    with pytest.raises(ConfigurationError, match="without ':'"):
        make_app(
            store=MemoryStore(),
            setup=lambda app, _: app.config.update(STEPUP_TOTP_ISSUER="Acme: Payments"),
        )


def test_starlette_stepup_refuses_the_issuer() -> None:
    from stepup.integrations.starlette import Stepup

    with pytest.raises(ConfigurationError, match="without ':'"):
        Stepup(
            store=MemoryStore(),
            secret_key="k" * 32,
            issuer="Acme: Payments",
            subject_loader=lambda request: None,
            tenant_loader=lambda subject: "t",
        )
