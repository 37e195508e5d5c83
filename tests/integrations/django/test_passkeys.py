"""Django: the passkeys page, the JSON endpoints and re-authentication with a passkey,
with Django's CSRF checks on and a software authenticator answering as the browser would."""

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
    set_flag,
)
from stepup.adapters.storage.memory import MemoryStore
from stepup.errors import ConfigurationError
from stepup.passkeys import MAX_PAYLOAD_BYTES, PasskeyRemoved
from stepup.testing import SettableClock
from stepup.testing.webauthn import SoftAuthenticator

ORIGIN = "http://localhost"
PASSKEYS = {"PASSKEYS_RP_ID": "localhost", "PASSKEYS_ORIGINS": [ORIGIN]}


@pytest.fixture
def site(clock: SettableClock) -> Iterator[Site]:
    with running_site(MemoryStore(), clock, **PASSKEYS) as running:
        from stepup.integrations.django.services import get_stepup

        get_stepup().tenant_settings.ensure("acme")
        yield running


def _csrf(browser: Browser) -> str:
    return browser.fields("/stepup/passkeys/")["csrfmiddlewaretoken"]


def _json(
    browser: Browser, url: str, body: Any, *, csrf: str | None = None, confirm: bool = True
) -> Any:
    """POST JSON; adding or removing a passkey with a fresh grant first unless not
    ``confirm`` (the guard's own tests)."""
    if confirm and changes_factors(url):
        confirm_factors(browser)
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    token = _csrf(browser) if csrf is None else csrf
    return browser.client.post(
        url, data=data, content_type="application/json", headers={"X-CSRFToken": token}
    )


def _add(browser: Browser, name: str = "Laptop") -> tuple[SoftAuthenticator, Any]:
    key = SoftAuthenticator(origin=ORIGIN, counter=1)
    options = _json(browser, "/stepup/passkeys/register/begin", {})
    assert options.status_code == 200, options.content
    body = {"credential": key.create(options.json()), "name": name}
    return key, _json(browser, "/stepup/passkeys/register/finish", body)


def test_add_list_rename_and_remove(site: Site, alice: Browser) -> None:
    _, finish = _add(alice, "Work laptop")
    assert finish.status_code == 200
    credential_id = finish.json()["passkey"]["id"]
    assert "Work laptop" in alice.get("/stepup/passkeys/").content.decode()
    renamed = alice.form(
        f"/stepup/passkeys/{credential_id}/rename", {"name": "Desk"}, page="/stepup/passkeys/"
    )
    assert renamed.status_code == 303
    assert "Desk" in alice.get("/stepup/passkeys/").content.decode()
    confirm_factors(alice)  # removing is guarded whatever the flag
    removed = alice.form(f"/stepup/passkeys/{credential_id}/remove", {}, page="/stepup/passkeys/")
    assert removed.status_code == 303
    assert "You have no passkey yet." in alice.get("/stepup/passkeys/").content.decode()
    assert any(isinstance(e, PasskeyRemoved) for e in site.events)


def test_reauthenticate_with_a_passkey_on_the_page(alice: Browser) -> None:
    key, _ = _add(alice)
    set_flag(alice)
    guarded = alice.get("/api-key/")
    assert guarded.status_code == 303
    location = guarded["Location"]
    body = alice.get(location).content.decode()
    assert "Use a passkey" in body
    assert 'type="password"' not in body
    fields = alice.fields(location)
    refused = alice.client.post("/stepup/reauth/password/", {**fields, "password": "correct horse"})
    assert refused.status_code == 400
    options = _json(alice, "/stepup/reauth/passkey/begin", {"action": fields["action"]})
    assert options.status_code == 200
    credential = json.dumps(key.get(options.json()))
    done = alice.client.post("/stepup/reauth/passkey/finish", {**fields, "credential": credential})
    assert done.status_code == 303
    assert done["Location"] == "/api-key/"
    assert alice.get("/api-key/").status_code == 200


def test_json_reauth_and_guarded_removal(alice: Browser) -> None:
    key, finish = _add(alice)
    credential_id = finish.json()["passkey"]["id"]
    set_flag(alice)
    remove = alice.form(f"/stepup/passkeys/{credential_id}/remove", {}, page="/stepup/passkeys/")
    assert remove.status_code == 303
    assert "action=passkey.remove" in remove["Location"]
    options = _json(alice, "/stepup/reauth/passkey/begin", {"action": "passkey.remove"})
    body = {"credential": key.get(options.json()), "action": "passkey.remove"}
    done = _json(alice, "/stepup/reauth/passkey/finish", body)
    assert done.status_code == 200
    assert done.json()["ok"] is True
    remove = alice.form(f"/stepup/passkeys/{credential_id}/remove", {}, page="/stepup/passkeys/")
    assert remove["Location"] == "/stepup/passkeys/"
    assert alice.get("/api-key/").status_code == 303  # grants revoked with the factor


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", json.dumps({"x": "y" * (MAX_PAYLOAD_BYTES + 4096)})],
    ids=["not-json", "not-an-object", "oversized"],
)
def test_malformed_or_oversized_is_a_clear_400(alice: Browser, body: Any) -> None:
    for url in ("/stepup/passkeys/register/finish", "/stepup/reauth/passkey/finish"):
        answer = _json(alice, url, body)
        assert answer.status_code == 400
        assert answer.json()["error"] == "malformed"
    assert "You have no passkey yet." in alice.get("/stepup/passkeys/").content.decode()


def test_another_users_passkey_is_refused(site: Site, alice: Browser, bob: Browser) -> None:
    bobs_key, _ = _add(bob)
    _add(alice)
    options = _json(alice, "/stepup/reauth/passkey/begin", {"action": "api_key.read"})
    bobs_key.user_handle = None
    body = {"credential": bobs_key.get(options.json()), "action": "api_key.read"}
    refused = _json(alice, "/stepup/reauth/passkey/finish", body)
    assert refused.status_code == 400
    assert refused.json()["error"] == "unknown_credential"


def test_csrf_is_checked(alice: Browser) -> None:
    answer = _json(alice, "/stepup/passkeys/register/begin", {}, csrf="forged" * 6)
    assert answer.status_code == 403  # Django's CSRF failure


def test_the_script_is_served(alice: Browser) -> None:
    answer = alice.get("/stepup/stepup-passkeys.js")
    assert answer.status_code == 200
    assert b"navigator.credentials.get" in answer.content


def test_without_settings_passkeys_are_off(clock: SettableClock) -> None:
    with running_site(MemoryStore(), clock) as running:
        browser = running.browser("alice")
        assert browser.get("/stepup/passkeys/").status_code == 404
        from stepup.integrations.django.services import get_policy

        assert "passkey.remove" not in get_policy()


def test_bad_settings_fail_at_start_up(clock: SettableClock) -> None:
    from stepup.integrations.django.checks import check_settings
    from stepup.integrations.django.services import get_policy

    with running_site(
        MemoryStore(), clock, PASSKEYS_RP_ID="example.com", PASSKEYS_ORIGINS=[ORIGIN]
    ):
        with pytest.raises(ConfigurationError, match="PASSKEYS_RP_ID"):
            get_policy()
        assert any(m.id == "stepup.E010" for m in check_settings())


class _Outage(MemoryStore):
    """A memory store whose passkey reads fail once ``down`` is set."""

    down = False

    def list_passkeys(self, user_id: str) -> Any:
        if self.down:
            raise ConnectionError("store down")
        return super().list_passkeys(user_id)


def test_a_store_outage_is_a_503_not_a_500(clock: SettableClock) -> None:
    store = _Outage()
    with running_site(store, clock, **PASSKEYS) as running:
        alice = running.browser("alice")
        _add(alice)
        token = _csrf(alice)
        store.down = True
        assert alice.get("/stepup/passkeys/").status_code == 503
        body = {"action": "api_key.read"}
        answer = _json(alice, "/stepup/reauth/passkey/begin", body, csrf=token)
        assert answer.status_code == 503
        assert answer.json()["error"] == "unavailable"
        assert alice.get("/stepup/reauth/?action=api_key.read&next=/api-key/").status_code == 503


def test_adding_a_passkey_revokes_the_users_grants_in_every_session(site: Site) -> None:
    """Issue 12 item 9: a passkey is a factor; adding one ends every re-authentication."""
    from integrations.django.django_support import fresh_grant

    first, second = site.browser("alice"), site.browser("alice")
    assert set_flag(first, True).status_code == 200
    for browser in (first, second):
        fresh_grant(browser)
        assert browser.get("/api-key/").status_code == 200
    from integrations.django.django_support import user_id
    from stepup.integrations.django.services import get_stepup

    store, alice = get_stepup().store, user_id("alice")
    sids = [browser.client.session["_stepup_sid"] for browser in (first, second)]
    assert all(store.get_grant(alice, sid) for sid in sids)
    _, finish = _add(first)
    assert finish.status_code == 200, finish.content
    # The grants are gone (not only outranked by the passkey strongest-available asks for).
    assert [store.get_grant(alice, sid) for sid in sids] == [None, None]
    for browser in (first, second):
        assert browser.get("/api-key/").status_code == 303


def test_reauthenticating_with_a_passkey_renews_the_session(site: Site, alice: Browser) -> None:
    """Issue 12 item 9 (ASVS 5.0 §7.2.4): a new session key and stepup id, the grant
    bound to the new id."""
    from django.conf import settings

    from integrations.django.django_support import user_id
    from stepup.integrations.django.services import get_stepup

    key, _ = _add(alice)
    set_flag(alice)
    options = _json(alice, "/stepup/reauth/passkey/begin", {"action": "api_key.read"})
    old_key = alice.client.cookies[settings.SESSION_COOKIE_NAME].value
    old_sid = alice.client.session["_stepup_sid"]
    body = {"credential": key.get(options.json()), "action": "api_key.read", "next": "/"}
    assert _json(alice, "/stepup/reauth/passkey/finish", body).status_code == 200
    assert alice.client.cookies[settings.SESSION_COOKIE_NAME].value != old_key
    new_sid = alice.client.session["_stepup_sid"]
    assert new_sid != old_sid
    store = get_stepup().store
    assert store.get_grant(user_id("alice"), old_sid) is None
    assert store.get_grant(user_id("alice"), new_sid) is not None
    assert alice.get("/api-key/").status_code == 200


def test_a_name_sent_twice_renames_nothing(alice: Browser) -> None:
    """Django reads a field's last value, Werkzeug its first: a name sent twice is no
    name in every framework, and the passkey keeps its own."""
    _, finish = _add(alice, "Work laptop")
    credential_id = finish.json()["passkey"]["id"]
    alice.form(
        f"/stepup/passkeys/{credential_id}/rename",
        {"name": ["Desk", "Other"]},  # type: ignore[dict-item]
        page="/stepup/passkeys/",
    )
    page = alice.get("/stepup/passkeys/").content.decode()
    assert "Work laptop" in page
    assert "Other" not in page
