"""Configuration is read at start-up, and every mistake stops the app there."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from flask import Flask

from integrations.flask.flask_support import Browser, make_app, set_flag
from stepup.adapters.storage.memory import MemoryStore
from stepup.errors import ConfigurationError, UnknownActionError
from stepup.integrations.flask import Stepup
from stepup.testing import SettableClock
from support import REDIS_URL, need, port_open


def _app(**config: object) -> Flask:
    app = Flask(__name__)
    app.config.update(SECRET_KEY="test-secret-key-0123456789", **config)
    return app


def test_an_unknown_action_fails_at_init_app() -> None:
    stepup = Stepup()

    @stepup.reauth_required("api_key.regenrate")  # a typo
    def view() -> str:
        return "x"

    with pytest.raises(UnknownActionError, match=r"api_key\.regenrate"):
        stepup.init_app(_app())


def test_an_unknown_action_fails_at_decoration_after_init_app() -> None:
    stepup = Stepup(_app())
    with pytest.raises(UnknownActionError):
        stepup.reauth_required("ssh_key.ad")


def test_a_secret_key_is_required() -> None:
    with pytest.raises(ConfigurationError, match="SECRET_KEY"):
        Stepup(Flask(__name__))


def test_stepup_secret_key_is_enough() -> None:
    app = Flask(__name__)
    app.config["STEPUP_SECRET_KEY"] = "only-for-stepup-0123"
    Stepup(app)
    assert "stepup" in app.extensions


def test_memory_url_and_store_objects() -> None:
    app = _app(STEPUP_STORE="memory://")
    Stepup(app)
    assert isinstance(app.extensions["stepup"].store, MemoryStore)
    store = MemoryStore()
    other = _app(STEPUP_STORE=store)
    Stepup(other)
    assert other.extensions["stepup"].store is store


@pytest.mark.parametrize("value", ["ftp://user:hunter2@host/x", "nonsense", 42, object()])
def test_bad_store_settings_are_refused_without_echoing_them(value: object) -> None:
    with pytest.raises(ConfigurationError, match="STEPUP_STORE") as raised:
        Stepup(_app(STEPUP_STORE=value))
    assert "hunter2" not in str(raised.value)


def test_sqlite_url_builds_the_store_and_its_tables(tmp_path: Path) -> None:
    from stepup.adapters.storage.sql import SQLStore

    app = _app(STEPUP_STORE=f"sqlite:///{tmp_path / 'stepup.sqlite3'}")
    Stepup(app)
    store = app.extensions["stepup"].store
    assert isinstance(store, SQLStore)
    assert store.get_tenant("acme") is None  # the tables exist
    store.close()


def test_redis_url_builds_the_redis_store() -> None:
    need(port_open("127.0.0.1", 6379), "Redis at 127.0.0.1:6379")
    from stepup.adapters.storage.redis import RedisStore

    app = _app(STEPUP_STORE=REDIS_URL)
    Stepup(app)
    store = app.extensions["stepup"].store
    assert isinstance(store, RedisStore)
    store.close()


def test_policy_file_extends_the_catalog(tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text('[actions."report.download"]\nsensitivity = "critical"\nlifetime = "5m"\n')
    clock = SettableClock()

    def setup(app: Flask, stepup: Stepup) -> None:
        @app.get("/report")
        @stepup.reauth_required("report.download")
        def report() -> str:
            return "report"

    test_app = make_app(
        clock=clock, store=MemoryStore(), config={"STEPUP_POLICY_FILE": str(policy)}, setup=setup
    )
    admin = test_app.client()
    admin.login("alice")
    set_flag(admin)
    assert admin.get("/report").status_code == 303
    assert admin.reauth("/stepup/reauth?next=/report", "correct horse").status_code == 303
    assert admin.get("/report").status_code == 200
    clock.advance(300)
    assert admin.get("/report").status_code == 303  # the file's 5 minutes, not 6 hours
    assert admin.get("/api-key").status_code == 200  # the same grant still serves 6 hours


def test_a_missing_policy_file_stops_the_app(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        Stepup(_app(STEPUP_POLICY_FILE=str(tmp_path / "missing.toml")))


def test_url_prefix(clock: SettableClock) -> None:
    test_app = make_app(clock=clock, store=MemoryStore(), config={"STEPUP_URL_PREFIX": "/security"})
    bob = test_app.client()
    bob.login("bob")
    assert bob.get("/security/2fa").status_code == 200
    assert bob.get("/stepup/2fa").status_code == 404


def test_app_templates_override_the_shipped_ones(tmp_path: Path, clock: SettableClock) -> None:
    folder = tmp_path / "templates" / "stepup"
    folder.mkdir(parents=True)
    (folder / "base.html").write_text(
        "<main class=app-layout>{% block content %}{% endblock %}</main>"
    )
    (folder / "two_factor.html").write_text(
        '{% extends "stepup/base.html" %}{% block content %}Our own 2FA page '
        "{{ stepup_csrf_field() }}{% endblock %}"
    )
    test_app = make_app(
        clock=clock, store=MemoryStore(), template_folder=str(tmp_path / "templates")
    )
    bob = test_app.client()
    bob.login("bob")
    page = bob.get("/stepup/2fa").get_data(as_text=True)
    assert page.startswith("<main class=app-layout>Our own 2FA page <input")
    reauth = bob.get("/stepup/reauth").get_data(as_text=True)
    assert reauth.startswith("<main class=app-layout>")  # shipped page, app layout


def test_without_a_subject_loader_or_flask_login_it_says_what_is_missing() -> None:
    app = _app()
    stepup = Stepup(app)

    @app.get("/x")
    @stepup.reauth_required("api_key.read")
    def view() -> str:
        return "x"

    app.testing = True
    with pytest.raises(ConfigurationError, match="subject_loader"):
        app.test_client().get("/x")


def test_a_view_guarded_on_an_app_without_init_app_fails_closed() -> None:
    """A view served by an app the extension was never initialised on is refused with
    a ConfigurationError naming the fix, never served unguarded."""
    guarded_app, other = _app(), _app()
    stepup = Stepup(guarded_app)

    @stepup.reauth_required("api_key.read")
    def view() -> str:
        return "served"

    other.add_url_rule("/x", view_func=view)
    other.testing = True
    with pytest.raises(ConfigurationError, match="init_app"):
        other.test_client().get("/x")


def test_secrets_are_sealed_with_configured_keys(clock: SettableClock) -> None:
    key = base64.urlsafe_b64encode(bytes(range(32))).decode().rstrip("=")
    store = MemoryStore()
    test_app = make_app(clock=clock, store=store, config={"STEPUP_ENCRYPTION_KEYS": {"k1": key}})
    bob: Browser = test_app.client()
    bob.login("bob")
    secret, _ = bob.enrol()
    credential = store.get_credential("bob")
    assert credential is not None
    assert credential.totp_devices[0].secret.startswith("v1:k1:")
    assert secret not in credential.totp_devices[0].secret


def test_bad_encryption_keys_stop_the_app() -> None:
    with pytest.raises(ConfigurationError, match="STEPUP_ENCRYPTION_KEYS"):
        Stepup(_app(STEPUP_ENCRYPTION_KEYS={"k1": 12}))
    with pytest.raises(ConfigurationError):
        Stepup(_app(STEPUP_ENCRYPTION_KEYS={"k1": b"short"}))
