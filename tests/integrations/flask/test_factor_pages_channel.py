"""Flask: stepup's pages that change a user's factors (passkeys, TOTP apps, recovery
codes, removing two-factor) and re-authentication with a passkey serve the interactive
web channel only. An API key or a bearer token (the core exempts both from rules
without ``api_keys=True``) gets a 403 that changes nothing, even with a valid CSRF
token: it could otherwise add a passkey and use it instead of TOTP at sign-in."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest

from integrations.flask.flask_support import (
    Browser,
    TestApp,
    confirm_factors,
    make_app,
    set_flag,
)
from integrations.tenant_answers import only_error
from stepup.adapters.storage.memory import MemoryStore
from stepup.testing import SettableClock
from stepup.testing.webauthn import SoftAuthenticator

ORIGIN = "http://localhost"
CONFIG = {"STEPUP_PASSKEYS_RP_ID": "localhost", "STEPUP_PASSKEYS_ORIGINS": [ORIGIN]}
CHANNELS = {
    "api_key": {"X-API-Key": "alice"},
    "bearer": {"Authorization": "Bearer token-alice"},
}
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Scene:
    """Alice with a passkey, TOTP and the tenant's flag on; bob with TOTP."""

    def __init__(self) -> None:
        self.store = MemoryStore()
        self.app: TestApp = make_app(
            "subject_loader", clock=SettableClock(), store=self.store, config=CONFIG
        )
        self.alice = self.app.client()
        assert self.alice.login("alice").status_code == 303
        self.alice.enrol()
        confirm_factors(self.alice)
        key = SoftAuthenticator(origin=ORIGIN, counter=1)
        headers = {"X-CSRF-Token": self.alice.csrf("/stepup/passkeys")}
        begin = self.alice.post(
            "/stepup/passkeys/register/begin",
            data="{}",
            content_type="application/json",
            headers=headers,
        )
        body = {"credential": key.create(begin.get_json()), "name": "Laptop"}
        finish = self.alice.post(
            "/stepup/passkeys/register/finish",
            data=json.dumps(body),
            content_type="application/json",
            headers=headers,
        )
        assert finish.status_code == 200, finish.get_data(as_text=True)
        self.credential_id = finish.get_json()["passkey"]["id"]
        bob = self.app.client()
        assert bob.login("bob").status_code == 303
        bob.enrol()
        set_flag(self.alice)
        device = self.store.get_credential("alice")
        assert device is not None
        self.device_id = device.devices[0].device_id

    def factors(self) -> Any:
        return [
            (u, self.store.list_passkeys(u), self.store.get_credential(u)) for u in ("alice", "bob")
        ]


@pytest.fixture(scope="module")
def scene() -> Scene:
    return Scene()


def _endpoints(scene: Scene) -> list[tuple[str, str, dict[str, Any]]]:
    cid, did = scene.credential_id, scene.device_id
    reauth = {"action": "api_key.read", "next": "/api-key"}
    return [
        ("GET", "/stepup/passkeys", {}),
        ("POST", "/stepup/passkeys/register/begin", {}),
        ("POST", "/stepup/passkeys/register/finish", {"credential": {}, "name": "Mine"}),
        ("POST", f"/stepup/passkeys/{cid}/rename", {"name": "Mine"}),
        ("POST", f"/stepup/passkeys/{cid}/remove", {}),
        ("POST", "/stepup/reauth/passkey/begin", reauth),
        ("POST", "/stepup/reauth/passkey/finish", {**reauth, "credential": {}}),
        ("GET", "/stepup/2fa", {}),
        ("POST", "/stepup/2fa/enrol", {}),
        ("POST", "/stepup/2fa/confirm", {"code": "123456"}),
        ("POST", "/stepup/2fa/recovery-codes", {}),
        ("POST", "/stepup/2fa/remove", {}),
        ("POST", "/stepup/2fa/devices/add", {"name": "Mine"}),
        ("POST", "/stepup/2fa/devices/confirm", {"code": "123456"}),
        ("POST", f"/stepup/2fa/devices/{did}/rename", {"name": "Mine"}),
        ("POST", f"/stepup/2fa/devices/{did}/remove", {}),
        ("POST", "/stepup/users/bob/2fa/remove", {}),
    ]


def _token(client: Browser, headers: dict[str, str]) -> str:
    """A valid CSRF token for this client's own cookie session, from the re-auth page
    (open to every channel): the refusal below is the channel's, not the token's."""
    page = client.client.get("/stepup/reauth?action=api_key.read", headers=headers)
    assert page.status_code == 200, page.get_data(as_text=True)
    match = _CSRF.search(page.get_data(as_text=True))
    assert match is not None
    return html.unescape(match.group(1))


@pytest.mark.parametrize("channel", sorted(CHANNELS))
def test_other_channels_get_a_json_403_that_changes_nothing(scene: Scene, channel: str) -> None:
    client = scene.app.client()
    headers = {**CHANNELS[channel]}
    headers["X-CSRF-Token"] = _token(client, headers)
    before = scene.factors()
    for method, url, body in _endpoints(scene):
        if method == "GET":
            answer = client.client.get(url, headers={**headers, "Accept": "application/json"})
        else:
            answer = client.client.post(
                url, data=json.dumps(body), content_type="application/json", headers=headers
            )
        assert answer.status_code == 403, (url, answer.get_data(as_text=True))
        assert answer.get_json()["error"] == "interactive_only", url
        assert answer.get_json()["title"]
    assert scene.factors() == before


def test_an_api_key_in_a_browser_gets_the_message_page(scene: Scene) -> None:
    client = scene.app.client()
    headers = {**CHANNELS["api_key"]}
    token = _token(client, headers)
    before = scene.factors()
    for method, url, body in _endpoints(scene):
        if method == "GET":
            answer = client.client.get(url, headers=headers)
        else:
            form = {k: v for k, v in body.items() if isinstance(v, str)}
            answer = client.client.post(url, data={**form, "csrf_token": token}, headers=headers)
        assert answer.status_code == 403, url
        text = answer.get_data(as_text=True)
        assert "not with an API key" in text, url
        assert answer.headers["Content-Type"].startswith("text/html")
    assert scene.factors() == before


def test_an_api_key_cannot_add_a_passkey_to_skip_totp_at_sign_in(scene: Scene) -> None:
    """The review's journey: the key registers a passkey, then the attacker with the
    password uses it as the second factor instead of the victim's TOTP."""
    client = scene.app.client()
    headers = {**CHANNELS["api_key"]}
    headers["X-CSRF-Token"] = _token(client, headers)
    begin = client.client.post(
        "/stepup/passkeys/register/begin",
        data="{}",
        content_type="application/json",
        headers=headers,
    )
    assert begin.status_code == 403
    assert [p.name for p in scene.store.list_passkeys("alice")] == ["Laptop"]


def test_the_browser_session_still_uses_every_page(scene: Scene) -> None:
    """The same pages answer the web channel as before (the guard decides)."""
    assert scene.alice.get("/stepup/passkeys").status_code == 200
    assert scene.alice.get("/stepup/2fa").status_code == 200
    page = scene.alice.get("/stepup/reauth?action=passkey.add&next=/stepup/passkeys")
    assert page.status_code == 200


def test_the_sign_in_step_and_the_re_auth_page_stay_open(scene: Scene) -> None:
    """What any channel may reach is unchanged: the password re-auth page (the core
    decides which channels it asks) and the scripts."""
    headers = CHANNELS["api_key"]
    client = scene.app.client()
    assert (
        client.client.get("/stepup/reauth?action=api_key.read", headers=headers).status_code == 200
    )
    assert client.client.get("/stepup/stepup-passkeys.js", headers=headers).status_code == 200
    assert client.client.get("/stepup/stepup.css", headers=headers).status_code == 200


@pytest.mark.parametrize("action", [["api_key.read"], {"a": 1}, 7, None, True])
@pytest.mark.parametrize("endpoint", ["begin", "finish"])
def test_an_action_that_is_not_text_is_a_clear_400(
    scene: Scene, action: object, endpoint: str
) -> None:
    """Not a 500: a 400 ``unknown_action`` that changes nothing (Django and Starlette
    answer the same)."""
    body = {"action": action, "next": "/api-key", "credential": {}}
    answer = scene.alice.post(
        f"/stepup/reauth/passkey/{endpoint}",
        data=json.dumps(body),
        content_type="application/json",
        headers={"X-CSRF-Token": scene.alice.csrf("/stepup/passkeys")},
    )
    assert answer.status_code == 400, answer.get_data(as_text=True)
    assert answer.get_json()["error"] == "unknown_action"
    assert scene.alice.get("/api-key").status_code == 303  # no grant recorded


def test_an_api_key_cannot_change_the_tenant_settings_without_reauthenticating(
    scene: Scene,
) -> None:
    """Lowering protection is itself protected on every channel: an admin's API key
    needs a fresh re-authentication like the admin's session (never a second factor)."""
    from integrations.flask.flask_support import TENANT, flag_body

    answer = scene.app.client().patch(
        f"/stepup/tenants/{TENANT}",
        data=json.dumps(flag_body(False)),
        content_type="application/vnd.api+json",
        headers=CHANNELS["api_key"],
    )
    assert answer.status_code == 401, answer.get_data(as_text=True)
    error = only_error(answer.get_json())
    assert error["code"] == "reauth_required"
    assert error["meta"]["methods"] == ["pwd"]
    tenant = scene.store.get_tenant(TENANT)
    assert tenant is not None
    assert tenant.flag("sensitive_actions_reauth")
