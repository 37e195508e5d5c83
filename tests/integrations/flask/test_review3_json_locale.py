"""Flask: stepup's JSON answers are titled in the locale of its pages (issue 14: every
user-facing string, JSON error titles included, "chosen from the request's
Accept-Language or the app's own locale hook"). With ``@stepup.locale_selector``
answering "de", a client that asks for English still reads German titles, as the pages
it opens are German: the guard's 401, a passkey endpoint's error (``stepup-passkeys.js``
shows it in the page's error box), the tenant endpoint's JSON:API errors, the status
endpoint and a bearer guard's 401. The hook is never asked for a request the guard lets
through. Without a hook, ``Accept-Language`` decides as before."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask, g, request

from api.tokens_support import T0, guard, sign
from integrations.flask.flask_support import (
    TENANT,
    Browser,
    TestApp,
    flag_body,
    fresh_grant,
    make_app,
    set_flag,
)
from stepup.adapters.storage.memory import MemoryStore
from stepup.i18n import translate
from stepup.integrations.flask import Stepup
from stepup.integrations.flask.bearer import bearer_required
from stepup.integrations.http import TITLES
from stepup.integrations.passkey_endpoint import TEXT as PASSKEY_TEXT
from stepup.integrations.passkey_endpoint import malformed_response
from stepup.testing import SettableClock

ORIGIN = "http://localhost"
PASSKEYS = {"STEPUP_PASSKEYS_RP_ID": "localhost", "STEPUP_PASSKEYS_ORIGINS": [ORIGIN]}
#: A script that asks for English: the app's hook says German.
ENGLISH_SCRIPT = {"Accept": "application/json", "Accept-Language": "en"}
GERMAN_SCRIPT = {"Accept": "application/json", "Accept-Language": "de"}


def german(msgid: str) -> str:
    text = translate(msgid, "de")
    assert text != translate(msgid, "en")  # the catalog has it: the test can tell
    return text


def english(msgid: str) -> str:
    return translate(msgid, "en")


def _app(selector: Callable[[], str | None] | None) -> tuple[TestApp, list[str]]:
    """The test app with ``selector`` as its locale hook (none: ``None``), and the paths
    of the requests the hook was asked for; plus a bearer-guarded API view."""
    asked: list[str] = []

    def setup(app: Flask, stepup: Stepup) -> None:
        if selector is not None:

            @stepup.locale_selector
            def locale() -> str | None:
                asked.append(request.path)
                return selector()

        @app.delete("/api/workspaces/<name>")
        @bearer_required(guard(clock), "workspace.delete")
        def delete(name: str) -> dict[str, str]:
            return {"deleted": name, "by": g.stepup_token.subject}

    clock = SettableClock(T0)
    test_app = make_app(store=MemoryStore(), clock=clock, config=PASSKEYS, setup=setup)
    return test_app, asked


def _alice(test_app: TestApp) -> Browser:
    alice = test_app.client()
    assert alice.login("alice").status_code == 303
    set_flag(alice)
    return alice


def _title(response: Any) -> str:
    body = response.get_json()
    title: str = body["errors"][0]["title"] if "errors" in body else body["title"]
    return title


def test_the_guard_401_is_titled_as_the_pages_read() -> None:
    test_app, _ = _app(lambda: "de")
    alice = _alice(test_app)
    refused = alice.get("/api-key", headers=ENGLISH_SCRIPT)
    assert refused.status_code == 401
    assert refused.get_json()["error"] == "reauth_required"
    assert _title(refused) == german(TITLES["reauth_required"])
    page = alice.get(refused.get_json()["reauth_url"], headers={"Accept-Language": "en"})
    assert page.status_code == 200
    assert '<html lang="de"' in page.get_data(as_text=True)  # the page it opens: German


def test_the_hook_is_not_asked_for_a_request_the_guard_lets_through() -> None:
    test_app, asked = _app(lambda: "de")
    alice = _alice(test_app)
    fresh_grant(alice)
    asked.clear()
    allowed = alice.get("/api-key", headers=ENGLISH_SCRIPT)
    assert allowed.status_code == 200
    assert asked == []


def test_a_passkey_endpoint_error_is_titled_as_the_pages_read() -> None:
    test_app, _ = _app(lambda: "de")
    alice = _alice(test_app)
    token = alice.csrf("/stepup/passkeys")
    refused = alice.post(
        "/stepup/passkeys/some-id/rename",
        data="{not json",
        content_type="application/json",
        headers={"X-CSRF-Token": token, "Accept-Language": "en"},
    )
    assert refused.status_code == 400
    expected = json.loads(malformed_response("de").body)["title"]
    assert expected != json.loads(malformed_response("en").body)["title"]
    assert _title(refused) == expected
    # Its CSRF refusal too.
    forged = alice.post(
        "/stepup/passkeys/some-id/rename",
        data="{}",
        content_type="application/json",
        headers={"X-CSRF-Token": "forged", "Accept-Language": "en"},
    )
    assert forged.status_code == 403
    assert _title(forged) == german(PASSKEY_TEXT["csrf_json"])


def test_the_tenant_endpoint_errors_are_titled_as_the_pages_read() -> None:
    test_app, _ = _app(lambda: "de")
    alice = _alice(test_app)
    other = alice.get(f"/stepup/tenants/{TENANT}", headers=ENGLISH_SCRIPT)
    assert other.status_code == 405
    assert _title(other) == german("Tenant settings can only be changed with PATCH")
    refused = alice.patch(
        f"/stepup/tenants/{TENANT}",
        data=json.dumps(flag_body(False)),
        content_type="application/vnd.api+json",
        headers={"Accept-Language": "en"},
    )
    assert refused.status_code == 401
    assert _title(refused) == german(TITLES["reauth_required"])


def test_the_status_endpoint_is_titled_as_the_pages_read() -> None:
    test_app, _ = _app(lambda: "de")
    stranger = test_app.client()
    answer = stranger.get("/stepup/reauth/status?action=api_key.read", headers=ENGLISH_SCRIPT)
    assert answer.status_code == 401
    assert _title(answer) == german(TITLES["authentication_required"])


def test_a_bearer_guard_401_is_titled_as_the_pages_read() -> None:
    test_app, asked = _app(lambda: "de")
    api = test_app.app.test_client()
    no_token = api.delete("/api/workspaces/prod", headers={"Accept-Language": "en"})
    assert no_token.status_code == 401
    assert _title(no_token) == german(TITLES["authentication_required"])
    stale = api.delete(
        "/api/workspaces/prod",
        headers={"Authorization": f"Bearer {sign(auth_time=T0 - 301)}", "Accept-Language": "en"},
    )
    assert stale.status_code == 401
    assert _title(stale) == german(TITLES["reauth_required"])
    asked.clear()
    allowed = api.delete("/api/workspaces/prod", headers={"Authorization": f"Bearer {sign()}"})
    assert allowed.status_code == 200
    assert asked == []


def test_without_a_hook_accept_language_decides() -> None:
    test_app, _ = _app(None)
    alice = _alice(test_app)
    assert _title(alice.get("/api-key", headers=ENGLISH_SCRIPT)) == english(
        TITLES["reauth_required"]
    )
    assert _title(alice.get("/api-key", headers=GERMAN_SCRIPT)) == german(TITLES["reauth_required"])
    stranger = test_app.client()
    status = stranger.get("/stepup/reauth/status?action=api_key.read", headers=GERMAN_SCRIPT)
    assert _title(status) == german(TITLES["authentication_required"])


@pytest.mark.parametrize("answer", [None, "fr"])
def test_a_hook_without_an_answer_stepup_knows_leaves_it_to_accept_language(
    answer: str | None,
) -> None:
    test_app, _ = _app(lambda: answer)
    alice = _alice(test_app)
    refused = alice.get("/api-key", headers=GERMAN_SCRIPT)
    assert _title(refused) == german(TITLES["reauth_required"])
    refused = alice.get("/api-key", headers=ENGLISH_SCRIPT)
    assert _title(refused) == english(TITLES["reauth_required"])
