"""Django: the status endpoint answers nobody 401 before it looks at the action (a 400
for unknown names told an anonymous client which actions the policy knows), and a
repeated ``action`` parameter is refused (see the Flask twin)."""

from __future__ import annotations

from integrations.django.django_support import Site


def test_nobody_gets_401_and_a_repeated_action_is_refused(site: Site) -> None:
    anonymous = site.browser()
    for query in ("action=api_key.read", "action=payroll.export", "action=a&action=b"):
        answer = anonymous.get(f"/stepup/reauth/status?{query}")
        assert answer.status_code == 401
        assert answer.json()["error"] == "authentication_required"
    alice = site.browser("alice")
    for query in ("action=api_key.read&action=nope", "action=api_key.read&action=api_key.read"):
        answer = alice.get(f"/stepup/reauth/status?{query}")
        assert answer.status_code == 400
        assert answer.json() == {"error": "repeated_action"}
    assert alice.get("/stepup/reauth/status?action=api_key.read").status_code == 200
