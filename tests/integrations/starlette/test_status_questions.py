"""Starlette: the status endpoint answers nobody 401 before it looks at the action, and
a repeated ``action`` parameter is refused (see the Flask twin)."""

from __future__ import annotations

from integrations.starlette.starlette_support import make_app
from stepup.adapters.storage.memory import MemoryStore
from stepup.testing import SettableClock


def test_nobody_gets_401_and_a_repeated_action_is_refused() -> None:
    test_app = make_app(clock=SettableClock(), store=MemoryStore())
    anonymous, alice = test_app.browser(), test_app.browser()
    try:
        for query in ("action=api_key.read", "action=payroll.export", "action=a&action=b"):
            answer = anonymous.get(f"/stepup/reauth/status?{query}")
            assert answer.status_code == 401
            assert answer.json()["error"] == "authentication_required"
        assert alice.login("alice").status_code == 303
        for query in ("action=api_key.read&action=nope", "action=api_key.read&action=api_key.read"):
            answer = alice.get(f"/stepup/reauth/status?{query}")
            assert answer.status_code == 400
            assert answer.json() == {"error": "repeated_action"}
        assert alice.get("/stepup/reauth/status?action=api_key.read").status_code == 200
    finally:
        anonymous.close()
        alice.close()
