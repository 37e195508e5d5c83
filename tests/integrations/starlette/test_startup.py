"""Misconfiguration fails when the app is defined, never at request time."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import anyio
import jinja2
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from integrations.starlette.starlette_support import (
    SECRET_KEY,
    Browser,
    TestApp,
    make_app,
)
from stepup.adapters.storage.memory import MemoryStore
from stepup.errors import ConfigurationError, UnknownActionError
from stepup.integrations import fastapi as stepup_fastapi
from stepup.integrations.starlette import Stepup
from stepup.policy import Policy, Sensitivity
from stepup.subject import Subject
from stepup.testing import SettableClock


def minimal(**options: Any) -> Stepup:
    settings: dict[str, Any] = {
        "store": MemoryStore(),
        "secret_key": SECRET_KEY,
        "subject_loader": lambda request: None,
        "tenant_loader": lambda request: "acme",
        **options,
    }
    return Stepup(**settings)


def test_unknown_action_fails_at_decoration() -> None:
    stepup = minimal()
    with pytest.raises(UnknownActionError, match=r"api_key\.raed"):

        @stepup.requires_reauth("api_key.raed")
        async def view(request: Request) -> Response:
            return PlainTextResponse("never")


def test_unknown_action_fails_for_a_fastapi_dependency() -> None:
    stepup = stepup_fastapi.Stepup(
        store=MemoryStore(),
        secret_key=SECRET_KEY,
        subject_loader=lambda request: None,
        tenant_loader=lambda request: "acme",
    )
    with pytest.raises(UnknownActionError):
        stepup.require_reauth("2fa.disabel")
    with pytest.raises(UnknownActionError):
        stepup.require_reauth("nope", context=lambda: {})


def test_a_policy_without_the_views_actions_gets_them_guarded() -> None:
    """As in Flask: the pages' own actions are added, sensitive, where the app's policy
    does not name them (Policy.default() lacks 2fa.recovery.regenerate)."""
    stepup = minimal(policy=Policy.default())
    stepup.install(Starlette())
    for action in ("2fa.recovery.regenerate", "2fa.disable"):
        assert stepup.policy.names(action)
        assert stepup.policy.rule_for(action).sensitivity is Sensitivity.SENSITIVE


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("secret_key", "short"),
        ("secret_key", ""),
        ("prefix", "stepup"),
        ("prefix", "/stepup/"),
        ("login_url", "https://evil.example/login"),
        ("login_url", "//evil.example"),
    ],
)
def test_bad_settings_are_configuration_errors(option: str, value: str) -> None:
    with pytest.raises(ConfigurationError):
        minimal(**{option: value})


def test_begin_sign_in_needs_complete_sign_in() -> None:
    stepup = minimal()
    request = Request({"type": "http", "method": "POST", "path": "/", "headers": []})
    with pytest.raises(ConfigurationError, match="complete_sign_in"):
        anyio.run(stepup.begin_sign_in, request, "alice")


def test_app_templates_come_first(clock: SettableClock) -> None:
    loader = jinja2.DictLoader(
        {"stepup/reauth.html": "<p>ours: {{ page.action }} {{ page.next }}</p>"}
    )
    test_app: TestApp = make_app(clock=clock, store=MemoryStore(), templates=loader)
    alice: Browser = test_app.browser()
    try:
        alice.login("alice")
        page = alice.get("/stepup/reauth?action=api_key.read&next=/api-key")
        assert page.text == "<p>ours: api_key.read /api-key</p>"
        # The bundled templates still serve the pages the app did not override.
        assert "Turn on two-factor authentication" in alice.get("/stepup/2fa").text
    finally:
        alice.close()


def test_templates_escape_what_they_show(clock: SettableClock) -> None:
    test_app = make_app(clock=clock, store=MemoryStore())
    alice = test_app.browser()
    try:
        alice.login("alice")
        page = alice.get('/stepup/reauth?action=api_key.read&next=/a"><script>x</script>')
        assert "<script>x" not in page.text
    finally:
        alice.close()


def test_sign_in_code_step_needs_sessions() -> None:
    stepup = minimal(complete_sign_in=lambda request, user_id: None)
    request = Request({"type": "http", "method": "POST", "path": "/", "headers": []})
    assert anyio.run(stepup.begin_sign_in, request, "alice") is None  # not enrolled: no state
    anyio.run(stepup.two_factor.begin_enrolment, "alice", "alice")
    store = stepup.store
    credential = store.get_credential("alice")
    store.put_credential(replace(credential, confirmed=True))
    with pytest.raises(ConfigurationError, match="SessionMiddleware"):
        anyio.run(stepup.begin_sign_in, request, "alice")


def test_pages_are_never_cached_or_framed(clock: SettableClock) -> None:
    test_app = make_app(clock=clock, store=MemoryStore())
    alice = test_app.browser()
    try:
        alice.login("alice")
        for url in ("/stepup/reauth?action=api_key.read", "/stepup/2fa"):
            headers = alice.get(url).headers
            assert headers["cache-control"] == "no-store"
            assert headers["x-frame-options"] == "DENY"
            assert headers["content-security-policy"] == "frame-ancestors 'none'"
            assert headers["referrer-policy"] == "same-origin"
            assert headers["x-content-type-options"] == "nosniff"
    finally:
        alice.close()


def test_login_url_with_a_query(clock: SettableClock) -> None:
    test_app = make_app(clock=clock, store=MemoryStore(), login_url="/accounts?tab=login")
    stranger = test_app.browser()
    try:
        answer = stranger.get("/api-key?x=1", headers={"accept": "text/html"})
        assert answer.headers["location"] == "/accounts?tab=login&next=%2Fapi-key%3Fx%3D1"
    finally:
        stranger.close()


def test_require_without_the_middleware_says_so() -> None:
    stepup = minimal(subject_loader=lambda request: Subject("alice", "s1"))
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": []})
    with pytest.raises(ConfigurationError, match="StepupMiddleware"):
        anyio.run(stepup.require, request, "api_key.read")
    assert anyio.run(stepup.check, request, "api_key.read").ok  # check needs no middleware
