"""Django: a browser that opens a page guarded by a rule this session can never reach
(its level only a provider's ``acr`` proves; alice signed in with a password) is sent
where a browser goes for a re-authentication, the re-auth page for that action, which
says in the browser's language why and offers no form. It got the JSON 403
``reauth_unreachable``, raw, in the window: from ``@reauth_required`` and from
``request.stepup.require()`` answered by the middleware alike. A script keeps the JSON
403, and a form POST is not kept for a replay that could never come (see the Flask and
Starlette twins)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import override_settings
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from integrations.django.django_support import Browser, fresh_services, running_site, set_flag
from integrations.django.testapp.hooks import app_policy
from integrations.django.testapp.urls import urlpatterns as project_urls
from stepup.adapters.storage.memory import MemoryStore
from stepup.assurance import Level, Levels
from stepup.policy import Policy, Rule, Sensitivity
from stepup.testing import SettableClock

BROWSER = {"HTTP_ACCEPT": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
SCRIPT = {"HTTP_ACCEPT": "application/json"}
UNREACHABLE = {
    "en": "This action needs a stronger confirmation than this sign-in can give.",
    "de": "Diese Aktion erfordert eine stärkere Bestätigung",
}
#: The decorator remembers ``money.wire`` for the system checks: forgotten after each test.
pytestmark = pytest.mark.usefixtures("fresh_services")
__all__ = ["fresh_services"]  # the fixture, from django_support
#: This module is the URLconf of its tests: the project's URLs, and the guarded views
#: (decorated once the policy that names ``money.wire`` is the project's).
urlpatterns: list[Any] = []


def policy() -> Policy:
    levels = Levels(
        (
            Level("password", acr=("urn:x:pwd",), methods=(("pwd",),)),
            Level("mfa", acr=("urn:x:mfa",), methods=(("pwd", "otp"),)),
            Level("phr", methods=(("phr",),)),
            Level("top", acr=("urn:x:top",)),
        )
    )
    wire = Rule(Sensitivity.SENSITIVE, level="top", description="Wiring")
    return app_policy().with_levels(levels).extend({"money.wire": wire})


def _wire(request: HttpRequest) -> HttpResponse:
    return HttpResponse("wired")


def _wire_inline(request: HttpRequest) -> HttpResponse:
    request.stepup.require("money.wire")  # type: ignore[attr-defined]
    return HttpResponse("wired")


@pytest.fixture
def alice(clock: SettableClock) -> Iterator[Browser]:
    from stepup.integrations.django.decorators import reauth_required
    from stepup.integrations.django.services import get_stepup

    with running_site(MemoryStore(), clock, POLICY=f"{__name__}.policy") as site:
        get_stepup().tenant_settings.ensure("acme")
        urlpatterns[:] = [
            path(
                "wire/", csrf_exempt(reauth_required("money.wire", return_to="/payments/")(_wire))
            ),
            path("wire/inline/", _wire_inline),
            *project_urls,
        ]
        with override_settings(ROOT_URLCONF=__name__):
            browser = site.browser("alice")
            set_flag(browser)
            yield browser


@pytest.mark.parametrize("language", ["en", "de"])
@pytest.mark.parametrize("url", ["/wire/?amount=5", "/wire/inline/?amount=5"])
def test_a_browser_is_sent_to_the_page_that_says_why(
    alice: Browser, url: str, language: str
) -> None:
    headers = {**BROWSER, "HTTP_ACCEPT_LANGUAGE": language}
    refused = alice.get(url, **headers)
    assert refused.status_code == 303
    assert refused["Cache-Control"] == "no-store"
    target = urlsplit(refused["Location"])
    assert target.path == "/stepup/reauth/"
    assert parse_qs(target.query) == {"next": [url], "action": ["money.wire"]}
    page = alice.get(refused["Location"], **headers)
    assert page["Content-Type"].startswith("text/html")
    text = page.content.decode()
    assert UNREACHABLE[language] in text
    assert 'name="password"' not in text


def test_a_browser_form_post_goes_to_the_page_and_is_not_kept(alice: Browser) -> None:
    refused = alice.post("/wire/", {"amount": "5"}, **BROWSER)
    assert refused.status_code == 303
    target = urlsplit(refused["Location"])
    assert target.path == "/stepup/reauth/"
    query = parse_qs(target.query)
    assert query == {"next": ["/payments/"], "action": ["money.wire"]}  # no resume token


@pytest.mark.parametrize("url", ["/wire/", "/wire/inline/"])
def test_a_script_keeps_the_json_403(alice: Browser, url: str) -> None:
    refused = alice.get(url, **SCRIPT)
    assert refused.status_code == 403
    assert refused["Content-Type"] == "application/json"
    body = refused.json()
    assert (body["error"], body["reason"], body["level"]) == (
        "reauth_unreachable",
        "unreachable",
        "top",
    )
