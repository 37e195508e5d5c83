"""Recovery codes: ten single-use codes, shown once, stored only as SHA-256 digests.

Each code carries 50 random bits, so a fast digest is enough (these are not
passwords) and lets the store consume a code atomically by its digest.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Final

__all__ = [
    "RECOVERY_CODE_COUNT",
    "digest_recovery_code",
    "new_recovery_codes",
    "normalize_recovery_code",
]

RECOVERY_CODE_COUNT: Final = 10
_ALPHABET: Final = "abcdefghijklmnopqrstuvwxyz234567"
_LENGTH: Final = 10


def new_recovery_codes(count: int = RECOVERY_CODE_COUNT) -> tuple[str, ...]:
    """Fresh codes formatted ``xxxxx-xxxxx`` for reading aloud or printing."""
    codes = []
    for _ in range(count):
        raw = "".join(secrets.choice(_ALPHABET) for _ in range(_LENGTH))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return tuple(codes)


def normalize_recovery_code(code: object) -> str | None:
    """Lower-case the code and drop one hyphen and spaces; ``None`` if malformed."""
    if not isinstance(code, str) or len(code) > 32 or code.count("-") > 1:
        return None
    compact = code.replace("-", "").replace(" ", "").lower()
    if len(compact) != _LENGTH or not set(compact) <= set(_ALPHABET):
        return None
    return compact


def digest_recovery_code(normalized: str) -> str:
    return hashlib.sha256(normalized.encode("ascii")).hexdigest()
