"""A hostile client against the JWT access token validator (RFC 9068, RFC 8725, RFC
7515/7519): every forged, confused or malformed token is a typed refusal, never an
acceptance and never an untyped exception; the keys are used only for what they say."""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import warnings
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from joserfc import jws
from joserfc.jwk import ECKey, OKPKey, RSAKey

from stepup.adapters.idp.oidc import AccessTokenValidator
from stepup.adapters.idp.oidc.access_token import parse_jwks_document
from stepup.errors import ConfigurationError
from stepup.testing import SettableClock
from stepup.tokens import InvalidTokenError, TokenFault, TokenUnavailableError

T0 = 1_700_000_000
ISSUER, AUDIENCE = "https://idp.example", "https://api.example"
KEY = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig", "alg": "RS256"})
ATTACKER = RSAKey.generate_key(2048, parameters={"kid": "k1"})
EC = ECKey.generate_key("P-256", parameters={"kid": "e1"})
ED = OKPKey.generate_key("Ed25519", parameters={"kid": "d1"})

CLAIMS: dict[str, Any] = {
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
}
HEADER: dict[str, Any] = {"alg": "RS256", "typ": "at+jwt", "kid": "k1"}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_token(header: str | bytes, payload: str | bytes, key: Any = KEY, alg: str = "RS256") -> str:
    """A token signed over exactly these header and payload bytes (duplicates, NaN and
    all: what an attacker holding the key, or the issuer by mistake, could send)."""
    head = b64(header.encode() if isinstance(header, str) else header)
    body = b64(payload.encode() if isinstance(payload, str) else payload)
    signing_input = f"{head}.{body}".encode()
    if isinstance(key, bytes):  # an HMAC secret, signed by hand (joserfc refuses some)
        digest = hmac.new(key, signing_input, f"sha{alg[2:]}").digest()
        return f"{head}.{body}.{b64(digest)}"
    model = jws.JWSRegistry.algorithms[alg]
    return f"{head}.{body}.{b64(model.sign(signing_input, key))}"


def token(header: dict[str, Any] | None = None, key: Any = KEY, **claims: Any) -> str:
    head = {**HEADER, **(header or {})}
    head = {k: v for k, v in head.items() if v is not None}
    payload = {k: v for k, v in {**CLAIMS, **claims}.items() if v is not None}
    return raw_token(json.dumps(head), json.dumps(payload), key, head.get("alg", "RS256"))


class Fetcher:
    """The issuer's JWKS endpoint: the documents it serves in turn, counting calls."""

    def __init__(self, *documents: Any) -> None:
        self.documents = list(documents)
        self.calls = 0

    def __call__(self) -> Any:
        self.calls += 1
        if not self.documents:
            raise OSError("jwks endpoint down")
        document = self.documents[0] if len(self.documents) == 1 else self.documents.pop(0)
        if isinstance(document, Exception):
            raise document
        return document


def jwks(*keys: Any, **extra: Any) -> dict[str, Any]:
    return {"keys": [{**key.as_dict(private=False), **extra} for key in keys]}


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(T0)


def validator(clock: SettableClock, fetch: Any = None, **settings: Any) -> AccessTokenValidator:
    settings.setdefault("algorithms", ("RS256", "ES256", "EdDSA"))
    return AccessTokenValidator(
        issuer=ISSUER,
        audience=AUDIENCE,
        fetch_jwks=fetch or Fetcher(jwks(KEY, EC, ED)),
        clock=clock,
        **settings,
    )


def fault_of(check: AccessTokenValidator, value: Any) -> TokenFault:
    with pytest.raises(InvalidTokenError) as caught:
        check.validate(value)
    assert str(value)[:40] not in str(caught.value) or not value  # never echoes the token
    return caught.value.fault


def test_the_good_token_passes(clock: SettableClock) -> None:
    assert validator(clock).validate(token()).subject == "alice"


# the algorithm -------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE", "", "rs256", "HS256", "HS512"])
def test_alg_none_hmac_and_case_variants(alg: str, clock: SettableClock) -> None:
    for signature in ("", b64(b"x" * 32)):
        head = b64(json.dumps({**HEADER, "alg": alg}).encode())
        forged = f"{head}.{b64(json.dumps(CLAIMS).encode())}.{signature}"
        assert fault_of(validator(clock), forged) is TokenFault.ALGORITHM


def test_hmac_with_the_public_key_as_secret(clock: SettableClock) -> None:
    """The classic key confusion (RFC 8725 section 2.1): HS256 keyed with the issuer's
    public key, in each form an attacker might try."""
    pem = KEY.as_pem(private=False)
    for secret in (pem, json.dumps(KEY.as_dict(private=False)).encode(), b"k1"):
        forged = token({"alg": "HS256"}, secret)
        assert fault_of(validator(clock), forged) is TokenFault.ALGORITHM


@pytest.mark.parametrize("alg", [["RS256"], None, 256, {"alg": "RS256"}])
def test_alg_that_is_not_a_string(alg: Any, clock: SettableClock) -> None:
    head = json.dumps({"alg": alg, "typ": "at+jwt", "kid": "k1"})
    assert fault_of(validator(clock), raw_token(head, json.dumps(CLAIMS))) in (
        TokenFault.ALGORITHM,
        TokenFault.MALFORMED,
    )


def test_alg_and_key_type_must_agree(clock: SettableClock) -> None:
    """An ES256 header naming the RSA key's kid, an RS256 header naming the EC key's:
    no key of the wrong type is ever tried."""
    check = validator(clock)
    ec_as_rsa = token({"alg": "ES256", "kid": "k1"}, EC)
    assert fault_of(check, ec_as_rsa) is TokenFault.UNKNOWN_KEY
    rsa_as_ec = token({"alg": "RS256", "kid": "e1"}, KEY)
    assert fault_of(check, rsa_as_ec) is TokenFault.UNKNOWN_KEY


def test_a_key_is_used_only_for_its_own_alg(clock: SettableClock) -> None:
    ps = RSAKey.generate_key(2048, parameters={"kid": "p1", "alg": "PS256"})
    check = validator(clock, Fetcher(jwks(ps)), algorithms=("RS256", "PS256"))
    assert check.validate(token({"alg": "PS256", "kid": "p1"}, ps)).subject == "alice"
    assert fault_of(check, token({"alg": "RS256", "kid": "p1"}, ps)) is TokenFault.UNKNOWN_KEY


def test_ec_curve_must_match_the_alg(clock: SettableClock) -> None:
    p384 = ECKey.generate_key("P-384", parameters={"kid": "e3"})
    check = validator(clock, Fetcher(jwks(p384)), algorithms=("ES256", "ES384"))
    assert check.validate(token({"alg": "ES384", "kid": "e3"}, p384)).subject == "alice"
    with pytest.raises(InvalidTokenError):
        check.validate(token({"alg": "ES256", "kid": "e3"}, EC))


def test_eddsa_works_and_x25519_never_verifies(clock: SettableClock) -> None:
    assert validator(clock).validate(token({"alg": "EdDSA", "kid": "d1"}, ED)).acr == "urn:mfa"
    agreement = OKPKey.generate_key("X25519", parameters={"kid": "x1"})
    with pytest.raises(TokenUnavailableError):
        parse_jwks_document(jwks(agreement))


# the keys -----------------------------------------------------------------------------


def test_weak_enc_symmetric_and_private_keys_are_left_out(clock: SettableClock) -> None:
    with warnings.catch_warnings():  # joserfc warns of the weak key made here
        warnings.simplefilter("ignore")
        weak = RSAKey.generate_key(1024, parameters={"kid": "weak"})
    enc = RSAKey.generate_key(2048, parameters={"kid": "enc", "use": "enc"})
    ops = RSAKey.generate_key(2048, parameters={"kid": "ops"})
    oct_key = {"kty": "oct", "kid": "hmac", "k": b64(b"s" * 32)}
    wrong_alg = RSAKey.generate_key(2048, parameters={"kid": "hs", "alg": "HS256"})
    document = jwks(weak, enc, wrong_alg)
    document["keys"].append({**ops.as_dict(private=False), "key_ops": ["encrypt"]})
    document["keys"].append(oct_key)
    with pytest.raises(TokenUnavailableError):
        parse_jwks_document(document)
    check = validator(clock, Fetcher({"keys": [*document["keys"], *jwks(KEY)["keys"]]}))
    assert check.validate(token()).subject == "alice"
    for key in (weak, enc, ops, wrong_alg):
        forged = token({"kid": key.kid}, key)
        assert fault_of(check, forged) is TokenFault.UNKNOWN_KEY
    # a private member in the JWKS never turns into a signing key
    private = validator(clock, Fetcher({"keys": [KEY.as_dict(private=True)]}))
    assert private.validate(token()).subject == "alice"
    assert parse_jwks_document({"keys": [KEY.as_dict(private=True)]})[0].is_private is False


@pytest.mark.parametrize(
    "document",
    [None, [], "keys", {"keys": "x"}, {"keys": [1, "a", None]}, {"keys": [{"kty": "RSA"}]}],
)
def test_a_useless_jwks_fails_closed(document: Any, clock: SettableClock) -> None:
    with pytest.raises(TokenUnavailableError):
        validator(clock, Fetcher(document)).validate(token())


def test_a_huge_jwks_is_refused(clock: SettableClock) -> None:
    many = {"keys": [KEY.as_dict(private=False)] * 101}
    with pytest.raises(TokenUnavailableError):
        validator(clock, Fetcher(many)).validate(token())


def test_unreachable_keys_answer_unavailable_not_invalid(clock: SettableClock) -> None:
    """While the JWKS cannot be read, every token is unavailable (503), not invalid
    (401: the client would throw a good token away); retries are rate limited."""
    fetch = Fetcher(OSError("down"), OSError("down"), jwks(KEY))
    check = validator(clock, fetch)
    for _ in range(3):
        with pytest.raises(TokenUnavailableError):
            check.validate(token())
    assert fetch.calls == 1
    clock.advance(61)
    with pytest.raises(TokenUnavailableError):
        check.validate(token())
    clock.advance(61)
    assert check.validate(token()).subject == "alice"
    assert fetch.calls == 3


def test_a_withdrawn_key_stops_verifying(clock: SettableClock) -> None:
    """Rotation: the issuer removes k1 and publishes k2. After max_key_age the keys are
    fetched again, and a token signed with the withdrawn key is refused."""
    new = RSAKey.generate_key(2048, parameters={"kid": "k2"})
    fetch = Fetcher(jwks(KEY), jwks(new))
    check = validator(clock, fetch, max_key_age=600)
    old = token(exp=T0 + 7200)
    assert check.validate(old).subject == "alice"
    clock.advance(601)
    assert fault_of(check, old) is TokenFault.UNKNOWN_KEY
    assert check.validate(token({"kid": "k2"}, new, exp=T0 + 7200)).subject == "alice"
    assert fetch.calls == 2


def test_a_new_kid_is_fetched_once_and_forged_kids_cause_no_storm(clock: SettableClock) -> None:
    new = RSAKey.generate_key(2048, parameters={"kid": "k2"})
    fetch = Fetcher(jwks(KEY), jwks(KEY, new))
    check = validator(clock, fetch)
    assert check.validate(token()).subject == "alice"
    clock.advance(61)
    assert check.validate(token({"kid": "k2"}, new)).subject == "alice"
    for kid in ("../../etc/passwd", "k1\x00", "x" * 256, "", "K1"):
        assert fault_of(check, token({"kid": kid}, ATTACKER)) is TokenFault.UNKNOWN_KEY
    assert fetch.calls == 2
    assert check.validate(token()).subject == "alice"  # the real keys still work


def test_a_failed_refetch_keeps_no_stale_key_alive(clock: SettableClock) -> None:
    fetch = Fetcher(jwks(KEY), OSError("down"))
    check = validator(clock, fetch, max_key_age=600)
    assert check.validate(token(exp=T0 + 7200)).subject == "alice"
    clock.advance(601)
    with pytest.raises(TokenUnavailableError):
        check.validate(token(exp=T0 + 7200))


def test_key_settings_are_checked(clock: SettableClock) -> None:
    for bad in ({"max_key_age": 10}, {"max_key_age": True}, {"algorithms": "RS256"}):
        with pytest.raises(ConfigurationError):
            validator(clock, **bad)


# the header ---------------------------------------------------------------------------


@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "application/at+jwt", "Application/AT+JWT"])
def test_typ_at_jwt_in_any_case(typ: str, clock: SettableClock) -> None:
    assert validator(clock).validate(token({"typ": typ})).subject == "alice"


@pytest.mark.parametrize(
    "typ",
    [
        "JWT",
        "jwt",
        "application/jwt",
        " at+jwt",
        "at+jwt ",
        "at+JWT;",
        "at-jwt",
        "",
        None,
        1,
        ["at+jwt"],
    ],
)
def test_other_typ_values_are_refused(typ: Any, clock: SettableClock) -> None:
    assert fault_of(validator(clock), token({"typ": typ})) is TokenFault.TYPE


@pytest.mark.parametrize(
    "extra",
    [
        {"crit": ["exp"]},
        {"crit": []},
        {"b64": False},
        {"jku": "https://evil.example/jwks"},
        {"x5u": "https://evil.example/cert"},
        {"x5c": ["MIIB"]},
        {"cty": "JWT"},
        {"enc": "A256GCM"},
        {"zip": "DEF"},
        {"kid": 7},
        {"kid": ["k1"]},
        {"kid": "k" * 257},
    ],
)
def test_header_parameters_that_are_never_honoured(
    extra: dict[str, Any], clock: SettableClock
) -> None:
    assert fault_of(validator(clock), token(extra)) is TokenFault.MALFORMED


def test_a_null_kid_is_no_kid_of_its_own(clock: SettableClock) -> None:
    """RFC 7515 4.1.4: a kid is a string. ``"kid": null`` was read as "no kid" and tried
    against every key of the algorithm."""
    head = json.dumps({"alg": "RS256", "typ": "at+jwt", "kid": None})
    assert fault_of(validator(clock), raw_token(head, json.dumps(CLAIMS))) is TokenFault.MALFORMED
    without = json.dumps({"alg": "RS256", "typ": "at+jwt"})
    assert validator(clock).validate(raw_token(without, json.dumps(CLAIMS))).subject


def test_an_embedded_key_is_never_used(clock: SettableClock) -> None:
    """A token signed by the attacker carrying the attacker's public key (``jwk``)."""
    embedded = token({"jwk": ATTACKER.as_dict(private=False)}, ATTACKER)
    assert fault_of(validator(clock), embedded) is TokenFault.MALFORMED
    # even with the issuer's real key embedded, the header is refused
    assert (
        fault_of(validator(clock), token({"jwk": KEY.as_dict(private=False)}))
        is TokenFault.MALFORMED
    )


def test_duplicate_header_members_are_refused(clock: SettableClock) -> None:
    head = '{"alg":"RS256","typ":"JWT","typ":"at+jwt","kid":"k1"}'
    assert fault_of(validator(clock), raw_token(head, json.dumps(CLAIMS))) is TokenFault.MALFORMED
    head = '{"alg":"none","alg":"RS256","typ":"at+jwt","kid":"k1"}'
    assert fault_of(validator(clock), raw_token(head, json.dumps(CLAIMS))) is TokenFault.MALFORMED


@pytest.mark.parametrize("header", ["[]", '"RS256"', "null", "1", "{", '{"alg":"RS256"}x', ""])
def test_a_header_that_is_not_one_object(header: str, clock: SettableClock) -> None:
    assert fault_of(validator(clock), raw_token(header, json.dumps(CLAIMS))) in (
        TokenFault.MALFORMED,
        TokenFault.ALGORITHM,
        TokenFault.TYPE,
    )


# the serialization --------------------------------------------------------------------


def test_segment_count_and_encoding(clock: SettableClock) -> None:
    check = validator(clock)
    good = token()
    head, body, signature = good.split(".")
    for forged in (
        f"{good}.",
        f"{head}.{body}.{signature}.{signature}",
        f"{head}.{body}.{signature}.x.y",  # the shape of a JWE
        f"{head}.{body}",
        f"{head}..{signature}",  # detached content
        f".{body}.{signature}",
        f"{head}.{body}.{signature}=",
        f"{head}={body}.{signature}",
        f"{head}.{body}.{signature.replace('-', '+').replace('_', '/')}"
        if "-" in signature or "_" in signature
        else f"{head}.{body}.+{signature}",
        f" {good}",
        f"{good}\n",
        "é" + good,
        good.replace(head, head + "\u00e9"),
        "...",
        ".",
    ):
        assert fault_of(check, forged) in (TokenFault.MALFORMED, TokenFault.SIGNATURE)


@pytest.mark.parametrize("value", [None, b"a.b.c", 17, ["a"], {"t": 1}])
def test_a_token_that_is_not_a_string(value: Any, clock: SettableClock) -> None:
    assert fault_of(validator(clock), value) is TokenFault.MALFORMED


def test_the_size_is_bounded_before_parsing(clock: SettableClock) -> None:
    fetch = Fetcher(jwks(KEY))
    check = validator(clock, fetch)
    huge = token(padding="x" * 20_000)
    assert fault_of(check, huge) is TokenFault.MALFORMED
    assert fetch.calls == 0  # refused before even the keys are looked at
    assert fault_of(check, "a" * 10_000_000) is TokenFault.MALFORMED


def test_a_nested_token_is_not_unwrapped(clock: SettableClock) -> None:
    inner = token()
    nested = raw_token(json.dumps(HEADER), inner)  # the payload is itself a JWT
    assert fault_of(validator(clock), nested) is TokenFault.MALFORMED


# the claims ---------------------------------------------------------------------------


def test_duplicate_claims_are_refused(clock: SettableClock) -> None:
    body = json.dumps(CLAIMS)[:-1] + ', "aud": "https://other"}'
    assert fault_of(validator(clock), raw_token(json.dumps(HEADER), body)) is TokenFault.MALFORMED
    body = json.dumps(CLAIMS)[:-1] + ', "sub": "mallory"}'
    assert fault_of(validator(clock), raw_token(json.dumps(HEADER), body)) is TokenFault.MALFORMED


@pytest.mark.parametrize("payload", ["[]", '"x"', "null", "42", "{}", "not json", "\xff"])
def test_a_payload_that_is_not_a_claims_object(payload: str, clock: SettableClock) -> None:
    data = payload.encode("latin-1")
    assert fault_of(validator(clock), raw_token(json.dumps(HEADER), data)) is not None


@pytest.mark.parametrize("name", ["exp", "iat", "nbf", "auth_time"])
@pytest.mark.parametrize(
    "value",
    [
        "1700000600",
        True,
        False,
        None,
        [T0],
        {"t": T0},
        "NaN",
        10**400,
        1e300,
        -1,
        2**63,
        float(2**60),
    ],
)
def test_numeric_dates_must_be_numbers(name: str, value: Any, clock: SettableClock) -> None:
    claims = {**CLAIMS, name: value}
    if value is None:
        claims[name] = None  # JSON null
    body = json.dumps(claims)
    with pytest.raises(InvalidTokenError):
        validator(clock).validate(raw_token(json.dumps(HEADER), body))


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
@pytest.mark.parametrize("name", ["exp", "iat", "nbf", "auth_time"])
def test_non_finite_dates_never_pass(literal: str, name: str, clock: SettableClock) -> None:
    """``exp: NaN`` compares false with everything: a naive check lets it live forever."""
    claims = {k: v for k, v in CLAIMS.items() if k != name}
    body = json.dumps(claims)[:-1] + f', "{name}": {literal}}}'
    with pytest.raises(InvalidTokenError):
        validator(clock).validate(raw_token(json.dumps(HEADER), body))


def test_fractional_dates_are_numeric_dates(clock: SettableClock) -> None:
    check = validator(clock)
    assert (
        check.validate(token(exp=T0 + 0.5, iat=T0 - 0.25, auth_time=T0 - 1.5)).auth_time == T0 - 1.5
    )
    assert fault_of(check, token(exp=T0 - 30.5)) is TokenFault.EXPIRED


def test_missing_required_claims(clock: SettableClock) -> None:
    check = validator(clock)
    assert fault_of(check, token(exp=None)) is TokenFault.MALFORMED
    assert fault_of(check, token(iat=None)) is TokenFault.MALFORMED
    assert fault_of(check, token(sub=None)) is TokenFault.MALFORMED
    assert fault_of(check, token(sub="")) is TokenFault.MALFORMED
    assert fault_of(check, token(iss=None)) is TokenFault.ISSUER
    assert fault_of(check, token(aud=None)) is TokenFault.AUDIENCE


@pytest.mark.parametrize(
    "iss",
    [
        ISSUER + "/",
        ISSUER.upper(),
        "https://IDP.example",
        ISSUER + "#",
        ISSUER + "?",
        " " + ISSUER,
        [ISSUER],
        "http://idp.example",
    ],
)
def test_the_issuer_matches_exactly(iss: Any, clock: SettableClock) -> None:
    assert fault_of(validator(clock), token(iss=iss)) is TokenFault.ISSUER


@pytest.mark.parametrize(
    ("aud", "ok"),
    [
        (AUDIENCE, True),
        ([AUDIENCE], True),
        (["https://other", AUDIENCE], True),
        ([], False),
        ("", False),
        (AUDIENCE + "/", False),
        ([AUDIENCE + "/"], False),
        ([[AUDIENCE]], False),
        ([AUDIENCE, 1], False),
        ({"aud": AUDIENCE}, False),
        (f"{AUDIENCE} https://other", False),
    ],
)
def test_audience_forms(aud: Any, ok: bool, clock: SettableClock) -> None:
    check = validator(clock)
    if ok:
        assert AUDIENCE in check.validate(token(aud=aud)).audience
    else:
        assert fault_of(check, token(aud=aud)) is TokenFault.AUDIENCE


@pytest.mark.parametrize(
    "changes",
    [
        {"acr": 2},
        {"acr": ["urn:mfa"]},
        {"acr": {"value": "urn:mfa"}},
        {"amr": "pwd"},
        {"amr": [1]},
        {"amr": {"pwd": True}},
        {"auth_time": "1699999970"},
        {"client_id": 7},
        {"jti": ["j"]},
        {"scope": ["api:read"]},
        {"sub": 5},
    ],
)
def test_claim_types(changes: dict[str, Any], clock: SettableClock) -> None:
    assert fault_of(validator(clock), token(**changes)) is TokenFault.MALFORMED


def test_auth_time_in_the_future_is_refused(clock: SettableClock) -> None:
    check = validator(clock)
    # iat as far ahead, so only the future bound is in play (auth_time <= iat + leeway)
    ahead = {"iat": T0 + 30}
    assert check.validate(token(auth_time=T0 + 30, **ahead)).auth_time == T0 + 30  # the leeway
    assert fault_of(check, token(auth_time=T0 + 31, **ahead)) is TokenFault.ISSUED_AT


def test_a_sender_constrained_token_is_no_bearer_token(clock: SettableClock) -> None:
    for cnf in ({"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}, {"x5t#S256": "abc"}):
        assert fault_of(validator(clock), token(cnf=cnf)) is TokenFault.SENDER_CONSTRAINED


def test_non_ascii_claims_are_read_as_text(clock: SettableClock) -> None:
    assert validator(clock).validate(token(sub="jürgen\u2028")).subject == "jürgen\u2028"


# properties ---------------------------------------------------------------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    header=st.dictionaries(
        st.sampled_from(["alg", "typ", "kid", "crit", "jwk", "x", "cty"]), _JSON, max_size=5
    )
)
def test_any_header_is_a_typed_answer(header: dict[str, Any], clock: SettableClock) -> None:
    """Whatever the header says, the answer is a verdict: never an untyped exception."""
    forged = raw_token(json.dumps(header), json.dumps(CLAIMS))
    try:
        validator(clock).validate(forged)
    except InvalidTokenError:
        return
    assert header.get("alg") == "RS256"
    assert str(header.get("typ", "")).lower() in (
        "at+jwt",
        "application/at+jwt",
    )


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    changes=st.dictionaries(
        st.sampled_from(
            [
                "iss",
                "sub",
                "aud",
                "exp",
                "iat",
                "nbf",
                "auth_time",
                "acr",
                "amr",
                "scope",
                "jti",
                "client_id",
                "cnf",
            ]
        ),
        _JSON,
        max_size=4,
    )
)
def test_any_claims_are_a_typed_answer(changes: dict[str, Any], clock: SettableClock) -> None:
    """Signed by the issuer's own key (the worst case: a buggy issuer), any claims are
    either refused with a typed error or read into well-typed fields."""
    try:
        read = validator(clock).validate(token(**changes))
    except InvalidTokenError:
        return
    assert read.issuer == ISSUER
    assert AUDIENCE in read.audience
    assert isinstance(read.subject, str)
    assert read.subject
    assert read.expires_at + 30 > T0
    assert read.acr is None or isinstance(read.acr, str)
    assert all(isinstance(m, str) for m in read.amr)
    assert changes.get("cnf") is None


@settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.text(max_size=200) | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_any_string_is_a_typed_answer(value: str, clock: SettableClock) -> None:
    with pytest.raises(InvalidTokenError):
        validator(clock).validate(value)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kid=st.text(max_size=300))
def test_forged_kids_never_grow_the_key_cache(kid: str, clock: SettableClock) -> None:
    fetch = Fetcher(jwks(KEY))
    check = validator(clock, fetch)
    check.validate(token())
    entries = len(check._index)
    with pytest.raises(InvalidTokenError):
        check.validate(token({"kid": kid}, ATTACKER))
    assert len(check._index) == entries
    assert fetch.calls <= 2


async def test_async_validation_refuses_alike(clock: SettableClock) -> None:
    async def fetch() -> dict[str, Any]:
        return jwks(KEY)

    check = validator(clock, fetch)
    assert (await check.avalidate(token())).subject == "alice"
    with pytest.raises(InvalidTokenError) as caught:
        await check.avalidate(token({"alg": "none"}))
    assert caught.value.fault is TokenFault.ALGORITHM


async def test_concurrent_requests_while_the_keys_are_fetched(clock: SettableClock) -> None:
    """One fetch at a time: requests arriving while the first fetch is in flight wait
    for it (no keys yet; a sync request would be unavailable); once keys exist, a
    refetch in flight lets the others use the keys at hand instead of waiting."""
    release = asyncio.Event()
    calls = 0

    async def fetch() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        await release.wait()
        return jwks(KEY)

    check = validator(clock, fetch, max_key_age=600)
    first = asyncio.create_task(check.avalidate(token(exp=T0 + 7200)))
    await asyncio.sleep(0)
    second = asyncio.create_task(check.avalidate(token()))
    await asyncio.sleep(0)
    assert not second.done()
    with pytest.raises(TokenUnavailableError):
        check.validate(token())
    release.set()
    assert (await first).subject == "alice"
    assert (await second).subject == "alice"
    release.clear()
    clock.advance(601)  # the keys are old: the next request fetches them again
    again = asyncio.create_task(check.avalidate(token(exp=T0 + 7200)))
    await asyncio.sleep(0)
    assert (await check.avalidate(token(exp=T0 + 7200))).subject == "alice"  # old keys serve
    release.set()
    assert (await again).subject == "alice"
    assert calls == 2


@pytest.mark.parametrize("name", ["sub", "acr", "client_id", "jti", "scope"])
def test_lone_surrogates_are_no_text(name: str, clock: SettableClock) -> None:
    """``"\\ud800"`` is valid JSON and no string any encoder takes: refused at the door,
    not later in a log line or a database."""
    body = json.dumps(CLAIMS)[:-1] + f', "{name}": "a\\ud800"}}'
    body = body.replace(f'"{name}": "{CLAIMS.get(name, "")}", ', "", 1) if name in CLAIMS else body
    assert fault_of(validator(clock), raw_token(json.dumps(HEADER), body)) is TokenFault.MALFORMED
    amr = json.dumps({**CLAIMS, "amr": ["pwd"]}).replace('"pwd"]', '"\\udfff"]')
    assert fault_of(validator(clock), raw_token(json.dumps(HEADER), amr)) is TokenFault.MALFORMED


@pytest.mark.parametrize(("opening", "depth"), [("[", 3000), ('{"a":', 1500)])
def test_deeply_nested_json_is_malformed_not_a_crash(
    opening: str, depth: int, clock: SettableClock
) -> None:
    """The header is read before any signature: nesting deep enough to exhaust the
    parser's recursion (within the size bound) is a malformed token, not a
    RecursionError (a 500)."""
    deep = opening * depth
    forged = f"{b64(deep.encode())}.{b64(json.dumps(CLAIMS).encode())}.c2ln"
    assert len(forged) < 16 * 1024
    assert fault_of(validator(clock), forged) is TokenFault.MALFORMED
    signed = raw_token(json.dumps(HEADER), '{"x":' + deep)
    assert len(signed) < 16 * 1024
    assert fault_of(validator(clock), signed) is TokenFault.MALFORMED
