"""Each guide's example app, copied out of the source tree as a reader copies it, answers a
paused sign-in as stepup's pages do (issue 14): it says attempts are paused and until
when, in stepup's words (``throttled_message``), and its ``429`` says in ``Retry-After``
how many seconds are left (RFC 9110 section 10.2.3), counted on the app's clock. The
examples' pages are English, so the words are English whatever the browser asks for.
The Django example has no throttle of its own on its sign-in (the guide says to put one
in front of it), so it has no pause to report."""

from __future__ import annotations

import base64
import importlib.util
import re
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest
from argon2 import PasswordHasher
from starlette.testclient import TestClient

from stepup.adapters.idp.password import CHEAPEST
from stepup.adapters.storage.memory import MemoryStore
from stepup.integrations.views import throttled_message
from stepup.testing import SettableClock

DOCS = Path(__file__).resolve().parents[2] / "docs"
CHEAP = PasswordHasher.from_parameters(CHEAPEST)
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
#: Three free guesses, then the fourth pauses the user name for 30 s (ThrottlePolicy's
#: defaults); the fifth comes this much later and is answered with what is left.
LATER = 12.5
LEFT = "18"  # 30 - 12.5 = 17.5 s, rounded up: never "try now" before the pause ends
GERMAN = {"Accept-Language": "de"}


def _load(name: str, into: Path) -> ModuleType:
    """The example as a reader has it: a copy in a directory of its own, imported."""
    path = Path(shutil.copy(DOCS / "examples" / f"{name}.py", into))
    spec = importlib.util.spec_from_file_location(f"throttle_example_{name}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _says_paused_until(status: int, retry_after: str | None, body: str, until: float) -> None:
    assert status == 429, body[:500]
    assert retry_after == LEFT
    assert str(throttled_message(until)) in body  # its exact words, the time included
    assert "wait a while" not in body.lower()


@pytest.mark.parametrize("framework", ["starlette", "fastapi"])
def test_the_asgi_examples_say_until_when_sign_in_is_paused(framework: str, tmp_path: Path) -> None:
    clock = SettableClock()
    example = _load(f"{framework}_app", tmp_path)
    app = example.create_app(store=MemoryStore(), clock=clock, hasher=CHEAP)
    with TestClient(app, follow_redirects=False) as browser:
        token = _TOKEN.search(browser.get("/login").text)
        assert token is not None
        form = {"csrf_token": token.group(1), "username": "bob", "password": "guess"}
        answers = [browser.post("/login", data=form, headers=GERMAN) for _ in range(4)]
        assert [answer.status_code for answer in answers] == [401] * 4
        until = clock() + 30
        clock.advance(LATER)
        paused = browser.post("/login", data=form, headers=GERMAN)
        _says_paused_until(
            paused.status_code, paused.headers.get("Retry-After"), paused.text, until
        )
        clock.advance(30 - LATER + 1)
        right = {**form, "password": "bob password"}
        assert browser.post("/login", data=right).status_code == 303


def test_the_flask_example_says_until_when_sign_in_is_paused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECRET_KEY", "s" * 32)
    monkeypatch.setenv("STEPUP_ENCRYPTION_KEY", base64.urlsafe_b64encode(b"k" * 32).decode())
    monkeypatch.chdir(tmp_path)
    clock = SettableClock()
    example = _load("flask_app", tmp_path)
    app = example.create_app({"TESTING": True, "STEPUP_STORE": "memory://", "STEPUP_CLOCK": clock})
    browser = app.test_client()
    token = _TOKEN.search(browser.get("/login").get_data(as_text=True))
    assert token is not None
    form = {"csrf_token": token.group(1), "username": "bob", "password": "guess"}
    answers = [browser.post("/login", data=form, headers=GERMAN) for _ in range(4)]
    assert [answer.status_code for answer in answers] == [401] * 4
    until = clock() + 30
    clock.advance(LATER)
    paused = browser.post("/login", data=form, headers=GERMAN)
    body = paused.get_data(as_text=True)
    _says_paused_until(paused.status_code, paused.headers.get("Retry-After"), body, until)
    clock.advance(30 - LATER + 1)
    assert browser.post("/login", data={**form, "password": "bob password"}).status_code == 303
