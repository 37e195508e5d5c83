"""API keys and SSH public keys: making them, and reading what a user pasted."""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Final

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..errors import MalformedInputError

__all__ = ["API_KEY_PREFIX", "new_api_key", "new_demo_ssh_key", "read_ssh_key"]

API_KEY_PREFIX: Final = "sk_demo_"
_MAX_SSH_KEY: Final = 16 * 1024


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(24)


def _fingerprint(blob: bytes) -> str:
    """OpenSSH's ``SHA256:`` fingerprint of the key blob."""
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


def new_demo_ssh_key(comment: str) -> tuple[str, str]:
    """A fresh Ed25519 public key (the private half is thrown away) and its fingerprint."""
    public = Ed25519PrivateKey.generate().public_key()
    line = public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return f"{line.decode()} {comment}", _fingerprint(base64.b64decode(line.split()[1]))


def read_ssh_key(text: object) -> tuple[str, str]:
    """``(key line, fingerprint)`` for one OpenSSH public key line, else
    :class:`MalformedInputError` (the message never repeats the input)."""
    if not isinstance(text, str) or not 0 < len(text) <= _MAX_SSH_KEY:
        raise MalformedInputError("Paste one OpenSSH public key line.")
    line = " ".join(text.split())
    parts = line.split(" ", 2)
    try:
        serialization.load_ssh_public_key(" ".join(parts[:2]).encode())
        blob = base64.b64decode(parts[1], validate=True)
    except (ValueError, IndexError, TypeError, UnsupportedAlgorithm):
        raise MalformedInputError("This is not an OpenSSH public key.") from None
    return line, _fingerprint(blob)
