"""FastAPI: a browser refused a POST or DELETE comes back, after re-authenticating, to a
page it can GET (``return_to``, else the same-site Referer, else ``/``), never to the
refused URL, which answers 405 to a GET.

(No ``from __future__ import annotations`` here: FastAPI must see the real ``Annotated``
objects.)
"""

from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request

from integrations.starlette.starlette_support import PASSWORDS, Browser, TestApp, make_app, next_of
from stepup.adapters.storage.memory import MemoryStore
from stepup.integrations.fastapi import Stepup
from stepup.reauth import Allowed
from stepup.testing import SettableClock

HTML = {"accept": "text/html"}


def workspace_page(request: Request) -> str:
    return f"/fa/workspaces/{request.path_params['name']}"


def fastapi_app(clock: SettableClock) -> TestApp:
    test_app = make_app(clock=clock, store=MemoryStore(), stepup_class=Stepup, app_class=FastAPI)
    app, stepup = test_app.app, test_app.stepup
    assert isinstance(app, FastAPI)
    assert isinstance(stepup, Stepup)

    @app.get("/fa/key")
    async def show_key(
        allowed: Annotated[Allowed, Depends(stepup.require_reauth("api_key.read"))],
    ) -> dict[str, Any]:
        return {"key": "the key"}

    @app.post("/fa/key/regenerate")
    async def regenerate(
        allowed: Annotated[
            Allowed, Depends(stepup.require_reauth("api_key.regenerate", return_to="/fa/key"))
        ],
    ) -> dict[str, Any]:
        return {"regenerated": True}

    @app.post("/fa/key/copy")
    async def copy(
        allowed: Annotated[Allowed, Depends(stepup.require_reauth("api_key.copy"))],
    ) -> dict[str, Any]:
        return {"copied": True}

    @app.delete("/fa/workspaces/{name}")
    async def delete(
        name: str,
        allowed: Annotated[
            Allowed,
            Depends(
                stepup.require_reauth(
                    "workspace.delete",
                    context=lambda: {"workspace_type": "full"},
                    return_to=workspace_page,
                )
            ),
        ],
    ) -> dict[str, Any]:
        return {"deleted": name}

    return test_app


def _signed_in(test_app: TestApp) -> Browser:
    alice = test_app.browser()
    assert alice.login("alice").status_code == 303
    assert alice.patch_tenant(True).status_code == 200
    return alice


def test_a_refused_post_comes_back_to_its_return_to(clock: SettableClock) -> None:
    test_app = fastapi_app(clock)
    alice = _signed_in(test_app)
    try:
        refused = alice.client.post("/fa/key/regenerate", headers=HTML)
        assert refused.status_code == 303
        assert next_of(refused.headers["location"]) == "/fa/key"
        back = alice.reauth(refused.headers["location"], PASSWORDS["alice"])
        assert back.status_code == 303
        assert back.headers["location"] == "/fa/key"
        assert alice.get("/fa/key").status_code == 200  # a page, not a 405
    finally:
        alice.close()


def test_without_return_to_a_post_comes_back_to_the_same_site_referer(
    clock: SettableClock,
) -> None:
    test_app = fastapi_app(clock)
    alice = _signed_in(test_app)
    try:
        headers = {**HTML, "referer": "http://testserver/fa/key?tab=copy"}
        refused = alice.client.post("/fa/key/copy", headers=headers)
        assert next_of(refused.headers["location"]) == "/fa/key?tab=copy"
        # another site's page is never a return location
        elsewhere = {**HTML, "referer": "https://evil.example/phish"}
        refused = alice.client.post("/fa/key/copy", headers=elsewhere)
        assert next_of(refused.headers["location"]).startswith("/")
        assert "evil.example" not in refused.headers["location"]
        # no Referer at all: the site's root
        refused = alice.client.post("/fa/key/copy", headers=HTML)
        assert next_of(refused.headers["location"]) == "/"
    finally:
        alice.close()


def test_a_refused_delete_comes_back_to_a_return_to_of_the_request(
    clock: SettableClock,
) -> None:
    test_app = fastapi_app(clock)
    alice = _signed_in(test_app)
    try:
        refused = alice.client.delete("/fa/workspaces/prod", headers=HTML)
        assert refused.status_code == 303
        assert next_of(refused.headers["location"]) == "/fa/workspaces/prod"
    finally:
        alice.close()


def test_a_get_still_comes_back_to_itself(clock: SettableClock) -> None:
    test_app = fastapi_app(clock)
    alice = _signed_in(test_app)
    try:
        refused = alice.client.get("/fa/key?tab=show", headers=HTML)
        assert next_of(refused.headers["location"]) == "/fa/key?tab=show"
        as_json = alice.client.post("/fa/key/regenerate", headers={"accept": "application/json"})
        assert as_json.status_code == 401  # JSON clients get the 401, unchanged
    finally:
        alice.close()
