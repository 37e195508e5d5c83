"""Signed access tokens and a guard for the framework tests (keys made here)."""

from __future__ import annotations

import json
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
