"""A software authenticator, for testing passkey flows without a browser.

It answers the options :class:`stepup.passkeys.Passkeys` produces with the JSON a
browser would post (``PublicKeyCredential.toJSON()``), signing with a P-256 key it
keeps in memory. Every field can be bent, so tests can present another origin, a
replayed challenge, a counter that goes backwards or a missing UV flag.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from fido2.cose import ES256
from fido2.webauthn import (
    AttestationObject,
    AttestedCredentialData,
    AuthenticatorData,
    CollectedClientData,
)

__all__ = ["SoftAuthenticator"]

_FLAG = AuthenticatorData.FLAG


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class SoftAuthenticator:
    """One credential on one authenticator. ``counter`` is its signature counter: each
    assertion moves it on by one first, unless it is 0 (an authenticator that does not
    count, as synced passkeys do). Set it back to simulate a clone."""

    origin: str
    rp_id: str | None = None  # defaults to the one in the options
    user_verified: bool = True
    backup_eligible: bool = False
    counter: int = 0
    credential_id: bytes = field(default_factory=lambda: secrets.token_bytes(16))
    user_handle: bytes | None = None
    _key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1()), repr=False
    )

    def _flags(self, *, attested: bool = False) -> AuthenticatorData.FLAG:
        flags = _FLAG.UP
        if self.user_verified:
            flags |= _FLAG.UV
        if self.backup_eligible:
            flags |= _FLAG.BE | _FLAG.BS
        if attested:
            flags |= _FLAG.AT
        return flags

    def create(self, options: Mapping[str, Any], *, challenge: str | None = None) -> dict[str, Any]:
        """The registration response to ``navigator.credentials.create(options)``."""
        public_key = options["publicKey"]
        rp_id = self.rp_id or public_key["rp"]["id"]
        self.user_handle = _unb64(public_key["user"]["id"])
        client_data = CollectedClientData.create(
            type=CollectedClientData.TYPE.CREATE,
            challenge=challenge or public_key["challenge"],
            origin=self.origin,
        )
        cose_key = ES256.from_cryptography_key(self._key.public_key())  # type: ignore[no-untyped-call]
        credential = AttestedCredentialData.create(b"\0" * 16, self.credential_id, cose_key)
        auth_data = AuthenticatorData.create(
            hashlib.sha256(rp_id.encode()).digest(),
            self._flags(attested=True),
            self.counter,
            credential,
        )
        attestation = AttestationObject.create("none", auth_data, {})
        return {
            "id": _b64(self.credential_id),
            "rawId": _b64(self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": _b64(bytes(client_data)),
                "attestationObject": _b64(bytes(attestation)),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
        }

    def get(self, options: Mapping[str, Any], *, challenge: str | None = None) -> dict[str, Any]:
        """The assertion response to ``navigator.credentials.get(options)``."""
        public_key = options["publicKey"]
        rp_id = self.rp_id or public_key["rpId"]
        client_data = CollectedClientData.create(
            type=CollectedClientData.TYPE.GET,
            challenge=challenge or public_key["challenge"],
            origin=self.origin,
        )
        if self.counter:
            self.counter += 1
        auth_data = AuthenticatorData.create(
            hashlib.sha256(rp_id.encode()).digest(), self._flags(), self.counter
        )
        signature = self._key.sign(bytes(auth_data) + client_data.hash, ec.ECDSA(hashes.SHA256()))
        response: dict[str, Any] = {
            "clientDataJSON": _b64(bytes(client_data)),
            "authenticatorData": _b64(bytes(auth_data)),
            "signature": _b64(signature),
        }
        if self.user_handle is not None:
            response["userHandle"] = _b64(self.user_handle)
        return {
            "id": _b64(self.credential_id),
            "rawId": _b64(self.credential_id),
            "type": "public-key",
            "response": response,
            "clientExtensionResults": {},
        }
