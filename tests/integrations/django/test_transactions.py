"""Transaction-bound actions through the Django decorator and mixin: the re-auth page
shows what is being confirmed, the grant it records counts once, for that target only."""

from __future__ import annotations

import json
import re
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from django.test import override_settings
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from integrations.django.django_support import (
    TENANT,
    Browser,
    Site,
    confirm_factors,
    running_site,
    set_flag,
)
from stepup.adapters.storage.memory import MemoryStore
from stepup.errors import ConfigurationError
from stepup.integrations.django.decorators import reauth_required
from stepup.integrations.django.services import get_stepup
from stepup.policy import Policy
from stepup.testing import SettableClock
from stepup.testing.webauthn import SoftAuthenticator
from stepup.transactions import transaction_digest

ACTION = "workspace.destroy"


@pytest.fixture
def tx_site() -> Iterator[Site]:
    with running_site(MemoryStore(), SettableClock()) as site:
        get_stepup().tenant_settings.ensure("acme")
        yield site


def _alice(site: Site) -> Browser:
    alice = site.browser("alice")
    assert set_flag(alice).status_code == 200
    return alice


@pytest.mark.parametrize("prefix", ["", "/async"])
def test_a_confirmation_counts_once_for_its_own_target(tx_site: Site, prefix: str) -> None:
    alice = _alice(tx_site)
    refused = alice.post(f"{prefix}/workspaces/prod-eu/destroy/")
    assert refused.status_code == 303
    location = refused["Location"]
    query = parse_qs(urlsplit(location).query)
    assert query["transaction"] == [
        transaction_digest(ACTION, {"workspace": "prod-eu"}, tenant_id=TENANT)
    ]

    page = alice.get(location).content.decode()
    assert "Delete workspace prod-eu" in page
    assert alice.reauth(location, "correct horse").status_code in {200, 303}

    assert alice.post(f"{prefix}/workspaces/prod-us/destroy/").status_code == 303  # not this one
    done = alice.post(f"{prefix}/workspaces/prod-eu/destroy/")
    assert done.status_code == 200
    assert done.content == b"destroyed prod-eu"
    assert alice.post(f"{prefix}/workspaces/prod-eu/destroy/").status_code == 303  # spent


def test_the_description_is_escaped_and_translated(tx_site: Site) -> None:
    alice = _alice(tx_site)
    location = alice.post(f"/workspaces/{quote('<img src=x onerror=alert(1)>')}/destroy/")[
        "Location"
    ]
    page = alice.get(location, HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "<img" not in page
    assert "Delete workspace &lt;img src=x onerror=alert(1)&gt;" in page
    assert "Sie bestätigen:" in page


def test_the_page_shows_only_a_transaction_the_session_kept(tx_site: Site) -> None:
    alice = _alice(tx_site)
    forged = transaction_digest(ACTION, {"workspace": "prod-us"}, tenant_id=TENANT)
    page = alice.get(f"/stepup/reauth/?action={ACTION}&next=/home/&transaction={forged}")
    assert page.status_code == 400
    assert "expired or was already used" in page.content.decode()
    assert alice.get(f"/stepup/reauth/?action={ACTION}&next=/home/").status_code == 400
    status = alice.get(f"/stepup/reauth/status?action={ACTION}")
    assert (status.status_code, status.json()["error"]) == (400, "transaction_bound")

    location = alice.post("/workspaces/prod-eu/destroy/")["Location"]
    assert alice.reauth(location, "correct horse", transaction=forged).status_code == 400
    assert alice.post("/workspaces/prod-us/destroy/").status_code == 303


def test_a_json_client_gets_the_401_with_the_transaction(tx_site: Site) -> None:
    alice = _alice(tx_site)
    refused = alice.post("/workspaces/prod-eu/destroy/", HTTP_ACCEPT="application/json")
    assert refused.status_code == 401
    body = refused.json()
    digest = transaction_digest(ACTION, {"workspace": "prod-eu"}, tenant_id=TENANT)
    assert (body["error"], body["transaction"]) == ("reauth_required", digest)
    assert "Delete workspace prod-eu" in alice.get(body["reauth_url"]).content.decode()


def test_a_bound_rule_without_a_transaction_fails_at_start_up(tx_site: Site) -> None:
    with pytest.raises(ConfigurationError, match="bound to one transaction"):
        reauth_required(ACTION)


# docs/step-up-apis.md, "In the ready-made pages": the Django example, as written --------

DOC = Path(__file__).resolve().parents[3] / "docs" / "step-up-apis.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)


def _doc_block(starting: str) -> str:
    found = [block for block in BLOCKS if block.startswith(starting)]
    assert len(found) == 1, starting
    return found[0]


def _doc_namespace() -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "stepup_doc_views"}  # Django names views by it
    exec(_doc_block("from stepup.assurance import"), namespace)  # noqa: S102 (LEVELS)
    exec(_doc_block("# stepup_rules.py"), namespace)  # noqa: S102 (PAGES_POLICY, workspace)
    return namespace


def doc_policy() -> Policy:
    """``STEPUP["POLICY"]`` of the example: a function returning ``PAGES_POLICY``."""
    policy: Policy = _doc_namespace()["PAGES_POLICY"]
    return policy


def test_the_doc_example_confirms_one_transaction_once() -> None:
    from integrations.django.testapp import views as testapp_views

    policy = f"{__name__}.doc_policy"
    with running_site(MemoryStore(), SettableClock(), POLICY=policy) as site:
        get_stepup().tenant_settings.ensure("acme")
        namespace = _doc_namespace()
        exec(_doc_block("from django.http import HttpRequest, HttpResponse"), namespace)  # noqa: S102
        urls = types.ModuleType("stepup_doc_urls")
        urls.urlpatterns = [  # type: ignore[attr-defined]
            path("login/", testapp_views.sign_in),
            path("ws/<str:name>/", csrf_exempt(namespace["destroy_workspace"])),
            path("cbv/<str:name>/", csrf_exempt(namespace["DestroyWorkspace"].as_view())),
            path("pay/<int:number>/", csrf_exempt(namespace["pay_invoice"])),
            path("stepup/", include("stepup.integrations.django.urls")),
        ]
        sys.modules[urls.__name__] = urls
        try:
            with override_settings(ROOT_URLCONF=urls.__name__):
                alice = _alice(site)
                for prefix in ("/ws", "/cbv"):
                    location = alice.post(f"{prefix}/prod-eu/")["Location"]
                    assert "Delete workspace prod-eu" in alice.get(location).content.decode()
                    assert alice.reauth(location, "correct horse").status_code in {200, 303}
                    assert alice.post(f"{prefix}/prod-us/").status_code == 303
                    assert alice.post(f"{prefix}/prod-eu/").content == b"deleted prod-eu"
                    assert alice.post(f"{prefix}/prod-eu/").status_code == 303
                assert alice.get("/pay/7/").status_code == 303  # mfa: a code too
        finally:
            del sys.modules[urls.__name__]


# a passkey signs the transaction -----------------------------------------------------------

ORIGIN = "http://localhost"


def _json(browser: Browser, url: str, body: Any) -> Any:
    token = browser.fields("/stepup/passkeys/")["csrfmiddlewaretoken"]
    return browser.client.post(
        url, data=json.dumps(body), content_type="application/json", headers={"X-CSRFToken": token}
    )


def test_a_passkey_confirms_one_transaction_once() -> None:
    passkeys = {"PASSKEYS_RP_ID": "localhost", "PASSKEYS_ORIGINS": [ORIGIN]}
    with running_site(MemoryStore(), SettableClock(), **passkeys) as site:
        get_stepup().tenant_settings.ensure("acme")
        alice = site.browser("alice")
        key = SoftAuthenticator(origin=ORIGIN, counter=1)
        confirm_factors(alice)  # adding a passkey asks for a re-authentication of its own
        options = _json(alice, "/stepup/passkeys/register/begin", {})
        body = {"credential": key.create(options.json()), "name": "Laptop"}
        assert _json(alice, "/stepup/passkeys/register/finish", body).status_code == 200
        assert set_flag(alice).status_code == 200

        assert alice.post("/workspaces/prod-us/destroy/").status_code == 303  # both wait
        location = alice.post("/workspaces/prod-eu/destroy/")["Location"]
        page = alice.get(location).content.decode()
        assert "Use a passkey" in page
        fields = alice.fields(location)
        digest = transaction_digest(ACTION, {"workspace": "prod-eu"}, tenant_id=TENANT)
        assert fields["transaction"] == digest
        start = {"action": ACTION, "transaction": digest}
        assertion = key.get(_json(alice, "/stepup/reauth/passkey/begin", start).json())
        other = transaction_digest(ACTION, {"workspace": "prod-us"}, tenant_id=TENANT)
        forged = {"credential": assertion, "action": ACTION, "transaction": other, "next": "/"}
        refused = _json(alice, "/stepup/reauth/passkey/finish", forged)
        assert refused.status_code == 400
        assert refused.json()["error"] != "transaction_expired"

        credential = json.dumps(key.get(_json(alice, "/stepup/reauth/passkey/begin", start).json()))
        done = alice.post("/stepup/reauth/passkey/finish", {**fields, "credential": credential})
        assert done.status_code in {200, 303}
        assert alice.post("/workspaces/prod-us/destroy/").status_code == 303
        assert alice.post("/workspaces/prod-eu/destroy/").status_code == 200
        assert alice.post("/workspaces/prod-eu/destroy/").status_code == 303


@pytest.mark.parametrize("prefix", ["", "/async"])
def test_a_target_too_large_to_hash_is_a_400_that_keeps_nothing(tx_site: Site, prefix: str) -> None:
    alice = _alice(tx_site)
    url = f"{prefix}/workspaces/{'x' * 20_000}/destroy/"
    refused = alice.post(url, HTTP_ACCEPT_LANGUAGE="de")
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_transaction"
    assert "Prüfen Sie" in refused.json()["title"]
    assert not alice.client.session.get("_stepup_transactions")
    assert alice.post(f"{prefix}/workspaces/prod-eu/destroy/").status_code == 303


def test_a_confirmation_in_one_tenant_is_not_spent_in_another(tx_site: Site) -> None:
    """Workspace prod-eu of another tenant (the test app's /globex/ paths) is another
    target: the proof recorded for this tenant's prod-eu neither opens it nor is used
    up by trying."""
    get_stepup().tenant_settings.ensure(
        "globex", {"feature_flags": {"sensitive_actions_reauth": True}}
    )
    alice = _alice(tx_site)
    location = alice.post("/workspaces/prod-eu/destroy/")["Location"]
    assert alice.reauth(location, "correct horse").status_code in {200, 303}

    elsewhere = alice.post("/globex/workspaces/prod-eu/destroy/")
    assert elsewhere.status_code == 303
    assert parse_qs(urlsplit(elsewhere["Location"]).query)["transaction"] == [
        transaction_digest(ACTION, {"workspace": "prod-eu"}, tenant_id="globex")
    ]
    done = alice.post("/workspaces/prod-eu/destroy/")  # still there for its own tenant
    assert (done.status_code, done.content) == (200, b"destroyed prod-eu")
