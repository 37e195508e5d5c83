"""Django: an OIDC or SAML answer for a transaction-bound action confirms that one
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
from integrations.django.django_support import Browser, Site, running_site
from integrations.django.test_sso import keys, oidc_alice, press_sso_button, saml_alice
from integrations.sso_transaction_support import (
    Reply,
    Trip,
    answered_in_time,
    answered_too_late,
    new_clock,
)
from stepup.adapters.idp.saml import SAMLServiceProvider
from stepup.adapters.storage.memory import MemoryStore
from stepup.integrations.django.services import get_stepup
from stepup.testing import SettableClock

__all__ = ["keys"]  # the SAML key pair fixture

CASES = [answered_in_time, answered_too_late]


@dataclass
class DjangoTrip:
    """The driver of the cases (:class:`~integrations.sso_transaction_support.Trip`)."""

    site: Site
    alice: Browser
    method: str
    answer: Callable[[Browser, str], Any]  # the provider's answer, back at the app

    @property
    def clock(self) -> SettableClock:
        return self.site.clock

    @property
    def events(self) -> list[Any]:
        return self.site.events

    def ask(self, workspace: str = "prod-eu") -> str:
        asked = self._destroy(workspace)
        assert asked.status_code == 303
        return str(asked["Location"])

    def leave(self, reauth_page: str) -> str:
        left = press_sso_button(self.alice, reauth_page)
        assert left.status_code == 303, left.content
        return str(left["Location"])

    def come_back(self, to_provider: str) -> Reply:
        back = self.answer(self.alice, to_provider)
        return Reply(back.status_code, back.content.decode())

    def destroy(self) -> int:
        return int(self._destroy().status_code)

    def unrelated(self) -> int:
        return int(self.alice.get("/api-key/").status_code)

    def _destroy(self, workspace: str = "prod-eu") -> Any:
        return self.alice.post(f"/workspaces/{workspace}/destroy/", {"why": "tidy"})


# OIDC ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    started = launch_provider(tmp_path_factory.mktemp("django-oidc-tx") / "provider.log")
    yield started
    started.stop()


def _oidc_answer(browser: Browser, to_provider: str) -> Any:
    agent = UserAgent(REDIRECT_URI)
    try:
        callback = agent.authorize(to_provider, login=ALICE[0], password=ALICE[1])
    finally:
        agent.close()
    return browser.get(f"/stepup/reauth/oidc/callback/?{urlencode(callback)}")


@pytest.fixture
def oidc_trip(provider: Provider) -> Iterator[Trip]:
    providers = {"test-op": make_config(provider)}
    with running_site(MemoryStore(), new_clock(time.time()), OIDC_PROVIDERS=providers) as site:
        stepup = get_stepup()
        stepup.tenant_settings.ensure("acme")
        yield DjangoTrip(site, oidc_alice(site, provider), "oidc", _oidc_answer)
        stepup.oidc["test-op"].close()


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
    def answer(browser: Browser, to_idp: str) -> Any:
        request = idp.receive(to_idp)
        posted = {
            "SAMLResponse": idp.answer(request, saml_idp.ALICE),
            "RelayState": request.relay_state or "",
        }
        return browser.post("/stepup/reauth/saml/acs/", posted)  # no CSRF: the IdP posts

    providers = {"corp": saml_idp.make_config(keys)}
    with running_site(MemoryStore(), new_clock(time.time()), SAML_PROVIDERS=providers) as site:
        get_stepup().tenant_settings.ensure("acme")
        yield DjangoTrip(site, saml_alice(site), "saml", answer)


@pytest.mark.saml
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.__name__)
def test_a_saml_answer_confirms_only_a_transaction_still_waiting(
    saml_trip: Trip, case: Callable[..., None], caplog: pytest.LogCaptureFixture
) -> None:
    case(saml_trip, caplog)
