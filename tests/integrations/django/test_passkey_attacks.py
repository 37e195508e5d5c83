"""Django: a hostile browser against the passkey endpoints, with Django's CSRF checks
on. Every state-changing one refuses a missing or forged token; a body of the wrong
shape is a clear 400 that changes nothing; a name with markup is shown escaped."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from integrations.django.django_support import (
    Browser,
    Site,
    changes_factors,
    confirm_factors,
    running_site,
)
from stepup.adapters.storage.memory import MemoryStore
from stepup.testing import SettableClock
from stepup.testing.webauthn import SoftAuthenticator

ORIGIN = "http://localhost"
PASSKEYS = {"PASSKEYS_RP_ID": "localhost", "PASSKEYS_ORIGINS": [ORIGIN]}
STORE: list[MemoryStore] = []


@pytest.fixture
def site(clock: SettableClock) -> Iterator[Site]:
    store = MemoryStore()
    STORE[:] = [store]
    with running_site(store, clock, **PASSKEYS) as running:
        from stepup.integrations.django.services import get_stepup

        get_stepup().tenant_settings.ensure("acme")
        yield running


def _json(
    browser: Browser, url: str, body: Any, *, csrf: str | None = None, confirm: bool = True
) -> Any:
    """POST JSON; adding or removing a passkey with a fresh grant first unless not
    ``confirm``."""
    if confirm and changes_factors(url):
        confirm_factors(browser)
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    token = browser.fields("/stepup/passkeys/")["csrfmiddlewaretoken"] if csrf is None else csrf
    return browser.client.post(
        url, data=data, content_type="application/json", headers={"X-CSRFToken": token}
    )


def _add(browser: Browser, name: str = "Laptop") -> str:
    key = SoftAuthenticator(origin=ORIGIN, counter=1)
    options = _json(browser, "/stepup/passkeys/register/begin", {}).json()
    body = {"credential": key.create(options), "name": name}
    finish = _json(browser, "/stepup/passkeys/register/finish", body)
    assert finish.status_code == 200, finish.content
    return str(finish.json()["passkey"]["id"])


def _stored() -> list[tuple[str, str, int]]:
    return [(p.credential_id, p.name, p.sign_count) for p in STORE[0].list_passkeys("alice")]


@pytest.mark.parametrize("token", [None, "", "forged"])
def test_every_state_changing_endpoint_checks_csrf(
    site: Site, alice: Browser, token: str | None
) -> None:
    credential_id = _add(alice)
    before = _stored()
    for url in [
        "/stepup/passkeys/register/begin",
        "/stepup/passkeys/register/finish",
        f"/stepup/passkeys/{credential_id}/rename",
        f"/stepup/passkeys/{credential_id}/remove",
        "/stepup/reauth/passkey/begin",
        "/stepup/reauth/passkey/finish",
        "/stepup/2fa/verify/passkey/begin",
        "/stepup/2fa/verify/passkey/finish",
    ]:
        body = json.dumps({"name": "Renamed", "action": "api_key.read", "credential": {}})
        headers = {} if token is None else {"X-CSRFToken": token}
        answer = alice.client.post(url, data=body, content_type="application/json", headers=headers)
        assert answer.status_code == 403, url
        form = {"name": "Renamed"}
        if token is not None:
            form["csrfmiddlewaretoken"] = token
        assert alice.client.post(url, data=form).status_code == 403, url
    assert _stored() == before


@pytest.mark.parametrize("credential", [[], 7, "not json", {"id": 7}, {"response": []}])
def test_a_credential_of_the_wrong_shape_is_a_clear_400(
    site: Site, alice: Browser, credential: Any
) -> None:
    _add(alice)
    before = _stored()
    for url, extra in [
        ("/stepup/passkeys/register/finish", {"name": "x"}),
        ("/stepup/reauth/passkey/finish", {"action": "api_key.read"}),
    ]:
        answer = _json(alice, url, {"credential": credential, **extra})
        assert answer.status_code == 400, (url, answer.content)
        assert answer.json()["error"] == "malformed"
    assert _stored() == before


def test_a_name_with_markup_is_escaped(site: Site, alice: Browser) -> None:
    _add(alice, '<script>alert("x")</script>\u202e\x00')
    page = alice.get("/stepup/passkeys/").content.decode()
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(" in page
    assert "\u202e" not in page


@pytest.mark.parametrize("name", [7, None, ["x"], {"x": 1}, True])
def test_a_name_that_is_not_text_is_a_clear_400(site: Site, alice: Browser, name: Any) -> None:
    credential_id = _add(alice)
    renamed = _json(alice, f"/stepup/passkeys/{credential_id}/rename", {"name": name})
    assert renamed.status_code == 400
    assert renamed.json()["error"] == "malformed"
    key = SoftAuthenticator(origin=ORIGIN)
    options = _json(alice, "/stepup/passkeys/register/begin", {}).json()
    body = {"credential": key.create(options), "name": name}
    added = _json(alice, "/stepup/passkeys/register/finish", body)
    assert added.status_code == 400
    assert added.json()["error"] == "malformed"
    page = alice.get("/stepup/passkeys/").content.decode()
    assert page.count("/rename") == 1  # still one passkey, still named Laptop
    assert "Laptop" in page
