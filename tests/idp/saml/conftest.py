"""Fixtures: keys, metadata and a pysaml2 IdP per session; a fresh SP, store and clock
per test. The IdP itself lives in :mod:`saml_idp`."""

from __future__ import annotations

import shutil
import time

import pytest
from saml2.server import Server

from idp.saml.saml_idp import KeyPair, TestIdP, World, make_config, make_idp, make_keypair
from stepup.adapters.idp.saml import SAMLServiceProvider
from stepup.adapters.storage import MemoryStore
from stepup.testing import SettableClock
from support import need


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, KeyPair]:
    need(shutil.which("xmlsec1") is not None, "xmlsec1 is not installed (apt-get install xmlsec1)")
    directory = tmp_path_factory.mktemp("saml-keys")
    return {name: make_keypair(directory, name) for name in ("sp", "idp", "impostor")}


@pytest.fixture(scope="session")
def sp_metadata(keys: dict[str, KeyPair]) -> str:
    return SAMLServiceProvider(make_config(keys), MemoryStore()).metadata()


@pytest.fixture(scope="session")
def idp_server(keys: dict[str, KeyPair], sp_metadata: str) -> Server:
    return make_idp(keys["idp"], sp_metadata).server


@pytest.fixture
def world(keys: dict[str, KeyPair], idp_server: Server) -> World:
    clock = SettableClock(time.time())  # aligned with the IdP's timestamps, then frozen
    store = MemoryStore()
    config = make_config(keys)
    return World(
        SAMLServiceProvider(config, store, clock=clock), TestIdP(idp_server), store, clock, config
    )
