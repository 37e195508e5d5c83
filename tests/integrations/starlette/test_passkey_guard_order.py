"""Starlette: the guarded passkey endpoints check the CSRF token, then the fresh
re-authentication, and only then the body, as Flask and Django: a script without the
grant gets its 401 ``reauth_required`` whatever it sent (not a 400 ``malformed`` that
says nothing of the re-authentication it needs); with the grant, a bad body is the 400.
Removing reads no body at all, as in Flask and Django."""

from __future__ import annotations

from typing import Any

import pytest

from integrations.starlette.starlette_support import (
    Browser,
    TestApp,
    confirm_factors,
    csrf_token,
    make_app,
)
from stepup.adapters.storage.memory import MemoryStore
from stepup.testing import SettableClock

ORIGIN = "http://localhost"
REGISTER = ("/stepup/passkeys/register/begin", "/stepup/passkeys/register/finish")
REMOVE = "/stepup/passkeys/abc/remove"
BAD_BODIES = [b"[]", b"not json", b'{"credential": {}, "name": 5}']


@pytest.fixture
def test_app(clock: SettableClock) -> TestApp:
    return make_app(
        clock=clock, store=MemoryStore(), passkeys_rp_id="localhost", passkeys_origins=(ORIGIN,)
    )


def _post(browser: Browser, url: str, body: bytes, token: str | None = None) -> Any:
    page = browser.get("/stepup/passkeys")
    assert page.status_code == 200, page.text
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "X-CSRF-Token": csrf_token(page.text) if token is None else token,
    }
    return browser.post(url, content=body, headers=headers)


@pytest.mark.parametrize("url", [*REGISTER, REMOVE])
@pytest.mark.parametrize("body", BAD_BODIES)
def test_without_a_fresh_grant_a_bad_body_is_asked_to_reauthenticate(
    alice: Browser, url: str, body: bytes
) -> None:
    answer = _post(alice, url, body)
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"] == "reauth_required"
    assert answer.json()["action"] == ("passkey.remove" if url == REMOVE else "passkey.add")


@pytest.mark.parametrize("url", REGISTER)
@pytest.mark.parametrize("body", BAD_BODIES[:2])
def test_with_a_fresh_grant_a_bad_body_is_malformed(alice: Browser, url: str, body: bytes) -> None:
    confirm_factors(alice)
    answer = _post(alice, url, body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "malformed"


@pytest.mark.parametrize("body", BAD_BODIES)
def test_removing_reads_no_body(alice: Browser, body: bytes) -> None:
    confirm_factors(alice)
    answer = _post(alice, REMOVE, body)  # an id nobody has: Flask's and Django's 404
    assert answer.status_code == 404, answer.text
    assert answer.json()["error"] == "not_found"


@pytest.mark.parametrize("url", [*REGISTER, REMOVE])
def test_the_csrf_token_is_checked_before_the_grant(alice: Browser, url: str) -> None:
    answer = _post(alice, url, b"[]", token="forged")
    assert answer.status_code == 403, answer.text
    assert answer.json()["error"] == "csrf"


def test_renaming_is_not_guarded_and_a_bad_body_is_malformed(alice: Browser) -> None:
    answer = _post(alice, "/stepup/passkeys/abc/rename", b"[]")
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "malformed"
