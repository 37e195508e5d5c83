"""The rules every integration shares (stepup.integrations.http and .views): each is
decided once, so Flask, Django and Starlette cannot drift apart."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stepup.adapters.idp.oidc import OIDCOutcome, OIDCReason
from stepup.adapters.idp.password import PasswordReason
from stepup.adapters.idp.saml import SAMLOutcome, SAMLReason
from stepup.integrations import django as django_integration
from stepup.integrations import starlette as starlette_integration
from stepup.integrations.http import RequestInfo, SignInRequiredError, form_return_path
from stepup.integrations.views import (
    SESSION_ID,
    is_fresh,
    note_sign_in,
    refusal_status,
    session_id,
    session_identity,
    sso_answer,
    tenant_accept_ok,
    tenant_request_refusal,
)
from stepup.subject import Identity, LoginMethod
from stepup.testing import SettableClock
from stepup.verifier import VerifyReason

TTL = 300.0


def test_sign_in_required_is_one_class_exported_by_both_integrations() -> None:
    assert starlette_integration.SignInRequiredError is SignInRequiredError
    assert django_integration.SignInRequiredError is SignInRequiredError


# freshness: 0 <= now - at < ttl, as the core treats lifetimes -----------------------


@given(
    at=st.floats(min_value=0, max_value=2e9, allow_nan=False),
    age=st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    ttl=st.floats(min_value=1, max_value=1e6, allow_nan=False),
)
def test_is_fresh_is_the_cores_lifetime_rule(at: float, age: float, ttl: float) -> None:
    now = at + age
    assert is_fresh(at, now, ttl) is (0 <= now - at < ttl)


@pytest.mark.parametrize("at", [None, "1000", True, [1000], {"at": 1000}])
def test_anything_but_a_number_is_not_fresh(at: object) -> None:
    assert is_fresh(at, 1000, TTL) is False


# the code proved before an SSO trip ---------------------------------------------------


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(1_700_000_000)


# the provider's answer ----------------------------------------------------------------


def test_an_ok_answer_grants_the_providers_method_at_its_login_time() -> None:
    outcome = OIDCOutcome(OIDCReason.OK, auth_time=1000.0, return_to="/api-key?tab=keys")
    answer = sso_answer(outcome, proved_code=False)
    assert (answer.ok, answer.next, answer.methods) == (True, "/api-key?tab=keys", ("oidc",))
    assert answer.authenticated_at == 1000.0


def test_a_proved_code_joins_the_grant() -> None:
    outcome = SAMLOutcome(SAMLReason.OK, authn_instant=1000.0, return_to="/billing")
    answer = sso_answer(outcome, proved_code=True)
    assert answer.methods == ("saml", "otp")
    assert answer.authenticated_at == 1000.0


@pytest.mark.parametrize(
    ("outcome", "status"),
    [
        (OIDCOutcome(OIDCReason.WRONG_SUBJECT, return_to="/api-key"), 400),
        (OIDCOutcome(OIDCReason.UNAVAILABLE, return_to="/api-key"), 503),
        (SAMLOutcome(SAMLReason.UNSIGNED, return_to="/api-key"), 400),
        (SAMLOutcome(SAMLReason.UNAVAILABLE, return_to="/api-key"), 503),
    ],
)
def test_a_refused_answer_grants_nothing_even_with_a_proved_code(
    outcome: OIDCOutcome | SAMLOutcome, status: int
) -> None:
    answer = sso_answer(outcome, proved_code=True)
    assert not answer.ok
    assert (answer.status, answer.methods, answer.next) == (status, (), "/api-key")


@pytest.mark.parametrize("return_to", [None, "https://evil.example/", "//evil.example"])
def test_the_way_back_is_always_a_path_on_this_site(return_to: str | None) -> None:
    assert sso_answer(OIDCOutcome(OIDCReason.OK, return_to=return_to), False).next == "/"
    assert sso_answer(OIDCOutcome(OIDCReason.EXPIRED, return_to=return_to), False).next == "/"


def test_refusal_statuses() -> None:
    assert refusal_status(VerifyReason.THROTTLED) == 429
    assert refusal_status(VerifyReason.UNAVAILABLE) == 503
    assert refusal_status(VerifyReason.REPLAYED) == 400
    assert refusal_status(PasswordReason.THROTTLED) == 429
    assert refusal_status(PasswordReason.UNAVAILABLE) == 503
    assert refusal_status(PasswordReason.WRONG_PASSWORD) == 400


# the session id and how the user signed in --------------------------------------------


def test_the_session_id_is_made_once_and_renewed_at_sign_in() -> None:
    session: dict[str, Any] = {}
    first = session_id(session)
    assert session_id(session) == first
    note_sign_in(session, None)
    assert session_id(session) != first
    assert session_identity(session) == Identity(LoginMethod.PASSWORD)


@given(
    method=st.sampled_from([LoginMethod.OIDC, LoginMethod.SAML]),
    issuer=st.text(max_size=20),
    subject=st.text(max_size=20),
    provider=st.text(max_size=20),
)
def test_the_identity_survives_the_session(
    method: LoginMethod, issuer: str, subject: str, provider: str
) -> None:
    session: dict[str, Any] = {}
    identity = Identity(method, issuer=issuer, subject=subject, provider=provider)
    note_sign_in(session, identity)
    assert session_identity(json.loads(json.dumps(session))) == identity  # JSON-safe
    note_sign_in(session, None)  # a later password sign-in forgets it
    assert session_identity(session) == Identity(LoginMethod.PASSWORD)
    assert isinstance(session[SESSION_ID], str)


# reading the request ------------------------------------------------------------------


class _Headers(dict[str, str]):
    """Case-insensitive, like every framework's headers."""

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)


def test_request_info_reads_the_headers_without_regard_to_case() -> None:
    headers = _Headers({"accept": "application/json", "authorization": "Bearer x"})
    info = RequestInfo.from_headers("POST", "/a?b=1", headers)
    assert info == RequestInfo(
        method="POST", path="/a?b=1", accept="application/json", authorization="Bearer x"
    )


@dataclass
class _Request:
    next_page: str


@pytest.mark.parametrize(
    ("method", "referer", "return_to", "expected"),
    [
        ("GET", "https://site/form?x=1", "/elsewhere", None),
        ("HEAD", "", None, None),
        ("POST", "https://site/form?x=1", "/elsewhere", "/elsewhere"),
        ("POST", "https://site/form?x=1", lambda r: r.next_page, "/from-request"),
        ("POST", "https://site/form?x=1", None, "/form?x=1"),
        ("DELETE", "https://site/form", None, "/form"),
        ("POST", "", None, "/"),
    ],
)
def test_form_return_path(method: str, referer: str, return_to: Any, expected: str | None) -> None:
    request = _Request("/from-request")
    assert form_return_path(method, referer, return_to, request, origin="https://site") == expected


# the tenant endpoint ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("signed_in", "content_type", "status", "code"),
    [
        (False, "application/vnd.api+json", 401, "unauthenticated"),
        (True, "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        (True, "text/plain", 415, "unsupported_media_type"),
    ],
)
def test_tenant_requests_that_cannot_be_read(
    signed_in: bool, content_type: str, status: int, code: str
) -> None:
    refusal = tenant_request_refusal(signed_in, content_type)
    assert refusal is not None
    assert refusal.status == status
    assert json.loads(refusal.body)["errors"][0]["code"] == code


@pytest.mark.parametrize("content_type", ["application/vnd.api+json", "application/json"])
def test_tenant_requests_that_go_ahead(content_type: str) -> None:
    assert tenant_request_refusal(True, content_type) is None


@pytest.mark.parametrize(
    ("signed_in", "content_type", "accept", "status"),
    [
        (False, "application/vnd.api+json", None, 401),  # nobody signed in learns nothing
        (True, "text/plain", None, 415),
        (True, "application/vnd.api+json", "application/vnd.api+json; ext=e", 406),
        (True, "application/vnd.api+json", None, 400),
    ],
)
def test_a_tenant_query_parameter_is_refused_after_the_header_checks(
    signed_in: bool, content_type: str, accept: str | None, status: int
) -> None:
    refusal = tenant_request_refusal(signed_in, content_type, accept=accept, query=["include"])
    assert refusal is not None
    assert refusal.status == status


def test_a_tenant_query_refusal_names_the_first_parameter() -> None:
    refusal = tenant_request_refusal(True, "application/json", query=iter(["sort", "include"]))
    assert refusal is not None
    assert json.loads(refusal.body)["errors"] == [
        {
            "status": "400",
            "code": "invalid_query_parameter",
            "title": "The tenant settings endpoint takes no query parameters",
            "source": {"parameter": "sort"},
        }
    ]
    assert tenant_request_refusal(True, "application/json", query=[]) is None


@given(st.lists(st.text(alphabet=st.characters(blacklist_characters=',"'), min_size=1), max_size=8))
def test_an_accept_list_without_quotes_splits_at_every_comma(elements: list[str]) -> None:
    from stepup.integrations.views import _LIST_ELEMENT

    assert _LIST_ELEMENT.findall(",".join(elements)) == elements


@pytest.mark.parametrize(
    "header",
    [
        '"' + '\\"' * 30_000,  # one quote left open, then escaped quotes: read once
        '"' * 60_000,
        'a"b' * 20_000,
        '"\\' * 30_000,
    ],
    ids=["open-escaped", "quotes", "alternating", "backslashes"],
)
def test_an_adversarial_accept_is_read_in_one_pass(header: str) -> None:
    """Each quote used to rescan to the end of the header: 64 KB took minutes. The
    elements still cover the whole header, and the endpoint refuses one this long."""
    from stepup.integrations.views import _LIST_ELEMENT

    assert "".join(_LIST_ELEMENT.findall(header)).replace(",", "") == header.replace(",", "")
    assert tenant_accept_ok("application/vnd.api+json, " + header) is False


@pytest.mark.parametrize(
    ("accept", "ok"),
    [
        (None, True),
        ("", True),
        ("*/*", True),
        ("application/json", True),
        ("application/vnd.api+json", True),
        ('application/vnd.api+json; profile="https://example.com/p"', True),
        ("application/vnd.api+json;q=0.9", True),
        ("application/vnd.api+json; charset=utf-8, application/vnd.api+json", True),
        # JSON:API 1.1: every instance carries a parameter other than profile -> 406.
        ("application/vnd.api+json; charset=utf-8", False),
        ("application/vnd.api+json; version=1, */*", False),
        ('application/vnd.api+json; ext="https://jsonapi.org/ext/atomic"', False),
        ("application/vnd.api+json; charset=utf-8, application/vnd.api+json; v=2", False),
        ("application/vnd.api+json; =broken", False),
        # RFC 9110 section 5.6.4: a comma inside a quoted string does not end the element.
        ('application/vnd.api+json; profile="https://a.example/x,y"', True),
        ('application/vnd.api+json; profile="https://a.example/x https://b.example/,"', True),
        ('application/vnd.api+json; ext="https://a.example/x,y"', False),
        ('text/html;a="x,application/vnd.api+json", application/vnd.api+json; ext=e', False),
        # RFC 9110 section 5.6.6: an empty parameter (a ";" with nothing after it) is allowed.
        ("application/vnd.api+json;", True),
        ("application/vnd.api+json; ;profile=p;", True),
        ("application/vnd.api+json; charset=utf-8;", False),
        # RFC 9110 section 12.4.2: a weight of 0 means "not acceptable".
        ("application/vnd.api+json;q=0", False),
        ("application/vnd.api+json; q=0.000, */*", False),
        ("application/vnd.api+json;q=0, application/vnd.api+json;profile=p", True),
        ("application/vnd.api+json;q=0.001", True),
    ],
)
def test_tenant_accept_headers(accept: str | None, ok: bool) -> None:
    assert tenant_accept_ok(accept) is ok
    refusal = tenant_request_refusal(True, "application/vnd.api+json", accept=accept)
    if ok:
        assert refusal is None
    else:
        assert refusal is not None
        assert refusal.status == 406
        assert json.loads(refusal.body)["errors"][0]["code"] == "not_acceptable"


@pytest.mark.parametrize(
    ("content_type", "ok"),
    [
        ("application/vnd.api+json", True),
        ("application/json", True),
        ("application/json; charset=utf-8", True),
        ('application/vnd.api+json; profile="https://example.com/p"', True),
        # RFC 9110 section 5.6.6: parameters = *( OWS ";" OWS [ parameter ] ).
        ("application/vnd.api+json;", True),
        ("application/vnd.api+json; ", True),
        ("application/vnd.api+json;;", True),
        ("application/json; charset=utf-8;", True),
        ("application/vnd.api+json; ;profile=p", True),
        ("application/vnd.api+json; charset=utf-8;", False),
        ("application/vnd.api+json;=x", False),
        ("application/json; charset=latin-1;", False),
        ("text/plain;", False),
    ],
)
def test_tenant_content_types(content_type: str, ok: bool) -> None:
    refusal = tenant_request_refusal(True, content_type)
    if ok:
        assert refusal is None
    else:
        assert refusal is not None
        assert refusal.status == 415


@given(st.integers(min_value=1, max_value=3000), st.sampled_from([";", "; ", ";  ", ";a=b "]))
def test_tenant_media_type_parameters_match_in_linear_time(count: int, piece: str) -> None:
    # A header of many (empty) parameters ending in a byte no rule admits: refused, and
    # matched without trying every way to split the spaces between the repetitions.
    assert tenant_request_refusal(True, "application/json" + piece * count + "\x00") is not None


def _one(subject: object) -> bool:
    return True


def _two(subject: object, user_id: str) -> bool:
    return True


def _undecorated_wrapper(*args: object, **kwargs: object) -> bool:
    """A decorator's wrapper without functools.wraps: it hides the one-argument hook."""
    return _one(*args, **kwargs)  # type: ignore[arg-type]


def _with_default(subject: object, tenant: str | None = None) -> bool:
    return True


class _CallableTwo:
    def __call__(self, subject: object, user_id: str) -> bool:
        return True


async def _async_two(subject: object, user_id: str) -> bool:
    return True


@pytest.mark.parametrize(
    ("hook", "given"),
    [
        (_one, 1),
        (lambda subject: True, 1),
        (_undecorated_wrapper, 1),  # only a declared second parameter counts
        (_with_default, 2),  # user_id=None is named: the hook must be told the user
        (functools.partial(_two, "someone"), 1),
        (print, 1),  # no readable signature: the documented one-argument form
        (_two, 2),
        (lambda subject, user_id: True, 2),
        (functools.wraps(_two)(lambda *args: _two(*args)), 2),  # a wrapper that says so
        (_CallableTwo(), 2),
        (_async_two, 2),
    ],
)
def test_the_full_access_hook_gets_the_user_only_when_it_asks_for_it(hook: Any, given: int) -> None:
    from stepup.integrations.views import full_access_arguments

    arguments = full_access_arguments(hook, "alice-subject", "bob")
    assert arguments == ("alice-subject", "bob")[:given]
