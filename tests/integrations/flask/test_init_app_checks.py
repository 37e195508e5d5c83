"""What ``init_app`` says about a Flask app's stepup settings before it serves anyone:
a store that would forget everything, a signing key too short to trust, a URL prefix
that is not a path."""

from __future__ import annotations

import logging

import pytest
from flask import Flask, url_for

from stepup.adapters.storage.memory import MemoryStore
from stepup.errors import ConfigurationError
from stepup.integrations.flask import Stepup

KEY = "test-secret-key-0123456789"


def _app(**config: object) -> Flask:
    app = Flask(__name__)
    app.config.update({"SECRET_KEY": KEY, **config})
    return app


def _store_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "STEPUP_STORE" in r.getMessage()]


# the in-memory store ----------------------------------------------------------------


def test_an_app_without_a_store_is_warned_that_it_keeps_everything_in_memory(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="stepup"):
        Stepup(_app())
    [record] = _store_warnings(caplog)
    assert record.levelno == logging.WARNING
    assert record.name.startswith("stepup")
    said = record.getMessage()
    assert "lost on restart" in said
    assert "not shared between workers" in said
    for url in ("sqlite:///", "postgresql+psycopg://", "redis://"):
        assert url in said


@pytest.mark.parametrize(
    "config",
    [{"TESTING": True}, {"STEPUP_STORE": "memory://"}, {"STEPUP_STORE": MemoryStore()}],
    ids=["testing", "memory chosen", "store object"],
)
def test_no_warning_when_the_store_was_chosen_or_the_app_is_testing(
    caplog: pytest.LogCaptureFixture, config: dict[str, object]
) -> None:
    with caplog.at_level(logging.WARNING, logger="stepup"):
        Stepup(_app(**config))
    assert _store_warnings(caplog) == []


def test_no_warning_for_a_store_passed_in_code(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="stepup"):
        Stepup(_app(), store=MemoryStore())
    assert _store_warnings(caplog) == []


# the signing key ----------------------------------------------------------------------


@pytest.mark.parametrize("key", ["a", "fifteen-chars!!", b"short bytes"])
def test_a_short_secret_key_stops_the_app(key: str | bytes) -> None:
    with pytest.raises(ConfigurationError, match=r"^SECRET_KEY must be at least 16 characters"):
        Stepup(_app(SECRET_KEY=key, STEPUP_STORE="memory://"))


def test_a_short_stepup_secret_key_is_named() -> None:
    app = _app(STEPUP_SECRET_KEY="short", STEPUP_STORE="memory://")
    with pytest.raises(ConfigurationError, match=r"^STEPUP_SECRET_KEY must be at least 16"):
        Stepup(app)


def test_a_sixteen_character_key_is_enough() -> None:
    app = _app(SECRET_KEY="sixteen-chars-ok", STEPUP_STORE="memory://")
    Stepup(app)
    assert "stepup" in app.extensions


# the URL prefix -----------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["stepup", "//evil.example", "/step up", "/a?b", 7])
def test_a_url_prefix_that_is_not_a_path_is_a_configuration_error(prefix: object) -> None:
    app = _app(STEPUP_URL_PREFIX=prefix, STEPUP_STORE="memory://")
    with pytest.raises(ConfigurationError, match="STEPUP_URL_PREFIX"):
        Stepup(app)
    assert "stepup" not in app.extensions


@pytest.mark.parametrize(
    ("prefix", "reauth"),
    [("/security/", "/security/reauth"), ("/", "/reauth"), ("", "/reauth")],
)
def test_a_trailing_slash_is_dropped(prefix: str, reauth: str) -> None:
    app = _app(STEPUP_URL_PREFIX=prefix, STEPUP_STORE="memory://")
    Stepup(app)
    with app.test_request_context():
        assert url_for("stepup.reauth") == reauth
