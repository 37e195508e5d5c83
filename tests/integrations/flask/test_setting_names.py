"""``init_app`` refuses a ``STEPUP_*`` key that is no setting, and warns when no key seals
the TOTP secrets: a typo in ``STEPUP_ENCRYPTION_KEYS`` (or the examples' environment
variable ``STEPUP_ENCRYPTION_KEY`` copied into ``app.config``) used to be ignored, and
every secret was stored ``plain:`` without a word."""

from __future__ import annotations

import base64
import logging

import pytest
from flask import Flask
from hypothesis import given
from hypothesis import strategies as st

from stepup.errors import ConfigurationError
from stepup.integrations.flask import Stepup
from stepup.integrations.flask._config import DEFAULTS

KEY = "test-secret-key-0123456789"
SEALING_KEY = base64.urlsafe_b64encode(bytes(range(32))).decode()


def _app(**config: object) -> Flask:
    app = Flask(__name__)
    app.config.update({"SECRET_KEY": KEY, "STEPUP_STORE": "memory://", **config})
    return app


def _unsealed_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "STEPUP_ENCRYPTION_KEYS" in r.getMessage()]


# unknown STEPUP_* keys ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "closest"),
    [
        ("STEPUP_ENCRYPTION_KEY", SEALING_KEY, "STEPUP_ENCRYPTION_KEYS"),  # the example's env
        ("STEPUP_ENCRYPTON_KEYS", {"k1": SEALING_KEY}, "STEPUP_ENCRYPTION_KEYS"),
        ("STEPUP_STORAGE", "memory://", "STEPUP_STORE"),
        ("STEPUP_URL_PREFIXE", "/s", "STEPUP_URL_PREFIX"),
    ],
)
def test_a_mistyped_setting_stops_the_app_naming_the_key_and_the_setting_it_resembles(
    key: str, value: object, closest: str
) -> None:
    with pytest.raises(ConfigurationError) as stopped:
        Stepup(_app(**{key: value}))
    said = str(stopped.value)
    assert said == f"app.config[{key!r}] is not a stepup setting: did you mean {closest}?"
    assert SEALING_KEY not in said  # the value is never repeated


@given(suffix=st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_", min_size=1, max_size=40))
def test_any_stepup_key_that_is_no_setting_is_refused_by_name(suffix: str) -> None:
    key = f"STEPUP_{suffix}"
    if key in DEFAULTS:
        return
    with pytest.raises(ConfigurationError, match="is not a stepup setting") as stopped:
        Stepup(_app(**{key: "x"}))
    assert repr(key) in str(stopped.value)


def test_a_key_like_no_setting_points_to_the_guide() -> None:
    with pytest.raises(ConfigurationError) as stopped:
        Stepup(_app(STEPUP_XYZZY="1"))
    assert str(stopped.value) == (
        "app.config['STEPUP_XYZZY'] is not a stepup setting; the settings are the STEPUP_*"
        " keys in the Flask guide's Configuration"
    )


def test_every_setting_and_the_apps_own_keys_are_accepted() -> None:
    """Each documented setting at its default, plus keys outside stepup's prefix."""
    settings = {**DEFAULTS, "STEPUP_STORE": "memory://", "STEPUP_SECRET_KEY": KEY}
    app = _app(**settings, MY_STEPUP_THING=1, STEPUPISH=2)
    Stepup(app)
    assert "stepup" in app.extensions


# no sealing keys --------------------------------------------------------------------------


def test_an_app_without_sealing_keys_is_warned_that_secrets_are_stored_unencrypted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="stepup"):
        Stepup(_app())
    [record] = _unsealed_warnings(caplog)
    assert record.levelno == logging.WARNING
    assert record.name == "stepup.integrations.flask"
    said = record.getMessage()
    assert "stores TOTP secrets unencrypted" in said
    assert "Set STEPUP_ENCRYPTION_KEYS" in said
    assert "secrets.token_urlsafe(32)" in said


@pytest.mark.parametrize(
    "config",
    [
        {"STEPUP_ENCRYPTION_KEYS": {"k1": SEALING_KEY}},
        {
            "STEPUP_ENCRYPTION_KEYS": {"k1": SEALING_KEY, "k0": SEALING_KEY},
            "STEPUP_ENCRYPTION_KEY_ID": "k1",
        },
        {"TESTING": True},
    ],
    ids=["one key", "two keys", "testing"],
)
def test_no_warning_with_sealing_keys_or_while_testing(
    caplog: pytest.LogCaptureFixture, config: dict[str, object]
) -> None:
    with caplog.at_level(logging.WARNING, logger="stepup"):
        Stepup(_app(**config))
    assert _unsealed_warnings(caplog) == []


def test_an_empty_key_mapping_is_warned_too(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="stepup"):
        Stepup(_app(STEPUP_ENCRYPTION_KEYS={}))
    assert len(_unsealed_warnings(caplog)) == 1
