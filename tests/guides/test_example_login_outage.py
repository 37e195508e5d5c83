"""Each example's login view, copied out of the source tree, answers a store outage as the
guides promise: ``503`` with ``Retry-After`` and words that say to try again, never the
``401`` "wrong user name or password" (the password was not checked, so it was neither
right nor wrong), and signs the user in once the store is back."""

from __future__ import annotations

import base64
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from argon2 import PasswordHasher
from starlette.testclient import TestClient

from integrations.outage_support import StoreDown
from stepup.adapters.idp.password import CHEAPEST
from stepup.testing import SettableClock

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
BIN = Path(sys.executable).parent
CHEAP = PasswordHasher.from_parameters(CHEAPEST)
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def _load(name: str, into: Path) -> ModuleType:
    """The example as a reader has it: a copy in a directory of its own, imported."""
    path = Path(shutil.copy(DOCS / "examples" / f"{name}.py", into))
    spec = importlib.util.spec_from_file_location(f"outage_example_{name}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _says_try_again(status: int, headers: Any, body: str) -> None:
    assert status == 503, body[:500]
    assert headers["Retry-After"] == "5"
    assert "try again" in body.lower()
    assert "wrong" not in body.lower()


@pytest.mark.parametrize("framework", ["starlette", "fastapi"])
def test_the_asgi_examples_login_in_an_outage(framework: str, tmp_path: Path) -> None:
    store = StoreDown()
    example = _load(f"{framework}_app", tmp_path)
    app = example.create_app(store=store, clock=SettableClock(), hasher=CHEAP)
    with TestClient(app, follow_redirects=False) as browser:
        token = _TOKEN.search(browser.get("/login").text)
        assert token is not None
        form = {"csrf_token": token.group(1), "username": "alice", "password": "alice password"}
        store.down = True
        answer = browser.post("/login", data=form)
        _says_try_again(answer.status_code, answer.headers, answer.text)
        store.down = False
        assert browser.post("/login", data=form).status_code == 303


def test_the_flask_examples_login_in_an_outage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECRET_KEY", "s" * 32)
    monkeypatch.setenv("STEPUP_ENCRYPTION_KEY", base64.urlsafe_b64encode(b"k" * 32).decode())
    monkeypatch.chdir(tmp_path)
    store = StoreDown()
    example = _load("flask_app", tmp_path)
    app = example.create_app({"TESTING": True, "STEPUP_STORE": store})
    browser = app.test_client()
    token = _TOKEN.search(browser.get("/login").get_data(as_text=True))
    assert token is not None
    form = {"csrf_token": token.group(1), "username": "alice", "password": "alice password"}
    store.down = True
    answer = browser.post("/login", data=form)
    _says_try_again(answer.status_code, answer.headers, answer.get_data(as_text=True))
    store.down = False
    assert browser.post("/login", data=form).status_code == 303


#: Run in the copied project (Django's settings are the process's): Django checks the
#: password in its own database; stepup's store is down when the login view asks it
#: whether the user has a second factor (``begin_sign_in``).
DJANGO_TEST = """
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "acme.settings")
django.setup()

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from stepup.errors import StoreUnavailableError
from stepup.integrations.django.services import get_stepup


def test_login_in_an_outage():
    call_command("migrate", verbosity=0)
    get_user_model().objects.create_user("bob", password="bob password")
    store = get_stepup().store

    def down(*args, **kwargs):
        raise StoreUnavailableError("the store is down")

    browser = Client(SERVER_NAME="localhost")
    form = {"username": "bob", "password": "bob password", "next": "/"}
    methods = [n for n in dir(type(store)) if not n.startswith("_")]
    for name in methods:
        if callable(getattr(store, name)):
            setattr(store, name, down)
    answer = browser.post("/login/", form)
    body = answer.content.decode()
    assert answer.status_code == 503, body[:500]
    assert answer["Retry-After"] == "5"
    assert "try again" in body.lower()
    assert "wrong" not in body.lower()
    for name in methods:
        store.__dict__.pop(name, None)
    assert browser.post("/login/", form).status_code == 303
"""


def test_the_django_examples_login_in_an_outage(tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(
        DOCS / "examples" / "django_app",
        project,
        ignore=shutil.ignore_patterns("__pycache__", "*.sqlite3"),
    )
    (project / "test_outage.py").write_text(DJANGO_TEST)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_"))}
    env.pop("PYTHONPATH", None)
    env |= {
        "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        "DJANGO_DEBUG": "1",
        "ACME_DATABASE": str(tmp_path / "acme.sqlite3"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:asyncio"],
        cwd=project, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"{done.stdout[-4000:]}\n{done.stderr[-2000:]}"
    assert "1 passed" in done.stdout, done.stdout
