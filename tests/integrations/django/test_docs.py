"""docs/getting-started-django.md: its example project works as shown (driven here
through Django's test client, and booted on its own with manage.py), and the page shows
exactly the example's files."""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings

from integrations.django.django_support import (
    Browser,
    Site,
    create_users,
    reauth_target,
    set_flag,
)
from stepup.integrations.django.models import (
    AttemptState,
    ChallengeRecord,
    CredentialRecord,
    GrantRecord,
    TenantRecord,
)
from stepup.integrations.django.services import get_stepup
from stepup.testing import SettableClock

DOCS = Path(__file__).resolve().parents[3] / "docs"
EXAMPLE = DOCS / "examples" / "django_app"
SHOWN = ("acme/settings.py", "acme/urls.py", "acme/views.py")


@pytest.mark.parametrize("name", SHOWN)
def test_the_page_shows_the_example_verbatim(name: str) -> None:
    page = (DOCS / "getting-started-django.md").read_text()
    marker = f"<!-- literalinclude: examples/django_app/{name} -->\n```python\n"
    assert marker in page
    shown = page.split(marker, 1)[1].split("\n```\n", 1)[0] + "\n"
    assert shown == (EXAMPLE / name).read_text()


@pytest.fixture
def acme(clock: SettableClock, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    """The example's settings (all but its database), on this test's clock."""
    monkeypatch.setenv("DJANGO_SECRET_KEY", "a test key for the example")
    sys.path.insert(0, str(EXAMPLE))
    try:
        example = importlib.import_module("acme.settings")
    finally:
        sys.path.remove(str(EXAMPLE))
    names = ("INSTALLED_APPS", "MIDDLEWARE", "ROOT_URLCONF", "LOGIN_URL", "TEMPLATES")
    overrides = {name: getattr(example, name) for name in names}
    # Only to keep the test fast: Django's argon2id with the cheapest parameters.
    overrides["PASSWORD_HASHERS"] = [
        "integrations.django.django_support.CheapArgon2PasswordHasher",
        *example.PASSWORD_HASHERS,
    ]
    for model in (AttemptState, ChallengeRecord, CredentialRecord, GrantRecord, TenantRecord):
        model.objects.all().delete()
    get_user_model()._default_manager.filter(username="alice").update(is_staff=True)
    try:
        with override_settings(**overrides, STEPUP={**example.STEPUP, "CLOCK": clock}):
            get_stepup().tenant_settings.ensure("acme")
            yield Site(clock, get_stepup().store)
    finally:
        create_users()


def _sign_in(browser: Browser, name: str, password: str, next: str = "/") -> object:
    data = {"username": name, "password": password, "next": next}
    return browser.form("/login/", data, page=f"/login/?next={next}")


def test_the_example_project_journey(acme: Site) -> None:
    alice, bob = acme.browser(), acme.browser()
    assert alice.get("/api-key/")["Location"] == "/login/?next=/api-key/"
    assert _sign_in(alice, "alice", "correct horse", "/api-key/")["Location"] == "/api-key/"
    assert _sign_in(bob, "bob", "battery staple")["Location"] == "/"
    assert b"ak_live_1234" in alice.get("/api-key/").content  # the flag is off

    assert set_flag(bob).status_code == 403
    get_stepup().tenant_settings.ensure("globex")
    assert set_flag(alice, tenant="globex").status_code == 403  # staff of acme only
    assert set_flag(alice).status_code == 200

    refused = alice.get("/api-key/")
    assert refused.status_code == 303
    assert reauth_target(refused) == (
        "/stepup/reauth/",
        {"next": "/api-key/", "action": "api_key.read"},
    )
    assert alice.reauth(refused["Location"], "wrong").status_code == 400
    assert alice.reauth(refused["Location"], "correct horse")["Location"] == "/api-key/"
    assert b"ak_live_1234" in alice.get("/api-key/").content
    regenerated = alice.form("/api-key/regenerate/", {}, page="/api-key/")
    assert regenerated["Location"] == "/api-key/"

    acme.clock.advance(6 * 3600)
    assert alice.get("/api-key/").status_code == 303
    assert alice.form("/api-key/regenerate/", {}, page="/stepup/2fa/").status_code == 303

    # Two-factor authentication: enrol, then the next sign-in asks for a code.
    secret, codes = bob.enrol()
    assert len(codes) == 10
    bob.form("/logout/", {}, page="/stepup/2fa/")
    started = _sign_in(bob, "bob", "battery staple")
    assert started["Location"] == "/stepup/2fa/verify/"
    verify = "/stepup/2fa/verify/"
    assert bob.form(verify, {"code": acme.totp_code(secret)}, page=verify).status_code == 400
    acme.clock.advance(30)
    assert bob.form(verify, {"code": acme.totp_code(secret)}, page=verify)["Location"] == "/"
    assert b"Hello bob" in bob.get("/").content


def test_the_example_home_page_leads_to_two_factor_and_signs_out(acme: Site) -> None:
    bob = acme.browser()
    _sign_in(bob, "bob", "battery staple")
    home = bob.get("/").content.decode()
    links = re.findall(r'<a href="([^"]+)"', home)
    assert "/stepup/2fa/" in links
    assert "/api-key/" in links
    assert bob.get("/stepup/2fa/").status_code == 200
    (action,) = re.findall(r'<form method="post" action="([^"]+)"', home)
    assert bob.form(action, {}, page="/")["Location"] == "/login/"  # its own token
    assert bob.get("/")["Location"] == "/login/?next=/"


def test_the_example_project_boots_on_its_own(tmp_path: Path) -> None:
    env = {**os.environ, "ACME_DATABASE": str(tmp_path / "acme.sqlite3"), "DJANGO_DEBUG": "1"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("DJANGO_SECRET_KEY", None)
    for command in (["check", "--fail-level", "WARNING"], ["migrate", "--verbosity", "0"]):
        done = subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=EXAMPLE,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    assert (tmp_path / "acme.sqlite3").exists()


# Safe as written (issue 12, item 7) ------------------------------------------------------

EVIL = ["https://evil.example", "//evil.example", "/\\evil.example", "javascript:alert(1)"]


@pytest.mark.parametrize("target", EVIL)
def test_the_example_sign_in_never_sends_anyone_off_site(acme: Site, target: str) -> None:
    bob = acme.browser()
    page = bob.get(f"/login/?next={target}").content.decode()
    assert "evil.example" not in page
    assert "javascript" not in page
    assert _sign_in(bob, "bob", "battery staple", target)["Location"] == "/"


def test_a_wrong_password_and_an_unknown_user_get_the_same_answer(acme: Site) -> None:
    """The page says what went wrong, and never which of the two it was."""
    answers = []
    for name in ("bob", "nobody"):
        refused = _sign_in(acme.browser(), name, "a guess")
        assert refused.status_code == 401
        page = refused.content.decode()
        assert "Wrong user name or password." in page
        answers.append(re.sub(r'value="[^"]*"', "", page))
    assert answers[0] == answers[1]


@pytest.mark.parametrize("path", ["/login/", "/logout/", "/api-key/regenerate/"])
def test_the_example_posts_without_a_csrf_token_are_refused(acme: Site, path: str) -> None:
    alice = acme.browser()
    _sign_in(alice, "alice", "correct horse")
    data = {"username": "bob", "password": "battery staple"}
    assert alice.post(path, data).status_code == 403
    assert alice.post(path, {**data, "csrfmiddlewaretoken": "forged" * 6}).status_code == 403
    assert b"Hello alice" in alice.get("/").content  # still alice


def test_a_copy_of_the_example_refuses_to_start_without_its_own_key(tmp_path: Path) -> None:
    """Copied out of the tree as someone would, it boots with DJANGO_SECRET_KEY and
    refuses to without one (the key signs sessions and seals TOTP secrets)."""
    copy = tmp_path / "project"
    shutil.copytree(EXAMPLE, copy)
    env = {**os.environ, "ACME_DATABASE": str(tmp_path / "acme.sqlite3")}
    for name in ("DJANGO_SETTINGS_MODULE", "DJANGO_SECRET_KEY", "DJANGO_DEBUG"):
        env.pop(name, None)

    def check(extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", "check"],
            cwd=copy,
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    refused = check({})
    assert refused.returncode != 0
    assert "DJANGO_SECRET_KEY" in refused.stderr
    assert check({"DJANGO_SECRET_KEY": "a key of this deployment"}).returncode == 0
