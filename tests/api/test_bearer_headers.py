"""The HTTP side of a bearer-protected endpoint against a hostile client: how the
``Authorization`` header is read (RFC 6750 section 2, RFC 9110 section 11), and the
exact grammar of every ``WWW-Authenticate`` answer (RFC 6750 section 3, RFC 9470
section 3): which error, which status, values quoted and escaped, nothing injected."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from flask import Flask, g
from hypothesis import example, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api.tokens_support import T0, expect_header_answers, guard, parse_challenge, sign
from stepup.errors import ConfigurationError
from stepup.integrations.bearer import BearerGuard, required_scope
from stepup.integrations.django.bearer import bearer_required as django_bearer_required
from stepup.integrations.fastapi import require_token
from stepup.integrations.flask.bearer import bearer_required
from stepup.integrations.http import (
    HttpResponse,
    RequestInfo,
    bearer_credentials,
    insufficient_scope,
    invalid_token,
    quoted,
    step_up_challenge,
    token_required,
)
from stepup.integrations.starlette.bearer import requires_token
from stepup.policy import Sensitivity
from stepup.reauth import ReauthRequired
from stepup.testing import SettableClock
from stepup.tokens import AccessToken, InvalidTokenError, TokenFault


def info(authorization: str = "", path: str = "/api") -> RequestInfo:
    return RequestInfo("GET", path, authorization=authorization)


# reading the Authorization header ------------------------------------------------------


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
@pytest.mark.parametrize("spaces", [" ", "  ", "   "])
def test_the_scheme_in_any_case_and_one_or_more_spaces(scheme: str, spaces: str) -> None:
    assert bearer_credentials(info(f"{scheme}{spaces}abc.DEF-_~+/=")) == "abc.DEF-_~+/="


@pytest.mark.parametrize(
    "header", ["", "Basic YWxpY2U6c2VjcmV0", "Digest x=1", "Token abc", "bearertoken"]
)
def test_no_bearer_credentials_is_a_challenge_without_an_error(header: str) -> None:
    """RFC 6750 section 3.1: a request without (bearer) credentials gets no error code."""
    answer = bearer_credentials(info(header))
    assert isinstance(answer, HttpResponse)
    assert (answer.status, answer.headers["WWW-Authenticate"]) == (401, 'Bearer realm="api"')


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer ",
        "Bearer    ",
        'Bearer "abc"',
        "Bearer abc def",
        "Bearer abc,def",
        "Bearer a=b=c",
        "Bearer =abc",
        "Bearer abc$",
        "Bearer abc\x00",
        "Bearer ab\tc",
        "Bearer ab\u00e9c",
        "Bearer abc, Bearer def",  # two headers, folded by a proxy or WSGI server
        "Basic YWxpY2U6c2VjcmV0, Bearer abc",
        "Bearer abc, Basic YWxpY2U6c2VjcmV0",
    ],
)
def test_malformed_bearer_credentials_are_invalid_request(header: str) -> None:
    answer = bearer_credentials(info(header))
    assert isinstance(answer, HttpResponse)
    assert answer.status == 400
    scheme, params = parse_challenge(answer.headers["WWW-Authenticate"])
    assert (scheme, params["error"]) == ("Bearer", "invalid_request")
    assert json.loads(answer.body)["error"] == "invalid_request"
    assert "abc" not in answer.headers["WWW-Authenticate"]


@pytest.mark.parametrize("size", [16 * 1024 + 100, 1_000_000])
def test_an_oversized_token_is_invalid_unread(size: int) -> None:
    answer = bearer_credentials(info("Bearer " + "a" * size))
    assert isinstance(answer, HttpResponse)
    assert answer.status == 401
    assert parse_challenge(answer.headers["WWW-Authenticate"])[1]["error"] == "invalid_token"
    assert json.loads(answer.body)["reason"] == "malformed"


def test_a_token_in_the_query_string_is_never_read() -> None:
    """RFC 6750 section 2.3 is off: alone it is no credential at all (401), beside a
    header it is a second method (400)."""
    alone = bearer_credentials(info("", "/api?access_token=abc"))
    assert isinstance(alone, HttpResponse)
    assert (alone.status, alone.headers["WWW-Authenticate"]) == (401, 'Bearer realm="api"')
    both = bearer_credentials(info("Bearer abc", "/api?x=1&access_token=abc"))
    assert isinstance(both, HttpResponse)
    assert both.status == 400
    assert bearer_credentials(info("Bearer abc", "/api?not_access_token=1")) == "abc"
    assert bearer_credentials(info("Bearer abc", "/api?q=access_token")) == "abc"


@settings(max_examples=300)
@example(value=" 0", scheme="Bearer")
@given(
    value=st.text(max_size=60),
    scheme=st.sampled_from(["Bearer ", "bearer ", "Basic ", "", "Bearer"]),
)
def test_any_header_is_a_token_or_a_proper_refusal(value: str, scheme: str) -> None:
    header = scheme + value  # "Bearer" + " 0" is the header "Bearer 0" too
    answer = bearer_credentials(info(header))
    if isinstance(answer, str):
        assert header[:7].lower() == "bearer "
        assert re.fullmatch(r"[A-Za-z0-9\-._~+/]+=*", answer)
        assert answer == header[7:].strip(" \t")
        return
    assert answer.status in (400, 401)
    scheme_name, params = parse_challenge(answer.headers["WWW-Authenticate"])
    assert scheme_name == "Bearer"
    assert params.get("error") == ("invalid_request" if answer.status == 400 else None)


# quoting -----------------------------------------------------------------------------


@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E)))
def test_printable_values_round_trip_through_quoting(value: str) -> None:
    _, params = parse_challenge(f"Bearer x={quoted(value)}")
    assert params["x"] == value


@pytest.mark.parametrize(
    "value", ["a\r\nSet-Cookie: x=1", "a\nb", "a\rb", "\x00", "\x7f", "é", "\u2028"]
)
def test_control_and_non_ascii_characters_are_never_sent(value: str) -> None:
    with pytest.raises(ConfigurationError):
        quoted(value)


@pytest.mark.parametrize(
    "acr_values",
    [("urn:mfa",), ('urn:"quoted"',), ("back\\slash",), ("urn:a", "urn:b"), ('x",error="none',)],
)
def test_the_step_up_challenge_grammar(acr_values: tuple[str, ...]) -> None:
    """Whatever an acr value holds (Levels refuse quotes and backslashes, but a
    decision can be built by anyone), the challenge parses back to exactly it."""
    for stale in (False, True):
        decision = ReauthRequired(
            "pay",
            Sensitivity.SENSITIVE,
            ("pwd",),
            300.0,
            None,
            level="mfa",
            acr_values=acr_values,
            stale=stale,
        )
        scheme, params = parse_challenge(step_up_challenge(decision))
        assert scheme == "Bearer"
        assert params["error"] == "insufficient_user_authentication"
        assert params["acr_values"].split(" ") == list(acr_values)
        assert ("max_age" in params) is stale
        if stale:
            assert params["max_age"] == "300"


def test_an_injected_acr_value_never_reaches_the_header() -> None:
    decision = ReauthRequired(
        "pay",
        Sensitivity.SENSITIVE,
        ("pwd",),
        300.0,
        None,
        level="mfa",
        acr_values=("urn:mfa\r\nSet-Cookie: session=evil",),
        stale=False,
    )
    with pytest.raises(ConfigurationError):
        step_up_challenge(decision)


def test_every_answer_parses() -> None:
    request = info("Bearer abc")
    for fault in TokenFault:
        answer = invalid_token(InvalidTokenError(fault), request)
        scheme, params = parse_challenge(answer.headers["WWW-Authenticate"])
        assert (answer.status, scheme, params["error"]) == (401, "Bearer", "invalid_token")
        assert json.loads(answer.body)["reason"] == fault.value
    assert parse_challenge(token_required(request).headers["WWW-Authenticate"]) == (
        "Bearer",
        {"realm": "api"},
    )
    scope = insufficient_scope(request, ("api:write", "admin"))
    assert scope.status == 403
    assert parse_challenge(scope.headers["WWW-Authenticate"])[1]["scope"] == "api:write admin"


@pytest.mark.parametrize("scope", ["a b", ["a", "b"], ("a",), "", ()])
def test_required_scope_reads_strings_and_lists(scope: Any) -> None:
    assert required_scope(scope) == tuple(scope.split() if isinstance(scope, str) else scope)


@pytest.mark.parametrize("scope", ["a  b", " a", 'a"', "a\\b", ["a b"], [""], ["é"], [1]])
def test_required_scope_refuses_what_is_no_scope_token(scope: Any) -> None:
    with pytest.raises(ConfigurationError):
        required_scope(scope)


# the guard: scope, then step-up -----------------------------------------------------


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(T0)


def test_scope_is_checked_before_the_step_up(clock: SettableClock) -> None:
    protect = guard(clock)
    request = info(f"Bearer {sign(scope='api:read api:write')}")
    assert isinstance(protect.check(request, "workspace.delete", scope="api:write"), AccessToken)
    missing = protect.check(request, "workspace.delete", scope=["api:write", "admin"])
    assert isinstance(missing, HttpResponse)
    assert missing.status == 403
    assert parse_challenge(missing.headers["WWW-Authenticate"])[1] == {
        "error": "insufficient_scope",
        "error_description": "The access token lacks a required scope",
        "scope": "api:write admin",
    }
    # a token both too weak and without the scope: the scope is what it lacks first
    weak = info(f"Bearer {sign(acr='urn:pwd', amr=['pwd'])}")
    assert protect.check(weak, "workspace.delete", scope="admin").status == 403  # type: ignore[union-attr]
    stale = protect.check(weak, "workspace.delete")
    assert isinstance(stale, HttpResponse)
    assert (stale.status, parse_challenge(stale.headers["WWW-Authenticate"])[1]["error"]) == (
        401,
        "insufficient_user_authentication",
    )


async def test_scope_with_acheck(clock: SettableClock) -> None:
    protect = guard(clock, asynchronous=True)
    answer = await protect.acheck(info(f"Bearer {sign()}"), "workspace.read", scope="admin")
    assert isinstance(answer, HttpResponse)
    assert answer.status == 403


# each framework ------------------------------------------------------------------------


def test_flask(clock: SettableClock) -> None:
    app = Flask(__name__)

    @app.post("/api")
    @bearer_required(guard(clock), "workspace.delete", scope="api:write")
    def delete() -> dict[str, str]:
        return {"by": g.stepup_token.subject}

    client = app.test_client()

    def send(headers: list[tuple[str, str]], query: str) -> tuple[int, dict[str, str]]:
        response = client.post("/api" + query, headers=headers)
        return response.status_code, {k.lower(): v for k, v in response.headers}

    expect_header_answers(send)


def test_starlette(clock: SettableClock) -> None:
    @requires_token(guard(clock, asynchronous=True), "workspace.delete", scope=["api:write"])
    async def delete(request: Request) -> Response:
        return JSONResponse({"by": request.state.stepup_token.subject})

    with TestClient(Starlette(routes=[Route("/api", delete, methods=["POST"])])) as client:

        def send(headers: list[tuple[str, str]], query: str) -> tuple[int, dict[str, str]]:
            response = client.post("/api" + query, headers=headers)
            return response.status_code, dict(response.headers)

        expect_header_answers(send)


def test_fastapi(clock: SettableClock) -> None:
    app = FastAPI()
    needs = Depends(
        require_token(guard(clock, asynchronous=True), "workspace.delete", scope="api:write")
    )

    @app.post("/api")
    async def delete(token: AccessToken = needs) -> dict[str, str]:
        return {"by": token.subject}

    with TestClient(app) as client:

        def send(headers: list[tuple[str, str]], query: str) -> tuple[int, dict[str, str]]:
            response = client.post("/api" + query, headers=headers)
            return response.status_code, dict(response.headers)

        expect_header_answers(send)


def test_decorators_check_the_scope_at_import(clock: SettableClock) -> None:
    with pytest.raises(ConfigurationError):
        bearer_required(guard(clock), "workspace.delete", scope='a"b')
    with pytest.raises(ConfigurationError):
        requires_token(guard(clock), "workspace.delete", scope=["a b"])
    with pytest.raises(ConfigurationError):
        require_token(guard(clock), "workspace.delete", scope="\n")
    with pytest.raises(ConfigurationError):
        django_bearer_required(guard(clock), "workspace.delete", scope="é")


def test_a_token_kept_past_its_expiry_decides_nothing(clock: SettableClock) -> None:
    """An AccessToken cached by the application (or made by a custom token source)
    outlives its ``exp`` only by the most leeway a validator allows, whatever the rule."""
    protect = guard(clock)
    request = info(f"Bearer {sign()}")
    token = protect.check(request, "workspace.read")
    assert isinstance(token, AccessToken)
    assert protect.reauth.check_token(token, "workspace.read").ok
    clock.advance(600 + 299)
    assert protect.reauth.check_token(token, "workspace.read").ok
    clock.advance(1)
    for action in ("workspace.read", "workspace.delete"):
        with pytest.raises(InvalidTokenError) as caught:
            protect.reauth.check_token(token, action)
        assert caught.value.fault is TokenFault.EXPIRED
    forever = AccessToken("https://idp.example", "alice", ("x",), float("nan"), auth_time=T0)
    with pytest.raises(InvalidTokenError):
        protect.reauth.check_token(forever, "workspace.read")


def test_the_guard_answers_a_token_expired_since_it_was_read(clock: SettableClock) -> None:
    class Stale:
        def validate(self, raw: str) -> AccessToken:
            return AccessToken("https://idp.example", "alice", ("x",), T0 - 3600, auth_time=T0)

    answer = BearerGuard(guard(clock).reauth, Stale()).check(info("Bearer abc"), "workspace.read")
    assert isinstance(answer, HttpResponse)
    assert (answer.status, parse_challenge(answer.headers["WWW-Authenticate"])[1]["error"]) == (
        401,
        "invalid_token",
    )


def test_the_request_never_shows_its_credentials() -> None:
    request = info("Bearer secret-token-value")
    assert "secret-token-value" not in repr(request)
    assert "secret-token-value" not in str(request)
    assert bearer_credentials(request) == "secret-token-value"
