"""RFC 6750 section 3: the ``Bearer`` scheme "MUST be followed by one or more auth-param
values", so a request without credentials gets ``Bearer realm="..."`` (the app's realm,
``BearerGuard(..., realm=...)``; ``"api"`` unless set), not a bare ``Bearer``; a challenge
with an ``error`` names the token sent and carries no realm. And the JSON body of a
step-up answer asks exactly what its challenge asks: ``acr_values`` and ``max_age`` each
only when the header has it (a recent token too weak in level got ``"max_age": 0`` next
to a header without one)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from flask import Flask
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api.tokens_support import T0, guard, parse_challenge, sign
from stepup.errors import ConfigurationError
from stepup.integrations.bearer import BearerGuard, token_decision_response
from stepup.integrations.fastapi import require_token
from stepup.integrations.flask.bearer import bearer_required
from stepup.integrations.http import (
    BEARER_REALM,
    HttpResponse,
    RequestInfo,
    authentication_required,
    bearer_credentials,
    decision_response,
    step_up_challenge,
    token_required,
)
from stepup.integrations.starlette.bearer import requires_token
from stepup.policy import Sensitivity
from stepup.reauth import ReauthRequired
from stepup.testing import SettableClock
from stepup.tokens import AccessToken
from stepup.twofactor import Channel

NO_CREDENTIALS = ["", "Basic YWxpY2U6c2VjcmV0", 'Digest username="a", realm="x", nonce="n"']


def _request(authorization: str = "", path: str = "/w/prod") -> RequestInfo:
    return RequestInfo("DELETE", path, authorization=authorization)


def _with_realm(protect: BearerGuard, realm: str) -> BearerGuard:
    return BearerGuard(protect.reauth, protect.tokens, realm=realm)


# A request without credentials: Bearer realm="..." ----------------------------------


@pytest.mark.parametrize("authorization", NO_CREDENTIALS)
def test_no_credentials_is_a_challenge_with_the_default_realm(authorization: str) -> None:
    assert BEARER_REALM == "api"
    answer = guard(SettableClock(T0)).check(_request(authorization), "workspace.delete")
    assert isinstance(answer, HttpResponse)
    assert (answer.status, answer.headers["WWW-Authenticate"]) == (401, 'Bearer realm="api"')
    assert json.loads(answer.body)["error"] == "authentication_required"
    alone = bearer_credentials(_request(authorization, "/w?access_token=abc"))
    assert isinstance(alone, HttpResponse)
    assert alone.headers["WWW-Authenticate"] == 'Bearer realm="api"'


def test_the_app_names_its_realm() -> None:
    protect = _with_realm(guard(SettableClock(T0)), 'payments "eu" \\ v2')
    assert protect.realm == 'payments "eu" \\ v2'
    answer = protect.check(_request(), "workspace.delete")
    assert isinstance(answer, HttpResponse)
    header = answer.headers["WWW-Authenticate"]
    assert header == 'Bearer realm="payments \\"eu\\" \\\\ v2"'
    assert parse_challenge(header) == ("Bearer", {"realm": 'payments "eu" \\ v2'})
    assert token_required(_request(), realm="billing").headers["WWW-Authenticate"] == (
        'Bearer realm="billing"'
    )


@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1))
def test_any_printable_realm_round_trips(realm: str) -> None:
    answer = token_required(_request(), realm=realm)
    assert parse_challenge(answer.headers["WWW-Authenticate"]) == ("Bearer", {"realm": realm})


@pytest.mark.parametrize(
    "realm", ["", "a\r\nSet-Cookie: x=1", "a\nb", "\x00", "\x7f", "tab\there", "é", 7, None]
)
def test_a_realm_that_cannot_be_sent_is_refused_at_construction(realm: Any) -> None:
    protect = guard(SettableClock(T0))
    with pytest.raises(ConfigurationError, match="realm"):
        BearerGuard(protect.reauth, protect.tokens, realm=realm)


def test_a_challenge_with_an_error_carries_no_realm() -> None:
    """The one rule: the realm says what to authenticate to, on the answer to a request
    that sent nothing; an error refers to the credentials that were sent."""
    protect = _with_realm(guard(SettableClock(T0)), "billing")
    for authorization in (
        "Bearer a b",
        "Bearer x.y.z",
        f"Bearer {sign(acr='urn:pwd', amr=['pwd'])}",
    ):
        answer = protect.check(_request(authorization), "workspace.delete")
        assert isinstance(answer, HttpResponse)
        params = parse_challenge(answer.headers["WWW-Authenticate"])[1]
        assert "error" in params
        assert "realm" not in params
    scoped = protect.check(_request(f"Bearer {sign()}"), "workspace.delete", scope="admin")
    assert isinstance(scoped, HttpResponse)
    assert "realm" not in parse_challenge(scoped.headers["WWW-Authenticate"])[1]


def test_a_sessions_bearer_client_nobody_signed_in_to_gets_the_realm_too() -> None:
    answer = authentication_required(_request("Bearer abc"))
    assert (answer.status, answer.headers["WWW-Authenticate"]) == (401, 'Bearer realm="api"')


def _frameworks(protect: BearerGuard) -> dict[str, Any]:
    """``send(token or None)`` → (status, lower-cased headers, JSON body) per framework,
    the body of FastAPI's refusals unwrapped from its ``detail``."""
    flask = Flask(__name__)

    @flask.delete("/w/<name>")
    @bearer_required(protect, "workspace.delete")
    def flask_delete(name: str) -> dict[str, str]:
        return {"deleted": name}

    @requires_token(protect, "workspace.delete")
    async def starlette_delete(request: Request) -> Response:
        return JSONResponse({"deleted": request.path_params["name"]})

    starlette = Starlette(routes=[Route("/w/{name}", starlette_delete, methods=["DELETE"])])
    fastapi = FastAPI()
    dependency = Depends(require_token(protect, "workspace.delete"))

    @fastapi.delete("/w/{name}")
    async def fastapi_delete(name: str, token: AccessToken = dependency) -> dict[str, str]:
        return {"deleted": name}

    flask_client = flask.test_client()
    starlette_client, fastapi_client = TestClient(starlette), TestClient(fastapi)

    def headers(token: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"} if token is not None else {}

    def via_flask(token: str | None) -> tuple[int, dict[str, str], Any]:
        answer = flask_client.delete("/w/prod", headers=headers(token))
        return answer.status_code, {k.lower(): v for k, v in answer.headers}, answer.json

    def via_starlette(token: str | None) -> tuple[int, dict[str, str], Any]:
        answer = starlette_client.delete("/w/prod", headers=headers(token))
        return answer.status_code, dict(answer.headers), answer.json()

    def via_fastapi(token: str | None) -> tuple[int, dict[str, str], Any]:
        answer = fastapi_client.delete("/w/prod", headers=headers(token))
        body = answer.json()
        return answer.status_code, dict(answer.headers), body.get("detail", body)

    return {"flask": via_flask, "starlette": via_starlette, "fastapi": via_fastapi}


@pytest.mark.parametrize("framework", ["flask", "starlette", "fastapi"])
def test_every_framework_sends_the_realm(framework: str) -> None:
    """(Starlette and FastAPI with the async guard; Django: its decorator hands over the
    same guard's answer, tests/integrations/django/test_bearer.py.)"""
    clock = SettableClock(T0)
    protect = guard(clock, asynchronous=framework != "flask")
    send = _frameworks(_with_realm(protect, "billing"))[framework]
    status, headers, _ = send(None)
    assert (status, headers["www-authenticate"]) == (401, 'Bearer realm="billing"')
    send = _frameworks(protect)[framework]
    assert send(None)[1]["www-authenticate"] == 'Bearer realm="api"'


# The body asks what the challenge asks ------------------------------------------------


def _asked(header: str) -> dict[str, Any]:
    """The challenge's acr_values and max_age, as the JSON body carries them."""
    params = parse_challenge(header)[1]
    asked: dict[str, Any] = {}
    if "acr_values" in params:
        asked["acr_values"] = params["acr_values"].split(" ")
    if "max_age" in params:
        asked["max_age"] = int(params["max_age"])
    return asked


def _in_body(body: dict[str, Any]) -> dict[str, Any]:
    return {name: body[name] for name in ("acr_values", "max_age") if name in body}


@pytest.mark.parametrize("framework", ["flask", "starlette", "fastapi"])
def test_a_recent_token_too_weak_in_level_gets_no_max_age_in_the_body(framework: str) -> None:
    protect = guard(SettableClock(T0), asynchronous=framework != "flask")
    send = _frameworks(protect)[framework]
    status, headers, body = send(sign(acr="urn:pwd", amr=["pwd"]))
    assert status == 401
    assert _asked(headers["www-authenticate"]) == {"acr_values": ["urn:mfa"]}
    assert "max_age" not in body
    assert (body["level"], body["acr_values"]) == ("mfa", ["urn:mfa"])
    status, headers, body = send(sign(auth_time=T0 - 301))  # stale, its level met
    assert _in_body(body) == _asked(headers["www-authenticate"])
    assert _in_body(body) == {"acr_values": ["urn:mfa"], "max_age": 300}


DECISIONS = [
    # (level, acr_values, stale): every shape a challenge takes
    ("mfa", ("urn:mfa",), False),  # recent, a level missing: acr_values only
    ("mfa", ("urn:phr", "urn:mfa"), True),  # stale, a level: both
    ("", (), True),  # stale, no level: max_age (the lifetime)
    ("", (), False),  # recent, methods no acr accounts for: max_age="0"
    ("mfa", (), False),  # a level that maps to no acr: max_age="0", no acr_values
]


@pytest.mark.parametrize(("level", "acr_values", "stale"), DECISIONS)
def test_the_body_carries_exactly_the_challenges_parameters(
    level: str, acr_values: tuple[str, ...], stale: bool
) -> None:
    decision = ReauthRequired(
        "workspace.delete",
        Sensitivity.CRITICAL,
        ("pwd", "otp"),
        300.0,
        T0 - 30.0,
        level=level,
        acr_values=acr_values,
        stale=stale,
        channel=Channel.API,
    )
    header = step_up_challenge(decision)
    bearer = _request("Bearer abc")
    token_answer = token_decision_response(decision, bearer)
    session_answer = decision_response(decision, bearer, reauth_url="/stepup/reauth")
    for answer in (token_answer, session_answer):
        assert answer is not None
        assert answer.headers["WWW-Authenticate"] == header
        body = json.loads(answer.body)
        assert _in_body(body) == _asked(header)
        assert ("level" in body) is bool(level)
    # a session's JSON client (no challenge) keeps the rule's lifetime and level
    plain = RequestInfo("DELETE", "/w/prod", accept="application/json")
    answer = decision_response(decision, plain, reauth_url="/stepup/reauth")
    assert answer is not None
    body = json.loads(answer.body)
    assert body["max_age"] == 300
    assert ("acr_values" in body) is bool(level)
