"""Flask: the status endpoint says how, as the guard's 401 does (issue 13: "does this
action need a re-authentication now, and how?"): the same ``alternatives`` and, for a
user who has none of a rule's factors, the same ``enrol``."""

from __future__ import annotations

from typing import Any

from integrations.flask.flask_support import Browser, make_app, set_flag
from stepup.adapters.storage.memory import MemoryStore

JSON = {"Accept": "application/json"}


def _guard_and_status(browser: Browser, path: str, action: str) -> tuple[Any, Any]:
    guard = browser.get(path, headers=JSON)
    assert guard.status_code == 401
    status = browser.get(f"/stepup/reauth/status?action={action}")
    assert status.status_code == 200
    return guard.get_json(), status.get_json()


def test_a_user_without_totp_is_told_what_to_enrol() -> None:
    alice = make_app(store=MemoryStore()).client()
    assert alice.login("alice").status_code == 303
    set_flag(alice)
    guard, status = _guard_and_status(alice, "/billing/export", "billing.export")
    assert guard["alternatives"] == [["pwd", "otp"]]
    assert guard["enrol"] == ["otp"]
    assert status["required"] is True
    assert status["methods"] == guard["methods"]
    assert status["alternatives"] == guard["alternatives"]
    assert status["enrol"] == guard["enrol"]


def test_a_user_with_totp_has_nothing_to_enrol_in_either() -> None:
    alice = make_app(store=MemoryStore()).client()
    assert alice.login("alice").status_code == 303
    alice.enrol()
    set_flag(alice)
    guard, status = _guard_and_status(alice, "/billing/export", "billing.export")
    assert "enrol" not in guard
    assert "enrol" not in status
    assert status["alternatives"] == guard["alternatives"] == [["pwd", "otp"]]


def test_a_password_rule_names_its_one_way() -> None:
    alice = make_app(store=MemoryStore()).client()
    assert alice.login("alice").status_code == 303
    set_flag(alice)
    guard, status = _guard_and_status(alice, "/api-key", "api_key.read")
    assert status["alternatives"] == guard["alternatives"] == [["pwd"]]
    assert "enrol" not in guard
    assert "enrol" not in status
