"""Transaction-bound actions through the Flask guard: the re-auth page shows what is
being confirmed, the grant it records counts once, for that target only."""

from __future__ import annotations

import html
import json
import re
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from flask import Flask, request

from integrations.flask.flask_support import (
    TENANT,
    Browser,
    TestApp,
    app_policy,
    fresh_grant,
    make_app,
    set_flag,
)
from stepup.errors import ConfigurationError
from stepup.integrations.flask import Stepup
from stepup.integrations.transaction import Transaction
from stepup.policy import Rule, Sensitivity
from stepup.testing.webauthn import SoftAuthenticator
from stepup.transactions import transaction_digest

ACTION = "workspace.destroy"


def _policy() -> Any:
    rule = Rule(
        Sensitivity.CRITICAL,
        lifetime=300.0,
        bind_transaction=True,
        description="Deleting a workspace",
    )
    return app_policy().extend({ACTION: rule})


def _routes(app: Flask, stepup: Stepup) -> None:
    def target(req: Any) -> Transaction:
        return Transaction({"workspace": req.view_args["name"]}, "Delete workspace %(workspace)s")

    @app.post("/workspaces/<name>/destroy")
    @stepup.reauth_required(ACTION, transaction=target, return_to="/home")
    def destroy(name: str) -> str:
        return f"destroyed {name}"


def _two_tenants(app: Flask, stepup: Stepup) -> None:
    """The same routes under /other/, where the request is in another tenant."""
    _routes(app, stepup)

    @stepup.tenant_loader
    def tenant(subject: Any) -> str:
        return OTHER if request.path.startswith("/other/") else TENANT

    def target(req: Any) -> Transaction:
        return Transaction({"workspace": req.view_args["name"]}, "Delete workspace %(workspace)s")

    @app.post("/other/workspaces/<name>/destroy")
    @stepup.reauth_required(ACTION, transaction=target, return_to="/home")
    def destroy_elsewhere(name: str) -> str:
        return f"destroyed {name} of {OTHER}"


OTHER = "globex"


@pytest.fixture
def tx_app() -> TestApp:
    return make_app("subject_loader", policy=_policy(), setup=_routes)


def test_a_confirmation_in_one_tenant_is_not_spent_in_another() -> None:
    """Workspace prod-eu of another tenant is another target: the proof recorded for
    this tenant's prod-eu neither opens it nor is used up by trying."""
    tx_app = make_app("subject_loader", policy=_policy(), setup=_two_tenants)
    with tx_app.app.app_context():
        tx_app.stepup.tenant_settings.ensure(
            OTHER, {"feature_flags": {"sensitive_actions_reauth": True}}
        )
    alice = _signed_in(tx_app)
    location = _destroy(alice, "prod-eu").headers["Location"]
    assert alice.reauth(location, "correct horse").status_code == 200

    token = alice.csrf()
    elsewhere = alice.post("/other/workspaces/prod-eu/destroy", data={"csrf_token": token})
    assert elsewhere.status_code == 303
    assert parse_qs(urlsplit(elsewhere.headers["Location"]).query)["transaction"] == [
        transaction_digest(ACTION, {"workspace": "prod-eu"}, tenant_id=OTHER)
    ]
    done = _destroy(alice, "prod-eu")  # still there for the tenant it was made for
    assert (done.status_code, done.get_data(as_text=True)) == (200, "destroyed prod-eu")


def _signed_in(tx_app: TestApp) -> Browser:
    browser = tx_app.client()
    browser.login("alice")
    assert set_flag(browser).status_code == 200
    return browser


def _destroy(browser: Browser, name: str, **kwargs: Any) -> Any:
    token = browser.csrf()
    return browser.post(f"/workspaces/{name}/destroy", data={"csrf_token": token}, **kwargs)


def test_a_confirmation_counts_once_for_its_own_target(tx_app: TestApp) -> None:
    alice = _signed_in(tx_app)
    refused = _destroy(alice, "prod-eu")
    assert refused.status_code == 303
    location = refused.headers["Location"]
    query = parse_qs(urlsplit(location).query)
    assert query["transaction"] == [
        transaction_digest(ACTION, {"workspace": "prod-eu"}, tenant_id=TENANT)
    ]

    page = alice.get(location).get_data(as_text=True)
    assert "Delete workspace prod-eu" in page
    assert 'name="transaction"' in page
    resumed = alice.reauth(location, "correct horse")  # the suspended form, sent again
    assert resumed.status_code == 200
    assert 'action="/workspaces/prod-eu/destroy"' in resumed.get_data(as_text=True)

    assert _destroy(alice, "prod-us").status_code == 303  # not this target
    done = _destroy(alice, "prod-eu")
    assert done.status_code == 200
    assert done.get_data(as_text=True) == "destroyed prod-eu"
    assert _destroy(alice, "prod-eu").status_code == 303  # spent: single use


def test_the_description_is_escaped_and_translated(tx_app: TestApp) -> None:
    alice = _signed_in(tx_app)
    location = _destroy(alice, quote("<img src=x onerror=alert(1)>")).headers["Location"]
    page = alice.get(location, headers={"Accept-Language": "de"}).get_data(as_text=True)
    assert "<img" not in page
    assert "Delete workspace &lt;img src=x onerror=alert(1)&gt;" in page
    assert "Sie bestätigen:" in page


def test_the_page_shows_only_a_transaction_the_session_kept(tx_app: TestApp) -> None:
    alice = _signed_in(tx_app)
    forged = transaction_digest(ACTION, {"workspace": "prod-us"}, tenant_id=TENANT)
    page = alice.get(f"/stepup/reauth?action={ACTION}&next=/home&transaction={forged}")
    assert page.status_code == 400
    assert "expired or was already used" in page.get_data(as_text=True)
    # Nor without any transaction: the grant would bind nothing.
    assert alice.get(f"/stepup/reauth?action={ACTION}&next=/home").status_code == 400
    # A status question cannot name the transaction (and must not spend its proof).
    status = alice.get(f"/stepup/reauth/status?action={ACTION}")
    assert (status.status_code, status.get_json()["error"]) == (400, "transaction_bound")

    # A form posting another digest than the page showed is refused the same way.
    location = _destroy(alice, "prod-eu").headers["Location"]
    answer = alice.reauth(location, "correct horse", transaction=forged)
    assert answer.status_code == 400
    assert _destroy(alice, "prod-us").status_code == 303


def test_a_json_client_gets_the_401_with_the_transaction(tx_app: TestApp) -> None:
    alice = _signed_in(tx_app)
    token = alice.csrf()
    refused = alice.post(
        "/workspaces/prod-eu/destroy",
        headers={"Accept": "application/json", "X-CSRF-Token": token},
    )
    assert refused.status_code == 401
    body = refused.get_json()
    digest = transaction_digest(ACTION, {"workspace": "prod-eu"}, tenant_id=TENANT)
    assert body["error"] == "reauth_required"
    assert body["transaction"] == digest
    assert f"transaction={digest}" in body["reauth_url"]
    # The page the JSON client's user is sent to shows the transaction.
    page = alice.get(body["reauth_url"]).get_data(as_text=True)
    assert "Delete workspace prod-eu" in page


def test_a_bound_rule_without_a_transaction_fails_at_start_up() -> None:
    def routes(app: Flask, stepup: Stepup) -> None:
        @app.post("/ws/<name>")
        @stepup.reauth_required(ACTION)
        def destroy(name: str) -> str:
            return name

    with pytest.raises(ConfigurationError, match="bound to one transaction"):
        make_app("subject_loader", policy=_policy(), setup=routes)


def test_an_unbound_rule_ignores_a_transaction(tx_app: TestApp) -> None:
    def routes(app: Flask, stepup: Stepup) -> None:
        @app.get("/keys/<name>")
        @stepup.reauth_required(
            "api_key.read", transaction=lambda r: Transaction({"key": r.view_args["name"]})
        )
        def read(name: str) -> str:
            return name

    test_app = make_app("subject_loader", policy=_policy(), setup=routes)
    alice = _signed_in(test_app)
    location = alice.get("/keys/k1").headers["Location"]
    assert "transaction=" not in location  # the rule binds nothing
    assert alice.reauth(location, "correct horse").status_code == 303
    assert alice.get("/keys/k1").status_code == 200
    assert alice.get("/keys/k2").status_code == 200


# a passkey signs the transaction ---------------------------------------------------------

ORIGIN = "http://localhost"
PASSKEYS = {"STEPUP_PASSKEYS_RP_ID": "localhost", "STEPUP_PASSKEYS_ORIGINS": [ORIGIN]}


def _json(browser: Browser, url: str, body: Any) -> Any:
    headers = {"X-CSRF-Token": browser.csrf("/stepup/passkeys")}
    return browser.post(
        url, data=json.dumps(body), content_type="application/json", headers=headers
    )


def test_a_passkey_confirms_one_transaction_once() -> None:
    test_app = make_app("subject_loader", policy=_policy(), setup=_routes, config=PASSKEYS)
    alice = _signed_in(test_app)
    key = SoftAuthenticator(origin=ORIGIN, counter=1)
    fresh_grant(alice)  # adding a passkey asks for a re-authentication of its own
    options = _json(alice, "/stepup/passkeys/register/begin", {})
    added = _json(
        alice,
        "/stepup/passkeys/register/finish",
        {"credential": key.create(options.get_json()), "name": "Laptop"},
    )
    assert added.status_code == 200, added.get_data(as_text=True)
    # That grant is the session's, not this transaction's: it does not count.

    assert _destroy(alice, "prod-us").status_code == 303  # both wait in the session
    location = _destroy(alice, "prod-eu").headers["Location"]
    page = alice.get(location).get_data(as_text=True)
    assert "Use a passkey" in page
    assert "Delete workspace prod-eu" in page
    fields = {
        k: html.unescape(v)
        for k, v in re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page)
    }
    digest = transaction_digest(ACTION, {"workspace": "prod-eu"}, tenant_id=TENANT)
    assert fields["transaction"] == digest
    begun = _json(alice, "/stepup/reauth/passkey/begin", {"action": ACTION, "transaction": digest})
    assert begun.status_code == 200
    assertion = key.get(begun.get_json())

    # The same signed assertion, posted for another transaction, is refused.
    other = transaction_digest(ACTION, {"workspace": "prod-us"}, tenant_id=TENANT)
    forged = _json(
        alice,
        "/stepup/reauth/passkey/finish",
        {"credential": assertion, "action": ACTION, "transaction": other, "next": "/home"},
    )
    assert forged.status_code == 400
    assert forged.get_json()["error"] != "transaction_expired", forged.get_json()
    assert _destroy(alice, "prod-us").status_code == 303

    begun = _json(alice, "/stepup/reauth/passkey/begin", {"action": ACTION, "transaction": digest})
    credential = json.dumps(key.get(begun.get_json()))
    done = alice.post("/stepup/reauth/passkey/finish", data={**fields, "credential": credential})
    assert done.status_code in {200, 303}
    assert _destroy(alice, "prod-us").status_code == 303
    assert _destroy(alice, "prod-eu").status_code == 200
    assert _destroy(alice, "prod-eu").status_code == 303


def test_a_password_and_code_confirm_one_transaction_once() -> None:
    rule = Rule(Sensitivity.CRITICAL, second_factor=True, bind_transaction=True)

    def routes(app: Flask, stepup: Stepup) -> None:
        @app.post("/vaults/<name>/wipe")
        @stepup.reauth_required(
            "vault.wipe", transaction=lambda r: Transaction({"vault": r.view_args["name"]})
        )
        def wipe(name: str) -> str:
            return f"wiped {name}"

    test_app = make_app(
        "subject_loader", policy=_policy().extend({"vault.wipe": rule}), setup=routes
    )
    alice = _signed_in(test_app)
    secret, _ = alice.enrol()
    csrf = {"csrf_token": alice.csrf()}
    location = alice.post("/vaults/v1/wipe", data=csrf).headers["Location"]
    page = alice.get(location).get_data(as_text=True)
    assert 'name="code"' in page
    assert "vault: v1" in page  # no description: the parameters themselves
    test_app.clock.advance(30)
    answer = alice.reauth(location, "correct horse", code=test_app.totp_code(secret))
    assert answer.status_code == 200  # the suspended form, sent again
    csrf = {"csrf_token": alice.csrf()}
    assert alice.post("/vaults/v2/wipe", data=csrf).status_code == 303
    assert alice.post("/vaults/v1/wipe", data=csrf).get_data(as_text=True) == "wiped v1"
    assert alice.post("/vaults/v1/wipe", data=csrf).status_code == 303


def test_a_target_too_large_to_hash_is_a_400_that_keeps_nothing(tx_app: TestApp) -> None:
    alice = _signed_in(tx_app)
    for headers in ({}, {"Accept-Language": "de", "Accept": "application/json"}):
        refused = _destroy(alice, "x" * 20_000, headers=headers)
        assert refused.status_code == 400
        body = refused.get_json()
        assert body["error"] == "invalid_transaction"
        assert ("Prüfen Sie" in body["title"]) == bool(headers)
    with alice.client.session_transaction() as session:
        assert not session.get("_stepup_transactions")
    assert _destroy(alice, "prod-eu").status_code == 303  # the guard still works


def test_a_confirmation_is_no_re_authentication_for_other_actions(tx_app: TestApp) -> None:
    alice = _signed_in(tx_app)
    assert alice.get("/api-key").status_code == 303  # a sensitive, unbound action asks
    location = _destroy(alice, "prod-eu").headers["Location"]
    alice.reauth(location, "correct horse")
    assert alice.get("/api-key").status_code == 303  # still asks: prod-eu was confirmed
    assert _destroy(alice, "prod-eu").status_code == 200
