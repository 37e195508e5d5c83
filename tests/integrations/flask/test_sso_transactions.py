"""Flask: an OIDC or SAML answer for a transaction-bound action confirms that one
transaction once, while the session keeps it; back too late, it is refused and records
nothing, no session grant in its place (the cases: integrations/sso_transaction_support.py)."""

from __future__ import annotations

import html
import re
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest

from idp.oidc.harness import ALICE, REDIRECT_URI, Provider, launch_provider, make_config
from idp.oidc.useragent import UserAgent
from idp.saml import saml_idp
from integrations.flask.flask_support import Browser, TestApp, make_app, set_flag
from integrations.flask.test_transactions import _policy as bound_policy
from integrations.flask.test_transactions import _routes as bound_routes
from integrations.sso_transaction_support import (
    Reply,
    Trip,
    answered_in_time,
    answered_too_late,
    new_clock,
)
from stepup.adapters.idp.oidc import OIDCReauth
from stepup.adapters.idp.saml import SAMLServiceProvider
from stepup.adapters.storage.memory import MemoryStore
from stepup.testing import SettableClock
from support import need

_HIDDEN = re.compile(r'<input type="hidden" name="(\w+)" value="([^"]*)"')
CASES = [answered_in_time, answered_too_late]


@dataclass
class FlaskTrip:
    """The driver of the cases (:class:`~integrations.sso_transaction_support.Trip`)."""

    app: TestApp
    alice: Browser
    method: str
    answer: Callable[[Browser, str], Any]  # the provider's answer, back at the app

    @property
    def clock(self) -> SettableClock:
        return self.app.clock

    @property
    def events(self) -> list[Any]:
        return self.app.events

    def ask(self, workspace: str = "prod-eu") -> str:
        asked = self._destroy(workspace)
        assert asked.status_code == 303
        return str(asked.headers["Location"])

    def leave(self, reauth_page: str) -> str:
        page = self.alice.get(reauth_page).get_data(as_text=True)
        start = f"/stepup/reauth/{self.method}/start"
        assert f'action="{start}"' in page, page
        fields = {k: html.unescape(v) for k, v in _HIDDEN.findall(page)}
        left = self.alice.post(start, data=fields)
        assert left.status_code == 303, left.get_data(as_text=True)
        return str(left.headers["Location"])

    def come_back(self, to_provider: str) -> Reply:
        back = self.answer(self.alice, to_provider)
        return Reply(back.status_code, back.get_data(as_text=True))

    def destroy(self) -> int:
        return int(self._destroy().status_code)

    def unrelated(self) -> int:
        return int(self.alice.get("/api-key").status_code)

    def _destroy(self, workspace: str = "prod-eu") -> Any:
        token = self.alice.csrf()
        return self.alice.post(f"/workspaces/{workspace}/destroy", data={"csrf_token": token})


def _app(clock: SettableClock, store: MemoryStore, config: dict[str, Any]) -> TestApp:
    return make_app(
        "subject_loader",
        clock=clock,
        store=store,
        policy=bound_policy(),
        setup=bound_routes,
        config=config,
    )


def _alice(test_app: TestApp, sso: tuple[str, str, str, str]) -> Browser:
    admin = test_app.client()
    admin.login("alice")
    assert set_flag(admin).status_code == 200
    browser = test_app.client()
    with browser.client.session_transaction() as session:
        session["user_id"] = "alice"
        session["sso"] = sso
    return browser


# OIDC ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    started = launch_provider(tmp_path_factory.mktemp("flask-oidc-tx") / "provider.log")
    yield started
    started.stop()


def _oidc_answer(browser: Browser, to_provider: str) -> Any:
    agent = UserAgent(REDIRECT_URI)
    try:
        callback = agent.authorize(to_provider, login=ALICE[0], password=ALICE[1])
    finally:
        agent.close()
    return browser.get(f"/stepup/reauth/oidc/callback?{urlencode(callback)}")


@pytest.fixture
def oidc_trip(provider: Provider) -> Iterator[Trip]:
    clock, store = new_clock(time.time()), MemoryStore()
    reauth = OIDCReauth(make_config(provider), store, clock=clock)
    try:
        test_app = _app(clock, store, {"STEPUP_OIDC_PROVIDERS": {"test-op": reauth}})
        alice = _alice(test_app, ("oidc", provider.issuer, ALICE[0], "test-op"))
        yield FlaskTrip(test_app, alice, "oidc", _oidc_answer)
    finally:
        reauth.close()


@pytest.mark.oidc
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.__name__)
def test_an_oidc_answer_confirms_only_a_transaction_still_waiting(
    oidc_trip: Trip, case: Callable[..., None], caplog: pytest.LogCaptureFixture
) -> None:
    case(oidc_trip, caplog)


# SAML ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, saml_idp.KeyPair]:
    need(shutil.which("xmlsec1") is not None, "xmlsec1 is not installed (apt-get install xmlsec1)")
    directory = tmp_path_factory.mktemp("flask-saml-tx")
    return {name: saml_idp.make_keypair(directory, name) for name in ("sp", "idp")}


@pytest.fixture(scope="module")
def idp(keys: dict[str, saml_idp.KeyPair]) -> saml_idp.TestIdP:
    metadata = SAMLServiceProvider(saml_idp.make_config(keys), MemoryStore()).metadata()
    return saml_idp.make_idp(keys["idp"], metadata)


@pytest.fixture
def saml_trip(keys: dict[str, saml_idp.KeyPair], idp: saml_idp.TestIdP) -> Trip:
    clock, store = new_clock(time.time()), MemoryStore()
    sp = SAMLServiceProvider(saml_idp.make_config(keys), store, clock=clock)
    test_app = _app(clock, store, {"STEPUP_SAML_PROVIDERS": {"corp-saml": sp}})
    alice = _alice(test_app, ("saml", saml_idp.IDP_ID, saml_idp.ALICE, "corp-saml"))

    def answer(browser: Browser, to_idp: str) -> Any:
        request = idp.receive(to_idp)
        posted = {
            "SAMLResponse": idp.answer(request, saml_idp.ALICE),
            "RelayState": request.relay_state or "",
        }
        return browser.post("/stepup/reauth/saml/acs", data=posted)

    return FlaskTrip(test_app, alice, "saml", answer)


@pytest.mark.saml
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.__name__)
def test_a_saml_answer_confirms_only_a_transaction_still_waiting(
    saml_trip: Trip, case: Callable[..., None], caplog: pytest.LogCaptureFixture
) -> None:
    case(saml_trip, caplog)
