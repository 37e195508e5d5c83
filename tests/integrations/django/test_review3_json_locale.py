"""Django: stepup's JSON answers are titled in the locale of its pages (issue 14: every
user-facing string, JSON error titles included, "chosen from the request's
Accept-Language or the app's own locale hook"). With ``STEPUP["LOCALE_SELECTOR"]``
answering "de", a client that asks for English still reads German titles, as the pages
it opens are German: the guard's 401, a passkey endpoint's error (``stepup-passkeys.js``
shows it in the page's error box), the tenant endpoint's JSON:API errors, the status
endpoint, the 401 to a signed-out script from ``request.stepup.require()`` and from the
device views, and a ``bearer_required`` view's refusal (these three followed
``Accept-Language`` alone). The hook is never asked for a request the guard lets through. Without a hook,
``Accept-Language`` decides as before (see the Flask twin)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.http import HttpRequest, JsonResponse
from django.test import Client, RequestFactory

from api.tokens_support import T0, guard, sign
from integrations.django.django_support import (
    TENANT,
    Browser,
    Site,
    flag_body,
    fresh_grant,
    running_site,
    set_flag,
)
from stepup.adapters.storage.memory import MemoryStore
from stepup.i18n import translate
from stepup.integrations.django.bearer import bearer_required
from stepup.integrations.django.middleware import StepupMiddleware
from stepup.integrations.http import TITLES
from stepup.integrations.passkey_endpoint import TEXT as PASSKEY_TEXT
from stepup.integrations.passkey_endpoint import malformed_response
from stepup.testing import SettableClock

ORIGIN = "http://localhost"
PASSKEYS = {"PASSKEYS_RP_ID": "localhost", "PASSKEYS_ORIGINS": [ORIGIN]}
ENGLISH_SCRIPT = {"HTTP_ACCEPT": "application/json", "HTTP_ACCEPT_LANGUAGE": "en"}
GERMAN_SCRIPT = {"HTTP_ACCEPT": "application/json", "HTTP_ACCEPT_LANGUAGE": "de"}
#: The paths the hook was asked for, and what it answers.
ASKED: list[str] = []
ANSWER: list[str | None] = ["de"]


def locale_hook(request: Any) -> str | None:
    """The project's ``LOCALE_SELECTOR`` (by dotted path)."""
    ASKED.append(request.path)
    return ANSWER[0]


HOOK = {"LOCALE_SELECTOR": f"{__name__}.locale_hook"}


def german(msgid: str) -> str:
    text = translate(msgid, "de")
    assert text != translate(msgid, "en")  # the catalog has it: the test can tell
    return text


def english(msgid: str) -> str:
    return translate(msgid, "en")


def _running(clock: SettableClock, **settings: Any) -> Iterator[Site]:
    ASKED.clear()
    with running_site(MemoryStore(), clock, **PASSKEYS, **settings) as running:
        from stepup.integrations.django.services import get_stepup

        get_stepup().tenant_settings.ensure(TENANT)
        yield running
    ANSWER[0] = "de"


@pytest.fixture
def site(clock: SettableClock) -> Iterator[Site]:
    yield from _running(clock, **HOOK)


@pytest.fixture
def site_without_hook(clock: SettableClock) -> Iterator[Site]:
    yield from _running(clock)


def _alice(site: Site) -> Browser:
    alice = site.browser("alice")
    set_flag(alice)
    return alice


def _title(response: Any) -> str:
    body = json.loads(response.content)  # a test client's response, or the view's own
    title: str = body["errors"][0]["title"] if "errors" in body else body["title"]
    return title


def test_the_guard_401_is_titled_as_the_pages_read(site: Site) -> None:
    alice = _alice(site)
    refused = alice.get("/api-key/", **ENGLISH_SCRIPT)
    assert refused.status_code == 401
    assert refused.json()["error"] == "reauth_required"
    assert _title(refused) == german(TITLES["reauth_required"])
    page = alice.get(refused.json()["reauth_url"], HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200
    assert '<html lang="de"' in page.content.decode()  # the page it opens: German


def test_the_hook_is_not_asked_for_a_request_the_guard_lets_through(site: Site) -> None:
    alice = _alice(site)
    fresh_grant(alice)
    ASKED.clear()
    allowed = alice.get("/api-key/", **ENGLISH_SCRIPT)
    assert allowed.status_code == 200
    assert ASKED == []


def test_a_passkey_endpoint_error_is_titled_as_the_pages_read(site: Site) -> None:
    alice = _alice(site)
    token = alice.fields("/stepup/passkeys/")["csrfmiddlewaretoken"]
    refused = alice.client.post(
        "/stepup/passkeys/some-id/rename",
        data="{not json",
        content_type="application/json",
        headers={"X-CSRFToken": token, "Accept-Language": "en"},
    )
    assert refused.status_code == 400
    expected = json.loads(malformed_response("de").body)["title"]
    assert expected != json.loads(malformed_response("en").body)["title"]
    assert _title(refused) == expected
    forged = alice.client.post(
        "/stepup/passkeys/some-id/rename",
        data="{}",
        content_type="application/json",
        headers={"X-CSRFToken": "forged", "Accept": "application/json", "Accept-Language": "en"},
    )
    assert forged.status_code == 403
    assert _title(forged) == german(PASSKEY_TEXT["csrf_json"])


def test_the_tenant_endpoint_errors_are_titled_as_the_pages_read(site: Site) -> None:
    alice = _alice(site)
    other = alice.get(f"/stepup/tenants/{TENANT}", **ENGLISH_SCRIPT)
    assert other.status_code == 405
    assert _title(other) == german("Tenant settings can only be changed with PATCH")
    refused = alice.patch(
        f"/stepup/tenants/{TENANT}",
        data=flag_body(False),
        content_type="application/vnd.api+json",
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert refused.status_code == 401
    assert _title(refused) == german(TITLES["reauth_required"])


def test_the_status_endpoint_is_titled_as_the_pages_read(site: Site) -> None:
    stranger = site.browser()
    answer = stranger.get("/stepup/reauth/status?action=api_key.read", **ENGLISH_SCRIPT)
    assert answer.status_code == 401
    assert _title(answer) == german(TITLES["authentication_required"])


def test_a_signed_out_script_is_titled_as_the_pages_read(site: Site) -> None:
    stranger = site.browser()
    answer = stranger.get("/api-key/", **ENGLISH_SCRIPT)
    assert answer.status_code == 401
    assert _title(answer) == german(TITLES["authentication_required"])


def test_without_a_hook_accept_language_decides(site_without_hook: Site) -> None:
    alice = _alice(site_without_hook)
    refused = alice.get("/api-key/", **ENGLISH_SCRIPT)
    assert _title(refused) == english(TITLES["reauth_required"])
    refused = alice.get("/api-key/", **GERMAN_SCRIPT)
    assert _title(refused) == german(TITLES["reauth_required"])
    stranger = site_without_hook.browser()
    status = stranger.get("/stepup/reauth/status?action=api_key.read", **GERMAN_SCRIPT)
    assert _title(status) == german(TITLES["authentication_required"])
    assert ASKED == []


@pytest.mark.parametrize("answer", [None, "fr"])
def test_a_hook_without_an_answer_stepup_knows_leaves_it_to_accept_language(
    site: Site, answer: str | None
) -> None:
    ANSWER[0] = answer
    alice = _alice(site)
    assert _title(alice.get("/api-key/", **GERMAN_SCRIPT)) == german(TITLES["reauth_required"])
    assert _title(alice.get("/api-key/", **ENGLISH_SCRIPT)) == english(TITLES["reauth_required"])


def test_a_signed_out_require_is_titled_as_the_pages_read(site: Site) -> None:
    """``request.stepup.require()`` raised SignInRequiredError, answered by the middleware."""
    stranger = site.browser()
    answer = stranger.get("/profile/update/", **ENGLISH_SCRIPT)
    assert answer.status_code == 401
    assert answer.json()["error"] == "authentication_required"
    assert _title(answer) == german(TITLES["authentication_required"])


def test_a_signed_out_device_view_is_titled_as_the_pages_read(site: Site) -> None:
    stranger = Client()  # no CSRF checks: the view's own sign-in answer is what is read
    answer = stranger.post("/stepup/2fa/devices/some-id/rename/", {"name": "x"}, **ENGLISH_SCRIPT)
    assert answer.status_code == 401
    assert _title(answer) == german(TITLES["authentication_required"])


def _bearer_view() -> Any:
    @bearer_required(guard(SettableClock(T0)), "workspace.delete")
    def delete(request: HttpRequest, name: str) -> JsonResponse:
        return JsonResponse({"deleted": name})

    return delete


def _through_the_middleware(view: Any, **headers: str) -> Any:
    """The view as the project serves it: behind ``StepupMiddleware``."""
    request = RequestFactory().delete("/api/w/prod", **headers)
    return StepupMiddleware(lambda request: view(request, name="prod"))(request)


def test_a_bearer_guard_refusal_is_titled_as_the_pages_read(site: Site) -> None:
    view = _bearer_view()
    no_token = _through_the_middleware(view, HTTP_ACCEPT_LANGUAGE="en")
    assert no_token.status_code == 401
    assert _title(no_token) == german(TITLES["authentication_required"])
    stale = _through_the_middleware(
        view, HTTP_AUTHORIZATION=f"Bearer {sign(auth_time=T0 - 301)}", HTTP_ACCEPT_LANGUAGE="en"
    )
    assert stale.status_code == 401
    assert _title(stale) == german(TITLES["reauth_required"])
    ASKED.clear()
    allowed = _through_the_middleware(view, HTTP_AUTHORIZATION=f"Bearer {sign()}")
    assert allowed.status_code == 200
    assert ASKED == []


def test_a_bearer_guard_without_the_middleware_follows_accept_language(site: Site) -> None:
    view = _bearer_view()
    for language in ("en", "de"):
        request = RequestFactory().delete("/api/w/prod", HTTP_ACCEPT_LANGUAGE=language)
        refused = view(request, name="prod")
        assert _title(refused) == translate(TITLES["authentication_required"], language)
    assert ASKED == []
