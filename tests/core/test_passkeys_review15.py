"""Passkey review 15, the core: a crafted attestation statement of any format is a typed
refusal (never an exception), a rule's offered alternative decides which passkeys may
answer (``hwk`` only device-bound ones, ``swk`` only synced ones), a user at the limit
gets no registration options, a relying party no browser could match fails at
construction, and every WebAuthn transport is kept."""

from __future__ import annotations

import base64
import datetime
import hashlib
import re
from functools import cache
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from fido2 import cbor
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stepup.adapters.storage import MemoryStore
from stepup.errors import ConfigurationError, MalformedInputError
from stepup.events import EventBus, StepupEvent
from stepup.passkeys import (
    PasskeyLimitError,
    PasskeyReason,
    PasskeyRejected,
    Passkeys,
    RelyingParty,
)
from stepup.policy import Policy, Rule, Sensitivity
from stepup.reauth import Reauth
from stepup.subject import Subject
from stepup.testing import SettableClock
from stepup.testing.webauthn import SoftAuthenticator

ORIGIN = "https://app.example.com"
RP = RelyingParty(id="example.com", name="Example", origins=(ORIGIN,))
ALICE = Subject("alice", "session-a")


class Harness:
    def __init__(self, rp: RelyingParty = RP) -> None:
        self.clock = SettableClock(1_700_000_000.25)
        self.events: list[StepupEvent] = []
        self.store = MemoryStore()
        self.passkeys = Passkeys(
            self.store,
            rp,
            clock=self.clock,
            events=EventBus(self.events.append),
            user_handle_key="k",
        )

    def register(self, **kwargs: Any) -> SoftAuthenticator:
        kwargs.setdefault("counter", 5)
        key = SoftAuthenticator(origin=ORIGIN, **kwargs)
        options = self.passkeys.begin_registration(ALICE, "alice")
        assert self.passkeys.finish_registration(ALICE, key.create(options), "Key")
        return key

    def rejections(self) -> list[str]:
        return [e.reason for e in self.events if isinstance(e, PasskeyRejected)]

    def counts(self) -> list[int]:
        return [p.sign_count for p in self.passkeys.registered("alice")]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# certificates the tests make themselves -----------------------------------------------

_APPLE = x509.ObjectIdentifier("1.2.840.113635.100.8.2")
_ANDROID_KEY = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.1.17")
_AAGUID = x509.ObjectIdentifier("1.3.6.1.4.1.45724.1.1.4")


def _subject(common_name: str = "x", unit: str = "Authenticator Attestation") -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _certificate(key: Any, *, ca: bool = False, extra: tuple[Any, ...] = (), **name: str) -> bytes:
    """A self-signed certificate for ``key`` (the subject packed attestation asks for),
    with ``extra`` extensions ((value, critical) pairs)."""
    subject = _subject(**name)
    start = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=36500))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    for value, critical in extra:
        builder = builder.add_extension(value, critical=critical)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


@cache
def _ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@cache
def _rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@cache
def _certificates() -> dict[str, bytes]:
    """One of each shape a verifier trips on: an EC and an RSA key, a CA, an AAGUID
    extension marked critical, an Apple and an Android extension holding junk."""
    junk = x509.UnrecognizedExtension
    return {
        "ec": _certificate(_ec_key()),
        "rsa": _certificate(_rsa_key()),
        "ca": _certificate(_ec_key(), ca=True),
        "aaguid": _certificate(_ec_key(), extra=((junk(_AAGUID, b"\x04\x10" + b"\0" * 16), True),)),
        "apple": _certificate(_ec_key(), extra=((junk(_APPLE, b"\x30\x03\x02\x01\x00"), False),)),
        "android": _certificate(_ec_key(), extra=((junk(_ANDROID_KEY, b"\x30\x00"), False),)),
        "safetynet": _certificate(_rsa_key(), common_name="attest.android.com"),
        "wrong-unit": _certificate(_ec_key(), unit="Something else"),
    }


def _sign(cert: str, message: bytes) -> bytes:
    if cert in ("rsa", "safetynet"):
        from cryptography.hazmat.primitives.asymmetric import padding

        return _rsa_key().sign(message, padding.PKCS1v15(), hashes.SHA256())
    return _ec_key().sign(message, ec.ECDSA(hashes.SHA256()))


def _jwt(header: Any, payload: Any, signature: bytes = b"sig") -> bytes:
    import json

    parts = [json.dumps(header).encode(), json.dumps(payload).encode(), signature]
    return b".".join(_b64(p).encode() for p in parts)


# 1. attestation statements of every format: a refusal, never an exception ----------


def _register_with(h: Harness, fmt: str, statement: dict[str, Any], sign: str = "") -> Any:
    """Register with ``statement``; ``sign``: the certificate whose key signs, correctly,
    what the format's signature covers (so a verifier gets past the signature)."""
    key = SoftAuthenticator(origin=ORIGIN, attestation=fmt, attestation_statement=statement)
    answer = key.create(h.passkeys.begin_registration(ALICE, "alice"))
    if sign:
        attestation = cbor.decode(_unb64(answer["response"]["attestationObject"]))
        auth_data = attestation["authData"]
        client_hash = hashlib.sha256(_unb64(answer["response"]["clientDataJSON"])).digest()
        message = auth_data + client_hash
        if fmt == "fido-u2f":
            point = key._key.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
            message = b"\0" + auth_data[:32] + client_hash + key.credential_id + point
        attestation["attStmt"] = {**statement, "sig": _sign(sign, message)}
        answer["response"]["attestationObject"] = _b64(cbor.encode(attestation))
    return h.passkeys.finish_registration(ALICE, answer, "Key")


def _assert_refused_cleanly(h: Harness, result: Any, reason: PasskeyReason) -> None:
    assert result.reason is reason
    assert h.passkeys.registered("alice") == ()
    assert h.rejections() == [reason.value]


@pytest.mark.parametrize(
    ("fmt", "statement"),
    [
        # the reviewer's four: AssertionError, AssertionError, ExtensionNotFound,
        # AttributeError out of python-fido2 (a 500 in every framework)
        ("packed", {"alg": -7, "sig": b"\x30\x00", "x5c": ["rsa"]}),
        ("fido-u2f", {"sig": b"\x30\x00", "x5c": ["rsa"]}),
        ("apple", {"x5c": ["ec"]}),
        ("android-safetynet", {"ver": "1", "response": 5}),
        # and more of the same kind
        ("packed", {"alg": -257, "sig": b"\x30\x00", "x5c": ["ec"]}),
        ("packed", {"alg": "x", "sig": b"x", "x5c": ["ec"]}),
        ("packed", {"alg": -7, "sig": b"x", "x5c": "ec"}),
        ("apple", {"x5c": ["apple"]}),
        ("apple", {"x5c": 5}),
        ("android-safetynet", {"ver": "1", "response": b"a.b.c"}),
        ("android-safetynet", {"ver": "1", "response": "a.b.c"}),
        ("tpm", {"ver": "2.0", "alg": -7, "x5c": ["ec"], "sig": b"", "certInfo": 5}),
        ("tpm", {"ver": "2.0", "alg": -257, "x5c": ["rsa"], "sig": b"", "pubArea": b"x"}),
        ("android-key", {"alg": -7, "sig": b"x", "x5c": ["android"]}),
    ],
)
def test_a_crafted_attestation_statement_is_refused_as_invalid(
    fmt: str, statement: dict[str, Any]
) -> None:
    certificates = _certificates()
    if isinstance(statement.get("x5c"), list):
        statement = {**statement, "x5c": [certificates[c] for c in statement["x5c"]]}
    h = Harness()
    _assert_refused_cleanly(h, _register_with(h, fmt, statement), PasskeyReason.INVALID)


def test_a_full_packed_attestation_that_verifies_is_accepted() -> None:
    """The control: a certificate's key signing correctly gets through every check (no
    trust in who made the authenticator, as documented), so the statements the property
    below draws reach the verifiers' deepest steps."""
    h = Harness()
    statement = {"alg": -7, "x5c": [_certificates()["ec"]]}
    assert _register_with(h, "packed", statement, sign="ec")
    assert len(h.passkeys.registered("alice")) == 1


def _field_values() -> st.SearchStrategy[Any]:
    certificates = _certificates()
    cert = st.sampled_from(sorted(certificates)).map(certificates.__getitem__)
    jwt = st.builds(
        _jwt,
        st.fixed_dictionaries({}, optional={"alg": st.sampled_from(["RS256", "x", 5])})
        | st.just({"alg": "RS256", "x5c": [_b64(certificates["safetynet"])]}),
        st.fixed_dictionaries(
            {}, optional={"ctsProfileMatch": st.booleans(), "nonce": st.sampled_from(["", 5])}
        ),
    )
    return st.one_of(
        st.booleans(),
        st.sampled_from([0, -7, -8, -35, -257, -65535, 2**40, "2.0", "1", "", "x"]),
        st.binary(max_size=8),
        st.sampled_from([b"\x30\x00", b"a.b.c"]),
        jwt,
        st.lists(cert, min_size=1, max_size=2),
        st.lists(
            st.one_of(st.binary(max_size=4), st.integers(-(2**40), 2**40), st.text(max_size=2)),
            max_size=2,
        ),
        st.dictionaries(st.integers(-2, 2), st.integers(-(2**40), 2**40), max_size=2),
    )


_FIELDS = {
    "packed": ("alg", "sig", "x5c", "ecdaaKeyId"),
    "fido-u2f": ("sig", "x5c"),
    "apple": ("x5c",),
    "android-key": ("alg", "sig", "x5c"),
    "android-safetynet": ("ver", "response"),
    "tpm": ("ver", "alg", "x5c", "sig", "certInfo", "pubArea"),
}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_attestation_statement_of_any_format_never_raises(data: st.DataObject) -> None:
    """Whatever a statement of each format holds (certificates of other key types,
    extensions holding junk, values of other types, a correct signature over the wrong
    certificate): a registration is refused as ``invalid`` (or ``malformed``) with
    nothing stored and the rejection evented, or accepted and stored; it never raises."""
    fmt = data.draw(st.sampled_from(sorted(_FIELDS)), label="fmt")
    names = _FIELDS[fmt]
    optional = {name: _field_values() for name in names if name != "ecdaaKeyId"}
    statement = data.draw(st.fixed_dictionaries({}, optional=optional), label="statement")
    sign = ""
    if fmt in ("packed", "fido-u2f", "android-key") and isinstance(statement.get("x5c"), list):
        sign = data.draw(st.sampled_from(["", "ec", "rsa"]), label="sign")
    h = Harness()
    result = _register_with(h, fmt, statement, sign=sign)
    if result:
        assert [p.credential_id for p in h.passkeys.registered("alice")] == [
            result.passkey.credential_id
        ]
        return
    assert result.reason in (PasskeyReason.INVALID, PasskeyReason.MALFORMED)
    _assert_refused_cleanly(h, result, result.reason)


# 3. the offered alternative decides which passkeys may answer ---------------------------


def _allowed(options: dict[str, Any]) -> list[str]:
    return [c["id"] for c in options["publicKey"]["allowCredentials"]]


def test_a_rule_asking_for_a_device_bound_passkey_lists_only_those() -> None:
    h = Harness()
    device = h.register(backup_eligible=False)
    synced = h.register(backup_eligible=True, counter=0)
    hwk = h.passkeys.begin_authentication(ALICE, proves=("hwk", "user"))
    swk = h.passkeys.begin_authentication(ALICE, proves=("swk",))
    phr = h.passkeys.begin_authentication(ALICE, proves=("phr", "user"))
    assert hwk is not None
    assert swk is not None
    assert phr is not None
    assert _allowed(hwk) == [_b64(device.credential_id)]
    assert _allowed(swk) == [_b64(synced.credential_id)]
    assert sorted(_allowed(phr)) == sorted(_b64(k.credential_id) for k in (device, synced))


def test_no_passkey_of_the_kind_asked_for_means_no_options() -> None:
    h = Harness()
    h.register(backup_eligible=True, counter=0)
    assert h.passkeys.begin_authentication(ALICE, proves=("hwk", "user")) is None
    assert h.passkeys.begin_authentication(ALICE, proves=("phr",)) is not None


@pytest.mark.parametrize(
    ("asked", "backup_eligible", "reason"),
    [
        (("hwk", "user"), True, PasskeyReason.NEEDS_DEVICE_BOUND),
        (("swk",), False, PasskeyReason.NEEDS_SYNCED),
    ],
)
def test_a_passkey_of_the_wrong_kind_is_refused_with_its_reason(
    asked: tuple[str, ...], backup_eligible: bool, reason: PasskeyReason
) -> None:
    """Options made without the alternative (an app's own begin), the finish told it:
    the assertion is refused with the kind it lacks, its counter is not moved."""
    h = Harness()
    key = h.register(backup_eligible=backup_eligible)
    options = h.passkeys.begin_authentication(ALICE)
    assert options is not None
    result = h.passkeys.finish_authentication(ALICE, key.get(options), proves=asked)
    assert result.reason is reason
    assert not result.methods
    assert h.counts() == [5]
    assert h.rejections() == [reason.value]


def test_the_kind_asked_for_at_the_begin_is_held_at_the_finish() -> None:
    """A synced passkey answering options that listed only device-bound ones is
    refused for its kind (not as unknown), even when the finish is told nothing."""
    h = Harness()
    h.register(backup_eligible=False)
    synced = h.register(backup_eligible=True, counter=0)
    options = h.passkeys.begin_authentication(ALICE, proves=("hwk", "user"))
    assert options is not None
    result = h.passkeys.finish_authentication(ALICE, synced.get(options))
    assert result.reason is PasskeyReason.NEEDS_DEVICE_BOUND


def test_user_verification_is_required_when_the_alternative_names_user() -> None:
    h = Harness()
    key = h.register()
    options = h.passkeys.begin_authentication(ALICE, user_verification=False, proves=("user",))
    assert options is not None
    assert options["publicKey"]["userVerification"] == "required"
    loose = h.passkeys.begin_authentication(ALICE, user_verification=False)
    assert loose is not None
    key.user_verified = False
    result = h.passkeys.finish_authentication(ALICE, key.get(loose), proves=("phr", "user"))
    assert result.reason is PasskeyReason.USER_VERIFICATION


@pytest.mark.parametrize("proves", ["hwk", ("pwd",), ("hwk", "otp"), (5,)])
def test_asking_a_passkey_for_what_it_cannot_prove_is_malformed(proves: Any) -> None:
    h = Harness()
    h.register()
    with pytest.raises(MalformedInputError):
        h.passkeys.begin_authentication(ALICE, proves=proves)


def test_a_device_bound_rule_no_longer_asks_again_in_a_loop() -> None:
    """The reviewer's loop: the rule offers hwk; the synced passkey used to be listed,
    accepted and recorded, and the guard asked again. Now it is never offered, its
    answer is refused (nothing recorded), and the device-bound one satisfies the rule."""
    rule = Rule(Sensitivity.SENSITIVE, always=True, accept=(("hwk", "user"), ("primary",)))
    policy = Policy({"vault.open": rule}).with_passkeys()
    h = Harness()
    reauth = Reauth(h.store, policy, clock=h.clock)
    device = h.register(backup_eligible=False)
    synced = h.register(backup_eligible=True, counter=0)
    asked = reauth.check(ALICE, "vault.open", "t")
    assert not asked.ok
    methods = asked.methods
    options = h.passkeys.begin_authentication(ALICE, proves=methods)
    assert options is not None
    assert _allowed(options) == [_b64(device.credential_id)]
    refused = h.passkeys.finish_authentication(ALICE, synced.get(options), proves=methods)
    assert refused.reason is PasskeyReason.NEEDS_DEVICE_BOUND
    options = h.passkeys.begin_authentication(ALICE, proves=methods)
    assert options is not None
    result = h.passkeys.finish_authentication(ALICE, device.get(options), proves=methods)
    assert result
    reauth.record(ALICE, sorted(result.methods))
    assert reauth.check(ALICE, "vault.open", "t").ok


# 4. no registration options at the limit -----------------------------------------------


class _CountingStore(MemoryStore):
    """A memory store that counts the challenges put: a ceremony begun puts one."""

    def __init__(self) -> None:
        super().__init__()
        self.challenges_put = 0

    def put_challenge(self, challenge: Any) -> None:
        self.challenges_put += 1
        super().put_challenge(challenge)


def test_a_user_at_the_limit_gets_no_registration_options() -> None:
    h = Harness(
        RelyingParty(id="example.com", name="x", origins=(ORIGIN,), max_passkeys_per_user=2)
    )
    h.store = _CountingStore()
    h.passkeys.store = h.store
    h.register()
    h.register()
    before = h.store.challenges_put
    with pytest.raises(PasskeyLimitError) as refused:
        h.passkeys.begin_registration(ALICE, "alice")
    assert refused.value.limit == 2
    assert "as many passkeys as allowed" in str(refused.value)
    assert h.store.challenges_put == before  # no ceremony begun
    assert len(h.passkeys.registered("alice")) == 2


# 5. a relying party no browser could match fails at construction --------------------


@pytest.mark.parametrize(
    ("rp_id", "origin", "cause"),
    [
        ("example.com", "https://user:pw@app.example.com", "user name or password"),
        ("example.com", "https://app.example.com?", "query"),
        ("example.com", "https://app.example.com#", "fragment"),
        ("bücher.example", "https://bücher.example", "xn--bcher-kva.example"),
        ("example.com", "https://bücher.example.com", "not ASCII"),
        ("127.0.0.1", "https://127.0.0.1", "IP address"),
        ("com", "https://example.com", "single label"),
        ("example.com", "https://app.example.com:99999", "port"),
        ("example.com", "https://app.example.com:0", "port"),
        ("example.com", "https://app.example.com:x", "port"),
        ("example.com", "https://*.example.com", "'*'"),
        ("example..com", "https://a.example..com", "lower-case domain"),
        ("example.com", "https://app.example.com /", "spaces"),
        ("example.com", "http://app.example.com", "https"),
        ("example.com", "https://example.org", "not within"),
    ],
)
def test_a_relying_party_no_browser_could_match_is_refused(
    rp_id: str, origin: str, cause: str
) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(cause)):
        RelyingParty(id=rp_id, name="x", origins=(origin,))


def test_a_default_port_is_kept_as_browsers_serialise_the_origin() -> None:
    rp = RelyingParty(
        id="example.com",
        name="x",
        origins=(
            "https://app.example.com:443",
            "HTTPS://Other.Example.com/",
            "https://c.example.com:8443",
        ),
    )
    assert rp.origins == (
        "https://app.example.com",
        "https://other.example.com",
        "https://c.example.com:8443",
    )
    h = Harness(rp)
    key = SoftAuthenticator(origin="https://app.example.com")  # what the browser sends
    assert h.passkeys.finish_registration(
        ALICE, key.create(h.passkeys.begin_registration(ALICE, "alice"))
    )


def test_localhost_works_for_development() -> None:
    rp = RelyingParty(
        id="localhost", name="x", origins=("http://localhost:8000", "http://localhost:80")
    )
    assert rp.origins == ("http://localhost:8000", "http://localhost")


_SERIALISED = re.compile(r"https?://[a-z0-9.-]+(:[1-9][0-9]{0,4})?")


@settings(max_examples=200, deadline=None)
@given(
    origin=st.from_regex(r"\A(https?|HTTPS)://[a-zA-Z0-9.*@:_\-\[\]%ü ]{0,30}(:[0-9]{0,6})?/?\Z")
    | st.text(max_size=40)
)
def test_every_origin_kept_is_one_a_browser_can_send(origin: str) -> None:
    try:
        rp = RelyingParty(id="example.com", name="x", origins=(origin,))
    except ConfigurationError:
        return
    (kept,) = rp.origins
    assert _SERIALISED.fullmatch(kept), kept
    assert not kept.endswith((":443", ":80"))
    host = kept.split("://", 1)[1].split(":", 1)[0]
    assert host == "example.com" or host.endswith(".example.com")


# the transports a browser reports --------------------------------------------------------


def test_every_webauthn_transport_is_kept_and_junk_is_not() -> None:
    h = Harness()
    key = SoftAuthenticator(origin=ORIGIN)
    answer = key.create(h.passkeys.begin_registration(ALICE, "alice"))
    reported = ["usb", "nfc", "ble", "smart-card", "hybrid", "internal", "USB", "ü"]
    answer["response"]["transports"] = reported
    result = h.passkeys.finish_registration(ALICE, answer)
    assert result.passkey is not None
    assert result.passkey.transports == ("usb", "nfc", "ble", "smart-card", "hybrid", "internal")
