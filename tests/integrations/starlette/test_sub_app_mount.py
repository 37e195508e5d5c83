"""The app that installed stepup, mounted as a sub-app of another one
(``Starlette(routes=[Mount("/sub", app=inner)])``, FastAPI's ``outer.mount("/v1",
inner)``): stepup's URLs and return paths are under the sub-app's own root, ``/sub``, not
under the outer app's (Starlette's ``app_root_path``, ``""``), nor under stepup's own
mount: the guard's redirect and JSON ``reauth_url``, the re-auth page's stylesheet,
form and Cancel, where its password sends the browser back to, and the app's root that
a refused form without a ``Referer`` comes back to. A proxy's prefix in front of the
outer app comes first. (A ``root_path`` without a ``Mount``: test_root_path_fallbacks.)"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlencode

import pytest
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from integrations.starlette.starlette_support import (
    PASSWORDS,
    TENANT,
    TestApp,
    csrf_token,
    make_app,
)
from stepup.adapters.storage.memory import MemoryStore
from stepup.integrations.fastapi import Stepup as FastAPIStepup
from stepup.testing import SettableClock

_LINKS = re.compile(r'(?:href|action|src)="([^"]+)"')
_CANCEL = re.compile(r'<a class="stepup-cancel" href="([^"]*)"')
_FLAG_ON = {
    "data": {"type": "tenant", "attributes": {"feature_flags": {"sensitive_actions_reauth": True}}}
}


def _reauth_url(next_path: str, action: str = "api_key.read", root: str = "/sub") -> str:
    return f"{root}/stepup/reauth?" + urlencode({"next": next_path, "action": action})


def _outer(test_app: TestApp, at: str, fastapi: bool = False) -> Starlette:
    """``test_app`` mounted at ``at`` in an outer app (whose lifespan sets the tenant up:
    a Mount does not run the inner app's)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await test_app.stepup.tenants.ensure(TENANT)
        yield

    if fastapi:
        outer = FastAPI(lifespan=lifespan)
        outer.mount(at, test_app.app)
        return outer
    return Starlette(routes=[Mount(at, app=test_app.app)], lifespan=lifespan)


def _signed_in(outer: Starlette, root: str, proxy: str = "") -> TestClient:
    """alice, signed in, with the tenant's flag on and no grant left."""
    client = TestClient(outer, root_path=proxy, follow_redirects=False)
    client.__enter__()
    login = {"user": "alice", "password": PASSWORDS["alice"], "next": f"{root}/"}
    signed_in = client.post(f"{root}/login", data=login)
    assert (signed_in.status_code, signed_in.headers["location"]) == (303, f"{root}/")
    assert client.post(f"{root}/_test/grant", data={"method": "pwd"}).status_code == 204
    headers = {"Content-Type": "application/vnd.api+json"}
    flag = client.patch(f"{root}/stepup/tenants/{TENANT}", json=_FLAG_ON, headers=headers)
    assert flag.status_code == 200, flag.text
    assert client.post(f"{root}/_test/revoke").status_code == 204
    return client


def _journey(client: TestClient, root: str, guarded: str) -> None:
    """The guard's redirect, the re-auth page it leads to, and the way back."""
    refused = client.get(guarded)
    assert refused.status_code == 303
    location = refused.headers["location"]
    assert location == _reauth_url(guarded, root=root)
    page = client.get(location)
    assert page.status_code == 200
    links = set(_LINKS.findall(page.text))
    assert f"{root}/stepup/stepup.css" in links
    assert any(link.startswith(f"{root}/stepup/reauth?") for link in links), links  # the form
    assert all(link.startswith(f"{root}/") for link in links), links
    # Cancel: the guarded page itself is no place to cancel to; the app's root is.
    assert set(_CANCEL.findall(page.text)) == {f"{root}/"}
    form = {"csrf_token": csrf_token(page.text), "password": PASSWORDS["alice"]}
    back = client.post(location, data=form)
    assert (back.status_code, back.headers["location"]) == (303, guarded)
    assert client.get(guarded).status_code == 200


def test_a_starlette_sub_app() -> None:
    test_app = make_app(clock=SettableClock(), store=MemoryStore(), ensure_tenant=False)
    client = _signed_in(_outer(test_app, "/sub"), "/sub")
    try:
        as_json = client.get("/sub/api-key", headers={"accept": "application/json"})
        assert as_json.status_code == 401
        assert as_json.json()["reauth_url"] == _reauth_url("/sub/api-key")
        _journey(client, "/sub", "/sub/api-key")
    finally:
        client.__exit__(None, None, None)


def _tenant_reauth_url(client: TestClient, root: str) -> str:
    """The ``reauth_url`` of the tenant endpoint's refusal (no grant, no ``Referer``)."""
    headers = {"Content-Type": "application/vnd.api+json"}
    tenant = client.patch(f"{root}/stepup/tenants/{TENANT}", json=_FLAG_ON, headers=headers)
    assert tenant.status_code == 401
    return str(tenant.json()["errors"][0]["meta"]["reauth_url"])


def test_a_refused_form_without_a_referer_comes_back_to_the_sub_apps_root() -> None:
    test_app = make_app(clock=SettableClock(), store=MemoryStore(), ensure_tenant=False)
    client = _signed_in(_outer(test_app, "/sub"), "/sub")
    try:
        assert _tenant_reauth_url(client, "/sub") == _reauth_url("/sub/", "tenant.settings.update")
        refused = client.post("/sub/api-key/regenerate")
        assert refused.status_code == 303
        assert refused.headers["location"] == _reauth_url("/sub/", "api_key.regenerate")
        with_referer = client.post(
            "/sub/api-key/regenerate", headers={"referer": "http://testserver/sub/settings"}
        )
        assert with_referer.headers["location"] == _reauth_url(
            "/sub/settings", "api_key.regenerate"
        )
    finally:
        client.__exit__(None, None, None)


def test_a_sub_app_behind_a_proxy_prefix() -> None:
    test_app = make_app(clock=SettableClock(), store=MemoryStore(), ensure_tenant=False)
    client = _signed_in(_outer(test_app, "/sub"), "/p/sub", proxy="/p")
    try:
        _journey(client, "/p/sub", "/p/sub/api-key")
    finally:
        client.__exit__(None, None, None)


def _fastapi_app() -> TestApp:
    test_app = make_app(
        clock=SettableClock(),
        store=MemoryStore(),
        stepup_class=FastAPIStepup,
        app_class=FastAPI,
        ensure_tenant=False,
    )
    app, stepup = test_app.app, test_app.stepup
    assert isinstance(app, FastAPI)
    assert isinstance(stepup, FastAPIStepup)
    app.get("/fa/key", dependencies=[Depends(stepup.require_reauth("api_key.read"))])(
        lambda: {"key": "the key"}
    )
    regenerate = stepup.require_reauth("api_key.regenerate")
    app.post("/fa/key/regenerate", dependencies=[Depends(regenerate)])(lambda: {"done": True})
    return test_app


@pytest.mark.parametrize("proxy", ["", "/p"])
def test_a_fastapi_sub_app(proxy: str) -> None:
    root = f"{proxy}/v1"
    client = _signed_in(_outer(_fastapi_app(), "/v1", fastapi=True), root, proxy=proxy)
    try:
        as_json = client.get(f"{root}/fa/key", headers={"accept": "application/json"})
        assert as_json.status_code == 401
        reauth_url = as_json.json()["reauth_url"]
        assert reauth_url == _reauth_url(f"{root}/fa/key", root=root)
        assert client.get(reauth_url).status_code == 200
        tenant_url = _reauth_url(f"{root}/", "tenant.settings.update", root)
        assert _tenant_reauth_url(client, root) == tenant_url
        refused = client.post(f"{root}/fa/key/regenerate")
        assert refused.headers["location"] == _reauth_url(f"{root}/", "api_key.regenerate", root)
        _journey(client, root, f"{root}/fa/key")
    finally:
        client.__exit__(None, None, None)
