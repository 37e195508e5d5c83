"""Flask: a script nobody signed in to gets the JSON 401 ``authentication_required``, as
in Starlette and Django (it got Werkzeug's HTML 401, or Flask-Login's page); a browser
still gets Flask-Login's ``unauthorized()`` when the app has Flask-Login."""

from __future__ import annotations

import pytest

from integrations.flask.flask_support import make_app
from stepup.adapters.storage.memory import MemoryStore

SCRIPTS = [
    {"Accept": "application/json"},
    {"X-Requested-With": "XMLHttpRequest"},
    {"Authorization": "Bearer not-a-known-token"},
]


@pytest.mark.parametrize("headers", SCRIPTS)
@pytest.mark.parametrize("url", ["/api-key", "/stepup/reauth?next=/&action=api_key.read"])
def test_a_script_gets_json(mode: str, headers: dict[str, str], url: str) -> None:
    client = make_app(mode, store=MemoryStore()).client()
    answer = client.get(url, headers=headers)
    assert answer.status_code == 401
    assert answer.mimetype == "application/json"
    assert answer.get_json()["error"] == "authentication_required"
    assert answer.headers["Cache-Control"] == "no-store"
    if "Authorization" in headers:
        assert answer.headers["WWW-Authenticate"] == 'Bearer realm="api"'


def test_a_browser_still_gets_flask_logins_answer() -> None:
    test_app = make_app("flask_login", store=MemoryStore())
    test_app.app.login_manager.login_view = "login_page"  # type: ignore[attr-defined]
    test_app.app.add_url_rule("/sign-in", "login_page", lambda: "sign in")
    answer = test_app.client().get("/api-key", headers={"Accept": "text/html"})
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/sign-in")


def test_a_browser_without_flask_login_gets_a_401() -> None:
    answer = make_app("subject_loader", store=MemoryStore()).client().get("/api-key")
    assert answer.status_code == 401
    assert answer.mimetype == "text/html"
    assert answer.headers["WWW-Authenticate"] == 'Session realm="stepup"'  # RFC 9110 15.5.2
