"""A software authenticator, for testing passkey flows without a browser.

It answers the options :class:`stepup.passkeys.Passkeys` produces with the JSON a
browser would post (``PublicKeyCredential.toJSON()``), signing with a key it keeps in
memory (P-256 unless ``algorithm`` names another). Every field can be bent, so tests
can forge what a hostile client would send: another origin or type in the client
data, ``crossOrigin``, a challenge in another encoding, flags that lie, authenticator
extensions, a disallowed algorithm or a weak RSA key, an attestation statement (self
attestation, with a good or a bad signature), an over-long credential id, a replayed
challenge, a counter that goes backwards or a missing UV flag.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from fido2 import cbor
from fido2.cose import ES256, ES384, PS256, RS1, RS256, CoseKey, EdDSA
from fido2.webauthn import AuthenticatorData

__all__ = ["SoftAuthenticator"]

_FLAG = AuthenticatorData.FLAG
#: The signing algorithms the authenticator can use (COSE names), with their keys.
_ALGORITHMS: dict[str, type[CoseKey]] = {
    "ES256": ES256,
    "ES384": ES384,
    "EdDSA": EdDSA,
    "RS256": RS256,
    "PS256": PS256,
    "RS1": RS1,
}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _new_key(algorithm: str, rsa_bits: int) -> Any:
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "ES384":
        return ec.generate_private_key(ec.SECP384R1())
    if algorithm == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    if algorithm in ("RS256", "PS256", "RS1"):
        return rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
    raise ValueError(f"unknown algorithm {algorithm!r}")


@dataclass
class SoftAuthenticator:
    """One credential on one authenticator. ``counter`` is its signature counter: each
    assertion moves it on by one first, unless it is 0 (an authenticator that does not
    count, as synced passkeys do). Set it back to simulate a clone.

    To forge: ``user_present``, ``backup_state`` (BS apart from BE), ``cross_origin``,
    ``top_origin`` and ``client_data_type`` bend one thing each; ``client_data``
    entries replace (``None``: drop) those of the client data JSON; ``flags`` replaces
    the flags the authenticator would set; ``extensions``
    is appended to the authenticator data as its extension output (CBOR bytes, with ED
    set); ``attestation`` is ``"none"``, ``"packed"`` (self attestation) or any other
    format name (with ``attestation_statement``); ``bad_attestation_signature`` spoils
    the packed signature; ``response_id`` replaces the ``id`` field."""

    origin: str
    rp_id: str | None = None  # defaults to the one in the options
    user_verified: bool = True
    backup_eligible: bool = False
    counter: int = 0
    credential_id: bytes = field(default_factory=lambda: secrets.token_bytes(16))
    user_handle: bytes | None = None
    user_present: bool = True
    backup_state: bool | None = None  # BS; None: the same as backup_eligible
    cross_origin: bool = False
    top_origin: str | None = None
    client_data_type: str | None = None  # None: the ceremony's own
    algorithm: str = "ES256"
    rsa_bits: int = 2048
    client_data: dict[str, Any] = field(default_factory=dict)
    flags: AuthenticatorData.FLAG | None = None
    extensions: bytes | None = None
    attestation: str = "none"
    attestation_statement: dict[str, Any] | None = None
    bad_attestation_signature: bool = False
    response_id: str | None = None
    _key: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self._key is None:
            self._key = _new_key(self.algorithm, self.rsa_bits)

    def _flags(self, *, attested: bool = False) -> AuthenticatorData.FLAG:
        if self.flags is not None:
            return self.flags
        flags = _FLAG.UP if self.user_present else _FLAG(0)
        if self.user_verified:
            flags |= _FLAG.UV
        if self.backup_eligible:
            flags |= _FLAG.BE
        if self.backup_eligible if self.backup_state is None else self.backup_state:
            flags |= _FLAG.BS
        if attested:
            flags |= _FLAG.AT
        if self.extensions is not None:
            flags |= _FLAG.ED
        return flags

    def _client_data(self, kind: str, challenge: str) -> bytes:
        data: dict[str, Any] = {
            "type": self.client_data_type or kind,
            "challenge": challenge,
            "origin": self.origin,
            "crossOrigin": self.cross_origin,
        }
        if self.top_origin is not None:
            data["topOrigin"] = self.top_origin
        for name, value in self.client_data.items():
            if value is None:
                data.pop(name, None)
            else:
                data[name] = value
        return json.dumps(data, separators=(",", ":")).encode()

    def _auth_data(self, rp_id: str, *, attested: bool) -> bytes:
        body = hashlib.sha256(rp_id.encode()).digest()
        body += struct.pack(">BI", int(self._flags(attested=attested)), self.counter)
        if attested:
            body += b"\0" * 16 + struct.pack(">H", len(self.credential_id)) + self.credential_id
            body += cbor.encode(dict(self.public_key))
        if self.extensions is not None:
            body += self.extensions
        return body

    @property
    def public_key(self) -> CoseKey:
        """The credential's public key as COSE (what the RP stores)."""
        return _ALGORITHMS[self.algorithm].from_cryptography_key(self._key.public_key())

    def _sign(self, message: bytes) -> bytes:
        key = self._key
        if isinstance(key, ec.EllipticCurvePrivateKey):
            curve: hashes.HashAlgorithm = hashes.SHA256()
            if self.algorithm == "ES384":
                curve = hashes.SHA384()
            return key.sign(message, ec.ECDSA(curve))
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return key.sign(message)
        if self.algorithm == "PS256":
            pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
            return bytes(key.sign(message, pss, hashes.SHA256()))
        digest: hashes.HashAlgorithm = hashes.SHA256()
        if self.algorithm == "RS1":
            digest = hashes.SHA1()  # noqa: S303 (a forgery: a disallowed algorithm)
        return bytes(key.sign(message, padding.PKCS1v15(), digest))

    def create(self, options: Mapping[str, Any], *, challenge: str | None = None) -> dict[str, Any]:
        """The registration response to ``navigator.credentials.create(options)``."""
        public_key = options["publicKey"]
        rp_id = self.rp_id or public_key["rp"]["id"]
        self.user_handle = _unb64(public_key["user"]["id"])
        client_data = self._client_data("webauthn.create", challenge or public_key["challenge"])
        auth_data = self._auth_data(rp_id, attested=True)
        statement = self.attestation_statement
        if statement is None:
            statement = {}
            if self.attestation == "packed":
                signature = self._sign(auth_data + hashlib.sha256(client_data).digest())
                if self.bad_attestation_signature:
                    signature = signature[:-1] + bytes([signature[-1] ^ 1])
                statement = {"alg": self.public_key.ALGORITHM, "sig": signature}
        attestation = cbor.encode(
            {"fmt": self.attestation, "authData": auth_data, "attStmt": statement}
        )
        return {
            "id": self.response_id or _b64(self.credential_id),
            "rawId": _b64(self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": _b64(client_data),
                "attestationObject": _b64(attestation),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
        }

    def get(self, options: Mapping[str, Any], *, challenge: str | None = None) -> dict[str, Any]:
        """The assertion response to ``navigator.credentials.get(options)``."""
        public_key = options["publicKey"]
        rp_id = self.rp_id or public_key["rpId"]
        client_data = self._client_data("webauthn.get", challenge or public_key["challenge"])
        if self.counter:
            self.counter += 1
        auth_data = self._auth_data(rp_id, attested=False)
        signature = self._sign(auth_data + hashlib.sha256(client_data).digest())
        response: dict[str, Any] = {
            "clientDataJSON": _b64(client_data),
            "authenticatorData": _b64(auth_data),
            "signature": _b64(signature),
        }
        if self.user_handle is not None:
            response["userHandle"] = _b64(self.user_handle)
        return {
            "id": self.response_id or _b64(self.credential_id),
            "rawId": _b64(self.credential_id),
            "type": "public-key",
            "response": response,
            "clientExtensionResults": {},
        }
