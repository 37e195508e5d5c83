"""The passkey endpoints' answers when the store is down, to a request without a CSRF
token, and to a rename whose name is not text (Starlette; the same in every framework).

- Every 503 carries ``Retry-After``; a browser asking for the passkeys page gets the
  "try again" page, a script the JSON ``unavailable``.
- The CSRF token is checked before the sign-in, as Flask and Django check it: a JSON
  request without one gets the 403 ``csrf`` whether or not anyone is signed in or a
  sign-in waits (it got the sign-in's 401, or 400 ``sign_in_expired``).
- A rename whose ``name`` is not text is a 400 that says so (nothing renamed), not
  that the browser sent no passkey answer.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from integrations.starlette.starlette_support import Browser, TestApp, csrf_token, make_app
from integrations.starlette.test_passkeys import OPTIONS, _add, _json, _token
from stepup.adapters.storage.memory import MemoryStore
from stepup.integrations.http import RETRY_AFTER
from stepup.integrations.passkey_endpoint import TEXT as PASSKEY_TEXT
from stepup.integrations.views import TEXT, default_policy
from stepup.passkeys import Passkey
from stepup.testing import SettableClock

VERIFY = "/stepup/2fa/verify"
HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


class _Outage(MemoryStore):
    """A store whose passkey list fails once ``down`` is set."""

    down = False

    def list_passkeys(self, user_id: str) -> tuple[Passkey, ...]:
        if self.down:
            raise ConnectionError("the store is down")
        return super().list_passkeys(user_id)


def _app(store: MemoryStore, clock: SettableClock) -> TestApp:
    policy = default_policy().with_sign_in_counts()  # a user with a passkey has a second step
    return make_app(clock=clock, store=store, policy=policy, **OPTIONS)


def _signed_in(test_app: TestApp) -> Browser:
    browser = test_app.browser()
    assert browser.login("alice").status_code == 303
    return browser


def _post_json(browser: Browser, url: str, body: Any, token: str = "") -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["X-CSRF-Token"] = token
    return browser.post(url, content=json.dumps(body), headers=headers)


def test_a_store_outage_is_the_try_again_page_for_a_browser_and_every_503_says_when(
    clock: SettableClock,
) -> None:
    store = _Outage()
    test_app = _app(store, clock)
    alice = _signed_in(test_app)
    assert _add(alice)[1].status_code == 200
    token = _token(alice)
    store.down = True
    page = alice.get("/stepup/passkeys", headers=HTML)
    assert page.status_code == 503
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["retry-after"] == RETRY_AFTER
    assert TEXT["unavailable"] in page.text
    script = _json(alice, "/stepup/reauth/passkey/begin", {"action": "api_key.read"}, token=token)
    assert script.status_code == 503
    assert script.json()["error"] == "unavailable"
    assert script.headers["retry-after"] == RETRY_AFTER
    store.down = False
    alice.logout()
    second = test_app.browser()
    assert second.login("alice").headers["location"].endswith(VERIFY)
    token = csrf_token(second.get(VERIFY).text)
    store.down = True
    begin = _post_json(second, VERIFY + "/passkey/begin", {}, token)
    assert begin.status_code == 503
    assert begin.json()["error"] == "unavailable"
    assert begin.headers["retry-after"] == RETRY_AFTER


@pytest.mark.parametrize(
    "url",
    [
        "/stepup/passkeys/register/begin",
        "/stepup/passkeys/some-id/rename",
        "/stepup/reauth/passkey/begin",
        VERIFY + "/passkey/begin",
    ],
)
def test_a_script_without_a_token_gets_the_csrf_refusal_before_the_sign_in(
    clock: SettableClock, url: str
) -> None:
    nobody = _app(MemoryStore(), clock).browser()
    refused = _post_json(nobody, url, {"name": "x"})
    assert refused.status_code == 403
    assert refused.json()["error"] == "csrf"


def test_a_sign_in_that_expired_is_still_told_so_behind_its_pages_token(
    clock: SettableClock,
) -> None:
    test_app = _app(MemoryStore(), clock)
    alice = _signed_in(test_app)
    assert _add(alice)[1].status_code == 200
    alice.logout()
    second = test_app.browser()
    assert second.login("alice").headers["location"].endswith(VERIFY)
    token = csrf_token(second.get(VERIFY).text)
    clock.advance(test_app.stepup.sign_in_ttl + 1)
    expired = _post_json(second, VERIFY + "/passkey/begin", {}, token)
    assert expired.status_code == 400
    assert expired.json()["error"] == "sign_in_expired"


@pytest.mark.parametrize("name", [None, 5, ["Laptop"], {"text": "Laptop"}])
def test_a_rename_whose_name_is_not_text_says_so_and_renames_nothing(
    clock: SettableClock, name: object
) -> None:
    store = MemoryStore()
    alice = _signed_in(_app(store, clock))
    assert _add(alice, "Laptop")[1].status_code == 200
    (passkey,) = store.list_passkeys("alice")
    refused = _json(alice, f"/stepup/passkeys/{passkey.credential_id}/rename", {"name": name})
    assert refused.status_code == 400
    assert refused.json() == {"error": "malformed", "title": PASSKEY_TEXT["name_not_text"]}
    assert [p.name for p in store.list_passkeys("alice")] == ["Laptop"]
