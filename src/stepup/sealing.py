"""Secrets at rest: sealed with AES-256-GCM under versioned keys, so keys can rotate.

Sealed form: ``v1:<key id>:<base64url(nonce | ciphertext)>``. The credential id is
the associated data, so a sealed secret copied onto another credential won't open.
Without keys, secrets are stored as ``plain:<secret>`` (documented, not recommended).
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import ConfigurationError, StepupError

__all__ = ["SealError", "SecretBox"]


class SealError(StepupError):
    """A sealed secret could not be opened (wrong key, tampered or unknown format)."""


class SecretBox:
    """Seal and open TOTP secrets. ``keys`` maps key ids to 32-byte keys; ``current``
    names the one used for new seals. Old ids stay readable until removed."""

    def __init__(self, keys: Mapping[str, bytes] | None = None, current: str | None = None) -> None:
        self._keys = dict(keys or {})
        for key_id, key in self._keys.items():
            if not isinstance(key_id, str) or not key_id or ":" in key_id:
                raise ConfigurationError("each sealing key needs a non-empty id without ':'")
            if not isinstance(key, bytes) or len(key) != 32:
                raise ConfigurationError(f"sealing key {key_id!r} must be 32 bytes")
        if (self._keys or current is not None) and current not in self._keys:
            raise ConfigurationError("the current sealing key id must be one of the keys")
        self._current = current

    def __repr__(self) -> str:
        return f"SecretBox(key_ids={sorted(self._keys)}, current={self._current!r})"

    @property
    def encrypts(self) -> bool:
        return bool(self._keys)

    @property
    def current_key_id(self) -> str | None:
        """The id of the key new seals use (``None``: secrets are stored unsealed)."""
        return self._current

    @staticmethod
    def generate_key() -> bytes:
        return AESGCM.generate_key(bit_length=256)

    def seal(self, secret: str, *, context: str) -> str:
        if self._current is None:
            return f"plain:{secret}"
        nonce = os.urandom(12)
        sealed = AESGCM(self._keys[self._current]).encrypt(nonce, secret.encode(), context.encode())
        blob = base64.urlsafe_b64encode(nonce + sealed).decode("ascii")
        return f"v1:{self._current}:{blob}"

    def open(self, sealed: str, *, context: str) -> str:
        if sealed.startswith("plain:"):
            return sealed[len("plain:") :]
        version, _, rest = sealed.partition(":")
        key_id, _, blob = rest.partition(":")
        if version != "v1":
            raise SealError("sealed secret has an unknown format")
        # Key ids are names, never key material: an operator needs them to find the key.
        key = self._keys.get(key_id)
        if key is None:
            raise SealError(
                f"sealed secret is under key id {key_id!r}, which is not configured"
                f" (configured: {sorted(self._keys) or 'none'})"
            )
        try:
            raw = base64.urlsafe_b64decode(blob)
            return AESGCM(key).decrypt(raw[:12], raw[12:], context.encode()).decode()
        except (InvalidTag, binascii.Error, ValueError):
            raise SealError(
                f"sealed secret could not be opened with the key configured as {key_id!r}"
                " (another key under the same id, or the secret was altered)"
            ) from None

    def needs_reseal(self, sealed: str) -> bool:
        """True when ``sealed`` is not under the current key (rotate with :meth:`reseal`)."""
        if self._current is None:
            return not sealed.startswith("plain:")
        return not sealed.startswith(f"v1:{self._current}:")

    def reseal(self, sealed: str, *, context: str) -> str:
        return self.seal(self.open(sealed, context=context), context=context)
