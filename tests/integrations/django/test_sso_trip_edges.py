"""What a trip to the provider keeps to itself, in Django: the proof of a code checked
at the start rides with the trip (a forged answer cannot use it up), and an IdP's error
status still hands back the action, the transaction, the suspended form and the way
back."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from saml2.samlp import STATUS_AUTHN_FAILED

from idp.oidc.harness import ALICE, REDIRECT_URI, Provider, launch_provider, make_config
from idp.oidc.useragent import UserAgent
from idp.saml import saml_idp
from integrations.django.django_support import Site, running_site
from integrations.django.test_sso import keys, oidc_alice, press_sso_button, saml_alice
from integrations.resume_support import as_multidict, resume_form, try_again_link
from stepup.adapters.idp.saml import SAMLServiceProvider
from stepup.adapters.storage.memory import MemoryStore
from stepup.events import ReauthSucceeded
from stepup.integrations.django.services import get_stepup
from stepup.testing import SettableClock

__all__ = ["keys"]  # the SAML key pair fixture

ACS = "/stepup/reauth/saml/acs/"


def _grants(site: Site) -> list[str]:
    return [e.method for e in site.events if isinstance(e, ReauthSucceeded)]


# OIDC ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    started = launch_provider(tmp_path_factory.mktemp("django-oidc-edges") / "provider.log")
    yield started
    started.stop()


@pytest.fixture
def oidc_site(provider: Provider) -> Iterator[Site]:
    clock = SettableClock(math.floor(time.time()))  # the provider stamps real times
    providers = {"test-op": make_config(provider)}
    with running_site(MemoryStore(), clock, OIDC_PROVIDERS=providers) as site:
        get_stepup().tenant_settings.ensure("acme")
        yield site
        get_stepup().oidc["test-op"].close()


@pytest.mark.oidc
@pytest.mark.parametrize(
    "forged",
    ["state=forged&code=x", "error=access_denied&state=forged", "error=access_denied"],
)
def test_a_forged_callback_leaves_the_code_proof_of_the_trip_in_flight(
    oidc_site: Site, provider: Provider, forged: str
) -> None:
    """Between the code step and her real callback, another site's page sends her
    browser to the callback with an answer that matches no trip: it is refused, and her
    real answer still records ``oidc`` with ``otp``."""
    alice = oidc_alice(oidc_site, provider)
    secret, _ = alice.enrol()
    location = alice.get("/billing/export/")["Location"]  # this rule wants a code too
    oidc_site.clock.advance(30)
    to_provider = press_sso_button(alice, location, code=oidc_site.totp_code(secret))
    assert to_provider.status_code == 303

    assert alice.get(f"/stepup/reauth/oidc/callback/?{forged}").status_code == 400

    agent = UserAgent(REDIRECT_URI)
    try:
        callback = agent.authorize(to_provider["Location"], login=ALICE[0], password=ALICE[1])
    finally:
        agent.close()
    back = alice.get(f"/stepup/reauth/oidc/callback/?{urlencode(callback)}")
    assert back["Location"] == "/billing/export/"
    assert set(_grants(oidc_site)[-1].split(",")) == {"oidc", "otp"}
    assert alice.get("/billing/export/").content == b"billing.csv"


# SAML ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def idp(keys: dict[str, saml_idp.KeyPair]) -> saml_idp.TestIdP:
    metadata = SAMLServiceProvider(saml_idp.make_config(keys), MemoryStore()).metadata()
    return saml_idp.make_idp(keys["idp"], metadata)


@pytest.fixture
def saml_site(keys: dict[str, saml_idp.KeyPair]) -> Iterator[Site]:
    clock = SettableClock(time.time())  # the IdP stamps real times
    providers = {"corp": saml_idp.make_config(keys)}
    with running_site(MemoryStore(), clock, SAML_PROVIDERS=providers) as site:
        get_stepup().tenant_settings.ensure("acme")
        yield site


@pytest.mark.saml
def test_a_forged_saml_answer_leaves_the_code_proof_of_the_request_in_flight(
    saml_site: Site, idp: saml_idp.TestIdP
) -> None:
    alice = saml_alice(saml_site)
    secret, _ = alice.enrol()
    location = alice.get("/billing/export/")["Location"]
    saml_site.clock.advance(30)
    to_idp = press_sso_button(alice, location, code=saml_site.totp_code(secret))
    assert to_idp.status_code == 303
    request = idp.receive(to_idp["Location"])

    forged = alice.post(ACS, {"SAMLResponse": "PGZvcmdlZC8+", "RelayState": "_forged"})
    assert forged.status_code == 400

    back = alice.post(
        ACS,
        {
            "SAMLResponse": idp.answer(request, saml_idp.ALICE),
            "RelayState": request.relay_state or "",
        },
    )
    assert back["Location"] == "/billing/export/"
    assert set(_grants(saml_site)[-1].split(",")) == {"saml", "otp"}
    assert alice.get("/billing/export/").content == b"billing.csv"


@pytest.mark.saml
def test_try_again_after_an_idp_error_keeps_the_action_the_form_and_next(
    saml_site: Site, idp: saml_idp.TestIdP
) -> None:
    """The IdP answers "authentication failed": nothing is granted, and "Try again"
    keeps the action, the transaction, the suspended form and the way back, so the next
    trip sends the form again."""
    alice = saml_alice(saml_site)
    location = str(alice.post("/workspaces/prod-eu/destroy/", {"why": "eu"})["Location"])
    assert "resume=" in location
    granted = _grants(saml_site)
    request = idp.receive(press_sso_button(alice, location)["Location"])
    failed = alice.post(
        ACS,
        {
            "SAMLResponse": idp.error(request, STATUS_AUTHN_FAILED),
            "RelayState": request.relay_state or "",
        },
    )
    assert failed.status_code == 400
    assert _grants(saml_site) == granted  # nothing granted
    again = try_again_link(failed.content.decode())
    query, before = parse_qs(urlsplit(again).query), parse_qs(urlsplit(location).query)
    for name in ("action", "resume", "transaction", "next"):
        assert query[name] == before[name], name

    request = idp.receive(press_sso_button(alice, again)["Location"])
    back = alice.post(
        ACS,
        {
            "SAMLResponse": idp.answer(request, saml_idp.ALICE),
            "RelayState": request.relay_state or "",
        },
    )
    assert back.status_code == 303  # the ACS is cross-site: the resume view sends it
    target, fields = resume_form(alice.get(back["Location"]).content.decode())
    assert (target, ("why", "eu") in fields) == ("/workspaces/prod-eu/destroy/", True)
    assert alice.post(target, as_multidict(fields)).status_code == 200


@pytest.mark.oidc
def test_a_refused_code_before_the_trip_is_a_failed_reauthentication(
    oidc_site: Site, provider: Provider
) -> None:
    """The code typed before the provider's button is checked here: refused, it is a
    failed re-authentication (ReauthFailed, method otp) once."""
    from stepup.events import ReauthFailed

    alice = oidc_alice(oidc_site, provider)
    alice.enrol()
    location = alice.get("/billing/export/")["Location"]
    oidc_site.clock.advance(30)
    oidc_site.events.clear()
    assert press_sso_button(alice, location, code="12345x").status_code == 400
    failed = [e for e in oidc_site.events if isinstance(e, ReauthFailed)]
    assert [(e.method, e.reason) for e in failed] == [("otp", "malformed")]  # alice's pk
