"""The demo's own SAML sign-in while stepup's store (a real Redis, stopped here) is
down: the store's outage is answered with stepup's "try again" page (503), never as the
identity provider's refusal ("did not sign you in")."""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from saml2.config import IdPConfig
from saml2.server import Server
from starlette.testclient import TestClient

from e2e.test_demo_app import csrf
from e2e.test_demo_outage import TRY_AGAIN, spare_port
from e2e.test_saml_sso import BASE, CAROL, SP_ID, post_to_acs, start_saml_sign_in
from idp.saml.saml_idp import IDP_ID, TestIdP, idp_metadata, idp_settings, make_keypair
from stepup.adapters.storage.redis import AsyncRedisStore
from stepup.demo import DemoSettings, create_app
from stepup.testing import SettableClock
from storage.redis_cluster import RedisServer, need_redis_binaries
from support import need

pytestmark = pytest.mark.saml

REFUSED = "Your identity provider did not sign you in."


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[TestClient, TestIdP, RedisServer]]:
    need(shutil.which("xmlsec1") is not None, "xmlsec1 is not installed (apt-get install xmlsec1)")
    need_redis_binaries()
    keys = make_keypair(tmp_path, "idp")
    metadata = tmp_path / "idp-metadata.xml"
    metadata.write_text(idp_metadata(keys))
    settings = DemoSettings(
        db_path=tmp_path / "demo.sqlite3", base_url=BASE, saml_idp_metadata=metadata
    )
    redis = RedisServer(tmp_path / "redis", spare_port())
    try:
        redis.start()
        store = AsyncRedisStore(redis.url, prefix=f"demo-outage-{uuid.uuid4().hex}:", timeout=2.0)
        # pysaml2 stamps its messages with the real time; the demo's clock starts there too.
        app = create_app(settings, clock=SettableClock(time.time()), store=store)
        with TestClient(app, base_url=BASE, follow_redirects=False) as client:
            sp_metadata = client.get("/stepup/saml/metadata").text
            idp_config: dict[str, Any] = idp_settings(keys, IDP_ID, [sp_metadata])
            idp_config["service"]["idp"]["want_authn_requests_signed"] = False
            yield client, TestIdP(Server(config=IdPConfig().load(idp_config))), redis
            client.portal.call(store.aclose)
    finally:
        redis.kill()


def test_the_saml_button_while_the_store_is_down_says_try_again(
    world: tuple[TestClient, TestIdP, RedisServer],
) -> None:
    client, _, redis = world
    page = client.get("/login")
    redis.kill()
    start = client.post("/sso/saml/login", data={"csrf_token": csrf(page.text), "next": "/account"})
    assert start.status_code == 503  # the request could not be kept: not sent to the IdP
    assert TRY_AGAIN in start.text
    assert REFUSED not in start.text


def test_the_idps_answer_while_the_store_is_down_says_try_again(
    world: tuple[TestClient, TestIdP, RedisServer],
) -> None:
    client, idp, redis = world
    request = start_saml_sign_in(client, idp)
    answer = idp.answer(request, CAROL, sp_entity_id=SP_ID)
    redis.kill()
    done = post_to_acs(client, answer, request.relay_state or "")
    assert done.status_code == 503  # the IdP signed Carol in; the demo cannot finish now
    assert TRY_AGAIN in done.text
    assert REFUSED not in done.text
    assert client.get("/account").status_code == 303  # nobody is signed in
