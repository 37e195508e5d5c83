"""RFC 6238 Appendix B and RFC 4226 Appendix D, every vector; our HMAC against the stdlib's."""

from __future__ import annotations

import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stepup.errors import MalformedInputError
from stepup.totp import TOTP, Algorithm, hotp

SEEDS: dict[Algorithm, bytes] = {
    "SHA1": b"12345678901234567890",
    "SHA256": b"12345678901234567890123456789012",
    "SHA512": b"1234567890123456789012345678901234567890123456789012345678901234",
}

# RFC 6238 Appendix B: (time, {algorithm: 8-digit TOTP}).
RFC6238 = [
    (59, {"SHA1": "94287082", "SHA256": "46119246", "SHA512": "90693936"}),
    (1111111109, {"SHA1": "07081804", "SHA256": "68084774", "SHA512": "25091201"}),
    (1111111111, {"SHA1": "14050471", "SHA256": "67062674", "SHA512": "99943326"}),
    (1234567890, {"SHA1": "89005924", "SHA256": "91819424", "SHA512": "93441116"}),
    (2000000000, {"SHA1": "69279037", "SHA256": "90698825", "SHA512": "38618901"}),
    (20000000000, {"SHA1": "65353130", "SHA256": "77737706", "SHA512": "47863826"}),
]
# The T column of the same table, in hex.
RFC6238_STEPS = {
    59: 0x1,
    1111111109: 0x23523EC,
    1111111111: 0x23523ED,
    1234567890: 0x273EF07,
    2000000000: 0x3F940AA,
    20000000000: 0x27BC86AA,
}

# RFC 4226 Appendix D: counter -> 6-digit HOTP for the 20-byte seed.
RFC4226 = [
    "755224",
    "287082",
    "359152",
    "969429",
    "338314",
    "254676",
    "287922",
    "162583",
    "399871",
    "520489",
]

CASES = [(t, alg, code) for t, codes in RFC6238 for alg, code in codes.items()]


@pytest.mark.parametrize(("at", "algorithm", "expected"), CASES)
def test_rfc6238_appendix_b(at: int, algorithm: Algorithm, expected: str) -> None:
    totp = TOTP.from_key(SEEDS[algorithm], digits=8, algorithm=algorithm)
    assert totp.step(at) == RFC6238_STEPS[at]
    assert totp.at(at) == expected
    assert totp.match(expected, at, window=0) == RFC6238_STEPS[at]


@pytest.mark.parametrize(("at", "algorithm", "expected"), CASES)
def test_rfc6238_vectors_through_base32(at: int, algorithm: Algorithm, expected: str) -> None:
    """The same vectors reached the way apps do: a base32 secret, not raw bytes."""
    secret = TOTP.from_key(SEEDS[algorithm]).secret
    assert TOTP(secret, digits=8, algorithm=algorithm).at(at) == expected


@pytest.mark.parametrize(("counter", "expected"), list(enumerate(RFC4226)))
def test_rfc4226_appendix_d(counter: int, expected: str) -> None:
    assert hotp(SEEDS["SHA1"], counter) == expected
    assert TOTP.from_key(SEEDS["SHA1"]).code_for_step(counter) == expected


def test_six_digit_totp_is_the_last_six_of_eight() -> None:
    for at, codes in RFC6238:
        for algorithm, code in codes.items():
            assert TOTP.from_key(SEEDS[algorithm], algorithm=algorithm).at(at) == code[2:]


@given(
    key=st.binary(min_size=1, max_size=300),
    counter=st.integers(0, 2**64 - 1),
    algorithm=st.sampled_from(["SHA1", "SHA256", "SHA512"]),
    digits=st.sampled_from([6, 8]),
)
def test_precomputed_hmac_equals_stdlib_hmac(
    key: bytes, counter: int, algorithm: Algorithm, digits: int
) -> None:
    """Keys shorter than, equal to and longer than the hash block (64 or 128 bytes)."""
    mac = hmac.digest(key, counter.to_bytes(8, "big"), algorithm.lower())
    offset = mac[-1] & 0x0F
    value = (int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFFFFFF) % 10**digits
    expected = str(value).zfill(digits)
    assert hotp(key, counter, digits=digits, algorithm=algorithm) == expected


@pytest.mark.parametrize("counter", [-1, 2**64])
def test_counter_out_of_range_is_refused(counter: int) -> None:
    with pytest.raises(MalformedInputError):
        TOTP.from_key(SEEDS["SHA1"]).code_for_step(counter)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"digits": 7}, "digits"),
        ({"digits": True}, "digits"),
        ({"digits": [6]}, "digits"),
        ({"period": 0}, "period"),
        ({"period": 30.5}, "period"),
        ({"period": True}, "period"),
        ({"algorithm": "MD5"}, "algorithm"),
        ({"algorithm": ["SHA1"]}, "algorithm"),
    ],
)
def test_bad_parameters_are_typed_errors(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(MalformedInputError, match=fragment):
        TOTP("JBSWY3DPEHPK3PXP", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("secret", ["", "   ", "not base32!", "JBSW", "ÄÖÜÄÖÜÄÖÜÄÖÜÄÖÜ", 12345])
def test_bad_secrets_are_typed_errors_without_the_secret(secret: object) -> None:
    with pytest.raises(MalformedInputError) as info:
        TOTP(secret)  # type: ignore[arg-type]
    if isinstance(secret, str) and secret.strip():
        assert secret not in str(info.value)


def test_secret_decoding_tolerates_case_spaces_and_padding() -> None:
    reference = TOTP("JBSWY3DPEHPK3PXP").at(1_000_000)
    for variant in ("jbswy3dpehpk3pxp", "JBSW Y3DP EHPK 3PXP", "JBSWY3DPEHPK3PXP===="):
        assert TOTP(variant).at(1_000_000) == reference


def test_totp_survives_copy_and_pickle() -> None:
    import copy
    import pickle

    totp = TOTP.from_key(SEEDS["SHA256"], digits=8, algorithm="SHA256")
    unpickled = pickle.loads(pickle.dumps(totp))  # noqa: S301 -- our own bytes
    for clone in (copy.copy(totp), copy.deepcopy(totp), unpickled):
        assert clone.at(59) == "46119246"
        assert (clone.digits, clone.period, clone.algorithm) == (8, 30, "SHA256")
