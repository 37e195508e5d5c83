"""The passkey endpoints' answers when the store is down, to a request without a CSRF
token, and to a rename whose name is not text (Flask; the same in every framework).

- Every 503 carries ``Retry-After``; a browser asking for the passkeys page gets the
  "try again" page, a script the JSON ``unavailable``.
- The CSRF token is checked before the sign-in: a JSON request without one gets the
  403 ``csrf`` whether or not anyone is signed in or a sign-in waits.
- A rename whose ``name`` is not text is a 400 that says so (nothing renamed), not
  that the browser sent no passkey answer.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from integrations.flask.flask_support import Browser, TestApp, app_policy, make_app
from integrations.flask.test_passkeys import CONFIG, _add, _json
from stepup.adapters.storage.memory import MemoryStore
from stepup.integrations.http import RETRY_AFTER
from stepup.integrations.passkey_endpoint import TEXT as PASSKEY_TEXT
from stepup.integrations.views import TEXT
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


def _app(store: MemoryStore) -> TestApp:
    policy = app_policy().with_sign_in_counts()  # a user with a passkey has a second step
    return make_app(clock=SettableClock(), store=store, config=CONFIG, policy=policy)


def _signed_in(test_app: TestApp) -> Browser:
    browser = test_app.client()
    assert browser.login("alice").status_code == 303
    return browser


def _post_json(browser: Browser, url: str, body: Any, token: str = "") -> Any:
    headers = {"X-CSRF-Token": token} if token else {}
    return browser.post(
        url, data=json.dumps(body), content_type="application/json", headers=headers
    )


def test_a_store_outage_is_the_try_again_page_for_a_browser_and_every_503_says_when() -> None:
    store = _Outage()
    test_app = _app(store)
    alice = _signed_in(test_app)
    assert _add(alice)[1].status_code == 200
    token = alice.csrf("/stepup/passkeys")
    store.down = True
    page = alice.get("/stepup/passkeys", headers=HTML)
    assert page.status_code == 503
    assert page.content_type.startswith("text/html")
    assert page.headers["Retry-After"] == RETRY_AFTER
    assert TEXT["unavailable"] in page.get_data(as_text=True)
    script = _json(alice, "/stepup/reauth/passkey/begin", {"action": "api_key.read"}, csrf=token)
    assert script.status_code == 503
    assert script.get_json()["error"] == "unavailable"
    assert script.headers["Retry-After"] == RETRY_AFTER
    store.down = False
    alice.post("/logout")
    second = test_app.client()
    assert second.login("alice").headers["Location"] == VERIFY
    token = second.csrf(VERIFY)
    store.down = True
    begin = _post_json(second, VERIFY + "/passkey/begin", {}, token)
    assert begin.status_code == 503
    assert begin.get_json()["error"] == "unavailable"
    assert begin.headers["Retry-After"] == RETRY_AFTER


@pytest.mark.parametrize(
    "url",
    [
        "/stepup/passkeys/register/begin",
        "/stepup/passkeys/some-id/rename",
        "/stepup/reauth/passkey/begin",
        VERIFY + "/passkey/begin",
    ],
)
def test_a_script_without_a_token_gets_the_csrf_refusal_before_the_sign_in(url: str) -> None:
    nobody = _app(MemoryStore()).client()
    refused = _post_json(nobody, url, {"name": "x"})
    assert refused.status_code == 403
    assert refused.get_json()["error"] == "csrf"


@pytest.mark.parametrize("name", [None, 5, ["Laptop"], {"text": "Laptop"}])
def test_a_rename_whose_name_is_not_text_says_so_and_renames_nothing(name: object) -> None:
    store = MemoryStore()
    alice = _signed_in(_app(store))
    assert _add(alice, "Laptop")[1].status_code == 200
    (passkey,) = store.list_passkeys("alice")
    url = f"/stepup/passkeys/{passkey.credential_id}/rename"
    refused = _json(alice, url, {"name": name})
    assert refused.status_code == 400
    assert refused.get_json() == {"error": "malformed", "title": PASSKEY_TEXT["name_not_text"]}
    assert [p.name for p in store.list_passkeys("alice")] == ["Laptop"]
