"""Signed access tokens and a guard for the framework tests (keys made here)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from joserfc import jws
from joserfc.jwk import RSAKey

from stepup.adapters.idp.oidc import AccessTokenValidator
from stepup.adapters.storage.memory import MemoryStore
from stepup.assurance import Level, Levels
from stepup.integrations.bearer import BearerGuard
from stepup.policy import Policy, Rule, Sensitivity
from stepup.reauth import AsyncReauth, Reauth
from stepup.testing import SettableClock

T0 = 1_700_000_000
ISSUER, AUDIENCE = "https://idp.example", "https://api.example"
KEY = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig", "alg": "RS256"})
LEVELS = Levels(
    (
        Level("password", acr=("urn:pwd",), methods=(("pwd",),)),
        Level("mfa", acr=("urn:mfa",), methods=(("pwd", "otp"),)),
    )
)
POLICY = Policy(
    {
        "workspace.read": Rule(Sensitivity.NONE),
        "workspace.delete": Rule(Sensitivity.CRITICAL, lifetime=300.0, level="mfa"),
    },
    levels=LEVELS,
)


def sign(**changes: Any) -> str:
    payload = {
        "iss": ISSUER,
        "sub": "alice",
        "aud": AUDIENCE,
        "exp": T0 + 600,
        "iat": T0 - 5,
        "auth_time": T0 - 30,
        "acr": "urn:mfa",
        "amr": ["pwd", "otp"],
    }
    payload.update(changes)
    header = {"alg": "RS256", "typ": "at+jwt", "kid": "k1"}
    return jws.serialize_compact(header, json.dumps(payload).encode(), KEY)


def guard(clock: SettableClock, *, asynchronous: bool = False) -> BearerGuard:
    validator = AccessTokenValidator(
        issuer=ISSUER,
        audience=AUDIENCE,
        fetch_jwks=lambda: {"keys": [KEY.as_dict(private=False)]},
        clock=clock,
    )
    reauth_class = AsyncReauth if asynchronous else Reauth
    return BearerGuard(reauth_class(MemoryStore(), POLICY, clock=clock), validator)


LOW_ACR_CHALLENGE = (
    'Bearer error="insufficient_user_authentication", '
    'error_description="A different authentication level is required", acr_values="urn:mfa"'
)


# RFC 9110 section 11: challenge = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_QUOTED = r'"(?:[\t !#-\[\]-~]|\\[\t !-~])*"'
_PARAM = re.compile(rf"({_TOKEN})[ \t]*=[ \t]*({_TOKEN}|{_QUOTED})")


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """A strict reading of one challenge: the scheme and its auth-params (each once,
    quoted values unescaped). Anything else fails the test."""
    assert "\r" not in header
    assert "\n" not in header
    scheme, _, rest = header.partition(" ")
    assert re.fullmatch(_TOKEN, scheme)
    params: dict[str, str] = {}
    position = 0
    while position < len(rest):
        match = _PARAM.match(rest, position)
        assert match is not None, rest[position:]
        name, value = match.group(1).lower(), match.group(2)
        assert name not in params, f"{name} twice"
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        params[name] = value
        position = match.end()
        if position < len(rest):
            assert rest[position : position + 2] == ", ", rest[position:]
            position += 2
    return scheme, params


def expect_header_answers(
    send: Callable[[list[tuple[str, str]], str], tuple[int, dict[str, str]]],
) -> None:
    """The same answers from every framework: ``send(headers, query)`` -> (status, lower-cased headers)."""
    good = sign(scope="api:write")
    assert send([("Authorization", f"Bearer {good}")], "")[0] == 200
    assert send([("Authorization", f"bearer  {good}")], "")[0] == 200
    status, headers = send([("Authorization", f"Bearer {good}"), ("Authorization", "Bearer x")], "")
    assert (status, parse_challenge(headers["www-authenticate"])[1]["error"]) == (
        400,
        "invalid_request",
    )
    assert send([], f"?access_token={good}")[0] == 401
    assert send([("Authorization", f"Bearer {good}")], f"?access_token={good}")[0] == 400
    assert send([("Authorization", f"Bearer {good}!")], "")[0] == 400
    status, headers = send([("Authorization", f"Bearer {sign()}")], "")
    assert (status, parse_challenge(headers["www-authenticate"])[1]["error"]) == (
        403,
        "insufficient_scope",
    )
