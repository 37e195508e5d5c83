"""Django: a passkey as the second factor at sign-in, with Django's CSRF checks on and a
software authenticator answering as the browser would (the page's form and JSON)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from integrations.django.django_support import (
    TENANT,
    Browser,
    Site,
    changes_factors,
    confirm_factors,
    running_site,
)
from integrations.django.testapp.hooks import app_policy
from stepup.adapters.storage.memory import MemoryStore
from stepup.passkeys import MAX_PAYLOAD_BYTES, PasskeySignInRejected, PasskeySignInVerified
from stepup.reauth import FEATURE_FLAG
from stepup.records import Tenant
from stepup.testing import SettableClock
from stepup.testing.webauthn import SoftAuthenticator
from stepup.twofactor import Channel

ORIGIN = "http://localhost"
PASSKEYS = {"PASSKEYS_RP_ID": "localhost", "PASSKEYS_ORIGINS": [ORIGIN]}
VERIFY = "/stepup/2fa/verify/"
BEGIN = "/stepup/2fa/verify/passkey/begin"
FINISH = "/stepup/2fa/verify/passkey/finish"


@pytest.fixture
def site(clock: SettableClock) -> Iterator[Site]:
    policy = app_policy().with_sign_in_counts()
    with running_site(MemoryStore(), clock, POLICY=policy, **PASSKEYS) as running:
        from stepup.integrations.django.services import get_stepup

        get_stepup().tenant_settings.ensure("acme")
        yield running


def _csrf(browser: Browser, page: str = VERIFY) -> str:
    return browser.fields(page)["csrfmiddlewaretoken"]


def _json(browser: Browser, url: str, body: Any, csrf: str) -> Any:
    """POST JSON; adding a passkey with a fresh grant first (guarded whatever the flag)."""
    if changes_factors(url):
        confirm_factors(browser)
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return browser.client.post(
        url, data=data, content_type="application/json", headers={"X-CSRFToken": csrf}
    )


def _who(browser: Browser) -> str:
    return browser.get("/home/").content.decode().removeprefix("home of ")


def _with_passkey(site: Site, name: str = "alice") -> SoftAuthenticator:
    browser = site.browser(name)
    key = SoftAuthenticator(origin=ORIGIN, counter=1)
    csrf = _csrf(browser, "/stepup/passkeys/")
    options = _json(browser, "/stepup/passkeys/register/begin", {}, csrf)
    assert options.status_code == 200, options.content
    body = {"credential": key.create(options.json())}
    assert _json(browser, "/stepup/passkeys/register/finish", body, csrf).status_code == 200
    browser.logout()
    return key


def _at_second_step(site: Site, name: str = "alice", next: str = "/api-key/") -> Browser:
    browser = Browser(site)
    answer = browser.login(name, next=next)
    assert answer.status_code == 303
    assert answer["Location"] == VERIFY
    return browser


def test_sign_in_with_password_then_passkey_counts_for_sensitive_actions(site: Site) -> None:
    key = _with_passkey(site)
    site.store.put_tenant(Tenant(TENANT, {"feature_flags": {FEATURE_FLAG: True}}))
    control = site.browser("bob")  # no second factor: the sign-in does not count
    assert control.get("/api-key/").status_code == 303
    browser = _at_second_step(site)
    page = browser.get(VERIFY).content.decode()
    assert "Use a passkey" in page
    assert 'name="code"' not in page
    assert 'name="recovery_code"' not in page
    csrf = _csrf(browser)
    assert _who(browser) == "nobody"
    options = _json(browser, BEGIN, {}, csrf)
    assert options.status_code == 200
    assert options.json()["publicKey"]["userVerification"] == "preferred"
    credential = json.dumps(key.get(options.json()))
    done = browser.post(FINISH, {"credential": credential, "csrfmiddlewaretoken": csrf})
    assert done.status_code == 303
    assert done["Location"] == "/api-key/"
    assert _who(browser) == "alice"
    # The sign-in counts (pwd + the passkey): the guarded page opens without asking again.
    assert browser.get("/api-key/").status_code == 200
    assert any(isinstance(e, PasskeySignInVerified) for e in site.events)


def test_json_endpoints_and_the_channel_rule(site: Site) -> None:
    key = _with_passkey(site)
    from django.test import RequestFactory

    from stepup.integrations.django._request import attach

    bound = attach(RequestFactory().get("/"))
    assert bound.second_factors(_user_pk("alice")).required
    assert not bound.second_factors(_user_pk("alice"), Channel.API).required
    browser = _at_second_step(site, next="/home/")
    csrf = _csrf(browser)
    options = _json(browser, BEGIN, {}, csrf).json()
    done = _json(browser, FINISH, {"credential": key.get(options)}, csrf)
    assert done.status_code == 200
    answer = done.json()
    assert answer == {"ok": True, "next": "/home/", "csrf_token": answer["csrf_token"]}
    assert answer["csrf_token"]  # Django's login rotated it: the script's next request's
    assert _who(browser) == "alice"


def _user_pk(name: str) -> str:
    from integrations.django.django_support import user_id

    return user_id(name)


def test_another_users_passkey_and_another_sign_ins_challenge_are_refused(site: Site) -> None:
    key = _with_passkey(site, "alice")
    bobs = _with_passkey(site, "bob")
    browser = _at_second_step(site)
    csrf = _csrf(browser)
    options = _json(browser, BEGIN, {}, csrf).json()
    bobs.user_handle = None
    refused = _json(browser, FINISH, {"credential": bobs.get(options)}, csrf)
    assert refused.status_code == 400
    assert refused.json()["error"] == "unknown_credential"
    other = _at_second_step(site)
    other_options = _json(other, BEGIN, {}, _csrf(other)).json()
    crossed = _json(browser, FINISH, {"credential": key.get(other_options)}, csrf)
    assert crossed.status_code == 400
    assert crossed.json()["error"] == "challenge"
    page = browser.post(
        FINISH,
        {"credential": json.dumps(bobs.get(options)), "csrfmiddlewaretoken": csrf},
    )
    assert page.status_code == 400  # the page again, with the error
    assert "Use a passkey" in page.content.decode()
    assert _who(browser) == "nobody"
    rejected = [e.reason for e in site.events if isinstance(e, PasskeySignInRejected)]
    assert rejected == ["unknown_credential", "challenge", "challenge"]


@pytest.mark.parametrize(
    "body", ["{", "[]", json.dumps({"credential": "x" * (MAX_PAYLOAD_BYTES + 4096)})]
)
def test_malformed_or_oversized_body_is_a_clear_400(site: Site, body: str) -> None:
    key = _with_passkey(site)
    browser = _at_second_step(site)
    csrf = _csrf(browser)
    options = _json(browser, BEGIN, {}, csrf).json()
    refused = _json(browser, FINISH, body, csrf)
    assert refused.status_code == 400
    assert refused.json()["error"] == "malformed"
    assert _json(browser, FINISH, {"credential": key.get(options)}, csrf).status_code == 200


def test_no_pending_sign_in_or_no_csrf_is_refused(site: Site) -> None:
    _with_passkey(site)
    stranger = Browser(site)
    stranger.get("/stepup/2fa/verify/")  # sets the CSRF cookie... and says: expired
    token = stranger.client.cookies["csrftoken"].value
    expired = _json(stranger, BEGIN, {}, token)
    assert expired.status_code == 400
    assert expired.json()["error"] == "sign_in_expired"
    browser = _at_second_step(site)
    assert _json(browser, BEGIN, {}, "forged").status_code == 403


def test_attempts_are_throttled(site: Site) -> None:
    key = _with_passkey(site)
    browser = _at_second_step(site)
    csrf = _csrf(browser)
    statuses = []
    for _ in range(5):
        options = _json(browser, BEGIN, {}, csrf).json()
        wrong = SoftAuthenticator(origin=ORIGIN).get(options)
        statuses.append(_json(browser, FINISH, {"credential": wrong}, csrf).status_code)
    assert statuses[-1] == 429
    options = _json(browser, BEGIN, {}, csrf).json()
    assert _json(browser, FINISH, {"credential": key.get(options)}, csrf).status_code == 429
