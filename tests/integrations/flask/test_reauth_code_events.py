"""A right password with a refused code at re-authentication is a failed
re-authentication: ReauthFailed(method="otp", reason) once, as a wrong password is
ReauthFailed(method="pwd"), and a success is one ReauthSucceeded."""

from __future__ import annotations

import pytest

from integrations.flask.flask_support import make_app, set_flag
from stepup.adapters.storage.memory import MemoryStore
from stepup.events import ReauthFailed, ReauthSucceeded


@pytest.mark.parametrize(
    ("code", "reason"), [("wrong", "invalid"), ("12ab56", "malformed"), ("replay", "replayed")]
)
def test_a_refused_code_is_a_failed_reauthentication(code: str, reason: str) -> None:
    t = make_app(store=MemoryStore())
    alice = t.client()
    alice.login("alice")
    secret, _ = alice.enrol()
    set_flag(alice)
    location = alice.get("/billing/export", headers={"Accept": "text/html"}).headers["Location"]
    t.clock.advance(60)
    if code == "replay":  # the step was spent: the code is used already
        with t.app.app_context():
            assert t.stepup.two_factor.verify("alice", t.totp_code(secret)).ok
        code = t.totp_code(secret)
    elif code == "wrong":
        code = t.totp_code(secret, offset=-3600)  # an hour old: right once, not now
    t.events.clear()
    refused = alice.reauth(location, "correct horse", code=code)
    assert refused.status_code == 400
    failed = [e for e in t.events if isinstance(e, ReauthFailed)]
    assert [(e.user_id, e.method, e.reason) for e in failed] == [("alice", "otp", reason)]
    assert not [e for e in t.events if isinstance(e, ReauthSucceeded)]

    t.events.clear()
    t.clock.advance(60)
    assert alice.reauth(location, "correct horse", code=t.totp_code(secret)).status_code == 303
    assert not [e for e in t.events if isinstance(e, ReauthFailed)]
    assert [e.proved for e in t.events if isinstance(e, ReauthSucceeded)] == ["otp,pwd"]


def test_a_wrong_password_is_reported_once_and_the_code_not_checked() -> None:
    t = make_app(store=MemoryStore())
    alice = t.client()
    alice.login("alice")
    secret, _ = alice.enrol()
    set_flag(alice)
    location = alice.get("/billing/export", headers={"Accept": "text/html"}).headers["Location"]
    t.clock.advance(60)
    t.events.clear()
    assert alice.reauth(location, "wrong", code=t.totp_code(secret)).status_code == 400
    failed = [(e.method, e.reason) for e in t.events if isinstance(e, ReauthFailed)]
    assert failed == [("pwd", "wrong_password")]
