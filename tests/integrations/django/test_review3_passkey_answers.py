"""The passkey endpoints' answers when the store is down, to a request without a CSRF
token, and to a rename whose name is not text (Django; the same in every framework).

- Every 503 carries ``Retry-After``; a browser asking for the passkeys page gets the
  "try again" page, a script the JSON ``unavailable``.
- The CSRF token is checked before the sign-in: a JSON request without one gets the
  403 ``csrf`` whether or not anyone is signed in or a sign-in waits.
- A rename whose ``name`` is not text is a 400 that says so (nothing renamed), not
  that the browser sent no passkey answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from integrations.django.django_support import Browser, Site, running_site, user_id
from integrations.django.test_passkeys import PASSKEYS, _add, _csrf, _json
from integrations.django.testapp.hooks import app_policy
from stepup.adapters.storage.memory import MemoryStore
from stepup.integrations.http import RETRY_AFTER
from stepup.integrations.passkey_endpoint import TEXT as PASSKEY_TEXT
from stepup.integrations.views import TEXT
from stepup.passkeys import Passkey
from stepup.testing import SettableClock

VERIFY = "/stepup/2fa/verify/"
HTML = "text/html,application/xhtml+xml,*/*;q=0.8"


class _Outage(MemoryStore):
    """A store whose passkey list fails once ``down`` is set."""

    down = False

    def list_passkeys(self, user_id: str) -> tuple[Passkey, ...]:
        if self.down:
            raise ConnectionError("the store is down")
        return super().list_passkeys(user_id)


@pytest.fixture
def store() -> _Outage:
    return _Outage()


@pytest.fixture
def site(store: _Outage, clock: SettableClock) -> Iterator[Site]:
    policy = app_policy().with_sign_in_counts()  # a user with a passkey has a second step
    with running_site(store, clock, POLICY=policy, **PASSKEYS) as running:
        from stepup.integrations.django.services import get_stepup

        get_stepup().tenant_settings.ensure("acme")
        yield running


def _post_json(browser: Browser, url: str, body: Any, token: str = "") -> Any:
    headers = {"X-CSRFToken": token} if token else {}
    data = json.dumps(body)
    return browser.client.post(url, data=data, content_type="application/json", headers=headers)


def test_a_store_outage_is_the_try_again_page_for_a_browser_and_every_503_says_when(
    site: Site, store: _Outage
) -> None:
    alice = site.browser("alice")
    assert _add(alice)[1].status_code == 200
    token = _csrf(alice)
    store.down = True
    page = alice.get("/stepup/passkeys/", HTTP_ACCEPT=HTML)
    assert page.status_code == 503
    assert page["Content-Type"].startswith("text/html")
    assert page["Retry-After"] == RETRY_AFTER
    assert TEXT["unavailable"] in page.content.decode()
    script = _json(alice, "/stepup/reauth/passkey/begin", {"action": "api_key.read"}, csrf=token)
    assert script.status_code == 503
    assert script.json()["error"] == "unavailable"
    assert script["Retry-After"] == RETRY_AFTER
    store.down = False
    alice.logout()
    second = Browser(site)
    assert second.login("alice").status_code == 303
    token = second.fields(VERIFY)["csrfmiddlewaretoken"]
    store.down = True
    begin = _post_json(second, "/stepup/2fa/verify/passkey/begin", {}, token)
    assert begin.status_code == 503
    assert begin.json()["error"] == "unavailable"
    assert begin["Retry-After"] == RETRY_AFTER


@pytest.mark.parametrize(
    "url",
    [
        "/stepup/passkeys/register/begin",
        "/stepup/passkeys/some-id/rename",
        "/stepup/reauth/passkey/begin",
        "/stepup/2fa/verify/passkey/begin",
    ],
)
def test_a_script_without_a_token_gets_the_csrf_refusal_before_the_sign_in(
    site: Site, url: str
) -> None:
    refused = _post_json(Browser(site), url, {"name": "x"})
    assert refused.status_code == 403
    assert refused.json()["error"] == "csrf"


@pytest.mark.parametrize("name", [None, 5, ["Laptop"], {"text": "Laptop"}])
def test_a_rename_whose_name_is_not_text_says_so_and_renames_nothing(
    site: Site, store: _Outage, name: object
) -> None:
    alice = site.browser("alice")
    assert _add(alice, "Laptop")[1].status_code == 200
    (passkey,) = store.list_passkeys(user_id("alice"))
    refused = _json(alice, f"/stepup/passkeys/{passkey.credential_id}/rename", {"name": name})
    assert refused.status_code == 400
    assert refused.json() == {"error": "malformed", "title": PASSKEY_TEXT["name_not_text"]}
    assert [p.name for p in store.list_passkeys(user_id("alice"))] == ["Laptop"]
