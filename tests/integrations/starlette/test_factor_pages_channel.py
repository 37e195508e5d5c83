"""Starlette (and FastAPI, which mounts the same pages): stepup's pages that change a
user's factors (passkeys, TOTP apps, recovery codes, removing two-factor) and
re-authentication with a passkey serve the interactive web channel only. An API key,
message injection or a bearer token gets a 403 that changes nothing, even with a valid
CSRF token, and before any guard (a bearer token is not sent to re-authenticate)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.requests import Request

from integrations.starlette.starlette_support import (
    Browser,
    TestApp,
    confirm_factors,
    csrf_token,
    enrol,
    make_app,
)
from integrations.tenant_answers import only_error
from stepup.adapters.storage.memory import MemoryStore
from stepup.subject import Subject
from stepup.testing import SettableClock
from stepup.testing.webauthn import SoftAuthenticator
from stepup.twofactor import Channel

ORIGIN = "http://localhost"
CHANNELS = {
    "api_key": {"X-API-Key": "alice"},
    "message_injection": {"X-Injected-For": "alice"},
    "bearer": {"Authorization": "Bearer alice-token"},
}


class Scene:
    """Alice with a passkey, TOTP and the tenant's flag on; bob with TOTP."""

    def __init__(self) -> None:
        self.store = MemoryStore()
        self.app: TestApp = make_app(
            clock=SettableClock(),
            store=self.store,
            passkeys_rp_id="localhost",
            passkeys_origins=(ORIGIN,),
        )
        self.opened: list[Browser] = []
        self.alice = self.browser()
        assert self.alice.login("alice").status_code == 303
        enrol(self.alice)
        confirm_factors(self.alice)
        key = SoftAuthenticator(origin=ORIGIN, counter=1)
        begin = self.post_json(self.alice, "/stepup/passkeys/register/begin", {})
        assert begin.status_code == 200, begin.text
        body = {"credential": key.create(begin.json()), "name": "Laptop"}
        finish = self.post_json(self.alice, "/stepup/passkeys/register/finish", body)
        assert finish.status_code == 200, finish.text
        self.credential_id = finish.json()["passkey"]["id"]
        bob = self.browser()
        assert bob.login("bob").status_code == 303
        enrol(bob)
        self.alice.patch_tenant(True)
        credential = self.store.get_credential("alice")
        assert credential is not None
        self.device_id = credential.devices[0].device_id
        # The app also takes API keys and injected messages (the support's loader knows
        # bearer tokens and browser sessions).
        original = self.app.stepup.subject_loader

        def loader(request: Request) -> Any:
            if request.headers.get("x-api-key") == "alice":
                return Subject("alice", "api-key", channel=Channel.API_KEY)
            if request.headers.get("x-injected-for") == "alice":
                return Subject("alice", "inbox", channel=Channel.MESSAGE_INJECTION)
            return original(request)

        self.app.stepup.subject_loader = loader

    def browser(self) -> Browser:
        browser = self.app.browser()
        self.opened.append(browser)
        return browser

    @staticmethod
    def post_json(browser: Browser, url: str, body: Any) -> Any:
        token = csrf_token(browser.get("/stepup/passkeys").text)
        headers = {"Content-Type": "application/json", "X-CSRF-Token": token}
        return browser.post(url, content=json.dumps(body), headers=headers)

    def factors(self) -> Any:
        return [
            (u, self.store.list_passkeys(u), self.store.get_credential(u)) for u in ("alice", "bob")
        ]

    def endpoints(self) -> list[tuple[str, str, dict[str, Any]]]:
        cid, did = self.credential_id, self.device_id
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
            ("GET", "/stepup/2fa/recovery-codes", {}),
            ("POST", "/stepup/2fa/recovery-codes", {}),
            ("POST", "/stepup/2fa/remove", {}),
            ("POST", "/stepup/2fa/devices/add", {"name": "Mine"}),
            ("POST", "/stepup/2fa/devices/confirm", {"code": "123456"}),
            ("POST", f"/stepup/2fa/devices/{did}/rename", {"name": "Mine"}),
            ("POST", f"/stepup/2fa/devices/{did}/remove", {}),
            ("POST", "/stepup/2fa/users/bob/remove", {}),
        ]


@pytest.fixture(scope="module")
def scene() -> Iterator[Scene]:
    built = Scene()
    yield built
    for browser in built.opened:
        browser.close()


def _token(client: Browser, headers: dict[str, str]) -> str:
    """A valid CSRF token for this client, from the re-auth page (open to every
    channel): the refusal below is the channel's, not the token's."""
    page = client.get("/stepup/reauth?action=api_key.read", headers=headers)
    assert page.status_code == 200, page.text
    return csrf_token(page.text)


@pytest.mark.parametrize("channel", sorted(CHANNELS))
def test_other_channels_get_a_json_403_that_changes_nothing(scene: Scene, channel: str) -> None:
    client = scene.browser()
    headers = {**CHANNELS[channel]}
    headers["X-CSRF-Token"] = _token(client, headers)
    before = scene.factors()
    for method, url, body in scene.endpoints():
        if method == "GET":
            answer = client.get(url, headers={**headers, "Accept": "application/json"})
        else:
            json_headers = {**headers, "Content-Type": "application/json"}
            answer = client.post(url, content=json.dumps(body), headers=json_headers)
        assert answer.status_code == 403, (url, answer.text)
        assert answer.json()["error"] == "interactive_only", url
        assert answer.json()["title"]
    assert scene.factors() == before


@pytest.mark.parametrize("channel", ["api_key", "message_injection"])
def test_in_a_browser_they_get_the_message_page(scene: Scene, channel: str) -> None:
    client = scene.browser()
    headers = {**CHANNELS[channel]}
    token = _token(client, headers)
    before = scene.factors()
    for method, url, body in scene.endpoints():
        if method == "GET":
            answer = client.get(url, headers=headers)
        else:
            form = {k: v for k, v in body.items() if isinstance(v, str)}
            answer = client.post(url, data={**form, "csrf_token": token}, headers=headers)
        assert answer.status_code == 403, url
        assert "not with an API key" in answer.text, url
        assert answer.headers["content-type"].startswith("text/html")
    assert scene.factors() == before


def test_the_browser_session_and_the_open_pages_still_answer(scene: Scene) -> None:
    assert scene.alice.get("/stepup/passkeys").status_code == 200
    assert scene.alice.get("/stepup/2fa").status_code == 200
    client = scene.browser()
    headers = CHANNELS["api_key"]
    assert client.get("/stepup/reauth?action=api_key.read", headers=headers).status_code == 200
    assert client.get("/stepup/stepup-passkeys.js", headers=headers).status_code == 200


@pytest.mark.parametrize("action", [["api_key.read"], {"a": 1}, 7])
def test_an_action_that_is_not_text_is_unknown(scene: Scene, action: object) -> None:
    """As in Flask and Django: a 400 ``unknown_action`` that changes nothing."""
    for endpoint in ("begin", "finish"):
        body = {"action": action, "next": "/api-key", "credential": {}}
        answer = scene.post_json(scene.alice, f"/stepup/reauth/passkey/{endpoint}", body)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"] == "unknown_action"
    assert scene.alice.get("/api-key").status_code == 303


def test_an_api_key_cannot_change_the_tenant_settings_without_reauthenticating(
    scene: Scene,
) -> None:
    """Lowering protection is itself protected on every channel: an admin's API key
    needs a fresh re-authentication like the admin's session (never a second factor)."""
    body = {"data": {"type": "tenant", "attributes": {"feature_flags": {TENANT_FLAG: False}}}}
    headers = {**CHANNELS["api_key"], "Content-Type": "application/vnd.api+json"}
    answer = scene.browser().client.patch("/stepup/tenants/acme", json=body, headers=headers)
    assert answer.status_code == 401, answer.text
    assert only_error(answer.json())["code"] == "reauth_required"
    tenant = scene.store.get_tenant("acme")
    assert tenant is not None
    assert tenant.flag(TENANT_FLAG)


TENANT_FLAG = "sensitive_actions_reauth"
