"""Settings the Django way: sealing keys from SECRET_KEY (rotated with
SECRET_KEY_FALLBACKS), store URLs, the password helpers, signals, the middleware."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory, override_settings

from integrations.django.django_support import (
    BASE_STEPUP,
    Site,
    create_users,
    running_site,
    set_flag,
    user_id,
)
from stepup.adapters.storage.memory import MemoryStore
from stepup.errors import ConfigurationError as StepupConfigurationError
from stepup.integrations.django import conf
from stepup.integrations.django.services import get_stepup
from stepup.integrations.django.signals import tenant_flag_changed
from stepup.testing import SettableClock


def test_secrets_follow_django_key_rotation(clock: SettableClock) -> None:
    store = MemoryStore()
    old_key = "an-old-secret-key-that-is-being-rotated-out-0123456789"
    with override_settings(SECRET_KEY=old_key), running_site(store, clock) as site:
        bob = site.browser("bob")
        secret, _ = bob.enrol()
        old_seal = store.get_credential(user_id("bob")).totp_devices[0].secret
    new_key = "a-new-secret-key-for-this-installation-9876543210"
    with (
        override_settings(SECRET_KEY=new_key, SECRET_KEY_FALLBACKS=[old_key]),
        running_site(store, clock),
    ):
        two_factor = get_stepup().two_factor
        clock.advance(30)
        assert two_factor.verify(user_id("bob"), site.totp_code(secret)).ok
        assert two_factor.reseal(user_id("bob")) is True
        new_seal = store.get_credential(user_id("bob")).totp_devices[0].secret
        assert new_seal.split(":")[1] != old_seal.split(":")[1]
    with override_settings(SECRET_KEY=new_key), running_site(store, clock):
        clock.advance(30)
        assert get_stepup().two_factor.verify(user_id("bob"), site.totp_code(secret)).ok


def test_explicit_keys_and_no_keys() -> None:
    key = bytes(range(32))
    box = conf.read_secret_box({**conf.DEFAULTS, "ENCRYPTION_KEYS": {"k1": key}})
    assert box.seal("JBSWY3DPEHPK3PXP", context="c").startswith("v1:k1:")
    plain = conf.read_secret_box({**conf.DEFAULTS, "ENCRYPTION_KEYS": None})
    assert plain.seal("JBSWY3DPEHPK3PXP", context="c") == "plain:JBSWY3DPEHPK3PXP"


def test_store_urls(tmp_path: Path) -> None:
    from stepup.adapters.storage.sql import SQLStore

    assert isinstance(conf.read_store({**conf.DEFAULTS, "STORE": "memory://"}), MemoryStore)
    sql = conf.read_store({**conf.DEFAULTS, "STORE": f"sqlite:///{tmp_path / 's.sqlite3'}"})
    try:
        assert isinstance(sql, SQLStore)
        assert sql.get_tenant("nobody") is None  # the schema was created
    finally:
        sql.close()


def _store_errors(value: str) -> dict[str, str]:
    """What Flask's and Django's settings say about one store URL (one shared reader)."""
    from stepup.integrations.flask._config import store_from_config

    said: dict[str, str] = {}
    for name, read in (
        ("flask", lambda: store_from_config(value, create_schema=True)),
        ("django", lambda: conf.read_store({**conf.DEFAULTS, "STORE": value})),
    ):
        with pytest.raises(StepupConfigurationError) as raised:
            read()
        said[name] = str(raised.value)
    return said


def test_a_store_url_problem_names_the_setting_and_the_cause() -> None:
    """Flask's and Django's store settings are read by one function: the same causes,
    each under the setting's own name."""
    said = _store_errors("mysql://app:s3cret@db/app")
    assert said["flask"].startswith("STEPUP_STORE: unsupported scheme 'mysql'")
    assert said["django"].startswith("STEPUP['STORE']: unsupported scheme 'mysql'")
    assert "'orm'" in said["django"]
    said = _store_errors("relative.db")
    assert said["django"].startswith("STEPUP['STORE'] is not a store URL")
    said = _store_errors("sqlite://relative.db")  # the SQL store's own hint, in both
    assert {"sqlite:///relative.db" in text for text in said.values()} == {True}
    assert all("s3cret" not in text for text in said.values())


def test_a_missing_extra_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "stepup.adapters.storage.sql", None)
    monkeypatch.setitem(sys.modules, "stepup.adapters.storage.redis", None)
    said = _store_errors("postgresql+psycopg://app:s3cret@db/app")
    assert said["django"].startswith("STEPUP['STORE'] is a SQL URL: install the extra")
    assert "'stepup-auth[sql]'" in said["flask"]
    said = _store_errors("redis://:s3cret@cache:6379/0")
    assert {"'stepup-auth[redis]'" in text for text in said.values()} == {True}


def test_the_django_hasher_profile_matches_djangos() -> None:
    from django.contrib.auth.hashers import Argon2PasswordHasher

    hasher = conf.read_password_hasher({**conf.DEFAULTS, "PASSWORD_HASHER": "django"})
    assert hasher is not None
    params = Argon2PasswordHasher().params()
    assert (hasher.time_cost, hasher.memory_cost, hasher.parallelism) == (
        params.time_cost,
        params.memory_cost,
        params.parallelism,
    )


def test_a_user_with_a_django_pbkdf2_password_reauthenticates(site: Site) -> None:
    """Django's default hasher (PBKDF2) is checked by Django itself; no upgrade is
    saved from stepup (it would sign the user out of every session)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import PBKDF2PasswordHasher, make_password

    from stepup.integrations.django.hooks import django_password_hash

    class QuickPBKDF2(PBKDF2PasswordHasher):
        iterations = 1

    users = get_user_model()._default_manager
    pbkdf2 = make_password("battery staple", hasher=QuickPBKDF2())
    users.filter(username="bob").update(password=pbkdf2)
    try:
        assert django_password_hash(user_id("bob")) == pbkdf2
        assert django_password_hash("no-such-user") is None
        bob = site.browser("bob")
        refused = bob.reauth("/stepup/reauth/?next=/api-key/", "wrong staple")
        assert refused.status_code == 400
        assert "That password is not right. Check it and try again." in refused.content.decode()
        accepted = bob.reauth("/stepup/reauth/?next=/api-key/", "battery staple")
        assert accepted.status_code == 303
        assert users.get(username="bob").password == pbkdf2
    finally:
        create_users()


def test_a_failing_signal_receiver_changes_nothing(
    site: Site, alice: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(sender: Any, event: Any, **kwargs: Any) -> None:
        raise RuntimeError("audit log is down")

    tenant_flag_changed.connect(broken)
    try:
        with caplog.at_level(logging.ERROR, logger="stepup.integrations.django"):
            assert set_flag(alice).status_code == 200
    finally:
        tenant_flag_changed.disconnect(broken)
    assert "failed on TenantFlagChanged" in caplog.text
    assert alice.get("/api-key/").status_code == 303  # the flag did change


def test_the_views_need_the_middleware() -> None:
    from integrations.django.testapp.views import read_api_key

    with pytest.raises(ImproperlyConfigured, match="StepupMiddleware"):
        read_api_key(RequestFactory().get("/api-key/"))


def test_services_follow_the_settings(clock: SettableClock) -> None:
    first, second = MemoryStore(), MemoryStore()
    with running_site(first, clock):
        assert get_stepup().store is first
        with override_settings(STEPUP={**BASE_STEPUP, "STORE": second}):
            assert get_stepup().store is second
        assert get_stepup().store is first


def test_the_migrations_match_the_models() -> None:
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("makemigrations", "stepup", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


def test_a_project_template_replaces_the_bundled_one(site: Site, tmp_path: Path) -> None:
    from django.conf import settings

    (tmp_path / "stepup").mkdir()
    (tmp_path / "stepup" / "base.html").write_text(
        "<html><body class='acme-layout'>{% block content %}{% endblock %}</body></html>"
    )
    templates = [{**settings.TEMPLATES[0], "DIRS": [str(tmp_path)]}]
    bob = site.browser("bob")
    with override_settings(TEMPLATES=templates):
        page = bob.get("/stepup/2fa/").content.decode()
    assert "acme-layout" in page
    assert "Two-factor authentication is off." in page  # the bundled page, in the new layout
