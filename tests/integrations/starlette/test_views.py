"""The framework-neutral view models in stepup.integrations.views."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stepup.adapters.storage.memory import MemoryStore
from stepup.errors import PermissionDeniedError, StoreUnavailableError, UnknownActionError
from stepup.integrations.views import (
    RECOVERY_REGENERATE,
    default_policy,
    enrolment_page,
    manual_key,
    reauth_page,
    tenant_content_type_ok,
    tenant_error_response,
    tenant_response,
    two_factor_message,
)
from stepup.policy import Policy
from stepup.records import Tenant
from stepup.subject import Identity, LoginMethod, Subject
from stepup.tenants import TenantNotFoundError, TenantPatchError, TenantSettings
from stepup.twofactor import TwoFactor
from stepup.verifier import VerifyReason, VerifyResult

POLICY = default_policy()


def test_default_policy_adds_the_views_actions() -> None:
    assert RECOVERY_REGENERATE in POLICY
    assert RECOVERY_REGENERATE not in Policy.default()
    assert all(action in POLICY for action in ("api_key.read", "2fa.disable", "workspace.delete"))


def test_password_user_gets_a_password_form() -> None:
    page = reauth_page(POLICY, Subject("alice", "s1"), "api_key.read", "/api-key")
    assert (page.password, page.totp, page.sso) == (True, False, "")
    assert page.description == "Reading user API keys"
    assert page.next == "/api-key"


@pytest.mark.parametrize("method", [LoginMethod.OIDC, LoginMethod.SAML])
def test_sso_user_gets_the_provider_button(method: LoginMethod) -> None:
    subject = Subject("carol", "s1", Identity(method, "https://idp", "c", provider="corp"))
    page = reauth_page(POLICY, subject, "user.update", None)
    assert (page.password, page.sso, page.provider) == (False, method.value, "corp")
    assert page.next == "/"


def test_unknown_action_raises() -> None:
    with pytest.raises(UnknownActionError):
        reauth_page(POLICY, Subject("alice", "s1"), "api_key.raed", "/")


def test_no_action_asks_as_for_a_sensitive_one() -> None:
    page = reauth_page(POLICY, Subject("alice", "s1"), "", "/")
    assert page.methods == ("pwd",)


@given(st.text(max_size=60))
def test_next_is_always_a_local_path(value: str) -> None:
    page = reauth_page(POLICY, Subject("alice", "s1"), "api_key.read", value)
    assert page.next.startswith("/")
    assert not page.next.startswith("//")


def test_manual_key_groups_of_four() -> None:
    assert manual_key("ABCDEFGHIJ") == "ABCD EFGH IJ"


def test_enrolment_page_shows_qr_and_key() -> None:
    enrolment = TwoFactor(MemoryStore(), issuer="Acme").begin_enrolment("alice", "alice")
    page = enrolment_page(enrolment, account="alice", issuer="Acme")
    assert page.qr_svg.startswith("<svg")
    assert page.manual_key.replace(" ", "") == enrolment.secret
    assert enrolment.secret not in repr(page)


def test_every_refusal_has_a_message() -> None:
    for reason in VerifyReason:
        message = two_factor_message(VerifyResult(reason))
        assert bool(message) is (reason is not VerifyReason.OK)


@pytest.mark.parametrize(
    ("content_type", "ok"),
    [
        ("application/vnd.api+json", True),
        ("application/json", True),
        ("Application/JSON; charset=utf-8", True),
        ("text/plain", False),
        ("", False),
        ("application/jsonx", False),
        # JSON:API 1.1: no media type parameter but profile (ext names an extension,
        # and none is supported); application/json is read as UTF-8 only.
        ('application/vnd.api+json; profile="https://example.com/p"', True),
        ("application/vnd.api+json; charset=utf-8", False),
        ("application/vnd.api+json;version=1", False),
        ('application/vnd.api+json; ext="https://jsonapi.org/ext/atomic"', False),
        ('application/json;charset="UTF-8"', True),
        ("application/json; charset=latin-1", False),
        ("application/json; boundary=x", False),
        ("application/json;", True),  # RFC 9110 5.6.6: an empty parameter
        ("application/json, text/plain", False),
        ("application/x-www-form-urlencoded", False),
        ("multipart/form-data; boundary=x", False),
    ],
)
def test_tenant_content_types(content_type: str, ok: bool) -> None:
    assert tenant_content_type_ok(content_type) is ok


def test_tenant_responses() -> None:
    done = tenant_response(Tenant("acme", {"feature_flags": {}}))
    assert done.status == 200
    assert json.loads(done.body)["data"]["id"] == "acme"

    settings = TenantSettings(MemoryStore())
    with pytest.raises(TenantPatchError) as bad:
        settings.patch("acme", b"[]", actor_id="a", actor_is_tenant_admin=True)
    errors = {
        TenantNotFoundError("x"): 404,
        PermissionDeniedError("no"): 403,
        StoreUnavailableError("down"): 503,
        bad.value: 400,
    }
    for exc, status in errors.items():
        answer = tenant_error_response(exc)
        assert answer is not None
        assert answer.status == status
        assert answer.headers["Content-Type"] == "application/vnd.api+json"
        assert json.loads(answer.body)["errors"]
    assert tenant_error_response(ValueError("other")) is None
