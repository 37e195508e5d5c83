"""Starlette and FastAPI begin an enrolment as Flask and Django do: on a POST to
``/2fa/enrol`` with the form's CSRF token, which a reload sends again and which shows
this session's pending secret again; a GET or HEAD (a link from another site, a link
prefetcher) is 405 and writes nothing, neither a pending credential in the store nor the
enrolment's id in the session; a POST without the token is the 403 that changes nothing.
The code confirms at ``/2fa/confirm``."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest

from integrations.starlette.starlette_support import Browser, TestApp, csrf_token
from stepup.integrations.views import ENROLLING

_KEY = re.compile(r'id="stepup-manual-key">([^<]+)</code>')
ENROL = "/stepup/2fa/enrol"
SETTINGS = "/stepup/2fa"


def _session(browser: Browser) -> dict[str, Any]:
    """What Starlette's session cookie holds (base64 JSON, then the signature)."""
    cookie = browser.client.cookies.get("session")
    assert cookie is not None
    payload = cookie.split(".")[0]
    return dict(json.loads(base64.b64decode(payload + "=" * (-len(payload) % 4))))


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_get_or_head_is_405_and_begins_nothing(
    test_app: TestApp, bob: Browser, method: str
) -> None:
    before = _session(bob)
    answer = bob.client.request(method, ENROL)
    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST"
    assert test_app.store.get_credential("bob") is None
    assert ENROLLING not in _session(bob)
    assert _session(bob) == before


def test_a_post_without_the_token_is_403_and_begins_nothing(
    test_app: TestApp, bob: Browser
) -> None:
    assert bob.post(ENROL).status_code == 403
    assert bob.post(ENROL, data={"csrf_token": "forged"}).status_code == 403
    assert test_app.store.get_credential("bob") is None
    assert ENROLLING not in _session(bob)


def test_a_post_with_the_token_begins_and_a_reload_shows_the_same_secret(
    test_app: TestApp, bob: Browser
) -> None:
    token = csrf_token(bob.get(SETTINGS).text)
    page = bob.post(ENROL, data={"csrf_token": token})
    assert page.status_code == 200
    found = _KEY.search(page.text)
    assert found is not None
    pending = test_app.store.get_credential("bob")
    assert pending is not None
    assert not pending.confirmed
    assert _session(bob)[ENROLLING] == pending.totp_devices[0].device_id
    assert f'action="{SETTINGS}/confirm"' in page.text  # where the code goes
    again = bob.post(ENROL, data={"csrf_token": token})  # a reload posts the form again
    assert _KEY.findall(again.text) == [found.group(1)]


def test_the_settings_page_posts_the_form_with_its_token(bob: Browser) -> None:
    page = bob.get(SETTINGS).text
    form = re.search(r'<form method="post" action="/stepup/2fa/enrol">\s*<input[^>]+>', page)
    assert form is not None, page
    assert 'name="csrf_token"' in form.group(0)
