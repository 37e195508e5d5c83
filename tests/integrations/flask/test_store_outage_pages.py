"""Flask: a store that fails while the two-factor pages change something gets a 503
that says so ("try again in a moment"); nothing changes, never a 500."""

from __future__ import annotations

from integrations.flask.flask_support import fresh_grant, make_app
from integrations.outage_support import FailingWrites
from stepup.testing import SettableClock


def test_two_factor_pages_answer_503_when_the_store_fails() -> None:
    store = FailingWrites()
    app = make_app("subject_loader", clock=SettableClock(), store=store)
    alice = app.client()
    assert alice.login("alice").status_code == 303
    alice.enrol()
    bob = app.client()
    assert bob.login("bob").status_code == 303
    bob.enrol()
    before = (store.get_credential("alice"), store.get_credential("bob"))
    for url in ("/stepup/2fa/recovery-codes", "/stepup/2fa/remove", "/stepup/users/bob/2fa/remove"):
        fresh_grant(alice, ("pwd", "otp"))
        store.broken = True
        answer = alice.form(url, {})
        store.broken = False
        assert answer.status_code == 503, (url, answer.status_code)
        assert "Try again in a moment" in answer.get_data(as_text=True), url
    assert (store.get_credential("alice"), store.get_credential("bob")) == before
