"""Step-up for APIs: validating a JWT access token and deciding, against bare signature
verification.

stepup's side is what a guarded API does per request: ``AccessTokenValidator.validate``
(header ``typ`` and ``alg`` checks, key selection from the cached JWKS, the RS256
signature, issuer, audience, ``exp``/``iat``/``nbf``, reading ``auth_time``/``acr``/
``amr``) followed by ``Reauth.check_token`` for a rule that asks for a level of
assurance. The peer is joserfc's ``jws.deserialize_compact`` with the key in hand: the
signature check alone, which every validation has to pay. Target: at most 1.5x. Every
decision is checked after the run (allowed, by a fresh token of the right level).

    .venv/bin/python benchmarks/bench_tokens.py [--quick] [--markdown]
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import scale
from harness import compare
from joserfc import jws
from joserfc.jwk import RSAKey
from report import Row, Target, cli

from stepup.adapters.idp.oidc import AccessTokenValidator
from stepup.adapters.storage.memory import MemoryStore
from stepup.assurance import Level, Levels
from stepup.policy import Policy, Rule, Sensitivity
from stepup.reauth import Allowed, AllowReason, Reauth

ISSUER, AUDIENCE = "https://idp.example", "https://api.example"
KEY = RSAKey.generate_key(2048, parameters={"kid": "bench-1", "use": "sig", "alg": "RS256"})
LEVELS = Levels(
    (
        Level("password", acr=("urn:pwd",), methods=(("pwd",),)),
        Level("mfa", acr=("urn:mfa",), methods=(("pwd", "otp"),)),
    )
)
POLICY = Policy(
    {"workspace.delete": Rule(Sensitivity.CRITICAL, lifetime=300.0, level="mfa")}, levels=LEVELS
)


def _token(now: float) -> str:
    claims = {
        "iss": ISSUER,
        "sub": "alice",
        "aud": AUDIENCE,
        "exp": int(now) + 3600,
        "iat": int(now) - 1,
        "auth_time": int(now) - 30,
        "acr": "urn:mfa",
        "amr": ["pwd", "otp"],
        "client_id": "app",
        "jti": "bench",
    }
    header = {"alg": "RS256", "typ": "at+jwt", "kid": "bench-1"}
    return jws.serialize_compact(header, json.dumps(claims).encode(), KEY)


def rows(quick: bool) -> list[Row]:
    size = scale(quick, rounds=20, inner=300)
    now = time.time()
    token = _token(now)
    public = RSAKey.import_key(KEY.as_dict(private=False))
    validator = AccessTokenValidator(
        issuer=ISSUER,
        audience=AUDIENCE,
        fetch_jwks=lambda: {"keys": [public.as_dict()]},
    )
    reauth = Reauth(MemoryStore(), POLICY)
    decisions: list[object] = []
    verified: list[object] = []

    def ours() -> None:
        decisions.append(reauth.check_token(validator.validate(token), "workspace.delete"))

    def theirs() -> None:
        verified.append(jws.deserialize_compact(token, public, algorithms=["RS256"]))

    result = compare(
        "validate + check_token (RS256)",
        ("stepup", ours),
        ("joserfc jws.deserialize_compact", theirs),
        rounds=size.rounds,
        inner=size.inner,
        warmup=size.warmup,
    )
    assert decisions, "the stepup side never ran"
    assert verified, "the joserfc side never ran"
    for decision in decisions:
        assert isinstance(decision, Allowed), decision
        assert decision.reason is AllowReason.FRESH_GRANT, decision
    return [
        Row.compared(
            "Bearer access token, step-up decision",
            result.label,
            result,
            target=Target("at_most", 1.5),
        )
    ]


def main(argv: Sequence[str] | None = None) -> int:
    return cli(__doc__.splitlines()[0], rows, argv)


if __name__ == "__main__":
    sys.exit(main())
