"""Settings for the Django test project, and a test-client wrapper that reads what a
person would read off the pages (CSRF tokens, the secret, recovery codes)."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from argon2 import PasswordHasher
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import Argon2PasswordHasher
from django.test import Client, override_settings

from integrations.tenant_answers import reauth_asked
from stepup import TOTP
from stepup.adapters.idp.password import CHEAPEST, hash_password
from stepup.events import StepupEvent
from stepup.integrations.django.signals import SIGNALS
from stepup.subject import Subject
from stepup.testing import SettableClock

CHEAP = PasswordHasher.from_parameters(CHEAPEST)
TENANT = "acme"
PASSWORDS = {"alice": "correct horse", "bob": "battery staple"}
HOOKS = "integrations.django.testapp.hooks"

#: ``settings.STEPUP`` of the test project; each test overrides STORE and CLOCK.
BASE_STEPUP: dict[str, Any] = {
    "STORE": "memory://",
    "POLICY": f"{HOOKS}.app_policy",
    "SUBJECT_LOADER": f"{HOOKS}.load_subject",
    "TENANT_LOADER": f"{HOOKS}.tenant",
    "PASSWORD_HASH_LOADER": "stepup.integrations.django.hooks.django_password_hash",
    "PASSWORD_REHASH_SAVER": f"{HOOKS}.save_rehash",
    "PASSWORD_HASHER": CHEAP,
    "IS_TENANT_ADMIN": f"{HOOKS}.is_tenant_admin",
    "HAS_FULL_ACCESS": f"{HOOKS}.has_full_access",
    "TOTP_ISSUER": "Acme",
}

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "stepup.integrations.django.middleware.StepupMiddleware",
]


def project_settings(sqlite_path: str, postgres: dict[str, Any]) -> dict[str, Any]:
    return {
        "DEBUG": False,
        "SECRET_KEY": "django-insecure-test-key-for-stepup-integration-tests",
        "ALLOWED_HOSTS": ["testserver", "localhost"],
        "INSTALLED_APPS": [
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "django.contrib.sessions",
            "django.contrib.messages",
            "stepup.integrations.django",
        ],
        "MIDDLEWARE": MIDDLEWARE,
        "ROOT_URLCONF": "integrations.django.testapp.urls",
        "DATABASES": {
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": sqlite_path,
                "OPTIONS": {
                    "timeout": 30,
                    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                },
            },
            "postgres": postgres,
        },
        "TEMPLATES": [
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "DIRS": [],
                "APP_DIRS": True,
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages",
                    ]
                },
            }
        ],
        "LOGIN_URL": "/login/",
        "USE_TZ": True,
        "DEFAULT_AUTO_FIELD": "django.db.models.BigAutoField",
        "STEPUP": BASE_STEPUP,
    }


class CheapArgon2PasswordHasher(Argon2PasswordHasher):  # type: ignore[misc]
    """Django's argon2id hasher with the cheapest parameters: tests only."""

    time_cost = 1
    memory_cost = 8
    parallelism = 1


def create_users() -> None:
    """alice and bob, with argon2id hashes made with the CHEAPEST preset, stored the way
    Django's Argon2PasswordHasher stores them."""
    model = get_user_model()
    for name, password in PASSWORDS.items():
        user, _ = model._default_manager.get_or_create(username=name)
        user.password = "argon2" + hash_password(password, hasher=CHEAP)
        user.is_staff = user.is_superuser = False
        user.save()


def user_id(name: str) -> str:
    return str(get_user_model()._default_manager.get(username=name).pk)


@dataclass
class Site:
    """One test's project: its clock, its store and the events it sent as signals."""

    clock: SettableClock
    store: Any
    events: list[StepupEvent] = field(default_factory=list)

    __test__ = False

    def browser(self, name: str | None = None) -> Browser:
        browser = Browser(self)
        if name is not None:
            assert browser.login(name).status_code == 303
        return browser

    def totp_code(self, secret: str, offset: float = 0.0) -> str:
        return TOTP(secret).at(self.clock() + offset)

    def record(self, sender: Any, event: StepupEvent, **kwargs: Any) -> None:
        self.events.append(event)


@contextmanager
def running_site(store: Any, clock: SettableClock, **stepup: Any) -> Iterator[Site]:
    """Settings for one test (its store and clock), and the signals it sends."""
    site = Site(clock, store)
    settings = {**BASE_STEPUP, "STORE": store, "CLOCK": clock, **stepup}
    with override_settings(STEPUP=settings):
        for signal in SIGNALS.values():
            signal.connect(site.record, dispatch_uid=f"site-{id(site)}")
        try:
            yield site
        finally:
            for signal in SIGNALS.values():
                signal.disconnect(dispatch_uid=f"site-{id(site)}")


_FIELD = re.compile(r'<input type="hidden" name="(\w+)" value="([^"]*)"')
_SECRET = re.compile(r'id="stepup-manual-key">([^<]+)</code>')
_CODES = re.compile(r"<li><code>([^<]+)</code></li>")


class Browser:
    """Django's test client with CSRF checks on, plus what a person reads off pages."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.client = Client(enforce_csrf_checks=True)

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.client.get(url, **kwargs)

    def post(self, url: str, data: dict[str, str] | None = None, **kwargs: Any) -> Any:
        return self.client.post(url, data or {}, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> Any:
        return self.client.patch(url, **kwargs)

    def login(self, name: str, *, password: str | None = None, next: str = "/home/") -> Any:
        data = {"username": name, "password": password or PASSWORDS[name], "next": next}
        return self.client.post("/login/", data)

    def login_sso(self, name: str, method: str, issuer: str, subject: str, provider: str) -> Any:
        data = {
            "username": name,
            "method": method,
            "issuer": issuer,
            "subject": subject,
            "provider": provider,
        }
        return self.client.post("/login/sso/", data)

    def logout(self) -> Any:
        return self.client.post("/logout/")

    def fields(self, page: str) -> dict[str, str]:
        """The hidden fields of the first form on ``page`` (CSRF token included)."""
        response = self.client.get(page)
        assert response.status_code == 200, (page, response.status_code)
        found = _FIELD.findall(response.content.decode())
        assert found, f"no form on {page}"
        return {name: html.unescape(value) for name, value in found}

    def form(
        self, url: str, data: dict[str, str], *, page: str = "/stepup/2fa/", **kwargs: Any
    ) -> Any:
        """Post ``data`` to ``url`` with the CSRF token read from ``page``."""
        token = self.fields(page)["csrfmiddlewaretoken"]
        return self.client.post(url, {**data, "csrfmiddlewaretoken": token}, **kwargs)

    def reauth(self, location: str, password: str, **extra: str) -> Any:
        """Fill in the re-auth form found at ``location`` (the 303's target)."""
        fields = self.fields(location)
        return self.client.post(
            "/stepup/reauth/password/", {**fields, "password": password, **extra}
        )

    def enrol(self) -> tuple[str, list[str]]:
        """Enable 2FA; returns the secret and the recovery codes."""
        page = self.form("/stepup/2fa/enrol/", {})
        assert page.status_code == 200
        secret = _SECRET.search(page.content.decode())
        assert secret
        key = secret.group(1).replace(" ", "")
        done = self.form("/stepup/2fa/confirm/", {"code": self.site.totp_code(key)})
        assert done.status_code == 200, done.content
        return key, _CODES.findall(done.content.decode())


def flag_body(on: bool) -> str:
    return json.dumps(
        {
            "data": {
                "type": "tenant",
                "attributes": {"feature_flags": {"sensitive_actions_reauth": on}},
            }
        }
    )


def _patch_flag(browser: Browser, on: bool, tenant: str) -> Any:
    return browser.patch(
        f"/stepup/tenants/{tenant}", data=flag_body(on), content_type="application/vnd.api+json"
    )


def set_flag(browser: Browser, on: bool = True, tenant: str = TENANT) -> Any:
    """The admin's PATCH of the flag. Changing tenant settings needs a fresh
    re-authentication whatever the flag says (``tenant.settings.update``): when the
    endpoint asks for one, the grant it asks for is recorded for this session, the PATCH
    sent again, and every grant of the user revoked after, so the test goes on as a
    session that has not re-authenticated. Tests of the endpoint itself use ``browser.patch``."""
    from stepup.integrations.django.services import get_stepup

    response = _patch_flag(browser, on, tenant)
    asked = reauth_asked(response.status_code, response.json())
    if asked is None:
        return response
    user = fresh_grant(browser, asked["methods"])
    response = _patch_flag(browser, on, tenant)
    get_stepup().reauth.password_changed(user)
    return response


def fresh_grant(browser: Browser, methods: list[str] | tuple[str, ...] = ("pwd",)) -> str:
    """Test plumbing: record a grant for this browser's session (the real journey is
    the re-auth page; tests about something else skip it). Returns the user id."""
    from stepup.integrations.django.services import get_stepup

    session = browser.client.session
    user, sid = session.get("_auth_user_id"), session.get("_stepup_sid")
    assert isinstance(user, str)
    assert isinstance(sid, str)
    get_stepup().reauth.record(Subject(user, sid), methods)
    return user


def reauth_target(response: Any) -> tuple[str, dict[str, str]]:
    parts = urlsplit(response["Location"])
    query = dict(pair.split("=", 1) for pair in parts.query.split("&") if pair)
    return parts.path, {key: unquote(value) for key, value in query.items()}


def recovery_codes(response: Any) -> list[str]:
    return _CODES.findall(response.content.decode())


def changes_factors(url: str) -> bool:
    """Is ``url`` a passkey endpoint guarded whatever the tenant's flag (``passkey.add``,
    ``passkey.remove``)?"""
    return "/stepup/passkeys/register/" in url or (
        url.startswith("/stepup/passkeys/") and url.endswith("/remove")
    )


def confirm_factors(browser: Browser) -> None:
    """Test plumbing: a fresh grant that covers adding and removing a passkey (guarded
    whatever the flag): the password, or the passkey of a user who has one. Registering
    or removing one revokes it again. Tests of the guard itself post without it."""
    fresh_grant(browser, ("pwd", "phr"))


@pytest.fixture
def fresh_services() -> Iterator[None]:
    """The test starts from the project's settings (stepup's services built anew) and
    leaves the registry of named actions as it found it: for tests that change
    settings.STEPUP and run the system checks (use with ``pytest.mark.usefixtures``)."""
    from stepup.integrations.django import services

    named = set(services._actions)
    services.reset()
    yield
    services.reset()
    services._actions.clear()
    services._actions.update(named)
