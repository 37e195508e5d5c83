"""Flask: the status endpoint answers nobody 401 before it looks at the action (a 400
for unknown names told an anonymous client which actions the policy knows), and a
repeated ``action`` parameter is refused (Flask read the first, the others the last)."""

from __future__ import annotations

from urllib.parse import urlencode

from hypothesis import given, settings
from hypothesis import strategies as st

from integrations.flask.flask_support import make_app
from stepup.adapters.storage.memory import MemoryStore

TEST_APP = make_app(store=MemoryStore())
NAMES = st.sampled_from(["api_key.read", "payroll.export", "tenant.settings.update", "", "x"])


@settings(max_examples=40)
@given(st.lists(NAMES, max_size=3))
def test_nobody_signed_in_gets_401_whatever_the_action(actions: list[str]) -> None:
    query = urlencode([("action", a) for a in actions])
    answer = TEST_APP.client().get(f"/stepup/reauth/status?{query}")
    assert answer.status_code == 401
    assert answer.get_json()["error"] == "authentication_required"


def test_a_repeated_action_is_refused() -> None:
    alice = TEST_APP.client()
    assert alice.login("alice").status_code == 303
    for query in ("action=api_key.read&action=nope", "action=api_key.read&action=api_key.read"):
        answer = alice.get(f"/stepup/reauth/status?{query}")
        assert answer.status_code == 400
        assert answer.get_json() == {"error": "repeated_action"}
    assert alice.get("/stepup/reauth/status?action=api_key.read").status_code == 200
    assert alice.get("/stepup/reauth/status?action=nope").get_json()["error"] == "unknown_action"
