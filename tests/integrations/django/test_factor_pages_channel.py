"""Django: stepup's pages that change a user's factors (passkeys, TOTP apps, recovery
codes, removing two-factor) and re-authentication with a passkey serve the interactive
web channel only. An API key or a bearer token (the core exempts both from rules
without ``api_keys=True``) gets a 403 that changes nothing, even with a valid CSRF
token; the JSON endpoints' ``action`` must be text (a 400 otherwise, never a 500)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from integrations.django.django_support import (
    Browser,
    Site,
    confirm_factors,
    running_site,
    set_flag,
)
from integrations.django.testapp.hooks import user_id
from integrations.tenant_answers import only_error
from stepup.adapters.storage.memory import MemoryStore
from stepup.testing import SettableClock
from stepup.testing.webauthn import SoftAuthenticator

ORIGIN = "http://localhost"
PASSKEYS = {"PASSKEYS_RP_ID": "localhost", "PASSKEYS_ORIGINS": [ORIGIN]}
CHANNELS = {
    "api_key": {"X-API-Key": "alice"},
    "bearer": {"Authorization": "Bearer token-alice"},
}


class Scene:
    """Alice with a passkey, TOTP and the tenant's flag on; bob with TOTP."""

    def __init__(self, site: Site) -> None:
        from stepup.integrations.django.services import get_stepup

        get_stepup().tenant_settings.ensure("acme")
        self.site, self.store = site, site.store
        self.alice = site.browser("alice")
        self.alice.enrol()
        key = SoftAuthenticator(origin=ORIGIN, counter=1)
        begin = self.post_json(self.alice, "/stepup/passkeys/register/begin", {}, confirm=True)
        body = {"credential": key.create(begin.json()), "name": "Laptop"}
        finish = self.post_json(self.alice, "/stepup/passkeys/register/finish", body)
        assert finish.status_code == 200, finish.content
        self.credential_id = finish.json()["passkey"]["id"]
        site.browser("bob").enrol()
        set_flag(self.alice)
        self.ids = {name: user_id(name) for name in ("alice", "bob")}
        credential = self.store.get_credential(self.ids["alice"])
        assert credential is not None
        self.device_id = credential.devices[0].device_id

    @staticmethod
    def post_json(browser: Browser, url: str, body: Any, *, confirm: bool = False) -> Any:
        if confirm:
            confirm_factors(browser)
        token = browser.fields("/stepup/passkeys/")["csrfmiddlewaretoken"]
        return browser.client.post(
            url,
            data=json.dumps(body),
            content_type="application/json",
            headers={"X-CSRFToken": token},
        )

    def factors(self) -> Any:
        return [
            (uid, self.store.list_passkeys(uid), self.store.get_credential(uid))
            for uid in self.ids.values()
        ]

    def endpoints(self) -> list[tuple[str, str, dict[str, Any]]]:
        cid, did, bob = self.credential_id, self.device_id, self.ids["bob"]
        reauth = {"action": "api_key.read", "next": "/api-key/"}
        return [
            ("GET", "/stepup/passkeys/", {}),
            ("POST", "/stepup/passkeys/register/begin", {}),
            ("POST", "/stepup/passkeys/register/finish", {"credential": {}, "name": "Mine"}),
            ("POST", f"/stepup/passkeys/{cid}/rename", {"name": "Mine"}),
            ("POST", f"/stepup/passkeys/{cid}/remove", {}),
            ("POST", "/stepup/reauth/passkey/begin", reauth),
            ("POST", "/stepup/reauth/passkey/finish", {**reauth, "credential": {}}),
            ("GET", "/stepup/2fa/", {}),
            ("POST", "/stepup/2fa/enrol/", {}),
            ("POST", "/stepup/2fa/confirm/", {"code": "123456"}),
            ("POST", "/stepup/2fa/recovery-codes/", {}),
            ("POST", "/stepup/2fa/remove/", {}),
            ("POST", "/stepup/2fa/devices/add/", {"name": "Mine"}),
            ("POST", "/stepup/2fa/devices/confirm/", {"code": "123456"}),
            ("POST", f"/stepup/2fa/devices/{did}/rename/", {"name": "Mine"}),
            ("POST", f"/stepup/2fa/devices/{did}/remove/", {}),
            ("POST", f"/stepup/users/{bob}/2fa/remove/", {}),
        ]


@pytest.fixture
def scene(clock: SettableClock) -> Iterator[Scene]:
    with running_site(MemoryStore(), clock, **PASSKEYS) as site:
        yield Scene(site)


def _token(client: Any, headers: dict[str, str]) -> str:
    """A valid CSRF token (and its cookie) for this client, from the re-auth page (open
    to every channel): the refusal below is the channel's, not Django's CSRF check."""
    page = client.get("/stepup/reauth/?action=api_key.read", headers=headers)
    assert page.status_code == 200, page.content
    return str(client.cookies["csrftoken"].value)


@pytest.mark.parametrize("channel", sorted(CHANNELS))
def test_other_channels_get_a_json_403_that_changes_nothing(scene: Scene, channel: str) -> None:
    client = scene.site.browser().client
    headers = {**CHANNELS[channel]}
    headers["X-CSRFToken"] = _token(client, headers)
    before = scene.factors()
    for method, url, body in scene.endpoints():
        if method == "GET":
            answer = client.get(url, headers={**headers, "Accept": "application/json"})
        else:
            answer = client.post(
                url, data=json.dumps(body), content_type="application/json", headers=headers
            )
        assert answer.status_code == 403, (url, answer.content)
        assert answer.json()["error"] == "interactive_only", url
        assert answer.json()["title"]
    assert scene.factors() == before


def test_an_api_key_in_a_browser_gets_the_message_page(scene: Scene) -> None:
    client = scene.site.browser().client
    headers = {**CHANNELS["api_key"]}
    token = _token(client, headers)
    before = scene.factors()
    for method, url, body in scene.endpoints():
        if method == "GET":
            answer = client.get(url, headers=headers)
        else:
            form = {k: v for k, v in body.items() if isinstance(v, str)}
            answer = client.post(url, {**form, "csrfmiddlewaretoken": token}, headers=headers)
        assert answer.status_code == 403, url
        assert "not with an API key" in answer.content.decode(), url
        assert answer["Content-Type"].startswith("text/html")
    assert scene.factors() == before


def test_the_browser_session_and_the_open_pages_still_answer(scene: Scene) -> None:
    assert scene.alice.get("/stepup/passkeys/").status_code == 200
    assert scene.alice.get("/stepup/2fa/").status_code == 200
    client = scene.site.browser().client
    headers = CHANNELS["api_key"]
    assert client.get("/stepup/reauth/?action=api_key.read", headers=headers).status_code == 200
    assert client.get("/stepup/stepup-passkeys.js", headers=headers).status_code == 200


@pytest.mark.parametrize("action", [["api_key.read"], {"a": 1}, 7, None, True])
@pytest.mark.parametrize("endpoint", ["begin", "finish"])
def test_an_action_that_is_not_text_is_a_clear_400(
    scene: Scene, action: object, endpoint: str
) -> None:
    body = {"action": action, "next": "/api-key/", "credential": {}}
    answer = scene.post_json(scene.alice, f"/stepup/reauth/passkey/{endpoint}", body)
    assert answer.status_code == 400, answer.content
    assert answer.json()["error"] == "unknown_action"
    assert scene.alice.get("/api-key/").status_code == 303  # no grant recorded


def test_an_api_key_cannot_change_the_tenant_settings_without_reauthenticating(
    scene: Scene,
) -> None:
    """Lowering protection is itself protected on every channel: an admin's API key
    needs a fresh re-authentication like the admin's session (never a second factor)."""
    from integrations.django.django_support import flag_body

    client = scene.site.browser().client
    headers = {**CHANNELS["api_key"]}
    headers["X-CSRFToken"] = _token(client, headers)
    answer = client.patch(
        "/stepup/tenants/acme",
        data=flag_body(False),
        content_type="application/vnd.api+json",
        headers=headers,
    )
    assert answer.status_code == 401, answer.content
    assert only_error(answer.json())["code"] == "reauth_required"
    tenant = scene.store.get_tenant("acme")
    assert tenant is not None
    assert tenant.flag("sensitive_actions_reauth")
