"""Starlette: the status endpoint says how, as the guard's 401 does (issue 13: "does this
action need a re-authentication now, and how?"): the same ``alternatives`` and, for a
user who has none of a rule's factors, the same ``enrol`` (see the Flask twin)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from integrations.starlette.starlette_support import Browser, enrol, make_app
from stepup.adapters.storage.memory import MemoryStore
from stepup.integrations.starlette import Stepup
from stepup.policy import SENSITIVE, Policy
from stepup.testing import SettableClock

JSON = {"Accept": "application/json"}
POLICY = Policy.default().extend(
    {"billing.export": replace(SENSITIVE, second_factor=True, description="Exporting billing")}
)


def _billing(stepup: Stepup) -> list[Any]:
    @stepup.requires_reauth("billing.export")
    async def export(request: Request) -> Response:
        return PlainTextResponse("billing.csv")

    return [Route("/billing/export", export)]


@pytest.fixture
def alice() -> Iterator[Browser]:
    test_app = make_app(
        clock=SettableClock(), store=MemoryStore(), policy=POLICY, extra_routes=_billing
    )
    browser = test_app.browser()
    try:
        assert browser.login("alice").status_code == 303
        yield browser
    finally:
        browser.close()


def _guard_and_status(browser: Browser, path: str, action: str) -> tuple[Any, Any]:
    guard = browser.get(path, headers=JSON)
    assert guard.status_code == 401
    status = browser.get(f"/stepup/reauth/status?action={action}")
    assert status.status_code == 200
    return guard.json(), status.json()


def test_a_user_without_totp_is_told_what_to_enrol(alice: Browser) -> None:
    assert alice.patch_tenant(True).status_code == 200
    guard, status = _guard_and_status(alice, "/billing/export", "billing.export")
    assert guard["alternatives"] == [["pwd", "otp"]]
    assert guard["enrol"] == ["otp"]
    assert status["required"] is True
    assert status["methods"] == guard["methods"]
    assert status["alternatives"] == guard["alternatives"]
    assert status["enrol"] == guard["enrol"]


def test_a_user_with_totp_has_nothing_to_enrol_in_either(alice: Browser) -> None:
    enrol(alice)
    assert alice.patch_tenant(True).status_code == 200
    guard, status = _guard_and_status(alice, "/billing/export", "billing.export")
    assert "enrol" not in guard
    assert "enrol" not in status
    assert status["alternatives"] == guard["alternatives"] == [["pwd", "otp"]]


def test_a_password_rule_names_its_one_way(alice: Browser) -> None:
    assert alice.patch_tenant(True).status_code == 200
    guard, status = _guard_and_status(alice, "/api-key", "api_key.read")
    assert status["alternatives"] == guard["alternatives"] == [["pwd"]]
    assert "enrol" not in guard
    assert "enrol" not in status
