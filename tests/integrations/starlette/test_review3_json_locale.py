"""Starlette: stepup's JSON answers are titled in the locale of its pages (issue 14: every
user-facing string, JSON error titles included, "chosen from the request's
Accept-Language or the app's own locale hook"). With ``locale_selector`` answering "de"
(an async hook here), a client that asks for English still reads German titles, as the
pages it opens are German: the guard's 401, a passkey endpoint's error
(``stepup-passkeys.js`` shows it in the page's error box), the tenant endpoint's JSON:API
errors (they negotiated ``Accept-Language`` alone), the status endpoint and a bearer
guard's refusal (Starlette's ``requires_token`` and FastAPI's ``require_token``, which
followed ``Accept-Language`` alone). The hook is never asked for a request the guard lets
through. Without a hook, ``Accept-Language`` decides as before (see the Flask twin)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from api.tokens_support import T0, guard, sign
from integrations.starlette.starlette_support import TENANT, Browser, make_app
from stepup.adapters.storage.memory import MemoryStore
from stepup.i18n import translate
from stepup.integrations.fastapi import require_token
from stepup.integrations.http import TITLES
from stepup.integrations.passkey_endpoint import TEXT as PASSKEY_TEXT
from stepup.integrations.passkey_endpoint import malformed_response
from stepup.integrations.starlette.bearer import requires_token
from stepup.testing import SettableClock
from stepup.tokens import AccessToken

ORIGIN = "http://localhost"
PASSKEYS = {"passkeys_rp_id": "localhost", "passkeys_origins": (ORIGIN,)}
ENGLISH_SCRIPT = {"Accept": "application/json", "Accept-Language": "en"}
GERMAN_SCRIPT = {"Accept": "application/json", "Accept-Language": "de"}
FLAG_OFF = {
    "data": {"type": "tenant", "attributes": {"feature_flags": {"sensitive_actions_reauth": False}}}
}


def german(msgid: str) -> str:
    text = translate(msgid, "de")
    assert text != translate(msgid, "en")  # the catalog has it: the test can tell
    return text


def english(msgid: str) -> str:
    return translate(msgid, "en")


class App:
    """The test app with a locale hook answering ``answer`` (``hook=False``: none)."""

    def __init__(self, answer: str | None = "de", *, hook: bool = True) -> None:
        self.asked: list[str] = []

        async def locale(request: Request) -> str | None:
            self.asked.append(request.url.path)
            return answer

        options: dict[str, Any] = {"locale_selector": locale} if hook else {}
        self.test_app = make_app(clock=SettableClock(), store=MemoryStore(), **PASSKEYS, **options)
        self.browsers: list[Browser] = []

    def browser(self, user: str | None = "alice", *, flag: bool = True) -> Browser:
        browser = self.test_app.browser()
        self.browsers.append(browser)
        if user is not None:
            assert browser.login(user).status_code == 303
            if flag:
                assert browser.patch_tenant(True).status_code == 200
        return browser


@pytest.fixture
def apps() -> Iterator[list[App]]:
    made: list[App] = []
    yield made
    for app in made:
        for browser in app.browsers:
            browser.close()


def _app(apps: list[App], answer: str | None = "de", *, hook: bool = True) -> App:
    app = App(answer, hook=hook)
    apps.append(app)
    return app


def _title(response: Any) -> str:
    body = response.json()
    title: str = body["errors"][0]["title"] if "errors" in body else body["title"]
    return title


def test_the_guard_401_is_titled_as_the_pages_read(apps: list[App]) -> None:
    alice = _app(apps).browser()
    refused = alice.get("/api-key", headers=ENGLISH_SCRIPT)
    assert refused.status_code == 401
    assert refused.json()["error"] == "reauth_required"
    assert _title(refused) == german(TITLES["reauth_required"])
    page = alice.get(refused.json()["reauth_url"], headers={"Accept-Language": "en"})
    assert page.status_code == 200
    assert '<html lang="de"' in page.text  # the page it opens: German


def test_the_hook_is_not_asked_for_a_request_the_guard_lets_through(apps: list[App]) -> None:
    app = _app(apps)
    alice = app.browser()
    assert alice.post("/_test/grant", data={"method": ["pwd"]}).status_code == 204
    app.asked.clear()
    allowed = alice.get("/api-key", headers=ENGLISH_SCRIPT)
    assert allowed.status_code == 200
    assert app.asked == []


def test_a_passkey_endpoint_error_is_titled_as_the_pages_read(apps: list[App]) -> None:
    alice = _app(apps).browser()
    page = alice.get("/stepup/passkeys")
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    refused = alice.post(
        "/stepup/passkeys/some-id/rename",
        content="{not json",
        headers={"Content-Type": "application/json", "X-CSRF-Token": token, **ENGLISH_SCRIPT},
    )
    assert refused.status_code == 400
    expected = json.loads(malformed_response("de").body)["title"]
    assert expected != json.loads(malformed_response("en").body)["title"]
    assert _title(refused) == expected
    forged = alice.post(
        "/stepup/passkeys/some-id/rename",
        content="{}",
        headers={"Content-Type": "application/json", "X-CSRF-Token": "forged", **ENGLISH_SCRIPT},
    )
    assert forged.status_code == 403
    assert _title(forged) == german(PASSKEY_TEXT["csrf_json"])


def test_the_tenant_endpoint_errors_are_titled_as_the_pages_read(apps: list[App]) -> None:
    alice = _app(apps).browser()
    other = alice.get(f"/stepup/tenants/{TENANT}", headers=ENGLISH_SCRIPT)
    assert other.status_code == 405
    assert _title(other) == german("Tenant settings can only be changed with PATCH")
    refused = alice.client.patch(
        f"/stepup/tenants/{TENANT}",
        json=FLAG_OFF,
        headers={"Content-Type": "application/vnd.api+json", "Accept-Language": "en"},
    )
    assert refused.status_code == 401
    assert _title(refused) == german(TITLES["reauth_required"])


def test_the_status_endpoint_is_titled_as_the_pages_read(apps: list[App]) -> None:
    stranger = _app(apps).browser(None)
    answer = stranger.get("/stepup/reauth/status?action=api_key.read", headers=ENGLISH_SCRIPT)
    assert answer.status_code == 401
    assert _title(answer) == german(TITLES["authentication_required"])


def test_a_signed_out_script_is_titled_as_the_pages_read(apps: list[App]) -> None:
    stranger = _app(apps).browser(None)
    answer = stranger.get("/api-key", headers=ENGLISH_SCRIPT)
    assert answer.status_code == 401
    assert _title(answer) == german(TITLES["authentication_required"])


def test_without_a_hook_accept_language_decides(apps: list[App]) -> None:
    app = _app(apps, hook=False)
    alice = app.browser()
    refused = alice.get("/api-key", headers=ENGLISH_SCRIPT)
    assert _title(refused) == english(TITLES["reauth_required"])
    refused = alice.get("/api-key", headers=GERMAN_SCRIPT)
    assert _title(refused) == german(TITLES["reauth_required"])
    stranger = app.browser(None)
    status = stranger.get("/stepup/reauth/status?action=api_key.read", headers=GERMAN_SCRIPT)
    assert _title(status) == german(TITLES["authentication_required"])


@pytest.mark.parametrize("answer", [None, "fr"])
def test_a_hook_without_an_answer_stepup_knows_leaves_it_to_accept_language(
    apps: list[App], answer: str | None
) -> None:
    alice = _app(apps, answer).browser()
    assert _title(alice.get("/api-key", headers=GERMAN_SCRIPT)) == german(TITLES["reauth_required"])
    assert _title(alice.get("/api-key", headers=ENGLISH_SCRIPT)) == english(
        TITLES["reauth_required"]
    )


# The bearer guards (Starlette's requires_token, FastAPI's require_token) -----------------


def _api(framework: str, answer: str | None = "de") -> tuple[Any, list[str]]:
    """An app with stepup's middleware, its (async) locale hook answering ``answer``, and
    one endpoint guarded by a bearer token: ``DELETE /api/w/{name}``."""

    asked: list[str] = []

    async def locale(request: Request) -> str | None:
        asked.append(request.url.path)
        if answer == "raise":  # a hook written for pages, meeting an API client
            raise LookupError("request.state.profile_language")
        return answer

    protect = guard(SettableClock(T0), asynchronous=True)

    @requires_token(protect, "workspace.delete")
    async def delete(request: Request) -> Response:
        return JSONResponse({"deleted": request.path_params["name"]})

    routes = (
        [Route("/api/w/{name}", delete, methods=["DELETE"])] if framework == "starlette" else []
    )
    test_app = make_app(
        clock=SettableClock(T0),
        store=MemoryStore(),
        app_class=FastAPI if framework == "fastapi" else Starlette,
        extra_routes=lambda stepup: routes,
        locale_selector=locale,
    )
    if framework == "fastapi":
        dependency = Depends(require_token(protect, "workspace.delete"))

        async def fastapi_delete(name: str, token: AccessToken = dependency) -> dict[str, str]:
            return {"deleted": name}

        test_app.app.add_api_route("/api/w/{name}", fastapi_delete, methods=["DELETE"])
    return test_app, asked


def _refusal(response: Any) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    return body.get("detail", body)  # FastAPI's HTTPException wraps it


@pytest.mark.parametrize("framework", ["starlette", "fastapi"])
def test_a_bearer_guard_refusal_is_titled_as_the_pages_read(framework: str) -> None:
    test_app, asked = _api(framework)
    with TestClient(test_app.app) as api:
        no_token = api.delete("/api/w/prod", headers={"Accept-Language": "en"})
        assert no_token.status_code == 401
        assert no_token.headers["WWW-Authenticate"] == 'Bearer realm="api"'
        assert _refusal(no_token)["title"] == german(TITLES["authentication_required"])
        stale = api.delete(
            "/api/w/prod",
            headers={
                "Authorization": f"Bearer {sign(auth_time=T0 - 301)}",
                "Accept-Language": "en",
            },
        )
        assert stale.status_code == 401
        body = _refusal(stale)
        assert (body["error"], body["title"]) == (
            "reauth_required",
            german(TITLES["reauth_required"]),
        )
        assert body["max_age"] == 300  # the rest as the guard built it
        asked.clear()
        allowed = api.delete("/api/w/prod", headers={"Authorization": f"Bearer {sign()}"})
        assert allowed.status_code == 200
        assert asked == []  # never awaited for a request that goes ahead


@pytest.mark.parametrize("framework", ["starlette", "fastapi"])
@pytest.mark.parametrize("answer", [None, "fr"])
def test_a_bearer_guard_without_a_known_hook_answer_follows_accept_language(
    framework: str, answer: str | None
) -> None:
    test_app, _ = _api(framework, answer)
    with TestClient(test_app.app) as api:
        for language in ("en", "de"):
            refused = api.delete("/api/w/prod", headers={"Accept-Language": language})
            expected = translate(TITLES["authentication_required"], language)
            assert _refusal(refused)["title"] == expected


@pytest.mark.parametrize("framework", ["starlette", "fastapi"])
def test_a_locale_hook_that_raises_leaves_the_refusal_to_accept_language(
    framework: str,
) -> None:
    """A raising hook turned every bearer refusal into a 500 without its challenge: the
    refusal stands, titled by Accept-Language."""
    test_app, _ = _api(framework, "raise")
    with TestClient(test_app.app, raise_server_exceptions=False) as api:
        no_token = api.delete("/api/w/prod", headers={"Accept-Language": "de"})
        assert no_token.status_code == 401
        assert no_token.headers["WWW-Authenticate"] == 'Bearer realm="api"'
        assert _refusal(no_token)["title"] == german(TITLES["authentication_required"])
        stale = api.delete(
            "/api/w/prod", headers={"Authorization": f"Bearer {sign(auth_time=T0 - 301)}"}
        )
        assert stale.status_code == 401
        assert "insufficient_user_authentication" in stale.headers["WWW-Authenticate"]
