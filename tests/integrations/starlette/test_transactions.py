"""Transaction-bound actions through the Starlette decorator and the FastAPI dependency:
the re-auth page shows what is being confirmed, the grant it records counts once, for
that target only.

(No ``from __future__ import annotations``: FastAPI must see the real annotations.)
"""

import html
import json
import re
from typing import Annotated, Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from fastapi import Depends, FastAPI
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from integrations.starlette.starlette_support import (
    PASSWORDS,
    TENANT,
    Browser,
    TestApp,
    confirm_factors,
    csrf_token,
    enrol,
    make_app,
)
from stepup.adapters.storage.memory import MemoryStore
from stepup.errors import ConfigurationError
from stepup.integrations.fastapi import Stepup as FastAPIStepup
from stepup.integrations.starlette import Stepup
from stepup.integrations.transaction import Transaction
from stepup.integrations.views import default_policy
from stepup.policy import Policy, Rule, Sensitivity
from stepup.reauth import Allowed
from stepup.testing import SettableClock
from stepup.testing.webauthn import SoftAuthenticator
from stepup.transactions import transaction_digest

ACTION = "workspace.destroy"
DESCRIPTION = "Delete workspace %(workspace)s"


def _policy() -> Policy:
    rule = Rule(Sensitivity.CRITICAL, lifetime=300.0, bind_transaction=True, description="Deleting")
    return default_policy().extend({ACTION: rule})


def _starlette_routes(stepup: Stepup) -> list[Any]:
    @stepup.requires_reauth(
        ACTION,
        transaction=lambda r: Transaction({"workspace": r.path_params["name"]}, DESCRIPTION),
    )
    async def destroy(request: Request) -> Response:
        return PlainTextResponse(f"destroyed {request.path_params['name']}")

    return [Route("/workspaces/{name}/destroy", destroy, methods=["POST"])]


def _workspace(name: str) -> Transaction:
    """A transaction dependency: FastAPI hands it the path parameter."""
    return Transaction({"workspace": name}, DESCRIPTION)


def _app(kind: str) -> TestApp:
    if kind == "starlette":
        return make_app(
            clock=SettableClock(),
            store=MemoryStore(),
            policy=_policy(),
            extra_routes=_starlette_routes,
        )
    test_app = make_app(
        clock=SettableClock(),
        store=MemoryStore(),
        policy=_policy(),
        stepup_class=FastAPIStepup,
        app_class=FastAPI,
    )
    app, stepup = test_app.app, test_app.stepup
    assert isinstance(app, FastAPI)
    assert isinstance(stepup, FastAPIStepup)
    confirmed = stepup.require_reauth(ACTION, transaction=_workspace)

    @app.post("/workspaces/{name}/destroy")
    async def destroy(name: str, allowed: Annotated[Allowed, Depends(confirmed)]) -> Response:
        return PlainTextResponse(f"destroyed {name}")

    return test_app


@pytest.fixture(params=["starlette", "fastapi"])
def alice(request: pytest.FixtureRequest) -> Any:
    browser = _app(request.param).browser()
    assert browser.login("alice").status_code == 303
    assert browser.patch_tenant(True).status_code == 200
    yield browser
    browser.close()


def _destroy(browser: Browser, name: str, **kwargs: Any) -> Any:
    return browser.post(f"/workspaces/{name}/destroy", **kwargs)


def test_a_confirmation_counts_once_for_its_own_target(alice: Browser) -> None:
    refused = _destroy(alice, "prod-eu")
    assert refused.status_code == 303
    location = refused.headers["location"]
    query = parse_qs(urlsplit(location).query)
    assert query["transaction"] == [
        transaction_digest(ACTION, {"workspace": "prod-eu"}, tenant_id=TENANT)
    ]
    assert "Delete workspace prod-eu" in alice.get(location).text
    assert alice.reauth(location, PASSWORDS["alice"]).status_code == 303

    assert _destroy(alice, "prod-us").status_code == 303  # not this target
    done = _destroy(alice, "prod-eu")
    assert done.status_code == 200
    assert done.text == "destroyed prod-eu"
    assert _destroy(alice, "prod-eu").status_code == 303  # spent: single use


def test_the_description_is_escaped_and_translated(alice: Browser) -> None:
    location = _destroy(alice, quote("<img src=x onerror=alert(1)>")).headers["location"]
    page = alice.get(location, headers={"accept-language": "de"}).text
    assert "<img" not in page
    assert "Delete workspace &lt;img src=x onerror=alert(1)&gt;" in page
    assert "Sie bestätigen:" in page


def test_the_page_shows_only_a_transaction_the_session_kept(alice: Browser) -> None:
    forged = transaction_digest(ACTION, {"workspace": "prod-us"}, tenant_id=TENANT)
    page = alice.get(f"/stepup/reauth?action={ACTION}&next=/&transaction={forged}")
    assert page.status_code == 400
    assert "expired or was already used" in page.text
    assert alice.get(f"/stepup/reauth?action={ACTION}&next=/").status_code == 400
    status = alice.get(f"/stepup/reauth/status?action={ACTION}")
    assert (status.status_code, status.json()["error"]) == (400, "transaction_bound")
    assert _destroy(alice, "prod-us").status_code == 303


def test_a_json_client_gets_the_401_with_the_transaction(alice: Browser) -> None:
    refused = _destroy(alice, "prod-eu", headers={"accept": "application/json"})
    assert refused.status_code == 401
    body = refused.json()
    body = body.get("detail", body)
    digest = transaction_digest(ACTION, {"workspace": "prod-eu"}, tenant_id=TENANT)
    assert (body["error"], body["transaction"]) == ("reauth_required", digest)
    assert "Delete workspace prod-eu" in alice.get(body["reauth_url"]).text


def test_a_bound_rule_without_a_transaction_fails_at_start_up() -> None:
    stepup = make_app(
        clock=SettableClock(), store=MemoryStore(), policy=_policy(), stepup_class=FastAPIStepup
    ).stepup
    assert isinstance(stepup, FastAPIStepup)
    with pytest.raises(ConfigurationError, match="bound to one transaction"):
        stepup.requires_reauth(ACTION)
    with pytest.raises(ConfigurationError, match="bound to one transaction"):
        stepup.require_reauth(ACTION)


# a passkey signs the transaction ---------------------------------------------------------

ORIGIN = "http://localhost"


def _json(browser: Browser, url: str, body: Any) -> Any:
    token = csrf_token(browser.get("/stepup/passkeys").text)
    headers = {"Content-Type": "application/json", "X-CSRF-Token": token}
    return browser.post(url, content=json.dumps(body), headers=headers)


def test_a_passkey_confirms_one_transaction_once() -> None:
    test_app = make_app(
        clock=SettableClock(),
        store=MemoryStore(),
        policy=_policy(),
        extra_routes=_starlette_routes,
        passkeys_rp_id="localhost",
        passkeys_origins=(ORIGIN,),
    )
    alice = test_app.browser()
    try:
        assert alice.login("alice").status_code == 303
        key = SoftAuthenticator(origin=ORIGIN, counter=1)
        confirm_factors(alice)  # adding a passkey asks for a re-authentication of its own
        options = _json(alice, "/stepup/passkeys/register/begin", {})
        body = {"credential": key.create(options.json()), "name": "Laptop"}
        assert _json(alice, "/stepup/passkeys/register/finish", body).status_code == 200
        assert alice.patch_tenant(True).status_code == 200

        assert _destroy(alice, "prod-us").status_code == 303  # both wait in the session
        location = _destroy(alice, "prod-eu").headers["location"]
        page = alice.get(location).text
        assert "Use a passkey" in page
        digest = transaction_digest(ACTION, {"workspace": "prod-eu"}, tenant_id=TENANT)
        start = {"action": ACTION, "transaction": digest}
        assertion = key.get(_json(alice, "/stepup/reauth/passkey/begin", start).json())
        other = transaction_digest(ACTION, {"workspace": "prod-us"}, tenant_id=TENANT)
        forged = {"credential": assertion, "action": ACTION, "transaction": other, "next": "/"}
        refused = _json(alice, "/stepup/reauth/passkey/finish", forged)
        assert refused.status_code == 400
        assert refused.json()["error"] != "transaction_expired"

        action = html.unescape(re.search(r'<form method="post" action="([^"]*)"', page).group(1))  # type: ignore[union-attr]
        assert f"transaction={digest}" in action
        credential = json.dumps(key.get(_json(alice, "/stepup/reauth/passkey/begin", start).json()))
        done = alice.post(action, data={"csrf_token": csrf_token(page), "credential": credential})
        assert done.status_code in {200, 303}, done.text
        assert _destroy(alice, "prod-us").status_code == 303
        assert _destroy(alice, "prod-eu").status_code == 200
        assert _destroy(alice, "prod-eu").status_code == 303
    finally:
        alice.close()


def test_a_password_and_code_confirm_one_transaction_once() -> None:
    rule = Rule(Sensitivity.CRITICAL, second_factor=True, bind_transaction=True)

    def routes(stepup: Stepup) -> list[Any]:
        @stepup.requires_reauth(
            "vault.wipe", transaction=lambda r: Transaction({"vault": r.path_params["name"]})
        )
        async def wipe(request: Request) -> Response:
            return PlainTextResponse(f"wiped {request.path_params['name']}")

        return [Route("/vaults/{name}/wipe", wipe, methods=["POST"])]

    test_app = make_app(
        clock=SettableClock(),
        store=MemoryStore(),
        policy=_policy().extend({"vault.wipe": rule}),
        extra_routes=routes,
    )
    alice = test_app.browser()
    try:
        assert alice.login("alice").status_code == 303
        totp, _ = enrol(alice)
        assert alice.patch_tenant(True).status_code == 200
        location = alice.post("/vaults/v1/wipe").headers["location"]
        page = alice.get(location).text
        assert 'name="code"' in page
        assert "vault: v1" in page  # no description: the parameters themselves
        test_app.clock.advance(30)
        code = totp.at(test_app.clock())
        done = alice.form(location, {"password": PASSWORDS["alice"], "code": code})
        assert done.status_code == 303
        assert alice.post("/vaults/v2/wipe").status_code == 303
        assert alice.post("/vaults/v1/wipe").text == "wiped v1"
        assert alice.post("/vaults/v1/wipe").status_code == 303
    finally:
        alice.close()


def test_a_target_too_large_to_hash_is_a_400(alice: Browser) -> None:
    refused = _destroy(alice, "x" * 20_000, headers={"accept-language": "de"})
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_transaction"
    assert "Prüfen Sie" in refused.json()["title"]
    location = _destroy(alice, "prod-eu").headers["location"]  # the guard still works
    assert "Delete workspace prod-eu" in alice.get(location).text


def test_a_confirmation_in_one_tenant_is_not_spent_in_another() -> None:
    """Workspace prod-eu of another tenant is another target: the proof recorded for
    this tenant's prod-eu neither opens it nor is used up by trying."""
    other = "globex"
    made: list[TestApp] = []

    def routes(stepup: Stepup) -> list[Any]:
        kept = _starlette_routes(stepup)
        return [
            *kept,
            Route("/other/workspaces/{name}/destroy", kept[0].endpoint, methods=["POST"]),
        ]

    async def tenant_loader(request: Request) -> str:
        return other if request.url.path.startswith("/other/") else TENANT

    async def setup() -> None:
        flag_on = {"feature_flags": {"sensitive_actions_reauth": True}}
        await made[0].stepup.tenants.ensure(other, flag_on)

    made.append(
        make_app(
            clock=SettableClock(),
            store=MemoryStore(),
            policy=_policy(),
            extra_routes=routes,
            tenant_loader=tenant_loader,
            setup=setup,
        )
    )
    alice = made[0].browser()
    try:
        assert alice.login("alice").status_code == 303
        assert alice.patch_tenant(True).status_code == 200
        location = _destroy(alice, "prod-eu").headers["location"]
        assert alice.reauth(location, PASSWORDS["alice"]).status_code == 303

        elsewhere = alice.post("/other/workspaces/prod-eu/destroy")
        assert elsewhere.status_code == 303
        assert parse_qs(urlsplit(elsewhere.headers["location"]).query)["transaction"] == [
            transaction_digest(ACTION, {"workspace": "prod-eu"}, tenant_id=other)
        ]
        done = _destroy(alice, "prod-eu")  # still there for the tenant it was made for
        assert (done.status_code, done.text) == (200, "destroyed prod-eu")
    finally:
        alice.close()
