"""A store outage never stops a sign-out: pressing "Sign out" while the store cannot
revoke the session's grant still ends the session (it was a 500, and the person stayed
signed in: Django ends the session only after its signal, Starlette's documented view
clears it only after ``sign_out``). Nothing is revoked then; the grant ends at its
lifetime, and the outage is logged once. (Django: django/test_sign_out_outage.py.)"""

from __future__ import annotations

import logging

import pytest

from integrations.flask.flask_support import make_app as flask_app
from integrations.outage_support import FailingWrites
from integrations.starlette.starlette_support import make_app as starlette_app
from stepup.testing import SettableClock


@pytest.mark.parametrize("mode", ["subject_loader", "flask_login"])
def test_flask(mode: str, caplog: pytest.LogCaptureFixture) -> None:
    store = FailingWrites()
    app = flask_app(mode, clock=SettableClock(), store=store)
    alice = app.client()
    assert alice.login("alice").status_code == 303
    assert alice.get("/home").get_data(as_text=True) == "home of alice"
    store.broken = True
    with caplog.at_level(logging.WARNING, logger="stepup.store"):
        assert alice.post("/logout").status_code == 303
    assert "revoke_grants" in caplog.text
    store.broken = False
    assert alice.get("/home").get_data(as_text=True) == "home of nobody"


def test_starlette(caplog: pytest.LogCaptureFixture) -> None:
    store = FailingWrites()
    app = starlette_app(clock=SettableClock(), store=store)
    alice = app.browser()
    assert alice.login("alice").status_code in (302, 303)
    assert alice.get("/").text == "hello alice"
    store.broken = True
    with caplog.at_level(logging.WARNING, logger="stepup.store"):
        assert alice.logout().status_code == 303
    assert "revoke_grants" in caplog.text
    store.broken = False
    assert alice.get("/").text == "hello stranger"
