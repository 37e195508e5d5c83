"""The demo's passkeys without a browser: two passkeys added, one removed (a sensitive
action confirmed with a passkey), and every seed action offered to a passkey."""

from __future__ import annotations

import html
import json
import re
from typing import Any
from urllib.parse import urlencode

from e2e.journeys import ADMIN, MEMBER, PASSWORDS
from e2e.test_demo_app import csrf, flag_on, sign_in
from stepup.demo import DemoSettings
from stepup.policy import DEFAULT_LIFETIME, Policy
from stepup.testing import SettableClock
from stepup.testing.webauthn import SoftAuthenticator

#: The seed's catalog (with the tenant settings action).
SEED_ACTIONS = [row["action"] for row in Policy.default(environ={}).table()]


def _token(client: Any) -> str:
    return csrf(client.get("/stepup/passkeys").text)


def _json(client: Any, url: str, body: Any) -> Any:
    headers = {"Content-Type": "application/json", "X-CSRF-Token": _token(client)}
    return client.post(url, content=json.dumps(body), headers=headers)


def _add(
    client: Any, origin: str, name: str, *, password: str = "", key: SoftAuthenticator | None = None
) -> tuple[SoftAuthenticator, str]:
    """Add a passkey. Adding one asks for a re-authentication whatever the tenant's flag:
    with the ``password`` while the user has no passkey, else with a passkey ``key``."""
    refused = _json(client, "/stepup/passkeys/register/begin", {})
    assert refused.status_code == 401, refused.text
    if key is not None:
        _confirm(client, key, "passkey.add")
    else:
        reauth_url = refused.json()["reauth_url"]
        page = client.get(reauth_url)
        done = client.post(reauth_url, data={"csrf_token": csrf(page.text), "password": password})
        assert done.status_code == 303, done.text
    key = SoftAuthenticator(origin=origin, counter=1)
    options = _json(client, "/stepup/passkeys/register/begin", {})
    assert options.status_code == 200, options.text
    body = {"credential": key.create(options.json()), "name": name}
    finish = _json(client, "/stepup/passkeys/register/finish", body)
    assert finish.status_code == 200, finish.text
    return key, finish.json()["passkey"]["id"]


def _confirm(client: Any, key: SoftAuthenticator, action: str) -> None:
    options = _json(client, "/stepup/reauth/passkey/begin", {"action": action})
    assert options.status_code == 200, options.text
    body = {"credential": key.get(options.json()), "action": action}
    done = _json(client, "/stepup/reauth/passkey/finish", body)
    assert done.status_code == 200, done.text


def _passkey_form(page: str) -> tuple[str, dict[str, str]]:
    """The re-auth page's "Use a passkey" form: where it posts, and its hidden fields."""
    marker = page.index('data-stepup-passkey="authenticate"')
    form = page[page.rindex("<form", 0, marker) : page.index("</form>", marker)]
    found = re.search(r'action="([^"]*)"', form)
    assert found is not None
    fields = re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form)
    return html.unescape(found.group(1)), {k: html.unescape(v) for k, v in fields}


def test_the_demos_passkey_origin_is_localhost() -> None:
    assert DemoSettings(base_url="http://127.0.0.1:8123").passkey_origin == "http://localhost:8123"


def test_two_passkeys_one_removed_and_every_seed_action_offers_a_passkey(
    app_client: tuple[Any, SettableClock],
) -> None:
    client, clock = app_client
    origin = client.app.state.demo.settings.passkey_origin
    assert sign_in(client, MEMBER).status_code == 303
    assert "You have no passkey" in client.get("/security").text
    laptop, _ = _add(client, origin, "Laptop", password=PASSWORDS[MEMBER])
    _, phone_id = _add(client, origin, "Phone", key=laptop)
    security = client.get("/security").text
    assert 'data-count="2"' in security
    flag_on(client)
    # removing is sensitive: confirmed with the laptop's passkey, not a password
    remove = f"/stepup/passkeys/{phone_id}/remove"
    refused = client.post(remove, data={"csrf_token": _token(client)})
    assert refused.status_code == 303
    assert "action=passkey.remove" in refused.headers["location"]
    prompt = client.get(refused.headers["location"]).text
    assert "Use a passkey" in prompt
    assert 'type="password"' not in prompt
    _confirm(client, laptop, "passkey.remove")
    assert client.post(remove, data={"csrf_token": _token(client)}).status_code == 303
    page = client.get("/stepup/passkeys").text
    assert "Laptop" in page
    assert "Phone" not in page
    # every seed action offers the passkey (and never the password) on its prompt
    for action in SEED_ACTIONS:
        query = urlencode({"action": action, "next": "/account"})
        prompt = client.get(f"/stepup/reauth?{query}")
        assert prompt.status_code == 200, action
        assert "Use a passkey" in prompt.text, action
        assert 'type="password"' not in prompt.text, action
    # each seed action can be confirmed with the passkey, the last grant long expired
    for action in SEED_ACTIONS:
        clock.advance(DEFAULT_LIFETIME + 1)
        _confirm(client, laptop, action)
    clock.advance(DEFAULT_LIFETIME + 1)
    # and a seed action goes through once confirmed with the passkey
    guarded = client.get("/account/edit")
    assert guarded.status_code == 303
    location = guarded.headers["location"]
    action, fields = _passkey_form(client.get(location).text)
    options = _json(client, "/stepup/reauth/passkey/begin", {"action": "user.update"})
    fields["credential"] = json.dumps(laptop.get(options.json()))
    done = client.post(action, data=fields)
    assert done.status_code == 303, done.text
    assert done.headers["location"] == "/account/edit"
    assert client.get("/account/edit").status_code == 200


def test_a_user_without_a_passkey_keeps_the_password(app_client: tuple[Any, SettableClock]) -> None:
    client, _ = app_client
    assert sign_in(client, ADMIN).status_code == 303
    flag_on(client)
    location = client.get("/account/edit").headers["location"]
    prompt = client.get(location).text
    assert 'type="password"' in prompt
    assert "Use a passkey" not in prompt


def test_a_passkey_is_the_second_factor_at_sign_in(app_client: tuple[Any, SettableClock]) -> None:
    """A member with a passkey (and no TOTP) signs in with the password, then the passkey."""
    client, _ = app_client
    origin = client.app.state.demo.settings.passkey_origin
    assert sign_in(client, MEMBER).status_code == 303
    laptop, _ = _add(client, origin, "Laptop", password=PASSWORDS[MEMBER])
    assert "signing in asks for one after your password" in client.get("/security").text
    client.post("/logout", data={"csrf_token": csrf(client.get("/logout").text)})
    client.cookies.clear()
    second = sign_in(client, MEMBER)
    assert second.status_code == 303
    assert second.headers["location"].endswith("/stepup/2fa/verify")
    page = client.get("/stepup/2fa/verify").text
    assert "Use a passkey" in page
    assert 'name="code"' not in page
    assert client.get("/account").status_code == 303  # not signed in yet
    token = csrf(page)
    headers = {"Content-Type": "application/json", "X-CSRF-Token": token}
    options = client.post("/stepup/2fa/verify/passkey/begin", content="{}", headers=headers)
    assert options.status_code == 200, options.text
    credential = json.dumps(laptop.get(options.json()))
    done = client.post(
        "/stepup/2fa/verify/passkey/finish", data={"credential": credential, "csrf_token": token}
    )
    assert done.status_code == 303, done.text
    assert client.get("/account").status_code == 200
