"""Fixtures for the OIDC tests: one real OpenID provider per session, a frozen real-time
clock, a memory store, a fresh browser per test."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator

import httpx
import pytest
from joserfc.jwk import RSAKey

from idp.oidc.harness import REDIRECT_URI, Provider, launch_provider, make_config, oidc_subject
from idp.oidc.useragent import UserAgent
from stepup.adapters.idp.oidc import OIDCProviderConfig, OIDCReauth
from stepup.adapters.storage.memory import MemoryStore
from stepup.subject import Subject
from stepup.testing import SettableClock


@pytest.fixture(scope="session")
def client_key() -> RSAKey:
    """The private key of the ``private_key_jwt`` client."""
    return RSAKey.generate_key(2048, parameters={"kid": "stepup-rp-jwt-1"}, private=True)


@pytest.fixture(scope="session")
def provider(tmp_path_factory: pytest.TempPathFactory, client_key: RSAKey) -> Iterator[Provider]:
    folder = tmp_path_factory.mktemp("oidc-provider")
    jwks = folder / "client-jwks.json"
    jwks.write_text(json.dumps({"keys": [client_key.as_dict(private=False)]}))
    started = launch_provider(folder / "provider.log", jwks)
    yield started
    started.stop()


@pytest.fixture
def clock() -> SettableClock:
    """Real time, frozen: the provider stamps real times, the adapter reads this clock.
    Whole seconds, like the provider's ``auth_time``."""
    return SettableClock(math.floor(time.time()))


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def config(provider: Provider) -> OIDCProviderConfig:
    return make_config(provider)


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10.0) as client:
        yield client


@pytest.fixture
def reauth(
    config: OIDCProviderConfig, store: MemoryStore, http: httpx.Client, clock: SettableClock
) -> OIDCReauth:
    return OIDCReauth(config, store, http=http, clock=clock)


@pytest.fixture
def agent() -> Iterator[UserAgent]:
    browser = UserAgent(REDIRECT_URI)
    yield browser
    browser.close()


@pytest.fixture
def alice(provider: Provider) -> Subject:
    return oidc_subject(provider, "alice")
