"""A bearer client's 401 ``reauth_required`` says how to re-authenticate with the members
every 401 ``reauth_required`` carries, built once, by
``stepup.integrations.http.reauth_members(decision, bearer=True)``: an access token's
(``token_decision_response``, what ``BearerGuard`` answers) lacked ``sensitivity``,
``methods``, ``alternatives`` and ``enrol``, which a session's bearer client got from
the guard's own builder. Besides them the body carries its ``error``, ``title`` and
``action`` (a token's client has no re-auth page: no ``reauth_url``), and it asks what
its RFC 9470 challenge asks, no more (tests/api/test_review3_bearer_challenges.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.tokens_support import T0, parse_challenge
from stepup.adapters.storage.memory import MemoryStore
from stepup.assurance import Level, Levels
from stepup.integrations.bearer import token_decision_response
from stepup.integrations.http import RequestInfo, decision_response, reauth_members
from stepup.policy import Policy, Rule, Sensitivity
from stepup.reauth import Reauth, ReauthRequired
from stepup.testing import SettableClock
from stepup.tokens import AccessToken
from stepup.twofactor import Channel

BEARER = RequestInfo("DELETE", "/w/prod", authorization="Bearer abc")
OWN = {"error", "title", "action"}
LEVELS = Levels(
    (
        Level("password", acr=("urn:pwd",), methods=(("pwd",),)),
        Level("mfa", acr=("urn:mfa", "urn:mfa:strong"), methods=(("pwd", "otp"),)),
        Level("top", acr=("urn:top",)),
    )
)


def _body(answer: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(answer.body)
    return body


def _asked(header: str) -> dict[str, Any]:
    params = parse_challenge(header)[1]
    asked: dict[str, Any] = {}
    if "acr_values" in params:
        asked["acr_values"] = params["acr_values"].split(" ")
    if "max_age" in params:
        asked["max_age"] = int(params["max_age"])
    return asked


def assert_told_by_the_one_builder(decision: ReauthRequired) -> None:
    answer = token_decision_response(decision, BEARER)
    assert answer is not None
    assert answer.status == 401
    body = _body(answer)
    assert (body["error"], body["action"]) == ("reauth_required", decision.action)
    assert {k: v for k, v in body.items() if k not in OWN} == reauth_members(decision, bearer=True)
    # The header and the body ask the same.
    header = answer.headers["WWW-Authenticate"]
    assert {k: body[k] for k in ("acr_values", "max_age") if k in body} == _asked(header)
    # A session's bearer client gets the same, and the page it could open.
    session = decision_response(decision, BEARER, reauth_url="/stepup/reauth")
    assert session is not None
    assert session.headers["WWW-Authenticate"] == header
    told = _body(session)
    assert told.pop("reauth_url").startswith("/stepup/reauth?")
    assert told == body


methods = st.sampled_from([("pwd",), ("pwd", "otp"), ("phr",), ("oidc",), ("hwk",)])


@settings(max_examples=200, deadline=None)
@given(
    sensitivity=st.sampled_from([Sensitivity.SENSITIVE, Sensitivity.CRITICAL]),
    offered=methods,
    alternatives=st.lists(methods, min_size=1, max_size=3, unique=True),
    lifetime=st.floats(min_value=1, max_value=86_400),
    last=st.none() | st.floats(min_value=0, max_value=T0),
    level=st.sampled_from(["", "mfa"]),
    acr_values=st.lists(st.sampled_from(["urn:mfa", "urn:mfa:strong"]), max_size=2, unique=True),
    stale=st.booleans(),
    enrol=st.sampled_from([(), ("otp",), ("phr",)]),
)
def test_any_token_decision_is_told_by_the_one_builder(
    sensitivity: Sensitivity,
    offered: tuple[str, ...],
    alternatives: list[tuple[str, ...]],
    lifetime: float,
    last: float | None,
    level: str,
    acr_values: list[str],
    stale: bool,
    enrol: tuple[str, ...],
) -> None:
    decision = ReauthRequired(
        "workspace.delete",
        sensitivity,
        offered,
        lifetime,
        last,
        alternatives=tuple(alternatives),
        level=level,
        acr_values=tuple(acr_values) if level else (),
        stale=stale,
        enrol=enrol,
        channel=Channel.API,
    )
    assert_told_by_the_one_builder(decision)


RULES = {
    "plain": Rule(Sensitivity.SENSITIVE, lifetime=600.0),
    "second": Rule(Sensitivity.CRITICAL, lifetime=300.0, second_factor=True),
    "mfa": Rule(Sensitivity.CRITICAL, lifetime=300.0, level="mfa"),
    "either": Rule(Sensitivity.SENSITIVE, lifetime=900.0, accept=(("phr",), ("primary", "otp"))),
}
TOKENS = [
    {"acr": "urn:pwd", "amr": ("pwd",), "age": 30.0},
    {"acr": "urn:pwd", "amr": ("pwd",), "age": 5000.0},
    {"acr": "urn:mfa", "amr": ("pwd", "otp"), "age": 5000.0},
    {"acr": "", "amr": (), "age": 30.0},
    {"acr": "", "amr": ("hwk",), "age": 30.0},
]


@pytest.mark.parametrize("action", sorted(RULES))
@pytest.mark.parametrize("token", TOKENS, ids=lambda t: f"{t['acr'] or '-'}:{t['age']:.0f}")
def test_the_cores_token_decisions_are_told_by_the_one_builder(
    action: str, token: dict[str, Any]
) -> None:
    clock = SettableClock(T0)
    reauth = Reauth(MemoryStore(), Policy(RULES, levels=LEVELS), clock=clock)
    access = AccessToken(
        subject="alice",
        issuer="https://idp.example",
        audience=("https://api.example",),
        expires_at=T0 + 600,
        auth_time=T0 - token["age"],
        acr=token["acr"] or None,
        amr=token["amr"],
    )
    decision = reauth.check_token(access, action)
    if not isinstance(decision, ReauthRequired):
        return
    answer = token_decision_response(decision, BEARER)
    assert answer is not None
    body = _body(answer)
    # What the old builder left out.
    assert body["sensitivity"] == decision.sensitivity.value
    assert body["methods"] == list(decision.methods)
    assert body["alternatives"] == [list(a) for a in decision.alternatives]
    assert_told_by_the_one_builder(decision)
