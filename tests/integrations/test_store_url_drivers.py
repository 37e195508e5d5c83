"""A store URL whose database driver is not installed stops the app with a
ConfigurationError that names the setting and the extra to install, not a
ModuleNotFoundError from inside SQLAlchemy. The driver's absence is real: its import
fails, as it does where it was never installed."""

from __future__ import annotations

import sys

import pytest
from flask import Flask

from stepup.errors import ConfigurationError
from stepup.integrations.flask import Stepup
from stepup.integrations.stores import store_from_url

PASSWORD = "s3cret-pw"
URLS = [
    f"postgresql+psycopg://app:{PASSWORD}@127.0.0.1:5432/test",
    f"postgresql://app:{PASSWORD}@127.0.0.1:5432/test",
]


@pytest.fixture
def without_psycopg(monkeypatch: pytest.MonkeyPatch) -> None:
    """``import psycopg`` fails from here on, as where it is not installed."""
    monkeypatch.setitem(sys.modules, "psycopg", None)


@pytest.mark.usefixtures("without_psycopg")
@pytest.mark.parametrize("url", URLS)
@pytest.mark.parametrize("create_schema", [True, False])
def test_a_postgresql_url_without_psycopg_names_the_extra(url: str, create_schema: bool) -> None:
    with pytest.raises(ConfigurationError) as raised:
        store_from_url(url, setting="STEPUP_STORE", create_schema=create_schema)
    said = str(raised.value)
    assert said.startswith("STEPUP_STORE is a PostgreSQL URL")
    assert "psycopg is not installed" in said
    assert "pip install 'stepup-auth[postgres]'" in said
    assert PASSWORD not in said
    assert raised.value.__cause__ is None  # no driver traceback chained on


@pytest.mark.usefixtures("without_psycopg")
def test_flask_stops_at_init_app_naming_the_extra() -> None:
    app = Flask(__name__)
    app.config.update(SECRET_KEY="test-secret-key-0123456789", STEPUP_STORE=URLS[0])
    with pytest.raises(ConfigurationError, match=r"stepup-auth\[postgres\]"):
        Stepup(app)


@pytest.mark.usefixtures("without_psycopg")
def test_the_django_setting_is_named_its_way() -> None:
    with pytest.raises(ConfigurationError, match=r"^STEPUP\['STORE'\] is a PostgreSQL URL"):
        store_from_url(URLS[0], setting="STEPUP['STORE']", create_schema=False)
