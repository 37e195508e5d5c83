"""Flask under a path prefix (``SCRIPT_NAME=/app``: gunicorn's SCRIPT_NAME, Werkzeug's
DispatcherMiddleware): the kept form is sent again to its own URL, prefix included (it
was kept under ``request.full_path``, which has none, and went to another app or a 404)."""

from __future__ import annotations

import html
import re

from integrations.flask.flask_support import make_app, set_flag
from integrations.resume_support import resume_form
from stepup.adapters.storage.memory import MemoryStore

BASE = "http://localhost/app/"
_HIDDEN = re.compile(r'<input type="hidden" name="(\w+)" value="([^"]*)"')


def _unprefixed(url: str) -> str:
    """What the test client is asked for (it adds the prefix from ``base_url``)."""
    return url.removeprefix("/app")


def test_a_kept_form_goes_back_to_its_url_under_the_prefix() -> None:
    test_app = make_app(store=MemoryStore())
    admin = test_app.client()
    admin.login("alice")
    assert set_flag(admin).status_code == 200
    client = test_app.app.test_client()
    login = {"username": "alice", "password": "correct horse", "next": "/home"}
    client.post("/login", data=login, base_url=BASE)
    page = client.get("/stepup/2fa", base_url=BASE).get_data(as_text=True)
    token = html.unescape(dict(_HIDDEN.findall(page))["csrf_token"])

    refused = client.post(
        "/api-key/regenerate", data={"csrf_token": token, "label": "x"}, base_url=BASE
    )
    location = refused.headers["Location"]
    assert location.startswith("/app/stepup/reauth?")
    reauth = client.get(_unprefixed(location), base_url=BASE).get_data(as_text=True)
    action = re.search(r'<form method="post" action="([^"]+)"', reauth)
    assert action is not None
    fields = {k: html.unescape(v) for k, v in _HIDDEN.findall(reauth)}
    resumed = client.post(
        _unprefixed(action.group(1)),
        data={**fields, "password": "correct horse"},
        base_url=BASE,
    )
    target, kept = resume_form(resumed.get_data(as_text=True))
    assert target == "/app/api-key/regenerate"
    assert ("label", "x") in kept
    again = client.post(_unprefixed(target), data=dict(kept), base_url=BASE)
    assert again.get_data(as_text=True) == "regenerated"
