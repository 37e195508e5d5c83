"""A hostile client against the passkey ceremonies: each numbered check of WebAuthn
§7.1 (registration) and §7.2 (assertion), bent one at a time with the software
authenticator. Every forgery is refused with its typed reason and changes nothing."""

from __future__ import annotations

import base64
import json
import logging
import unicodedata
from dataclasses import replace
from typing import Any

import pytest
from fido2 import cbor
from fido2.webauthn import AuthenticatorData
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stepup.adapters.storage import MemoryStore
from stepup.errors import MalformedInputError
from stepup.events import EventBus, StepupEvent
from stepup.passkeys import (
    ALLOWED_ALGORITHMS,
    MAX_CREDENTIAL_ID_BYTES,
    PasskeyCounterRegressed,
    PasskeyReason,
    Passkeys,
    RelyingParty,
)
from stepup.subject import Subject
from stepup.testing import SettableClock
from stepup.testing.webauthn import SoftAuthenticator
from stepup.throttle import ThrottlePolicy

ORIGIN = "https://app.example.com"
RP = RelyingParty(id="example.com", name="Example", origins=(ORIGIN,))
ALICE = Subject("alice", "session-a")
BOB = Subject("bob", "session-b")
PENDING = "pending-sign-in-0123456789abcdef"
F = AuthenticatorData.FLAG


class Harness:
    def __init__(self) -> None:
        self.clock = SettableClock(1_700_000_000.25)
        self.events: list[StepupEvent] = []
        self.store = MemoryStore()
        self.passkeys = Passkeys(
            self.store,
            RP,
            clock=self.clock,
            events=EventBus(self.events.append),
            throttle=ThrottlePolicy(free_failures=100, base_delay=30.0, max_delay=3600.0),
        )

    def try_register(self, key: SoftAuthenticator, subject: Subject = ALICE) -> Any:
        options = self.passkeys.begin_registration(subject, subject.user_id)
        return self.passkeys.finish_registration(subject, key.create(options), "Key")

    def register(self, subject: Subject = ALICE, **kwargs: Any) -> SoftAuthenticator:
        kwargs.setdefault("counter", 5)
        key = SoftAuthenticator(origin=ORIGIN, **kwargs)
        assert self.try_register(key, subject).reason is PasskeyReason.OK
        return key

    def options(self, subject: Subject = ALICE, **kwargs: Any) -> dict[str, Any]:
        options = self.passkeys.begin_authentication(subject, **kwargs)
        assert options is not None
        return options

    def authenticate(self, key: SoftAuthenticator, subject: Subject = ALICE, **kw: Any) -> Any:
        return self.passkeys.finish_authentication(subject, key.get(self.options(subject, **kw)))

    def counts(self, user_id: str = "alice") -> list[int]:
        return [p.sign_count for p in self.passkeys.registered(user_id)]


@pytest.fixture
def h() -> Harness:
    return Harness()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# client data: type, challenge, origin, crossOrigin (§7.1 steps 7-10, §7.2 steps 11-14)


@pytest.mark.parametrize("kind", ["webauthn.get", "webauthn.get:sign-in", "payment.get", ""])
def test_registration_with_another_client_data_type_is_refused(h: Harness, kind: str) -> None:
    key = SoftAuthenticator(origin=ORIGIN, client_data={"type": kind})
    assert h.try_register(key).reason is PasskeyReason.INVALID
    assert h.passkeys.registered("alice") == ()


@pytest.mark.parametrize("kind", ["webauthn.create", "webauthn.get:sign-in", "WEBAUTHN.GET", ""])
def test_assertion_with_another_client_data_type_is_refused(h: Harness, kind: str) -> None:
    key = h.register()
    key.client_data = {"type": kind}
    assert h.authenticate(key).reason is PasskeyReason.INVALID
    assert h.counts() == [5]


def _variants(challenge: str) -> list[str]:
    raw = _unb64(challenge)
    standard = base64.b64encode(raw).decode()
    return [
        challenge + "=" * (-len(challenge) % 4 or 4),  # padded (or over-padded)
        base64.urlsafe_b64encode(raw).decode(),  # padded as Python writes it
        standard,  # standard alphabet (+ / =)
        standard.rstrip("="),
        challenge.swapcase(),
        challenge.upper(),
        " " + challenge,
        challenge + "\n",
        challenge[:-1],
        challenge + "A",
        challenge[:20] + "." + challenge[20:],  # a character base64 decoders skip
    ]


@pytest.mark.parametrize("index", range(11))
def test_challenge_in_another_encoding_is_refused(h: Harness, index: int) -> None:
    key = h.register()
    options = h.options()
    challenge = options["publicKey"]["challenge"]
    variant = _variants(challenge)[index]
    if variant == challenge:  # standard base64 of bytes without "-" or "_" in base64url
        return
    result = h.passkeys.finish_authentication(ALICE, key.get(options, challenge=variant))
    # refused (not base64url at all: malformed), and the challenge is not spent
    assert result.reason in {PasskeyReason.CHALLENGE, PasskeyReason.MALFORMED}
    assert h.counts() == [5]
    assert h.passkeys.finish_authentication(ALICE, key.get(options))


@pytest.mark.parametrize("index", range(11))
def test_registration_challenge_in_another_encoding_is_refused(h: Harness, index: int) -> None:
    options = h.passkeys.begin_registration(ALICE, "alice")
    challenge = options["publicKey"]["challenge"]
    variant = _variants(challenge)[index]
    if variant == challenge:  # standard base64 of bytes without "-" or "_" in base64url
        return
    key = SoftAuthenticator(origin=ORIGIN)
    result = h.passkeys.finish_registration(ALICE, key.create(options, challenge=variant))
    assert result.reason in {PasskeyReason.CHALLENGE, PasskeyReason.MALFORMED}
    assert h.passkeys.registered("alice") == ()
    assert h.passkeys.finish_registration(ALICE, key.create(options))


ORIGIN_VARIANTS = [
    "http://app.example.com",
    "https://app.example.com:8443",
    "https://app.example.com:443",
    "https://sub.app.example.com",
    "https://example.com",
    "https://app.example.com/",
    "https://app.example.com/path",
    "https://APP.EXAMPLE.COM",
    "https://App.example.com",
    "HTTPS://app.example.com",
    "https://app.example.com.",
    "https://xn--pp-5ka.example.com",
    "https://user@app.example.com",
    "https://app.example.com.evil.example",
    "https://evilapp.example.com",
    "null",
    "",
    " https://app.example.com",
    "android:apk-key-hash:abc",
]


@pytest.mark.parametrize("origin", ORIGIN_VARIANTS)
def test_assertion_from_an_origin_variant_is_refused(h: Harness, origin: str) -> None:
    key = h.register()
    key.origin = origin
    assert h.authenticate(key).reason is PasskeyReason.INVALID
    assert h.counts() == [5]


@pytest.mark.parametrize("origin", ORIGIN_VARIANTS)
def test_registration_from_an_origin_variant_is_refused(h: Harness, origin: str) -> None:
    key = SoftAuthenticator(origin=origin)
    assert h.try_register(key).reason is PasskeyReason.INVALID
    assert h.passkeys.registered("alice") == ()


def test_relying_party_origins_compare_exactly() -> None:
    assert RP.allows(ORIGIN)
    for origin in [*ORIGIN_VARIANTS, None, 7, ["https://app.example.com"]]:
        assert not RP.allows(origin)  # type: ignore[arg-type]
    # an origin configured with a trailing slash is the same origin
    slash = RelyingParty(id="example.com", name="E", origins=(ORIGIN + "/",))
    assert slash.allows(ORIGIN)
    assert not slash.allows(ORIGIN + "/")


@pytest.mark.parametrize(
    "client_data",
    [
        {"crossOrigin": True},
        {"crossOrigin": "true"},
        {"crossOrigin": 1},
        {"crossOrigin": None, "topOrigin": "https://evil.example"},
        {"crossOrigin": False, "topOrigin": ORIGIN},
        {"crossOrigin": True, "topOrigin": ORIGIN},
    ],
    ids=["cross", "cross-string", "cross-int", "top-only", "top-same", "cross-top"],
)
def test_cross_origin_ceremonies_are_refused(h: Harness, client_data: dict[str, Any]) -> None:
    key = h.register()
    key.client_data = client_data
    assert h.authenticate(key).reason is PasskeyReason.INVALID
    assert h.counts() == [5]
    fresh = SoftAuthenticator(origin=ORIGIN, client_data=client_data)
    assert h.try_register(fresh).reason is PasskeyReason.INVALID
    assert len(h.passkeys.registered("alice")) == 1


def test_client_data_without_cross_origin_is_same_origin(h: Harness) -> None:
    key = h.register()
    key.client_data = {"crossOrigin": None}  # Level 1 browsers do not send it
    assert h.authenticate(key)


@pytest.mark.parametrize(
    "client_data",
    [
        {"type": 7},
        {"type": None},
        {"origin": 7},
        {"origin": None},
        {"origin": ["https://app.example.com"]},
        {"challenge": 7},
        {"challenge": None},
        {"challenge": ["x"]},
    ],
)
def test_client_data_fields_of_the_wrong_type_are_malformed(
    h: Harness, client_data: dict[str, Any]
) -> None:
    key = h.register()
    key.client_data = client_data
    options = h.options()
    challenges = dict(h.store._challenges)
    assert h.passkeys.finish_authentication(ALICE, key.get(options)).reason in {
        PasskeyReason.MALFORMED
    }
    assert h.store._challenges == challenges  # not even the challenge was spent
    assert h.counts() == [5]


def test_client_data_that_is_not_a_json_object_is_malformed(h: Harness) -> None:
    key = h.register()
    answer = key.get(h.options())
    for body in [b"[]", b"null", b"\xff\xfe", b"{", b'"webauthn.get"']:
        answer["response"]["clientDataJSON"] = _b64(body)
        assert h.passkeys.finish_authentication(ALICE, answer).reason is PasskeyReason.MALFORMED


# authenticator data: RP id hash, flags, extensions (§7.1 steps 13-16, §7.2 15-18)


@pytest.mark.parametrize("rp_id", ["com", "evil.example", "app.example.com", "EXAMPLE.COM", ""])
def test_rp_id_hash_of_another_rp_is_refused(h: Harness, rp_id: str) -> None:
    key = h.register()
    key.rp_id = rp_id or "."  # (empty would mean "the options' one")
    assert h.authenticate(key).reason is PasskeyReason.INVALID
    fresh = SoftAuthenticator(origin=ORIGIN, rp_id=rp_id or ".")
    assert h.try_register(fresh).reason is PasskeyReason.INVALID
    assert h.counts() == [5]


def test_user_presence_is_required(h: Harness) -> None:
    key = h.register()
    key.flags = F.UV
    assert h.authenticate(key).reason is PasskeyReason.INVALID
    assert h.try_register(SoftAuthenticator(origin=ORIGIN, flags=F.UV | F.AT)).reason is (
        PasskeyReason.INVALID
    )
    assert h.counts() == [5]


def test_user_verification_is_required_at_registration(h: Harness) -> None:
    key = SoftAuthenticator(origin=ORIGIN, user_verified=False)
    assert h.try_register(key).reason is PasskeyReason.USER_VERIFICATION
    assert h.passkeys.registered("alice") == ()


def test_user_verification_flag_without_presence_is_refused(h: Harness) -> None:
    key = h.register()
    key.flags = F(0)
    assert h.authenticate(key, user_verification=False).reason is PasskeyReason.INVALID


def test_backup_state_without_eligibility_is_refused(h: Harness) -> None:
    """BS=1 with BE=0 is invalid (§6.1.3): no authenticator sends it."""
    key = h.register()
    key.flags = F.UP | F.UV | F.BS
    assert h.authenticate(key).reason is PasskeyReason.INVALID
    assert h.counts() == [5]
    fresh = SoftAuthenticator(origin=ORIGIN, flags=F.UP | F.UV | F.AT | F.BS)
    assert h.try_register(fresh).reason is PasskeyReason.INVALID
    assert len(h.passkeys.registered("alice")) == 1


@pytest.mark.parametrize(
    ("registered", "presented"),
    [(False, F.UP | F.UV | F.BE), (True, F.UP | F.UV), (True, F.UP | F.UV | F.BS)],
    ids=["became-eligible", "lost-eligibility", "lost-eligibility-bs"],
)
def test_backup_eligibility_cannot_change(h: Harness, registered: bool, presented: F) -> None:
    """BE is fixed when the credential is made (§7.2: compare with the stored value);
    it decides hwk against swk, so a change is refused."""
    key = h.register(backup_eligible=registered, counter=0)
    key.flags = presented
    assert h.authenticate(key).reason is PasskeyReason.INVALID
    (stored,) = h.passkeys.registered("alice")
    assert stored.backup_eligible is registered
    assert stored.last_used_at is None


def test_backup_state_may_change_and_is_recorded(h: Harness) -> None:
    key = h.register(backup_eligible=True, counter=0)
    key.flags = F.UP | F.UV | F.BE  # not backed up (any more)
    assert h.authenticate(key)
    assert h.passkeys.registered("alice")[0].backup_state is False


def test_attested_data_in_an_assertion_is_refused(h: Harness) -> None:
    key = h.register()
    key.flags = F.UP | F.UV | F.AT  # claims attested data it does not carry
    assert h.authenticate(key).reason is PasskeyReason.MALFORMED
    assert h.counts() == [5]


@pytest.mark.parametrize(
    ("flags", "extensions"),
    [
        (F.UP | F.UV | F.ED, None),  # ED set, nothing follows
        (F.UP | F.UV, cbor.encode({"credProtect": 1})),  # data follows, ED not set
        (F.UP | F.UV | F.ED, b"\xff\x00garbage"),
        (F.UP | F.UV | F.ED, cbor.encode({"a": 1}) + b"\x00"),  # trailing bytes
        (F.UP | F.UV | F.ED, cbor.encode([1, 2])),  # not a map
    ],
    ids=["ed-empty", "data-without-ed", "garbage", "trailing", "not-a-map"],
)
def test_lying_extension_flags_are_malformed(h: Harness, flags: F, extensions: Any) -> None:
    key = h.register()
    key.flags, key.extensions = flags, extensions
    assert not h.authenticate(key)
    assert h.counts() == [5]


def test_well_formed_unknown_extensions_are_ignored(h: Harness) -> None:
    key = h.register()
    key.extensions = cbor.encode({"unknown-extension": b"\x01"})
    assert h.authenticate(key)


@pytest.mark.parametrize("results", ["x", 7, [1], None])
def test_client_extension_results_of_the_wrong_type_change_nothing(
    h: Harness, results: Any
) -> None:
    key = h.register()
    answer = key.get(h.options())
    answer["clientExtensionResults"] = results
    assert h.passkeys.finish_authentication(ALICE, answer).reason in {
        PasskeyReason.OK,
        PasskeyReason.MALFORMED,
    }


# the credential: its algorithm, key, id and attestation (§7.1 steps 17-26)


@pytest.mark.parametrize("algorithm", ["ES256", "ES384", "EdDSA", "RS256", "PS256"])
def test_allowed_algorithms_register_and_assert(h: Harness, algorithm: str) -> None:
    key = h.register(algorithm=algorithm)
    assert h.authenticate(key)
    assert h.counts() == [6]


def test_the_options_name_only_the_allowed_algorithms(h: Harness) -> None:
    options = h.passkeys.begin_registration(ALICE, "alice")
    algs = [p["alg"] for p in options["publicKey"]["pubKeyCredParams"]]
    assert algs == list(ALLOWED_ALGORITHMS)
    assert -65535 not in algs  # RS1: SHA-1


def test_a_disallowed_algorithm_is_refused(h: Harness) -> None:
    key = SoftAuthenticator(origin=ORIGIN, algorithm="RS1")
    assert h.try_register(key).reason is PasskeyReason.INVALID
    assert h.passkeys.registered("alice") == ()


@pytest.mark.parametrize("bits", [1024, 1536])
def test_a_weak_rsa_key_is_refused(h: Harness, bits: int) -> None:
    key = SoftAuthenticator(origin=ORIGIN, algorithm="RS256", rsa_bits=bits)
    assert h.try_register(key).reason is PasskeyReason.INVALID
    assert h.passkeys.registered("alice") == ()


def test_an_ec_key_on_the_wrong_curve_is_refused(h: Harness) -> None:
    key = SoftAuthenticator(origin=ORIGIN, algorithm="ES384")
    cose = dict(key.public_key)
    cose[3] = -7  # says ES256, the point is on P-384
    answer = _with_public_key(h, key, cose)
    assert answer.reason is PasskeyReason.INVALID


def test_an_ec_point_off_the_curve_is_refused(h: Harness) -> None:
    key = SoftAuthenticator(origin=ORIGIN)
    cose = dict(key.public_key)
    cose[-3] = bytes(32)  # y = 0: not on P-256
    assert _with_public_key(h, key, cose).reason is PasskeyReason.INVALID


def _with_public_key(h: Harness, key: SoftAuthenticator, cose: dict[int, Any]) -> Any:
    options = h.passkeys.begin_registration(ALICE, "alice")
    answer = key.create(options)
    attestation = cbor.decode(_unb64(answer["response"]["attestationObject"]))
    auth_data = attestation["authData"]
    head = 37 + 16 + 2 + len(key.credential_id)
    attestation["authData"] = auth_data[:head] + cbor.encode(cose)
    answer["response"]["attestationObject"] = _b64(cbor.encode(attestation))
    result = h.passkeys.finish_registration(ALICE, answer)
    assert h.passkeys.registered("alice") == () or result
    return result


def test_packed_self_attestation_is_verified(h: Harness) -> None:
    good = SoftAuthenticator(origin=ORIGIN, attestation="packed")
    assert h.try_register(good)
    bad = SoftAuthenticator(origin=ORIGIN, attestation="packed", bad_attestation_signature=True)
    assert h.try_register(bad).reason is PasskeyReason.INVALID
    assert [p.credential_id for p in h.passkeys.registered("alice")] == [_b64(good.credential_id)]


@pytest.mark.parametrize(
    ("fmt", "statement"),
    [
        ("none", {"sig": b"x"}),
        ("packed", {}),
        ("packed", {"alg": -8, "sig": b"x"}),
        ("packed", {"alg": -7, "sig": b"x", "x5c": [b"not a certificate"]}),
        ("fido-u2f", {"sig": b"x", "x5c": [b"x"]}),
        ("tpm", {}),
        ("apple", {}),
        ("android-key", {}),
        ("made-up", {}),
        ("", {}),
    ],
)
def test_a_bad_or_unknown_attestation_statement_is_refused(
    h: Harness, fmt: str, statement: dict[str, Any]
) -> None:
    key = SoftAuthenticator(origin=ORIGIN, attestation=fmt, attestation_statement=statement)
    assert h.try_register(key).reason is PasskeyReason.INVALID
    assert h.passkeys.registered("alice") == ()


@pytest.mark.parametrize("fmt", [7, b"none", ["none"]])
def test_an_attestation_format_of_the_wrong_type_is_malformed(h: Harness, fmt: Any) -> None:
    key = SoftAuthenticator(origin=ORIGIN)
    options = h.passkeys.begin_registration(ALICE, "alice")
    answer = key.create(options)
    attestation = cbor.decode(_unb64(answer["response"]["attestationObject"]))
    attestation["fmt"] = fmt
    answer["response"]["attestationObject"] = _b64(cbor.encode(attestation))
    assert h.passkeys.finish_registration(ALICE, answer).reason is PasskeyReason.MALFORMED
    assert h.passkeys.registered("alice") == ()


def test_credential_id_limit(h: Harness) -> None:
    """§7.1: a credential id longer than 1023 bytes is refused."""
    assert MAX_CREDENTIAL_ID_BYTES == 1023
    longest = h.register(credential_id=b"\x01" * 1023)
    assert h.authenticate(longest)
    too_long = SoftAuthenticator(origin=ORIGIN, credential_id=b"\x02" * 1024)
    assert h.try_register(too_long).reason is PasskeyReason.INVALID
    assert len(h.passkeys.registered("alice")) == 1


def test_response_ids_must_name_the_credential(h: Harness) -> None:
    other = _b64(b"another credential id")
    key = SoftAuthenticator(origin=ORIGIN, response_id=other)
    assert h.try_register(key).reason is PasskeyReason.MALFORMED
    key = h.register()
    key.response_id = other
    assert h.authenticate(key).reason is PasskeyReason.MALFORMED
    assert h.counts() == [5]


def test_raw_id_must_be_the_attested_credential_id(h: Harness) -> None:
    key = SoftAuthenticator(origin=ORIGIN)
    options = h.passkeys.begin_registration(ALICE, "alice")
    answer = key.create(options)
    answer["id"] = answer["rawId"] = _b64(b"an id the authenticator did not make")
    assert h.passkeys.finish_registration(ALICE, answer).reason is PasskeyReason.INVALID
    assert h.passkeys.registered("alice") == ()


def test_a_credential_of_another_user_cannot_be_registered_again(h: Harness) -> None:
    """§7.1 step 26: an id registered to Alice is refused for Bob (and for Alice)."""
    alices = h.register()
    bobs = SoftAuthenticator(origin=ORIGIN, credential_id=alices.credential_id)
    assert h.try_register(bobs, BOB).reason is PasskeyReason.DUPLICATE
    assert h.passkeys.registered("bob") == ()
    assert h.authenticate(alices)  # Alice's passkey is untouched


# the assertion: whose credential, allowCredentials, the user handle (§7.2 5-7)


def test_a_credential_added_after_the_options_is_not_in_the_allow_list(h: Harness) -> None:
    first = h.register()
    options = h.options()
    second = h.register()  # allowCredentials named only the first
    assert h.passkeys.finish_authentication(ALICE, second.get(options)).reason is (
        PasskeyReason.UNKNOWN_CREDENTIAL
    )
    assert h.passkeys.finish_authentication(ALICE, first.get(h.options()))


def test_the_last_passkey_removed_mid_ceremony_is_refused(h: Harness) -> None:
    key = h.register()
    options = h.options()
    (passkey,) = h.passkeys.registered("alice")
    assert h.passkeys.remove("alice", passkey.credential_id, removed_by="alice")
    assert h.passkeys.registered("alice") == ()
    result = h.passkeys.finish_authentication(ALICE, key.get(options))
    assert result.reason is PasskeyReason.UNKNOWN_CREDENTIAL
    assert h.passkeys.begin_authentication(ALICE) is None  # offer another method


@pytest.mark.parametrize("handle", [b"", b"bob", b"alice\x00", b"ALICE", b"alice "])
def test_a_user_handle_naming_anyone_else_is_refused(h: Harness, handle: bytes) -> None:
    key = h.register()
    key.user_handle = handle
    assert h.authenticate(key).reason is PasskeyReason.UNKNOWN_CREDENTIAL
    assert h.counts() == [5]


# the signature counter (§7.2 step 21)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stored=st.integers(0, 2**32 - 2), presented=st.integers(0, 2**32 - 2))
def test_the_counter_only_moves_forward(stored: int, presented: int) -> None:
    h = Harness()
    key = h.register(counter=stored)
    key.counter = presented
    options = h.options()
    answer = key.get(options)
    presented = key.counter  # get() moved a nonzero counter on by one
    result = h.passkeys.finish_authentication(ALICE, answer)
    forward = presented > stored or presented == stored == 0
    assert bool(result) is forward
    assert h.counts() == [presented if forward else stored]
    regressed = [e for e in h.events if isinstance(e, PasskeyCounterRegressed)]
    assert bool(regressed) is not forward
    if not forward:
        assert result.reason is PasskeyReason.COUNTER
        assert (regressed[0].stored, regressed[0].presented) == (stored, presented)


# challenges: lifetime at the boundary, bound to session, ceremony and sign-in


def test_challenge_expires_exactly_at_its_ttl(h: Harness) -> None:
    key = h.register()
    options = h.options()
    h.clock.advance(RP.challenge_ttl)
    assert h.passkeys.finish_authentication(ALICE, key.get(options)).reason is (
        PasskeyReason.CHALLENGE
    )
    options = h.options()
    h.clock.advance(RP.challenge_ttl - 0.001)
    assert h.passkeys.finish_authentication(ALICE, key.get(options))


def test_challenges_do_not_cross_ceremonies(h: Harness) -> None:
    key = h.register()
    reauth = h.options()
    sign_in = h.passkeys.begin_sign_in("alice", PENDING)
    assert sign_in is not None
    assert h.passkeys.finish_sign_in("alice", PENDING, key.get(reauth)).reason is (
        PasskeyReason.CHALLENGE
    )
    assert h.passkeys.finish_authentication(ALICE, key.get(sign_in)).reason is (
        PasskeyReason.CHALLENGE
    )
    bound = h.options(transaction="pay 10 EUR to bob")
    assert h.passkeys.finish_authentication(ALICE, key.get(bound)).reason is (
        PasskeyReason.CHALLENGE
    )
    assert h.counts() == [5]


def test_a_challenge_after_sign_out_is_worthless(h: Harness) -> None:
    """Signing out ends the session: its challenges are bound to its id."""
    key = h.register()
    options = h.options()
    signed_in_again = Subject("alice", "session-after-sign-out")
    result = h.passkeys.finish_authentication(signed_in_again, key.get(options))
    assert result.reason is PasskeyReason.CHALLENGE


# payloads: shapes and types; at sign-in only a well-formed answer is charged


def _mutations() -> st.SearchStrategy[tuple[tuple[str, ...], Any]]:
    paths = st.sampled_from(
        [
            ("id",),
            ("rawId",),
            ("type",),
            ("response",),
            ("response", "clientDataJSON"),
            ("response", "authenticatorData"),
            ("response", "signature"),
            ("response", "userHandle"),
        ]
    )
    junk = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
        max_leaves=6,
    )
    return st.tuples(paths, junk)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutation=_mutations())
def test_a_field_of_another_type_is_refused_and_changes_nothing(mutation: Any) -> None:
    path, value = mutation
    h = Harness()
    key = h.register()
    answer = key.get(h.options())
    target = answer
    for step in path[:-1]:
        target = target[step]
    if target.get(path[-1]) == value or (path[-1] == "userHandle" and value is None):
        return  # unchanged, or a null user handle (allowed: the browser may send none)
    target[path[-1]] = value
    result = h.passkeys.finish_authentication(ALICE, answer)
    assert not result
    assert h.counts() == [5]


def test_at_sign_in_malformed_is_free_and_a_wrong_assertion_is_charged(h: Harness) -> None:
    key = h.register()
    throttle = "passkey-sign-in:alice"
    for payload in ["[]", '{"id": 7}', json.dumps({"response": "x"})]:
        h.passkeys.begin_sign_in("alice", PENDING)
        assert h.passkeys.finish_sign_in("alice", PENDING, payload).reason is (
            PasskeyReason.MALFORMED
        )
    assert h.store.throttle_state(throttle).failures == 0
    options = h.passkeys.begin_sign_in("alice", PENDING)
    assert options is not None
    key.origin = "https://evil.example"  # well-formed, and wrong
    assert h.passkeys.finish_sign_in("alice", PENDING, key.get(options)).reason is (
        PasskeyReason.INVALID
    )
    assert h.store.throttle_state(throttle).failures == 1


def test_an_oversized_mapping_payload_is_malformed(h: Harness) -> None:
    key = h.register()
    answer = key.get(h.options())
    answer["padding"] = "x" * 20_000
    assert h.passkeys.finish_authentication(ALICE, answer).reason is PasskeyReason.MALFORMED
    assert h.counts() == [5]


# names


@settings(max_examples=100, deadline=None)
@given(name=st.text(max_size=200))
def test_names_are_one_printable_short_line(name: str) -> None:
    h = Harness()
    h.register()
    (passkey,) = h.passkeys.registered("alice")
    assert h.passkeys.rename("alice", passkey.credential_id, name)
    (renamed,) = h.passkeys.registered("alice")
    assert 1 <= len(renamed.name) <= 64
    assert renamed.name == renamed.name.strip()
    assert not any(unicodedata.category(c) in {"Cc", "Cf", "Zl", "Zp", "Cs"} for c in renamed.name)


def test_control_and_bidi_characters_are_dropped_from_names(h: Harness) -> None:
    h.register()
    (passkey,) = h.passkeys.registered("alice")
    name = "my\x00 ke\x1by\u202e\u200b \x7f<b>x</b>"
    assert h.passkeys.rename("alice", passkey.credential_id, name)
    assert h.passkeys.registered("alice")[0].name == "my key <b>x</b>"


@pytest.mark.parametrize("name", [None, 7, ["x"], b"bytes"])
def test_a_name_that_is_not_text_is_malformed(h: Harness, name: Any) -> None:
    h.register()
    (passkey,) = h.passkeys.registered("alice")
    with pytest.raises(MalformedInputError):
        h.passkeys.rename("alice", passkey.credential_id, name)
    assert h.passkeys.registered("alice")[0].name == "Key"
    options = h.passkeys.begin_registration(ALICE, "alice")
    fresh = SoftAuthenticator(origin=ORIGIN)
    result = h.passkeys.finish_registration(ALICE, fresh.create(options), name)
    assert result.reason is PasskeyReason.MALFORMED
    assert len(h.passkeys.registered("alice")) == 1


# nothing secret anywhere


def test_no_challenge_or_key_material_in_logs_events_reprs_or_errors(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key = h.register()
    options = h.options()
    challenge = options["publicKey"]["challenge"]
    answer = key.get(options)
    results = [h.passkeys.finish_authentication(ALICE, answer)]
    results.append(h.passkeys.finish_authentication(ALICE, answer))  # replayed
    (passkey,) = h.passkeys.registered("alice")
    seen = [caplog.text, *map(repr, h.events), *map(repr, results), repr(passkey), repr(key)]
    seen += [repr(c) for c in h.store._challenges.values()]
    for text in seen:
        assert challenge not in text
        assert answer["response"]["signature"] not in text
        assert passkey.credential_data not in text
    assert "_key" not in repr(key)


def test_results_never_carry_the_stored_key(h: Harness) -> None:
    key = h.register()
    result = h.authenticate(key)
    assert result.passkey is not None
    assert result.passkey.credential_data not in repr(result)
    assert replace(result.passkey, name="x").credential_data not in repr(result)


def test_a_stored_challenge_does_not_show_its_value(h: Harness) -> None:
    h.register()
    challenge = h.options()["publicKey"]["challenge"]
    (stored,) = h.store._challenges.values()
    assert challenge not in repr(stored)
    assert challenge in stored.challenge_id  # (it is there, only not shown)


@pytest.mark.parametrize(
    ("token_binding", "ok"),
    [
        ({"status": "present", "id": "abc"}, False),
        ({"status": "present"}, False),
        ("present", False),
        ({"status": 7}, False),
        ({"status": "supported"}, True),
        ({"status": "not-supported"}, True),
    ],
)
def test_token_binding_in_use_cannot_be_verified_and_is_refused(
    h: Harness, token_binding: Any, ok: bool
) -> None:
    """Level 2 §7.2 step 14: stepup has no Token Binding id to compare with."""
    key = h.register()
    key.client_data = {"tokenBinding": token_binding}
    result = h.authenticate(key)
    assert bool(result) is ok
    if not ok:
        assert result.reason is PasskeyReason.INVALID


@settings(max_examples=200, deadline=None)
@given(origin=st.text(max_size=40) | st.sampled_from(ORIGIN_VARIANTS))
def test_only_the_exact_origin_is_allowed(origin: str) -> None:
    assert RP.allows(origin) is (origin == ORIGIN)


def test_a_long_user_id_gets_a_64_byte_user_handle(h: Harness) -> None:
    """Browsers refuse a user.id over 64 bytes: a long user id is hashed instead."""
    long = Subject("u" * 65, "session-long")
    options = h.passkeys.begin_registration(long, "long")
    handle = _unb64(options["publicKey"]["user"]["id"])
    assert len(handle) == 32
    short = h.passkeys.begin_registration(Subject("u" * 64, "s"), "short")
    assert _unb64(short["publicKey"]["user"]["id"]) == b"u" * 64
    key = SoftAuthenticator(origin=ORIGIN, counter=1)
    assert h.passkeys.finish_registration(long, key.create(options))
    assert key.user_handle == handle
    assert h.passkeys.finish_authentication(long, key.get(h.options(long)))
    key.user_handle = b"u" * 65  # the plain id is not its handle
    assert h.passkeys.finish_authentication(long, key.get(h.options(long))).reason is (
        PasskeyReason.UNKNOWN_CREDENTIAL
    )


def test_nobody_renames_or_removes_another_users_passkey(h: Harness) -> None:
    h.register()
    (alices,) = h.passkeys.registered("alice")
    assert not h.passkeys.rename("bob", alices.credential_id, "mine now")
    assert not h.passkeys.remove("bob", alices.credential_id, removed_by="bob")
    assert h.passkeys.registered("alice") == (alices,)


async def test_the_async_ceremonies_refuse_the_same_forgeries() -> None:
    from stepup.passkeys import AsyncPasskeys

    clock = SettableClock(1_700_000_000.25)
    passkeys = AsyncPasskeys(MemoryStore(), RP, clock=clock)
    key = SoftAuthenticator(origin=ORIGIN, counter=1)
    options = await passkeys.begin_registration(ALICE, "alice")
    assert await passkeys.finish_registration(ALICE, key.create(options))
    for bend in [
        {"crossOrigin": True},
        {"origin": ORIGIN + "/"},
        {"type": "webauthn.create"},
    ]:
        key.client_data = bend
        options = await passkeys.begin_authentication(ALICE)
        assert options is not None
        result = await passkeys.finish_authentication(ALICE, key.get(options))
        assert result.reason is PasskeyReason.INVALID
    key.client_data = {}
    options = await passkeys.begin_authentication(ALICE)
    assert options is not None
    padded = options["publicKey"]["challenge"] + "="
    result = await passkeys.finish_authentication(ALICE, key.get(options, challenge=padded))
    assert result.reason is PasskeyReason.CHALLENGE
    assert await passkeys.finish_authentication(ALICE, key.get(options))


def test_a_registration_without_attested_credential_data_is_malformed(h: Harness) -> None:
    """AT unset and nothing after the counter: no credential to register (python-fido2
    would assert, an error page; stepup refuses)."""
    key = SoftAuthenticator(origin=ORIGIN)
    options = h.passkeys.begin_registration(ALICE, "alice")
    answer = key.create(options)
    attestation = cbor.decode(_unb64(answer["response"]["attestationObject"]))
    auth_data = attestation["authData"]
    attestation["authData"] = auth_data[:32] + bytes([int(F.UP | F.UV)]) + auth_data[33:37]
    answer["response"]["attestationObject"] = _b64(cbor.encode(attestation))
    assert h.passkeys.finish_registration(ALICE, answer).reason is PasskeyReason.MALFORMED
    assert h.passkeys.registered("alice") == ()
    assert h.passkeys.finish_registration(ALICE, key.create(options))  # not spent


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    part=st.sampled_from(["clientDataJSON", "authenticatorData", "signature"]),
    data=st.data(),
)
def test_any_changed_byte_of_an_assertion_is_refused(part: str, data: st.DataObject) -> None:
    h = Harness()
    key = h.register()
    options = h.options()
    answer = key.get(options)
    raw = bytearray(_unb64(answer["response"][part]))
    index = data.draw(st.integers(0, 4095)) % len(raw)
    raw[index] ^= data.draw(st.integers(1, 255))
    answer["response"][part] = _b64(bytes(raw))
    assert not h.passkeys.finish_authentication(ALICE, answer)
    assert h.counts() == [5]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_changed_byte_of_a_registration_never_raises(data: st.DataObject) -> None:
    """Registration bytes are not all signed ("none" attestation): a change may pass
    as another valid credential, but nothing raises, and what is stored is well formed."""
    h = Harness()
    options = h.passkeys.begin_registration(ALICE, "alice")
    answer = SoftAuthenticator(origin=ORIGIN).create(options)
    part = data.draw(st.sampled_from(["clientDataJSON", "attestationObject"]))
    raw = bytearray(_unb64(answer["response"][part]))
    index = data.draw(st.integers(0, 4095)) % len(raw)
    raw[index] ^= data.draw(st.integers(1, 255))
    answer["response"][part] = _b64(bytes(raw))
    result = h.passkeys.finish_registration(ALICE, answer)
    if result:
        assert result.passkey is not None
        assert len(_unb64(result.passkey.credential_id)) <= MAX_CREDENTIAL_ID_BYTES


def test_one_assertion_presented_by_many_threads_at_once_passes_once(h: Harness) -> None:
    from concurrent.futures import ThreadPoolExecutor

    key = h.register()
    answer = key.get(h.options())
    with ThreadPoolExecutor(8) as pool:
        results = list(
            pool.map(lambda _: h.passkeys.finish_authentication(ALICE, answer), range(16))
        )
    assert sum(bool(r) for r in results) == 1
    assert {r.reason for r in results if not r} == {PasskeyReason.CHALLENGE}
    assert h.counts() == [6]


def test_cloned_assertions_with_one_counter_at_once_pass_once(h: Harness) -> None:
    """Each with its own challenge, all signing counter 6 (a cloned key): the
    compare-and-set lets one through; the others are `counter`, and evented."""
    from concurrent.futures import ThreadPoolExecutor

    key = h.register()
    answers = []
    for _ in range(8):
        key.counter = 5
        answers.append(key.get(h.options()))
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda a: h.passkeys.finish_authentication(ALICE, a), answers))
    assert sum(bool(r) for r in results) == 1
    assert {r.reason for r in results if not r} == {PasskeyReason.COUNTER}
    assert h.counts() == [6]
    regressed = [e for e in h.events if isinstance(e, PasskeyCounterRegressed)]
    assert len(regressed) == 7


@pytest.mark.parametrize("kty", [1, 3, 4, None])
def test_a_key_of_another_type_than_its_algorithm_is_refused(h: Harness, kty: Any) -> None:
    key = SoftAuthenticator(origin=ORIGIN)
    cose = dict(key.public_key)
    if kty is None:
        del cose[1]
    else:
        cose[1] = kty
    assert _with_public_key(h, key, cose).reason is PasskeyReason.INVALID


@pytest.mark.parametrize(
    "bend",
    [
        {"user_present": False},
        {"backup_eligible": False, "backup_state": True},
        {"cross_origin": True},
        {"top_origin": ORIGIN},
        {"client_data_type": "webauthn.create"},
    ],
    ids=["no-up", "bs-without-be", "cross-origin", "top-origin", "type"],
)
def test_the_authenticator_forges_one_thing_at_a_time(h: Harness, bend: dict[str, Any]) -> None:
    key = h.register()
    for name, value in bend.items():
        setattr(key, name, value)
    assert h.authenticate(key).reason is PasskeyReason.INVALID
    assert h.counts() == [5]


def test_backup_state_may_be_cleared_on_an_eligible_passkey(h: Harness) -> None:
    key = h.register(backup_eligible=True, counter=0)
    key.backup_state = False
    assert h.authenticate(key)
    assert h.passkeys.registered("alice")[0].backup_state is False


def test_a_challenge_is_bound_to_the_user_as_well_as_the_session(h: Harness) -> None:
    key = h.register()
    h.register(BOB)
    options = h.options()
    same_session_other_user = Subject("bob", ALICE.session_id)
    result = h.passkeys.finish_authentication(same_session_other_user, key.get(options))
    assert result.reason is PasskeyReason.CHALLENGE
    # and it is spent: presenting it again as Alice finds nothing
    assert h.passkeys.finish_authentication(ALICE, key.get(options)).reason is (
        PasskeyReason.CHALLENGE
    )
