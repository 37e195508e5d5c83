"""The tenant endpoint's answer to the core's decision (``views.tenant_decision_response``)
is the guarded JSON endpoints' answer as one JSON:API error object: same status, same
headers, ``code`` the body's ``error``, ``meta`` every other field of it, ``links.about``
the re-auth page. Each framework calls it (tests/integrations/django/
test_tenant_jsonapi_refusals.py drives the three)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from integrations.tenant_answers import JSONAPI, only_error
from stepup.errors import StoreUnavailableError
from stepup.integrations.http import (
    RETRY_AFTER,
    SESSION_CHALLENGE,
    HttpResponse,
    RequestInfo,
    decision_response,
)
from stepup.integrations.views import (
    jsonapi_refusal,
    tenant_decision_response,
    tenant_error_response,
    tenant_method_not_allowed,
)
from stepup.policy import Sensitivity
from stepup.reauth import (
    Allowed,
    AllowReason,
    Decision,
    ReauthRequired,
    ReauthUnavailable,
    UnavailableReason,
)
from stepup.twofactor import Channel

ACTION = "tenant.settings.update"
PATCH = RequestInfo(
    "PATCH", "/settings/tenant", content_type=JSONAPI, accept_language="de, en;q=0.5"
)
BEARER = RequestInfo("PATCH", "/settings/tenant", content_type=JSONAPI, authorization="Bearer abc")
REQUIRED = ReauthRequired(ACTION, Sensitivity.SENSITIVE, ("pwd",), 3600.0, 1_700_000_000.0)


def _answer(decision: Decision, request: RequestInfo = PATCH) -> tuple[HttpResponse, Any]:
    answer = tenant_decision_response(decision, request, reauth_url="/stepup/reauth")
    assert answer is not None
    assert answer.headers["Content-Type"] == JSONAPI
    assert answer.headers["Cache-Control"] == "no-store"
    return answer, only_error(json.loads(answer.body))


def _generic(decision: Decision, request: RequestInfo = PATCH) -> tuple[HttpResponse, Any]:
    generic = decision_response(decision, request, reauth_url="/stepup/reauth")
    assert generic is not None
    return generic, json.loads(generic.body)


def test_an_allowed_patch_has_no_answer() -> None:
    allowed = Allowed(ACTION, AllowReason.FRESH_GRANT)
    assert tenant_decision_response(allowed, PATCH, reauth_url="/stepup/reauth") is None


@pytest.mark.parametrize(
    "decision",
    [
        REQUIRED,
        REQUIRED._replace(
            level="aal2",
            acr_values=("urn:aal2",),
            transaction="digest",
            enrol=("otp",),
            alternatives=(("pwd",), ("oidc",)),
        ),
    ],
    ids=["plain", "every-field"],
)
def test_the_401_carries_the_json_body_in_meta(decision: ReauthRequired) -> None:
    answer, error = _answer(decision)
    generic, body = _generic(decision)
    assert answer.status == 401
    assert error["status"] == "401"
    assert error["code"] == body.pop("error") == "reauth_required"
    assert error["title"] == body.pop("title") == "Bestätigen Sie Ihre Identität, um fortzufahren."
    assert error["meta"] == body  # every other field, reauth_url included
    assert error["links"] == {"about": body["reauth_url"]}
    assert answer.headers["WWW-Authenticate"] == SESSION_CHALLENGE
    assert {**generic.headers, "Content-Type": JSONAPI} == answer.headers


def test_a_bearer_client_keeps_its_rfc_9470_challenge() -> None:
    decision = REQUIRED._replace(channel=Channel.API)
    answer, error = _answer(decision, BEARER)
    generic, _ = _generic(decision, BEARER)
    assert answer.headers["WWW-Authenticate"] == generic.headers["WWW-Authenticate"]
    assert 'error="insufficient_user_authentication"' in answer.headers["WWW-Authenticate"]
    assert error["code"] == "reauth_required"


@pytest.mark.parametrize(
    "reason",
    [
        UnavailableReason.UNREACHABLE,
        UnavailableReason.TRANSACTION_BOUND,
        UnavailableReason.NON_INTERACTIVE,
    ],
)
def test_an_unreachable_rule_is_a_jsonapi_403(reason: UnavailableReason) -> None:
    decision = ReauthUnavailable(ACTION, reason, "aal3", (("oidc",),))
    answer, error = _answer(decision)
    _, body = _generic(decision)
    assert answer.status == 403
    assert (error["status"], error["code"]) == ("403", "reauth_unreachable")
    assert error["meta"] == {k: v for k, v in body.items() if k not in {"error", "title"}}
    assert error["meta"]["reason"] == reason.value
    assert "links" not in error  # no page to go to: signing in another way would do


def test_a_store_outage_is_the_endpoints_one_503() -> None:
    answer, error = _answer(ReauthUnavailable(ACTION))
    written = tenant_error_response(StoreUnavailableError("patch_tenant"), "de")
    assert written is not None
    assert answer.status == written.status == 503
    assert answer.headers["Retry-After"] == written.headers["Retry-After"] == RETRY_AFTER
    other = only_error(json.loads(written.body))
    assert (error["code"], error["title"]) == (other["code"], other["title"])
    assert error["code"] == "unavailable"
    assert error["meta"] == {"action": ACTION}


def test_a_browser_redirect_is_not_a_json_error_and_passes_as_it_is() -> None:
    """The endpoint reads only JSON media types, so no browser's 303 comes here; were
    one to, it would not be turned into a document."""
    redirect = HttpResponse(303, {"Location": "/stepup/reauth?next=%2F"})
    assert jsonapi_refusal(redirect) is redirect


def test_the_405_allows_patch_only() -> None:
    answer = tenant_method_not_allowed("de")
    assert answer.status == 405
    assert answer.headers["Allow"] == "PATCH"
    assert answer.headers["Content-Type"] == JSONAPI
    error = only_error(json.loads(answer.body))
    assert (error["status"], error["code"]) == ("405", "method_not_allowed")
