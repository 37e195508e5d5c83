"""ID token validation, pure: tokens minted here with keys made here, every check broken
one at a time."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.jwk import ECKey, Key, OctKey, OKPKey, RSAKey

from stepup.adapters.idp.oidc import (
    SAFE_ID_TOKEN_ALGORITHMS,
    IDTokenClaims,
    TokenFault,
    TokenRejected,
    verify_id_token,
)

NOW = 1_800_000_000.0
SKEW = 60.0
ISSUER = "https://op.example"
CLIENT = "stepup-rp"
NONCE = "n-0S6_WzA2Mj"

RSA = RSAKey.generate_key(2048, parameters={"kid": "rsa-1", "use": "sig"}, private=True)
EC = ECKey.generate_key("P-256", parameters={"kid": "ec-1"}, private=True)
OKP = OKPKey.generate_key("Ed25519", parameters={"kid": "ed-1"}, private=True)
PUBLIC: tuple[Key, ...] = tuple(
    type(k).import_key(k.as_dict(private=False)) for k in (RSA, EC, OKP)
)


def claims(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "248289761001",
        "aud": CLIENT,
        "exp": int(NOW) + 300,
        "iat": int(NOW),
        "auth_time": int(NOW) - 5,
        "nonce": NONCE,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not ...}


def mint(payload: dict[str, Any], key: Key = RSA, alg: str = "RS256", **header: Any) -> str:
    head = {"alg": alg, "kid": key.kid, **header}
    return jwt.encode(
        {k: v for k, v in head.items() if v is not None}, payload, key, algorithms=[alg]
    )


def verify(
    token: str, keys: tuple[Key, ...] = PUBLIC, **options: Any
) -> IDTokenClaims | TokenRejected:
    settings: dict[str, Any] = {
        "issuer": ISSUER,
        "client_id": CLIENT,
        "nonce": NONCE,
        "now": NOW,
        "max_skew": SKEW,
        "algorithms": SAFE_ID_TOKEN_ALGORITHMS,
    }
    return verify_id_token(token, keys, **(settings | options))


def fault(result: IDTokenClaims | TokenRejected) -> TokenFault | None:
    return result.fault if isinstance(result, TokenRejected) else None


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("key", "alg"), [(RSA, "RS256"), (RSA, "PS256"), (EC, "ES256"), (OKP, "Ed25519")]
)
def test_a_correct_token_passes_with_its_claims(key: Key, alg: str) -> None:
    result = verify(mint(claims(acr="urn:x", amr=["pwd"]), key, alg))
    assert isinstance(result, IDTokenClaims)
    assert (result.issuer, result.subject) == (ISSUER, "248289761001")
    assert result.auth_time == NOW - 5
    assert (result.acr, result.amr) == ("urn:x", ("pwd",))
    assert NONCE not in repr(result)


def test_auth_time_is_left_absent_never_taken_from_iat() -> None:
    result = verify(mint(claims(auth_time=...)))
    assert isinstance(result, IDTokenClaims)
    assert result.auth_time is None
    assert result.issued_at == NOW


@pytest.mark.parametrize("value", ["1800000000", True, None, [1], {"t": 1}])
def test_a_non_numeric_auth_time_is_malformed(value: object) -> None:
    assert fault(verify(mint(claims(auth_time=value)))) is TokenFault.MALFORMED


_text = st.text(min_size=1, max_size=40)

MUTATIONS: list[tuple[TokenFault, Callable[[Any], dict[str, Any]], st.SearchStrategy[Any]]] = [
    (TokenFault.ISSUER, lambda v: claims(iss=v), _text.filter(lambda v: v != ISSUER)),
    (TokenFault.AUDIENCE, lambda v: claims(aud=v), _text.filter(lambda v: v != CLIENT)),
    (TokenFault.AUDIENCE, lambda v: claims(aud=[CLIENT, v], azp=CLIENT), _text),
    (TokenFault.AUDIENCE, lambda v: claims(aud=[]), st.none()),
    (TokenFault.AUTHORIZED_PARTY, lambda v: claims(azp=v), _text.filter(lambda v: v != CLIENT)),
    (TokenFault.NONCE, lambda v: claims(nonce=v), _text.filter(lambda v: v != NONCE)),
    (TokenFault.NONCE, lambda v: claims(nonce=...), st.none()),
    (TokenFault.EXPIRED, lambda v: claims(exp=NOW - SKEW - v), st.floats(0, 1e6)),
    (TokenFault.ISSUED_AT, lambda v: claims(iat=NOW + SKEW + v), st.floats(0.001, 1e6)),
    (TokenFault.NOT_BEFORE, lambda v: claims(nbf=NOW + SKEW + v), st.floats(0.001, 1e6)),
    (TokenFault.MALFORMED, lambda v: claims(sub=v), st.sampled_from(["", None, 7, ["a"]])),
    (TokenFault.MALFORMED, lambda v: claims(exp=v), st.sampled_from([..., "soon", None])),
    (TokenFault.MALFORMED, lambda v: claims(iat=v), st.sampled_from([..., "now", False])),
]


@given(st.data())
def test_breaking_any_one_claim_names_that_claim(data: st.DataObject) -> None:
    expected, build, values = data.draw(st.sampled_from(MUTATIONS))
    payload = build(data.draw(values))
    assert fault(verify(mint(payload))) is expected


@given(st.integers(-1000, 1000))
def test_expiry_allows_exactly_the_skew(offset: int) -> None:
    """Valid while ``now < exp + skew``, and not a moment longer."""
    result = verify(mint(claims(exp=NOW - SKEW + offset)))
    assert (fault(result) is TokenFault.EXPIRED) == (offset <= 0)


def test_a_signature_from_another_key_is_refused() -> None:
    impostor = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"}, private=True)
    assert fault(verify(mint(claims(), impostor))) is TokenFault.SIGNATURE


@given(st.sampled_from(["sub", "aud", "nonce", "auth_time"]), st.text(min_size=1, max_size=20))
def test_a_changed_payload_breaks_the_signature(name: str, value: str) -> None:
    header, _, signature = mint(claims()).split(".")
    forged = f"{header}.{b64(claims(**{name: value}))}.{signature}"
    assert fault(verify(forged)) is TokenFault.SIGNATURE


def test_an_unknown_kid_asks_for_fresh_keys() -> None:
    assert fault(verify(mint(claims()), keys=PUBLIC[1:])) is TokenFault.UNKNOWN_KEY
    other = RSAKey.generate_key(2048, parameters={"kid": "rsa-2"}, private=True)
    assert fault(verify(mint(claims(), other))) is TokenFault.UNKNOWN_KEY


def test_a_token_without_kid_is_tried_against_the_matching_keys() -> None:
    assert isinstance(verify(mint(claims(), kid=None)), IDTokenClaims)


def test_an_encryption_key_never_verifies_a_signature() -> None:
    enc = RSAKey.import_key({**RSA.as_dict(private=False), "use": "enc"})
    assert fault(verify(mint(claims()), keys=(enc,))) is TokenFault.UNKNOWN_KEY


def test_unsigned_and_symmetric_tokens_are_refused() -> None:
    unsigned = f"{b64({'alg': 'none'})}.{b64(claims())}."
    assert fault(verify(unsigned)) is TokenFault.ALGORITHM
    secret = OctKey.generate_key(256, parameters={"kid": "rsa-1"})
    assert fault(verify(mint(claims(), secret, "HS256"))) is TokenFault.ALGORITHM


def test_only_the_configured_algorithms_are_accepted() -> None:
    assert fault(verify(mint(claims()), algorithms=("ES256",))) is TokenFault.ALGORITHM
    assert isinstance(verify(mint(claims(), EC, "ES256"), algorithms=("ES256",)), IDTokenClaims)


def test_a_key_pinned_to_another_algorithm_is_not_used() -> None:
    pinned = RSAKey.import_key({**RSA.as_dict(private=False), "alg": "PS256"})
    assert fault(verify(mint(claims()), keys=(pinned,))) is TokenFault.UNKNOWN_KEY


@pytest.mark.parametrize("header", [{"crit": ["exp"]}, {"b64": False, "crit": ["b64"]}])
def test_critical_header_extensions_are_refused(header: dict[str, Any]) -> None:
    token = f"{b64({'alg': 'RS256', 'kid': 'rsa-1', **header})}.{b64(claims())}.AAAA"
    assert fault(verify(token)) is TokenFault.MALFORMED


@given(st.text(max_size=200))
def test_garbage_is_never_accepted(token: str) -> None:
    assert isinstance(verify(token), TokenRejected)


@given(st.binary(max_size=100))
def test_a_garbage_payload_under_a_good_header_is_refused(payload: bytes) -> None:
    header = b64({"alg": "RS256", "kid": "rsa-1"})
    body = base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
    assert isinstance(verify(f"{header}.{body}.c2ln"), TokenRejected)


@pytest.mark.parametrize("claim", ["exp", "iat", "auth_time"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), 10**400, -1, 253_402_300_800])
def test_a_date_that_is_no_numeric_date_is_malformed(claim: str, value: object) -> None:
    """RFC 7519 section 2: a finite number, here from 1970 to 9999. A NaN ``exp`` never
    expires and a 400-digit integer overflows ``float``: both are malformed, not typed
    late or raised."""
    assert fault(verify(mint(claims(**{claim: value})))) is TokenFault.MALFORMED
