"""Starlette: an OIDC or SAML answer for a transaction-bound action confirms that one
transaction once, while the session keeps it; back too late, it is refused and records
nothing, no session grant in its place (the cases: integrations/sso_transaction_support.py)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest

from idp.oidc.harness import ALICE, REDIRECT_URI, Provider, launch_provider, make_config
from idp.oidc.useragent import UserAgent
from idp.saml import saml_idp
from integrations.sso_transaction_support import (
    Reply,
    Trip,
    answered_in_time,
    answered_too_late,
    new_clock,
)
from integrations.starlette.starlette_support import Browser, TestApp, make_app
from integrations.starlette.test_sso import keys, press_sso_button
from integrations.starlette.test_transactions import _policy as bound_policy
from integrations.starlette.test_transactions import _starlette_routes
from stepup.adapters.idp.oidc import AsyncOIDCReauth
from stepup.adapters.idp.saml import AsyncSAMLServiceProvider, SAMLServiceProvider
from stepup.adapters.storage.memory import MemoryStore
from stepup.testing import SettableClock

__all__ = ["keys"]  # the SAML key pair fixture

CASES = [answered_in_time, answered_too_late]


@dataclass
class StarletteTrip:
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
        return str(asked.headers["location"])

    def leave(self, reauth_page: str) -> str:
        left = press_sso_button(self.alice, reauth_page)
        assert left.status_code == 303, left.text
        return str(left.headers["location"])

    def come_back(self, to_provider: str) -> Reply:
        back = self.answer(self.alice, to_provider)
        return Reply(back.status_code, back.text)

    def destroy(self) -> int:
        return int(self._destroy().status_code)

    def unrelated(self) -> int:
        return int(self.alice.get("/api-key").status_code)

    def _destroy(self, workspace: str = "prod-eu") -> Any:
        return self.alice.post(f"/workspaces/{workspace}/destroy", data={"why": "tidy"})


def _signed_in(test_app: TestApp, *sso: str) -> Browser:
    """Alice's browser, signed in through the provider, the step-up flag on."""
    alice = test_app.browser()
    assert alice.login_sso("alice", *sso).status_code == 303
    assert alice.patch_tenant(True).status_code == 200
    return alice


# OIDC ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    started = launch_provider(tmp_path_factory.mktemp("starlette-oidc-tx") / "provider.log")
    yield started
    started.stop()


def _oidc_answer(browser: Browser, to_provider: str) -> Any:
    agent = UserAgent(REDIRECT_URI)
    try:
        callback = agent.authorize(to_provider, login=ALICE[0], password=ALICE[1])
    finally:
        agent.close()
    return browser.get(f"/stepup/oidc/callback?{urlencode(callback)}")


@pytest.fixture
def oidc_trip(provider: Provider) -> Iterator[Trip]:
    clock, store = new_clock(time.time()), MemoryStore()
    oidc = AsyncOIDCReauth(make_config(provider), store, clock=clock)
    test_app = make_app(
        clock=clock,
        store=store,
        oidc=oidc,
        teardown=oidc.aclose,
        policy=bound_policy(),
        extra_routes=_starlette_routes,
    )
    # One browser per app: the adapter's HTTP client lives on that browser's event loop.
    alice = _signed_in(test_app, "oidc", provider.issuer, ALICE[0], "test-op")
    try:
        yield StarletteTrip(test_app, alice, "oidc", _oidc_answer)
    finally:
        alice.close()


@pytest.mark.oidc
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.__name__)
def test_an_oidc_answer_confirms_only_a_transaction_still_waiting(
    oidc_trip: Trip, case: Callable[..., None], caplog: pytest.LogCaptureFixture
) -> None:
    case(oidc_trip, caplog)


# SAML ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def idp(keys: dict[str, saml_idp.KeyPair]) -> saml_idp.TestIdP:
    metadata = SAMLServiceProvider(saml_idp.make_config(keys), MemoryStore()).metadata()
    return saml_idp.make_idp(keys["idp"], metadata)


@pytest.fixture
def saml_trip(keys: dict[str, saml_idp.KeyPair], idp: saml_idp.TestIdP) -> Iterator[Trip]:
    clock, store = new_clock(time.time()), MemoryStore()
    sp = AsyncSAMLServiceProvider(saml_idp.make_config(keys), store, clock=clock)
    test_app = make_app(
        clock=clock, store=store, saml=sp, policy=bound_policy(), extra_routes=_starlette_routes
    )

    def answer(browser: Browser, to_idp: str) -> Any:
        request = idp.receive(to_idp)
        posted = {
            "SAMLResponse": idp.answer(request, saml_idp.ALICE),
            "RelayState": request.relay_state or "",
        }
        return browser.post("/stepup/saml/acs", data=posted)

    alice = _signed_in(test_app, "saml", saml_idp.IDP_ID, saml_idp.ALICE, "corp")
    try:
        yield StarletteTrip(test_app, alice, "saml", answer)
    finally:
        alice.close()


@pytest.mark.saml
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.__name__)
def test_a_saml_answer_confirms_only_a_transaction_still_waiting(
    saml_trip: Trip, case: Callable[..., None], caplog: pytest.LogCaptureFixture
) -> None:
    case(saml_trip, caplog)
