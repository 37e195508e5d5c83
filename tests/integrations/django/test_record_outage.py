"""Django: the store fails while the grant of a right password is recorded (see the
Flask twin): stepup's 503 page (JSON for a script) with a link to try again, not a 500,
and the kept form waits for the next try."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from idp.saml import saml_idp
from integrations.django.django_support import Browser, Site, running_site, set_flag
from integrations.django.test_sso import idp, keys, press_sso_button  # noqa: F401
from integrations.record_outage_support import TRY_AGAIN, GrantOutage
from integrations.resume_support import resume_form, try_again_link
from stepup.integrations.django.services import get_stepup
from stepup.testing import SettableClock

PASSWORD = "correct horse"


@pytest.fixture
def outage(clock: SettableClock) -> Iterator[tuple[Site, GrantOutage]]:
    store = GrantOutage()
    with running_site(store, clock) as site:
        get_stepup().tenant_settings.ensure("acme")
        yield site, store


def _kept(browser: Browser) -> str:
    refused = browser.form("/profile/update/", {"label": "deploy"})
    assert "resume=" in refused["Location"]
    return str(refused["Location"])


def test_a_store_failure_at_the_grant_is_a_503_page_and_the_form_waits(
    outage: tuple[Site, GrantOutage],
) -> None:
    site, store = outage
    alice = site.browser("alice")
    assert set_flag(alice).status_code == 200
    link = _kept(alice)
    store.down = True
    failed = alice.reauth(link, PASSWORD)
    assert failed.status_code == 503
    body = failed.content.decode()
    assert TRY_AGAIN in body
    again = try_again_link(body)
    assert again.startswith("/stepup/reauth/?")
    assert "resume=" in again
    assert alice.get("/api-key/").status_code == 303  # nothing was recorded

    store.down = False
    resumed = alice.reauth(again, PASSWORD)
    assert resumed.status_code == 200
    target, fields = resume_form(resumed.content.decode())
    assert (target, ("label", "deploy") in fields) == ("/profile/update/", True)


def test_a_script_gets_the_503_as_json(outage: tuple[Site, GrantOutage]) -> None:
    site, store = outage
    alice = site.browser("alice")
    assert set_flag(alice).status_code == 200
    fields = alice.fields(_kept(alice))
    store.down = True
    failed = alice.client.post(
        "/stepup/reauth/password/",
        {**fields, "password": PASSWORD},
        HTTP_ACCEPT="application/json",
    )
    assert failed.status_code == 503
    assert failed.json()["error"] == "unavailable"


@pytest.fixture
def saml_outage(
    keys: dict[str, saml_idp.KeyPair],  # noqa: F811
) -> Iterator[tuple[Site, GrantOutage]]:
    store = GrantOutage()
    providers = {"corp": saml_idp.make_config(keys)}
    with running_site(store, SettableClock(time.time()), SAML_PROVIDERS=providers) as site:
        get_stepup().tenant_settings.ensure("acme")
        yield site, store


def _saml_answer(browser: Browser, idp: saml_idp.TestIdP, link: str) -> Any:  # noqa: F811
    request = idp.receive(press_sso_button(browser, link)["Location"])
    answer = {
        "SAMLResponse": idp.answer(request, saml_idp.ALICE),
        "RelayState": request.relay_state or "",
    }
    return browser.post("/stepup/reauth/saml/acs/", answer)


@pytest.mark.saml
def test_an_sso_answer_meets_a_store_failure_with_the_503_page_too(
    saml_outage: tuple[Site, GrantOutage],
    idp: saml_idp.TestIdP,  # noqa: F811
) -> None:
    site, store = saml_outage
    alice = site.browser()
    assert alice.login_sso("alice", "saml", saml_idp.IDP_ID, saml_idp.ALICE, "corp")
    assert set_flag(alice).status_code == 200
    link = _kept(alice)
    store.down = True
    failed = _saml_answer(alice, idp, link)
    assert failed.status_code == 503
    assert TRY_AGAIN in failed.content.decode()
    again = try_again_link(failed.content.decode())
    assert "resume=" in again

    store.down = False
    back = _saml_answer(alice, idp, again)
    assert back.status_code == 303
    _, fields = resume_form(alice.get(back["Location"]).content.decode())
    assert ("label", "deploy") in fields
