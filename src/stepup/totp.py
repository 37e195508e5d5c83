"""TOTP arithmetic (RFC 6238 on RFC 4226): pure, no state, no I/O.

Replay protection and throttling live in :mod:`stepup.verifier`; this module only
answers "which time step, if any, does this code belong to?".
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from typing import Final, Literal
from urllib.parse import quote, urlencode

from .errors import MalformedInputError

__all__ = [
    "ALGORITHMS",
    "MAX_CODE_LENGTH",
    "TOTP",
    "Algorithm",
    "decode_secret",
    "generate_secret",
    "normalize_code",
]

Algorithm = Literal["SHA1", "SHA256", "SHA512"]
ALGORITHMS: Final[dict[str, str]] = {"SHA1": "sha1", "SHA256": "sha256", "SHA512": "sha512"}
_DIGITS: Final = frozenset({6, 8})
_ASCII_DIGITS: Final = frozenset("0123456789")
#: Longest raw input looked at; anything longer is malformed without further work.
MAX_CODE_LENGTH: Final = 32


def generate_secret(nbytes: int = 20) -> str:
    """A new shared secret: ``nbytes`` random bytes (160 bits by default), unpadded base32."""
    if nbytes < 16:
        raise ValueError("a TOTP secret needs at least 128 bits")
    return base64.b32encode(secrets.token_bytes(nbytes)).decode("ascii").rstrip("=")


def decode_secret(secret: str) -> bytes:
    """Decode a base32 secret, tolerating lower case, spaces and missing padding."""
    if not isinstance(secret, str):
        raise MalformedInputError("a TOTP secret must be a base32 string")
    cleaned = secret.replace(" ", "").upper().rstrip("=")
    if not cleaned or not cleaned.isascii():
        raise MalformedInputError("a TOTP secret must be a non-empty base32 string")
    try:
        key = base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))
    except (binascii.Error, ValueError):
        raise MalformedInputError("a TOTP secret must be valid base32") from None
    if len(key) < 10:
        raise MalformedInputError("a TOTP secret must hold at least 80 bits")
    return key


def normalize_code(code: object, digits: int) -> str | None:
    """Return ``code`` as exactly ``digits`` ASCII digits, or ``None`` if it is malformed.

    ASCII spaces and a single hyphen may separate groups of digits (``123 456``,
    ``123-456``); nothing else is accepted or converted: no ``int()``, no NFKC, so
    full-width or Arabic-Indic digits, signs, underscores and newlines are refused.
    """
    if not isinstance(code, str) or not 0 < len(code) <= MAX_CODE_LENGTH:
        return None
    if code.count("-") > 1:
        return None
    groups = code.replace("-", " ").split(" ")
    if any(group == "" for group in (groups[0], groups[-1])) or "- " in code or " -" in code:
        return None
    compact = "".join(groups)
    if len(compact) != digits or not _ASCII_DIGITS.issuperset(compact):
        return None
    return compact


class TOTP:
    """A TOTP generator and matcher for one secret.

    The secret never appears in ``repr``; the instance is cheap to build and immutable.
    """

    __slots__ = ("_digest", "_key", "_modulus", "algorithm", "digits", "period")

    def __init__(
        self,
        secret: str,
        *,
        digits: int = 6,
        period: int = 30,
        algorithm: Algorithm = "SHA1",
    ) -> None:
        self._init(decode_secret(secret), digits, period, algorithm)

    @classmethod
    def from_key(
        cls, key: bytes, *, digits: int = 6, period: int = 30, algorithm: Algorithm = "SHA1"
    ) -> TOTP:
        """Build from raw key bytes (the RFC test vectors use ASCII seeds)."""
        totp = cls.__new__(cls)
        totp._init(bytes(key), digits, period, algorithm)
        return totp

    def _init(self, key: bytes, digits: int, period: int, algorithm: str) -> None:
        if digits not in _DIGITS:
            raise MalformedInputError("digits must be 6 or 8")
        if not isinstance(period, int) or isinstance(period, bool) or not 1 <= period <= 300:
            raise MalformedInputError("period must be a whole number of seconds from 1 to 300")
        if algorithm not in ALGORITHMS:
            raise MalformedInputError("algorithm must be SHA1, SHA256 or SHA512")
        if not key:
            raise MalformedInputError("the TOTP key is empty")
        self._key = key
        self._digest = ALGORITHMS[algorithm]
        self._modulus = 10**digits
        self.digits = digits
        self.period = period
        self.algorithm: Algorithm = algorithm  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"TOTP(digits={self.digits}, period={self.period}, algorithm={self.algorithm!r})"

    @property
    def secret(self) -> str:
        """The secret as unpadded base32 (for provisioning only)."""
        return base64.b32encode(self._key).decode("ascii").rstrip("=")

    def step(self, at: float) -> int:
        """The RFC 6238 time step ``T`` for Unix time ``at`` (T0 = 0)."""
        return int(at // self.period)

    def code_for_step(self, step: int) -> str:
        """The HOTP value (RFC 4226) for counter ``step``."""
        mac = hmac.digest(self._key, step.to_bytes(8, "big"), self._digest)
        offset = mac[-1] & 0x0F
        binary = int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFFFFFF
        return str(binary % self._modulus).zfill(self.digits)

    def at(self, at: float) -> str:
        """The code valid at Unix time ``at``."""
        return self.code_for_step(self.step(at))

    def match(self, code: str, at: float, window: int = 1) -> int | None:
        """The step in ``[T - window, T + window]`` whose code equals ``code``, else ``None``.

        ``code`` must already be normalised. Every step of the window is computed and
        compared in constant time, with no early exit, so timing reveals nothing.
        """
        current = self.step(at)
        candidate = code.encode("ascii")
        matched: int | None = None
        for step in range(current - window, current + window + 1):
            if hmac.compare_digest(self.code_for_step(step).encode("ascii"), candidate):
                matched = step if matched is None else matched
        return matched

    def provisioning_uri(self, account: str, issuer: str) -> str:
        """The Key URI (``otpauth://totp/Issuer:account?...``) that authenticator apps scan."""
        for name, value in (("account", account), ("issuer", issuer)):
            if not isinstance(value, str) or not value or ":" in value:
                raise MalformedInputError(f"{name} must be a non-empty string without ':'")
        label = f"{quote(issuer, safe='')}:{quote(account, safe='')}"
        query = urlencode(
            {
                "secret": self.secret,
                "issuer": issuer,
                "algorithm": self.algorithm,
                "digits": self.digits,
                "period": self.period,
            },
            quote_via=quote,
        )
        return f"otpauth://totp/{label}?{query}"


def qr_svg(uri: str, *, scale: int = 4) -> str:
    """An SVG QR code of ``uri``, as a string ready to inline in HTML."""
    import segno

    svg: str = segno.make(uri, error="m").svg_inline(scale=scale)
    return svg


def qr_text(uri: str) -> str:
    """A QR code of ``uri`` drawn with block characters for a terminal."""
    import io

    import segno

    out = io.StringIO()
    segno.make(uri, error="m").terminal(out=out, compact=True)
    return out.getvalue()
