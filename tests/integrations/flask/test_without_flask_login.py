"""Flask-Login is optional: with it unimportable, an app that gives a ``subject_loader``
and a ``login_completer`` signs in, is asked to re-authenticate, re-authenticates and
signs out, and stepup never tries to import Flask-Login on the way."""

from __future__ import annotations

import sys

import pytest

from integrations.flask.flask_support import TENANT, make_app
from stepup.adapters.storage.memory import MemoryStore
from stepup.records import Tenant


def test_an_app_without_flask_login_runs_the_whole_journey(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "flask_login", None)  # `import flask_login` fails
    with pytest.raises(ImportError):
        import flask_login  # noqa: F401
    store = MemoryStore()
    test_app = make_app("subject_loader", store=store)
    store.put_tenant(Tenant(TENANT, {"feature_flags": {"sensitive_actions_reauth": True}}))
    bob = test_app.client()
    assert bob.login("bob").status_code == 303
    assert bob.get("/home").get_data(as_text=True) == "home of bob"
    refused = bob.get("/api-key")
    assert refused.status_code == 303
    assert refused.headers["Location"].startswith("/stepup/reauth")
    done = bob.reauth(refused.headers["Location"], test_app.users["bob"].password)
    assert done.status_code == 303
    assert bob.get("/api-key").get_json()["api_key"] == "key-123"
    bob.form("/logout", {})
    assert bob.get("/home").get_data(as_text=True) == "home of nobody"
    assert sys.modules["flask_login"] is None  # never imported behind our back
