"""Django: a kept form resumes only in the browser that sent it (see the Flask twin).

Someone holding a copy of the session cookie can make the guard keep a form and send
the owner the link to the genuine re-auth page: the owner's re-authentication counts,
the form is not sent again. (A stale copy is signed out here: Django's session key is
cycled at each re-authentication.) A SAML answer is posted cross-site, without the
SameSite=Lax binding cookie: the ACS leaves the form for the same-site resume view."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from idp.saml import saml_idp
from integrations.django.django_support import Browser, Site, running_site, set_flag
from integrations.django.test_sso import idp, keys, press_sso_button  # noqa: F401
from integrations.resume_support import as_multidict, resume_form
from stepup.adapters.storage.memory import MemoryStore
from stepup.integrations.django.services import get_stepup
from stepup.integrations.resume import BROWSER_COOKIE

NOT_SENT = "The form that brought you here was not sent"
PASSWORD = "correct horse"


def _owner(site: Site) -> Browser:
    owner = site.browser("alice")
    assert set_flag(owner).status_code == 200
    return owner


def _copy_of_session(site: Site, owner: Browser) -> Browser:
    """Another machine with a copy of the owner's session cookie (and nothing else)."""
    thief = site.browser()
    thief.client.cookies["sessionid"] = owner.client.cookies["sessionid"].value
    return thief


def _keep(browser: Browser, key: str) -> Any:
    """A form of the app's own (``require()`` in the view, Django's CSRF check first)."""
    refused = browser.form("/profile/update/", {"key": key})
    assert refused.status_code == 303
    assert "resume=" in refused["Location"]
    return refused


def test_a_form_sent_with_a_copy_of_the_session_is_not_replayed_to_the_owner(
    site: Site,
) -> None:
    owner = _owner(site)
    thief = _copy_of_session(site, owner)
    link = _keep(thief, "ssh-ed25519 AAAA-THIEF")["Location"]
    answer = owner.reauth(link, PASSWORD)
    body = answer.content.decode()
    assert answer.status_code == 200
    assert NOT_SENT in body
    assert 'id="stepup-resume"' not in body
    assert "AAAA-THIEF" not in body
    assert 'href="/profile/update/"' in body
    assert owner.get("/api-key/").status_code == 200  # her re-authentication counts
    assert owner.reauth(link, PASSWORD).status_code == 303  # used up


def test_the_owners_own_form_resumes_and_the_cookie_binds_it(site: Site) -> None:
    owner = _owner(site)
    refused = _keep(owner, "AAAA-MINE")
    cookie = refused.cookies[BROWSER_COOKIE]
    assert cookie["httponly"] is True
    assert (cookie["samesite"], cookie["path"], cookie["max-age"]) == ("Lax", "/", 600)
    assert not cookie["secure"]
    resumed = owner.reauth(refused["Location"], PASSWORD)
    target, fields = resume_form(resumed.content.decode())
    assert ("key", "AAAA-MINE") in fields
    assert owner.post(target, as_multidict(fields)).content == b"updated"


def test_the_cookie_is_secure_on_https(site: Site) -> None:
    owner = _owner(site)
    refused = owner.form(
        "/profile/update/", {"key": "k"}, secure=True, HTTP_REFERER="https://testserver/"
    )
    assert refused.status_code == 303
    assert refused.cookies[BROWSER_COOKIE]["secure"] is True


def test_a_browser_without_the_cookie_gets_no_replay(site: Site) -> None:
    owner = _owner(site)
    link = _keep(owner, "AAAA")["Location"]
    del owner.client.cookies[BROWSER_COOKIE]
    answer = owner.reauth(link, PASSWORD)
    assert answer.status_code == 200
    assert NOT_SENT in answer.content.decode()


# SAML: the ACS is another site's POST --------------------------------------------------


@pytest.fixture
def saml_site(keys: dict[str, saml_idp.KeyPair]) -> Iterator[Site]:  # noqa: F811
    from stepup.testing import SettableClock

    clock = SettableClock(time.time())  # the IdP stamps real times
    providers = {"corp": saml_idp.make_config(keys)}
    with running_site(MemoryStore(), clock, SAML_PROVIDERS=providers) as site:
        get_stepup().tenant_settings.ensure("acme")
        yield site


def _saml_trip(browser: Browser, idp: saml_idp.TestIdP, link: str) -> Any:  # noqa: F811
    """Press the SAML button on the re-auth page, sign in at the IdP, post its answer."""
    request = idp.receive(press_sso_button(browser, link)["Location"])
    answer = {
        "SAMLResponse": idp.answer(request, saml_idp.ALICE),
        "RelayState": request.relay_state or "",
    }
    return browser.post("/stepup/reauth/saml/acs/", answer)


@pytest.mark.saml
def test_a_saml_answer_leaves_the_form_to_the_same_site_resume_view(
    saml_site: Site,
    idp: saml_idp.TestIdP,  # noqa: F811
) -> None:
    alice = saml_site.browser()
    assert alice.login_sso("alice", "saml", saml_idp.IDP_ID, saml_idp.ALICE, "corp")
    assert set_flag(alice).status_code == 200
    back = _saml_trip(alice, idp, _keep(alice, "AAAA-MINE")["Location"])
    assert back.status_code == 303
    assert back["Location"] == "/stepup/reauth/resume?next=%2Fprofile%2Fupdate%2F"
    resumed = alice.get(back["Location"])
    target, fields = resume_form(resumed.content.decode())
    assert ("key", "AAAA-MINE") in fields
    assert alice.post(target, as_multidict(fields)).content == b"updated"
    assert alice.get(back["Location"])["Location"] == "/profile/update/"  # taken once

    user = str(alice.client.session["_auth_user_id"])
    get_stepup().reauth.password_changed(user)  # asked again (the IdP's clock is real)
    thief = _copy_of_session(saml_site, alice)
    back = _saml_trip(alice, idp, _keep(thief, "AAAA-THIEF")["Location"])
    refused = alice.get(back["Location"])
    assert refused.status_code == 200
    assert NOT_SENT in refused.content.decode()
    assert "AAAA-THIEF" not in refused.content.decode()
