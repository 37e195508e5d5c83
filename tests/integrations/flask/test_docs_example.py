"""docs/getting-started-flask.md shows docs/examples/flask_app.py verbatim, and that app
works as the page says."""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from integrations.tenant_answers import only_error
from stepup import TOTP
from stepup.integrations.flask import Stepup
from stepup.testing import SettableClock

DOCS = Path(__file__).resolve().parents[3] / "docs"
EXAMPLE = DOCS / "examples" / "flask_app.py"
GUIDE = DOCS / "getting-started-flask.md"
FLAG_ON = {
    "data": {"type": "tenant", "attributes": {"feature_flags": {"sensitive_actions_reauth": True}}}
}


def test_the_guide_shows_the_example_verbatim() -> None:
    guide = GUIDE.read_text()
    match = re.search(
        r"<!-- literalinclude: examples/flask_app.py -->\n```python\n(.*?)```\n", guide, re.S
    )
    assert match, "the guide must include the example app"
    assert match.group(1) == EXAMPLE.read_text()


@pytest.mark.parametrize("passkeys", [False, True], ids=["without passkeys", "with passkeys"])
def test_protecting_views_lists_every_built_in_action(passkeys: bool) -> None:
    """The guide's list of the actions a Flask app has without a policy of its own is the
    policy ``init_app`` builds: the seed's catalog plus the ones stepup's pages guard."""
    listed = GUIDE.read_text().split("## Protecting views", 1)[1].split("\n- `context(", 1)[0]
    names = set(re.findall(r"`([a-z0-9_.*]+)`", listed.split("A name", 1)[0]))
    passkey_actions = {"passkey.add", "passkey.remove"}
    app = Flask(__name__)
    config = {"SECRET_KEY": "k" * 32, "STEPUP_STORE": "memory://", "TESTING": True}
    if passkeys:
        config |= {
            "STEPUP_PASSKEYS_RP_ID": "localhost",
            "STEPUP_PASSKEYS_ORIGINS": ("http://localhost",),
        }
    app.config.update(config)
    stepup = Stepup(app)
    with app.app_context():
        actual = {row["action"] for row in stepup.policy.table()}
    shown = {n for n in names if passkeys or n not in passkey_actions}
    expanded = {a for a in actual if any(fnmatch.fnmatchcase(a, n) for n in shown)}
    assert expanded == actual, f"missing from the guide: {sorted(actual - expanded)}"
    assert all(any(fnmatch.fnmatchcase(a, n) for a in actual) for n in shown), "listed, unknown"


@pytest.fixture(scope="module")
def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("stepup_docs_flask_app", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock()


@pytest.fixture
def app(example: ModuleType, clock: SettableClock) -> Flask:
    created: Flask = example.create_app(
        {"TESTING": True, "STEPUP_STORE": "memory://", "STEPUP_CLOCK": clock}
    )
    return created


def _csrf(client: FlaskClient, page: str) -> dict[str, str]:
    body = client.get(page).get_data(as_text=True)
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', body))
    assert "csrf_token" in fields
    return fields


def _sign_in(client: FlaskClient, user: str, password: str, next: str = "/") -> Any:
    token = _csrf(client, "/login")["csrf_token"]
    data = {"username": user, "password": password, "next": next, "csrf_token": token}
    return client.post("/login", data=data)


def _reauthenticate(client: FlaskClient, location: str, password: str) -> Any:
    form = _csrf(client, location)
    return client.post("/stepup/reauth/password", data={**form, "password": password})


def test_the_example_walkthrough(app: Flask, clock: SettableClock) -> None:
    alice, bob = app.test_client(), app.test_client()
    assert alice.get("/settings/api-key").status_code == 302  # Flask-Login: sign in first
    assert _sign_in(bob, "bob", "wrong").status_code == 401
    assert _sign_in(alice, "alice", "alice password").status_code == 303
    assert _sign_in(bob, "bob", "bob password").status_code == 303

    # Flag off: allowed. Bob may not turn it on; alice may, once she re-authenticated
    # (changing tenant settings is sensitive whether the flag is on or off).
    assert "key-of-bob" in bob.get("/settings/api-key").get_data(as_text=True)
    patch = {"data": json.dumps(FLAG_ON), "content_type": "application/vnd.api+json"}
    assert bob.patch("/stepup/tenants/acme", **patch).status_code == 403
    stale = alice.patch("/stepup/tenants/acme", **patch, headers={"Referer": "/"})
    assert stale.status_code == 401
    asked = only_error(stale.json)["meta"]
    assert asked["action"] == "tenant.settings.update"
    back = _reauthenticate(alice, asked["reauth_url"], "alice password")
    assert back.headers["Location"] == "/"
    assert alice.patch("/stepup/tenants/acme", **patch).status_code == 200

    # Now bob re-authenticates, and is back where he was.
    sent = bob.get("/settings/api-key")
    assert sent.status_code == 303
    location = sent.headers["Location"]
    assert location == "/stepup/reauth?next=%2Fsettings%2Fapi-key&action=api_key.read"
    form = _csrf(bob, location)
    wrong = bob.post("/stepup/reauth/password", data={**form, "password": "nope"})
    assert wrong.status_code == 400
    right = bob.post("/stepup/reauth/password", data={**form, "password": "bob password"})
    assert right.headers["Location"] == "/settings/api-key"
    assert bob.get("/settings/api-key").status_code == 200
    clock.advance(6 * 3600 - 1)
    assert bob.get("/settings/api-key").status_code == 200
    clock.advance(1)
    assert bob.get("/settings/api-key").status_code == 303

    # A regeneration POST (with its form's token) comes back to the key page.
    token = _csrf(bob, "/")["csrf_token"]
    refused = bob.post("/settings/api-key/regenerate", data={"csrf_token": token})
    assert "next=%2Fsettings%2Fapi-key" in refused.headers["Location"]


def test_the_example_sign_in_with_a_second_factor(app: Flask, clock: SettableClock) -> None:
    bob = app.test_client()
    _sign_in(bob, "bob", "bob password")
    enrol = bob.post("/stepup/2fa/enrol", data=_csrf(bob, "/stepup/2fa"))
    secret = re.search(r'id="stepup-manual-key">([^<]+)</code>', enrol.get_data(as_text=True))
    assert secret
    totp = TOTP(secret.group(1).replace(" ", ""))
    form = _csrf(bob, "/stepup/2fa")
    confirmed = bob.post("/stepup/2fa/confirm", data={**form, "code": totp.at(clock())})
    assert confirmed.status_code == 200
    bob.post("/logout", data=_csrf(bob, "/"))

    handed_over = _sign_in(bob, "bob", "bob password")
    assert handed_over.headers["Location"] == "/stepup/2fa/verify"
    assert bob.get("/").status_code == 302  # not signed in yet
    form = _csrf(bob, "/stepup/2fa/verify")
    replay = bob.post("/stepup/2fa/verify", data={**form, "code": totp.at(clock())})
    assert replay.status_code == 400
    clock.advance(30)
    done = bob.post("/stepup/2fa/verify", data={**form, "code": totp.at(clock())})
    assert done.headers["Location"] == "/"
    assert "Hello bob" in bob.get("/").get_data(as_text=True)
