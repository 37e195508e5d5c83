"""What a trip to the provider keeps to itself, in Flask: the proof of a code checked
at the start rides with the trip (a forged answer cannot use it up), and an IdP's error
status still hands back the action, the suspended form and the way back."""

from __future__ import annotations

import html
import re
import shutil
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from saml2.samlp import STATUS_AUTHN_FAILED

from idp.oidc.harness import ALICE, REDIRECT_URI, Provider, launch_provider
from idp.oidc.useragent import UserAgent
from idp.saml import saml_idp
from integrations.flask.flask_support import Browser, TestApp, make_app, set_flag
from integrations.flask.oidc_support import oidc_app_on
from integrations.resume_support import resume_form, try_again_link
from integrations.sso_refusal_support import NOT_CONFIRMED, refusals
from stepup.adapters.idp.saml import SAMLServiceProvider
from stepup.adapters.storage.memory import MemoryStore
from stepup.events import ReauthSucceeded
from stepup.testing import SettableClock
from support import need

_HIDDEN = re.compile(r'<input type="hidden" name="(\w+)" value="([^"]*)"')


def _press(browser: Browser, location: str, start: str, **typed: str) -> Any:
    """Open the re-auth page and press its provider button (after typing ``typed``)."""
    page = browser.get(location).get_data(as_text=True)
    assert f'action="{start}"' in page, page
    fields = {k: html.unescape(v) for k, v in _HIDDEN.findall(page)}
    return browser.post(start, data={**fields, **typed})


def _signed_in(test_app: TestApp, sso: tuple[str, str, str, str]) -> Browser:
    admin = test_app.client()
    admin.login("alice")
    assert set_flag(admin).status_code == 200
    browser = test_app.client()
    with browser.client.session_transaction() as session:
        session["user_id"] = "alice"
        session["sso"] = sso
    return browser


def _grants(test_app: TestApp) -> list[str]:
    return [e.method for e in test_app.events if isinstance(e, ReauthSucceeded)]


# OIDC ---------------------------------------------------------------------------------

OIDC_START = "/stepup/reauth/oidc/start"


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    started = launch_provider(tmp_path_factory.mktemp("flask-oidc-edges") / "provider.log")
    yield started
    started.stop()


@pytest.fixture
def oidc_app(provider: Provider) -> Iterator[TestApp]:
    with oidc_app_on(provider) as app:
        yield app


@pytest.mark.oidc
@pytest.mark.parametrize(
    "forged",
    ["state=forged&code=x", "error=access_denied&state=forged", "error=access_denied"],
)
def test_a_forged_callback_leaves_the_code_proof_of_the_trip_in_flight(
    oidc_app: TestApp, provider: Provider, forged: str
) -> None:
    """Between the code step and her real callback, another site's page sends her
    browser to the callback with an answer that matches no trip: it is refused, and her
    real answer still records ``oidc`` with ``otp``."""
    alice = _signed_in(oidc_app, ("oidc", provider.issuer, ALICE[0], "test-op"))
    secret, _ = alice.enrol()
    location = alice.get("/billing/export").headers["Location"]  # this rule wants a code
    oidc_app.clock.advance(30)
    to_provider = _press(alice, location, OIDC_START, code=oidc_app.totp_code(secret))
    assert to_provider.status_code == 303

    assert alice.get(f"/stepup/reauth/oidc/callback?{forged}").status_code == 400

    agent = UserAgent(REDIRECT_URI)
    try:
        callback = agent.authorize(
            to_provider.headers["Location"], login=ALICE[0], password=ALICE[1]
        )
    finally:
        agent.close()
    back = alice.get(f"/stepup/reauth/oidc/callback?{urlencode(callback)}")
    assert back.headers["Location"] == "/billing/export"
    assert set(_grants(oidc_app)[-1].split(",")) == {"oidc", "otp"}
    assert alice.get("/billing/export").get_data(as_text=True) == "billing.csv"


@pytest.mark.oidc
@pytest.mark.parametrize("iss", ["https://attacker.example", None])
def test_an_error_answer_from_another_issuer_is_refused_and_not_counted_against_her(
    oidc_app: TestApp, provider: Provider, iss: str | None
) -> None:
    """RFC 9207 on an error answer: another issuer's (or none, the provider announcing
    the parameter) is a mix-up, not this provider's error: the generic text, no
    ReauthFailed."""
    alice = _signed_in(oidc_app, ("oidc", provider.issuer, ALICE[0], "test-op"))
    location = alice.get("/api-key").headers["Location"]
    first = _press(alice, location, OIDC_START).headers["Location"]
    state = parse_qs(urlsplit(first).query)["state"][0]
    params = {"state": state, "error": "login_required"} | ({"iss": iss} if iss else {})
    refused = alice.get(f"/stepup/reauth/oidc/callback?{urlencode(params)}")
    assert refused.status_code == 400
    assert NOT_CONFIRMED in refused.get_data(as_text=True)
    assert refusals(oidc_app.events) == []


# SAML ---------------------------------------------------------------------------------

SAML_START = "/stepup/reauth/saml/start"
ACS = "/stepup/reauth/saml/acs"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, saml_idp.KeyPair]:
    need(shutil.which("xmlsec1") is not None, "xmlsec1 is not installed (apt-get install xmlsec1)")
    directory = tmp_path_factory.mktemp("flask-saml-edges")
    return {name: saml_idp.make_keypair(directory, name) for name in ("sp", "idp")}


@pytest.fixture(scope="module")
def idp(keys: dict[str, saml_idp.KeyPair]) -> saml_idp.TestIdP:
    metadata = SAMLServiceProvider(saml_idp.make_config(keys), MemoryStore()).metadata()
    return saml_idp.make_idp(keys["idp"], metadata)


@pytest.fixture
def saml_app(keys: dict[str, saml_idp.KeyPair]) -> TestApp:
    clock = SettableClock(time.time())  # the IdP stamps real times
    store = MemoryStore()
    sp = SAMLServiceProvider(saml_idp.make_config(keys), store, clock=clock)
    return make_app(
        "subject_loader",
        clock=clock,
        store=store,
        config={"STEPUP_SAML_PROVIDERS": {"corp-saml": sp}},
    )


def _saml_alice(saml_app: TestApp) -> Browser:
    return _signed_in(saml_app, ("saml", saml_idp.IDP_ID, saml_idp.ALICE, "corp-saml"))


@pytest.mark.saml
def test_a_forged_saml_answer_leaves_the_code_proof_of_the_request_in_flight(
    saml_app: TestApp, idp: saml_idp.TestIdP
) -> None:
    alice = _saml_alice(saml_app)
    secret, _ = alice.enrol()
    location = alice.get("/billing/export").headers["Location"]
    saml_app.clock.advance(30)
    to_idp = _press(alice, location, SAML_START, code=saml_app.totp_code(secret))
    assert to_idp.status_code == 303
    request = idp.receive(to_idp.headers["Location"])

    forged = alice.post(ACS, data={"SAMLResponse": "PGZvcmdlZC8+", "RelayState": "_forged"})
    assert forged.status_code == 400

    back = alice.post(
        ACS,
        data={
            "SAMLResponse": idp.answer(request, saml_idp.ALICE),
            "RelayState": request.relay_state or "",
        },
    )
    assert back.headers["Location"] == "/billing/export"
    assert set(_grants(saml_app)[-1].split(",")) == {"saml", "otp"}
    assert alice.get("/billing/export").get_data(as_text=True) == "billing.csv"


@pytest.mark.saml
def test_try_again_after_an_idp_error_keeps_the_action_the_form_and_next(
    saml_app: TestApp, idp: saml_idp.TestIdP
) -> None:
    """The IdP answers "authentication failed" (the person cancelled): nothing is
    granted, and "Try again" keeps the action, the suspended form and the way back, so
    the next trip sends the form again."""
    alice = _saml_alice(saml_app)
    refused = alice.client.post(
        "/api-key/regenerate", data={"label": "deploy"}, headers={"Referer": "/api-key"}
    )
    assert refused.status_code == 303
    kept = parse_qs(urlsplit(refused.headers["Location"]).query)
    request = idp.receive(
        _press(alice, refused.headers["Location"], SAML_START).headers["Location"]
    )
    failed = alice.post(
        ACS,
        data={
            "SAMLResponse": idp.error(request, STATUS_AUTHN_FAILED),
            "RelayState": request.relay_state or "",
        },
    )
    assert failed.status_code == 400
    assert "saml" not in ",".join(_grants(saml_app))
    again = try_again_link(failed.get_data(as_text=True))
    query = parse_qs(urlsplit(again).query)
    assert (query["action"], query["next"]) == (["api_key.regenerate"], ["/api-key"])
    assert query["resume"] == kept["resume"]

    request = idp.receive(_press(alice, again, SAML_START).headers["Location"])
    back = alice.post(
        ACS,
        data={
            "SAMLResponse": idp.answer(request, saml_idp.ALICE),
            "RelayState": request.relay_state or "",
        },
    )
    assert back.status_code == 303  # SAML's ACS is cross-site: the resume view sends it
    resumed = alice.get(back.headers["Location"])
    target, fields = resume_form(resumed.get_data(as_text=True))
    assert (target, ("label", "deploy") in fields) == ("/api-key/regenerate", True)


@pytest.mark.oidc
def test_a_refused_code_before_the_trip_is_a_failed_reauthentication(
    oidc_app: TestApp, provider: Provider
) -> None:
    """The code typed before the provider's button is checked here: refused, it is a
    failed re-authentication (ReauthFailed, method otp) once, and no trip begins."""
    from stepup.events import ReauthFailed

    alice = _signed_in(oidc_app, ("oidc", provider.issuer, ALICE[0], "test-op"))
    alice.enrol()
    location = alice.get("/billing/export").headers["Location"]
    oidc_app.clock.advance(30)
    oidc_app.events.clear()
    refused = _press(alice, location, OIDC_START, code="12345x")
    assert refused.status_code == 400
    failed = [e for e in oidc_app.events if isinstance(e, ReauthFailed)]
    assert [(e.user_id, e.method, e.reason) for e in failed] == [("alice", "otp", "malformed")]
