"""Recovery codes: ten single-use codes, shown once, stored only as SHA-256 digests.

A new code is 24 random base32 characters (120 bits), printed in six groups of four.
At 120 bits a plain SHA-256 digest cannot be reversed by trying every code (OWASP ASVS
5.0 §6.5.2 asks for at least 112), so no salt or slow hash is needed, and one digest
per attempt lets the store consume a code atomically by looking that digest up.

Codes issued before (10 characters, 50 bits, stored as a bare SHA-256 hex digest)
still work until used or regenerated. The two formats have different lengths, so a
typed code maps to exactly one digest; new digests carry the ``v2:`` prefix so an
operator can tell at rest which users still hold the old, weaker kind.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Final

__all__ = [
    "LEGACY_RECOVERY_CODE_LENGTH",
    "MAX_RECOVERY_INPUT_LENGTH",
    "RECOVERY_CODE_BITS",
    "RECOVERY_CODE_COUNT",
    "RECOVERY_CODE_LENGTH",
    "RECOVERY_DIGEST_PREFIX",
    "digest_recovery_code",
    "is_legacy_recovery_digest",
    "issue_recovery_codes",
    "new_recovery_codes",
    "normalize_recovery_code",
    "recovery_digest",
]

RECOVERY_CODE_COUNT: Final = 10
_ALPHABET: Final = "abcdefghijklmnopqrstuvwxyz234567"  # RFC 4648 base32, lower case
_LETTERS: Final = frozenset(_ALPHABET)
_SEPARATORS: Final = frozenset(" -")
#: Characters in a new code: 5 bits each, 120 bits (ASVS §6.5.2 asks for 112 or more).
RECOVERY_CODE_LENGTH: Final = 24
RECOVERY_CODE_BITS: Final = RECOVERY_CODE_LENGTH * 5
_GROUP: Final = 4
#: Characters in a code issued before 120-bit codes (50 bits); still accepted.
LEGACY_RECOVERY_CODE_LENGTH: Final = 10
#: Longest input looked at, separators included (a new code as printed is 29).
MAX_RECOVERY_INPUT_LENGTH: Final = 64
#: Marks the digest of a new (120-bit) code; a legacy digest is bare hex.
RECOVERY_DIGEST_PREFIX: Final = "v2:"


def _format(raw: str) -> str:
    return "-".join(raw[i : i + _GROUP] for i in range(0, len(raw), _GROUP))


def _fresh_raw_codes(count: int) -> list[str]:
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 100:
        raise ValueError("count must be a whole number from 1 to 100")
    raws: list[str] = []
    while len(raws) < count:
        raw = "".join(secrets.choice(_ALPHABET) for _ in range(RECOVERY_CODE_LENGTH))
        if raw not in raws:  # a repeat (2^-120) would make two codes share one digest
            raws.append(raw)
    return raws


def new_recovery_codes(count: int = RECOVERY_CODE_COUNT) -> tuple[str, ...]:
    """Fresh, distinct codes formatted ``xxxx-xxxx-xxxx-xxxx-xxxx-xxxx`` for reading aloud."""
    return tuple(_format(raw) for raw in _fresh_raw_codes(count))


def issue_recovery_codes(
    count: int = RECOVERY_CODE_COUNT,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """New codes (shown once) and their digests (stored), in the same order."""
    raws = _fresh_raw_codes(count)
    return tuple(_format(raw) for raw in raws), tuple(digest_recovery_code(raw) for raw in raws)


def normalize_recovery_code(code: object) -> str | None:
    """The code's characters in lower case, separators dropped; ``None`` if malformed.

    Accepted: ASCII base32 letters (``a``-``z``, ``2``-``7``, either case) with ASCII
    spaces and hyphens anywhere, at most 64 characters, leaving exactly 24 characters
    (a new code) or 10 (a code issued before). Nothing is converted: ``0``, ``1``,
    ``8``, ``9``, non-ASCII look-alikes, tabs and newlines make the code malformed.
    """
    if not isinstance(code, str) or len(code) > MAX_RECOVERY_INPUT_LENGTH or not code.isascii():
        return None
    compact = "".join(ch for ch in code if ch not in _SEPARATORS).lower()
    if len(compact) not in (RECOVERY_CODE_LENGTH, LEGACY_RECOVERY_CODE_LENGTH):
        return None
    if not set(compact) <= _LETTERS:
        return None
    return compact


def digest_recovery_code(normalized: str) -> str:
    """The stored digest of a normalised code: one SHA-256, whichever format.

    A new code's digest is ``v2:`` + hex; a legacy (10-character) code's is the bare hex
    it was always stored as, so codes already issued keep matching.
    """
    if len(normalized) == RECOVERY_CODE_LENGTH:
        prefix = RECOVERY_DIGEST_PREFIX
    elif len(normalized) == LEGACY_RECOVERY_CODE_LENGTH:
        prefix = ""
    else:
        raise ValueError("not a normalised recovery code (use normalize_recovery_code)")
    return prefix + hashlib.sha256(normalized.encode("ascii")).hexdigest()


def recovery_digest(code: object) -> str | None:
    """The digest a typed code is looked up by, or ``None`` if it is malformed."""
    normalized = normalize_recovery_code(code)
    return None if normalized is None else digest_recovery_code(normalized)


def is_legacy_recovery_digest(digest: str) -> bool:
    """``True`` for the digest of a code issued before 120-bit codes (50 bits, weak at rest)."""
    return not digest.startswith(RECOVERY_DIGEST_PREFIX)
