"""An app that adds starlette-csrf's ``CSRFMiddleware``: it reads its token from a header
only, which an HTML form cannot send, so it refuses stepup's forms until stepup's mount
is in its ``exempt_urls`` (as docs/getting-started-starlette.md says). Exempted, stepup's
own CSRF protection, the fallback, still guards every stepup form, and the middleware
still guards the app's own endpoints."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette_csrf import CSRFMiddleware

from integrations.starlette.starlette_support import (
    PASSWORDS,
    Browser,
    TestApp,
    csrf_token,
    make_app,
)
from stepup.adapters.storage.memory import MemoryStore
from stepup.testing import SettableClock

PAGE = "/stepup/reauth?action=api_key.read&next=/api-key"
REFUSED = "CSRF token verification failed"
# The test app's own sign-in form is exempt too: it is not what these tests are about.
STEPUP_AND_SIGN_IN = [re.compile(r"^/stepup/"), re.compile(r"^/login$")]


def _with_middleware(exempt: list[re.Pattern[str]]) -> type[Starlette]:
    class App(Starlette):
        def __init__(self, *args: Any, middleware: Any = (), **kwargs: Any) -> None:
            csrf = Middleware(CSRFMiddleware, secret="app-csrf-secret", exempt_urls=exempt)
            super().__init__(*args, middleware=[*middleware, csrf], **kwargs)

    return App


@pytest.fixture
def opened() -> Iterator[list[Browser]]:
    browsers: list[Browser] = []
    yield browsers
    for browser in browsers:
        browser.close()


def _alice(exempt: list[re.Pattern[str]], opened: list[Browser]) -> Browser:
    test_app: TestApp = make_app(
        clock=SettableClock(), store=MemoryStore(), app_class=_with_middleware(exempt)
    )
    alice = test_app.browser()
    opened.append(alice)
    assert alice.login("alice").status_code == 303
    return alice


def test_without_the_exemption_the_middleware_refuses_stepups_forms(
    opened: list[Browser],
) -> None:
    alice = _alice([re.compile(r"^/login$")], opened)
    token = csrf_token(alice.get(PAGE).text)
    answer = alice.post(PAGE, data={"password": PASSWORDS["alice"], "csrf_token": token})
    assert answer.status_code == 403
    assert REFUSED in answer.text


def test_with_stepups_mount_exempt_stepups_own_protection_guards_its_forms(
    opened: list[Browser],
) -> None:
    alice = _alice(STEPUP_AND_SIGN_IN, opened)
    alice.get(PAGE)
    forged = alice.post(PAGE, data={"password": PASSWORDS["alice"], "csrf_token": "forged"})
    assert forged.status_code == 403
    assert REFUSED not in forged.text  # stepup's refusal, not the middleware's
    token = csrf_token(alice.get(PAGE).text)
    answer = alice.post(PAGE, data={"password": PASSWORDS["alice"], "csrf_token": token})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/api-key"


def test_the_apps_own_endpoints_stay_under_the_middleware(opened: list[Browser]) -> None:
    alice = _alice(STEPUP_AND_SIGN_IN, opened)
    alice.get("/")  # the middleware sets its cookie on a safe request
    refused = alice.post("/api-key/regenerate")
    assert refused.status_code == 403
    assert REFUSED in refused.text
    cookie = alice.client.cookies.get("csrftoken")
    assert cookie
    passed = alice.post("/api-key/regenerate", headers={"x-csrftoken": cookie})
    assert (passed.status_code, passed.text) == (200, "regenerated")  # the flag is off
