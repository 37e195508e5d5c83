"""JWT access tokens (RFC 9068) validated with keys made here: every check, key rotation
with a rate-limited refetch, and the RFC 6750 / RFC 9470 answers."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from joserfc import jws
from joserfc.jwk import ECKey, OctKey, RSAKey

from stepup.adapters.idp.oidc import AccessTokenValidator
from stepup.adapters.storage.memory import MemoryStore
from stepup.assurance import Level, Levels
from stepup.errors import ConfigurationError
from stepup.integrations.bearer import BearerGuard
from stepup.integrations.http import RequestInfo, bearer_token
from stepup.policy import Policy, Rule, Sensitivity
from stepup.reauth import AsyncReauth, Reauth
from stepup.testing import SettableClock
from stepup.tokens import AccessToken, InvalidTokenError, TokenFault, TokenUnavailableError

T0 = 1_700_000_000
ISSUER, AUDIENCE = "https://idp.example", "https://api.example"
KEY = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig", "alg": "RS256"})
OTHER = RSAKey.generate_key(2048, parameters={"kid": "k2", "use": "sig", "alg": "RS256"})
EC = ECKey.generate_key("P-256", parameters={"kid": "e1", "use": "sig"})
LEVELS = Levels(
    (
        Level("password", acr=("urn:pwd",), methods=(("pwd",),)),
        Level("mfa", acr=("urn:mfa",), methods=(("pwd", "otp"),)),
    )
)


def jwks(*keys: Any) -> dict[str, Any]:
    return {"keys": [key.as_dict(private=False) for key in keys]}


def claims(**changes: Any) -> dict[str, Any]:
    values = {
        "iss": ISSUER,
        "sub": "alice",
        "aud": AUDIENCE,
        "exp": T0 + 600,
        "iat": T0 - 5,
        "jti": "j1",
        "client_id": "app",
        "auth_time": T0 - 30,
        "acr": "urn:mfa",
        "amr": ["pwd", "otp"],
        "scope": "api:read",
    }
    values.update(changes)
    return {k: v for k, v in values.items() if v is not None}


def sign(payload: dict[str, Any], key: Any = KEY, **header: Any) -> str:
    """Exactly this header (``None`` leaves a parameter out): no library defaults."""
    head = {"alg": "RS256", "typ": "at+jwt", "kid": key.kid, **header}
    head = {k: v for k, v in head.items() if v is not None}
    data = json.dumps(payload).encode()
    return jws.serialize_compact(head, data, key, algorithms=[head["alg"]])


class Fetcher:
    """The issuer's JWKS endpoint, counting fetches."""

    def __init__(self, *documents: dict[str, Any]) -> None:
        self.documents = list(documents)
        self.calls = 0

    def __call__(self) -> dict[str, Any]:
        self.calls += 1
        if not self.documents:
            raise OSError("down")
        return self.documents[0] if len(self.documents) == 1 else self.documents.pop(0)


def validator(fetch: Any, clock: SettableClock, **kw: Any) -> AccessTokenValidator:
    return AccessTokenValidator(
        issuer=ISSUER, audience=AUDIENCE, fetch_jwks=fetch, clock=clock, **kw
    )


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(T0)


def test_a_good_token_is_read(clock: SettableClock) -> None:
    token = validator(Fetcher(jwks(KEY)), clock).validate(sign(claims()))
    assert token == AccessToken(
        issuer=ISSUER,
        subject="alice",
        audience=(AUDIENCE,),
        expires_at=T0 + 600,
        issued_at=T0 - 5,
        auth_time=T0 - 30,
        acr="urn:mfa",
        amr=("pwd", "otp"),
        client_id="app",
        scope=("api:read",),
        token_id="j1",
    )


@pytest.mark.parametrize(
    ("token", "fault"),
    [
        (lambda: sign(claims(), typ="JWT"), TokenFault.TYPE),
        (lambda: sign(claims(), typ=None), TokenFault.TYPE),
        (lambda: sign(claims(iss="https://evil")), TokenFault.ISSUER),
        (lambda: sign(claims(aud="https://other-api")), TokenFault.AUDIENCE),
        (lambda: sign(claims(aud=["https://other-api"])), TokenFault.AUDIENCE),
        (lambda: sign(claims(exp=T0 - 31)), TokenFault.EXPIRED),
        (lambda: sign(claims(iat=T0 + 31)), TokenFault.ISSUED_AT),
        (lambda: sign(claims(nbf=T0 + 31)), TokenFault.NOT_BEFORE),
        (lambda: sign(claims(iat=None)), TokenFault.MALFORMED),
        (lambda: sign(claims(), OTHER), TokenFault.UNKNOWN_KEY),
        (lambda: sign(claims(), OTHER, kid="k1"), TokenFault.SIGNATURE),
        (lambda: sign(claims(auth_time="yesterday")), TokenFault.MALFORMED),
        (lambda: sign(claims(acr=3)), TokenFault.MALFORMED),
        (lambda: "not.a.jwt", TokenFault.MALFORMED),
        (lambda: "", TokenFault.MALFORMED),
    ],
)
def test_each_check_refuses(token: Any, fault: TokenFault, clock: SettableClock) -> None:
    with pytest.raises(InvalidTokenError) as caught:
        validator(Fetcher(jwks(KEY)), clock).validate(token())
    assert caught.value.fault is fault


def _unsigned(header: dict[str, Any], payload: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part(header)}.{part(payload)}."


def test_alg_none_and_hmac_are_refused(clock: SettableClock) -> None:
    check = validator(Fetcher(jwks(KEY)), clock)
    with pytest.raises(InvalidTokenError) as caught:
        check.validate(_unsigned({"alg": "none", "typ": "at+jwt", "kid": "k1"}, claims()))
    assert caught.value.fault is TokenFault.ALGORITHM
    # HS256 keyed with the public key's bytes: the classic confusion attack
    secret = OctKey.import_key(json.dumps(KEY.as_dict(private=False)).encode())
    hs = sign(claims(), secret, alg="HS256", kid="k1")
    with pytest.raises(InvalidTokenError) as caught:
        check.validate(hs)
    assert caught.value.fault is TokenFault.ALGORITHM
    for unsafe in (["none"], ["HS256"], ["RS256", "HS512"], []):
        with pytest.raises(ConfigurationError):
            validator(Fetcher(jwks(KEY)), clock, algorithms=unsafe)


def test_leeway_is_small_and_on_the_injected_clock(clock: SettableClock) -> None:
    check = validator(Fetcher(jwks(KEY)), clock)
    token = sign(claims(exp=T0 + 10))
    assert check.validate(token).subject == "alice"
    clock.advance(10 + 29)
    assert check.validate(token).subject == "alice"
    clock.advance(1)
    with pytest.raises(InvalidTokenError):
        check.validate(token)


def test_an_unknown_kid_refetches_once_rate_limited(clock: SettableClock) -> None:
    fetch = Fetcher(jwks(KEY), jwks(KEY, OTHER))
    check = validator(fetch, clock, refetch_interval=60)
    check.validate(sign(claims()))
    assert fetch.calls == 1
    clock.advance(61)
    assert check.validate(sign(claims(), OTHER)).subject == "alice"  # rotated in
    assert fetch.calls == 2
    forged = sign(claims(), RSAKey.generate_key(2048, parameters={"kid": "forged"}))
    for _ in range(5):
        with pytest.raises(InvalidTokenError) as caught:
            check.validate(forged)
        assert caught.value.fault is TokenFault.UNKNOWN_KEY
    assert fetch.calls == 2  # no fetch storm
    clock.advance(61)
    with pytest.raises(InvalidTokenError):
        check.validate(forged)
    assert fetch.calls == 3


def test_unreachable_keys_fail_closed(clock: SettableClock) -> None:
    check = validator(Fetcher(), clock)
    with pytest.raises(TokenUnavailableError):
        check.validate(sign(claims()))
    assert "down" not in str(TokenUnavailableError("x"))


def test_ec_keys_work(clock: SettableClock) -> None:
    token = sign(claims(), EC, alg="ES256")
    assert validator(Fetcher(jwks(KEY, EC)), clock).validate(token).subject == "alice"


async def test_async_validation_shares_the_flow(clock: SettableClock) -> None:
    calls = 0

    async def fetch() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        return jwks(KEY)

    check = validator(fetch, clock)
    assert (await check.avalidate(sign(claims()))).acr == "urn:mfa"
    assert calls == 1


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(position=st.integers(min_value=0), flip=st.integers(min_value=1, max_value=255))
def test_any_changed_byte_is_refused(position: int, flip: int, clock: SettableClock) -> None:
    """Mutating any character of a good token never yields a token with other claims."""
    good = sign(claims())
    check = validator(Fetcher(jwks(KEY)), clock)
    index = position % len(good)
    mutated = good[:index] + chr((ord(good[index]) + flip) % 128) + good[index + 1 :]
    try:
        token = check.validate(mutated)
    except (InvalidTokenError, TokenUnavailableError):
        return
    # base64url slack in the last character can leave the bytes equal
    assert token == check.validate(good)


# the answers ---------------------------------------------------------------------------


def guard_for(clock: SettableClock, reauth_class: Any = Reauth) -> BearerGuard:
    rules = {
        "read": Rule(Sensitivity.NONE),
        "pay": Rule(Sensitivity.SENSITIVE, level="mfa"),
        "delete": Rule(Sensitivity.CRITICAL, lifetime=300.0),
    }
    reauth = reauth_class(MemoryStore(), Policy(rules, levels=LEVELS), clock=clock)
    return BearerGuard(reauth, validator(Fetcher(jwks(KEY)), clock))


def request(token: str | None) -> RequestInfo:
    return RequestInfo("POST", "/api", authorization=f"Bearer {token}" if token else "")


def test_the_challenges(clock: SettableClock) -> None:
    guard = guard_for(clock)
    assert isinstance(guard.check(request(sign(claims())), "pay"), AccessToken)
    none = guard.check(request(None), "pay")
    assert not isinstance(none, AccessToken)
    assert (none.status, none.headers["WWW-Authenticate"]) == (401, 'Bearer realm="api"')
    bad = guard.check(request(sign(claims(aud="x"))), "pay")
    assert not isinstance(bad, AccessToken)
    assert bad.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')
    low = guard.check(request(sign(claims(acr="urn:pwd", amr=["pwd"]))), "pay")
    assert not isinstance(low, AccessToken)
    assert low.status == 401
    assert low.headers["WWW-Authenticate"] == (
        'Bearer error="insufficient_user_authentication", '
        'error_description="A different authentication level is required", '
        'acr_values="urn:mfa"'
    )
    assert json.loads(low.body)["acr_values"] == ["urn:mfa"]
    old = guard.check(request(sign(claims(auth_time=T0 - 301))), "delete")
    assert not isinstance(old, AccessToken)
    assert old.headers["WWW-Authenticate"] == (
        'Bearer error="insufficient_user_authentication", '
        'error_description="A more recent authentication is required", max_age="300"'
    )
    clock.advance(7 * 3600)
    late = claims(acr="urn:pwd", amr=["pwd"], iat=T0 + 7 * 3600, exp=T0 + 8 * 3600)
    both = guard.check(request(sign(late)), "pay")
    assert not isinstance(both, AccessToken)
    assert 'acr_values="urn:mfa", max_age="21600"' in both.headers["WWW-Authenticate"]


async def test_async_guard(clock: SettableClock) -> None:
    guard = guard_for(clock, AsyncReauth)
    assert isinstance(await guard.acheck(request(sign(claims())), "pay"), AccessToken)


@given(st.text(max_size=40))
def test_bearer_token_syntax(value: str) -> None:
    token = bearer_token(RequestInfo("GET", "/", authorization=f"Bearer {value}"))
    assert token is None or (token == value.strip() and " " not in token and '"' not in token)


def test_the_guard_checks_its_parts(clock: SettableClock) -> None:
    reauth = Reauth(MemoryStore(), Policy({"pay": Rule(Sensitivity.SENSITIVE)}), clock=clock)
    with pytest.raises(ConfigurationError):
        BearerGuard(reauth, object())
    with pytest.raises(ConfigurationError):
        BearerGuard(object(), validator(Fetcher(jwks(KEY)), clock))  # type: ignore[arg-type]

    class AsyncSource:
        async def introspect(self, token: str) -> AccessToken:
            raise AssertionError("never awaited")

    with pytest.raises(ConfigurationError, match="acheck"):
        BearerGuard(reauth, AsyncSource()).check(request(sign(claims())), "pay")
