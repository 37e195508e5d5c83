"""TOTP arithmetic (RFC 6238 on RFC 4226): pure, no state, no I/O.

Replay protection and throttling live in :mod:`stepup.verifier`; this module only
answers "which time step, if any, does this code belong to?".
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import io
import re
import secrets
import struct
from collections.abc import Callable
from typing import Any, Final, Literal
from urllib.parse import quote, urlencode

from .errors import InvalidAccountNameError, MalformedInputError
from .ids import MAX_ID_LENGTH, is_well_formed_id

__all__ = [
    "ALGORITHMS",
    "MAX_CODE_LENGTH",
    "MAX_KEY_URI_LENGTH",
    "MIN_SECRET_BITS",
    "TOTP",
    "Algorithm",
    "check_key_uri_label",
    "decode_secret",
    "generate_secret",
    "hotp",
    "normalize_code",
    "qr_svg",
    "qr_text",
]

Algorithm = Literal["SHA1", "SHA256", "SHA512"]
ALGORITHMS: Final[dict[str, str]] = {"SHA1": "sha1", "SHA256": "sha256", "SHA512": "sha512"}
#: Hash constructor and block size (bytes) per algorithm, for HMAC's key pads.
_HASHES: Final[dict[str, tuple[Callable[..., Any], int]]] = {
    "SHA1": (hashlib.sha1, 64),
    "SHA256": (hashlib.sha256, 64),
    "SHA512": (hashlib.sha512, 128),
}
_DIGITS: Final = frozenset({6, 8})
_IPAD: Final = bytes(x ^ 0x36 for x in range(256))
_OPAD: Final = bytes(x ^ 0x5C for x in range(256))
_COUNTER: Final = struct.Struct(">Q").pack
_UINT32: Final = struct.Struct(">I").unpack_from
_MAX_COUNTER: Final = 2**64 - 1
_ASCII_DIGITS: Final = frozenset("0123456789")
#: Longest raw input looked at; anything longer is malformed without further work.
MAX_CODE_LENGTH: Final = 32
#: RFC 4226 section 4 (R6): a shared secret holds at least 128 bits (160 recommended).
#: What stepup generates and what a configuration file may hold; :class:`TOTP` itself
#: still takes 80 (secrets enrolled elsewhere, and the command line's diagnostics).
MIN_SECRET_BITS: Final = 128
#: The longest Key URI: what a QR code holds at the error correction the QR codes here
#: use (level M), in byte mode, at its largest size (version 40): 2331 bytes. A Key URI
#: is ASCII (its label is percent-encoded), so characters and bytes are one.
MAX_KEY_URI_LENGTH: Final = 2331
#: QR error correction level M: about 15% of a code may be damaged and it still reads.
_QR_ERROR: Final = "m"


def generate_secret(nbytes: int = 20) -> str:
    """A new shared secret: ``nbytes`` random bytes (160 bits by default), unpadded base32."""
    if nbytes * 8 < MIN_SECRET_BITS:
        raise ValueError(f"a TOTP secret needs at least {MIN_SECRET_BITS} bits")
    return base64.b32encode(secrets.token_bytes(nbytes)).decode("ascii").rstrip("=")


def decode_secret(secret: str, *, min_bits: int = 80) -> bytes:
    """Decode a base32 secret, tolerating lower case, spaces and missing padding;
    :class:`MalformedInputError` if it holds fewer than ``min_bits`` bits (80 unless
    told: pass :data:`MIN_SECRET_BITS` where RFC 4226's minimum must hold)."""
    if not isinstance(secret, str):
        raise MalformedInputError("a TOTP secret must be a base32 string")
    cleaned = secret.replace(" ", "").upper().rstrip("=")
    if not cleaned or not cleaned.isascii():
        raise MalformedInputError("a TOTP secret must be a non-empty base32 string")
    try:
        key = base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))
    except (binascii.Error, ValueError):
        raise MalformedInputError("a TOTP secret must be valid base32") from None
    if len(key) * 8 < min_bits:
        raise MalformedInputError(
            f"a TOTP secret must hold at least {min_bits} bits (this one holds {len(key) * 8})"
        )
    return key


def normalize_code(code: object, digits: int) -> str | None:
    """Return ``code`` as exactly ``digits`` ASCII digits, or ``None`` if it is malformed.

    ASCII spaces and a single hyphen may separate groups of digits (``123 456``,
    ``123-456``); nothing else is accepted or converted: no ``int()``, no NFKC, so
    full-width or Arabic-Indic digits, signs, underscores and newlines are refused.
    """
    if not isinstance(code, str):
        return None
    # Fast path for the common case; isascii() first because str.isdigit() is
    # true for superscripts and other scripts' digits.
    if len(code) == digits and code.isascii() and code.isdigit():
        return code
    if not 0 < len(code) <= MAX_CODE_LENGTH or code.count("-") > 1:
        return None
    groups = code.replace("-", " ").split(" ")
    if any(group == "" for group in (groups[0], groups[-1])) or "- " in code or " -" in code:
        return None
    compact = "".join(groups)
    if len(compact) != digits or not _ASCII_DIGITS.issuperset(compact):
        return None
    return compact


def hotp(key: bytes, counter: int, *, digits: int = 6, algorithm: Algorithm = "SHA1") -> str:
    """The RFC 4226 HOTP value for raw ``key`` and ``counter`` (used by the RFC vectors)."""
    return TOTP.from_key(key, digits=digits, algorithm=algorithm).code_for_step(counter)


class TOTP:
    """A TOTP generator and matcher for one secret.

    The secret never appears in ``repr``; the instance is cheap to build and immutable.
    """

    __slots__ = ("_inner", "_key", "_modulus", "_outer", "algorithm", "digits", "period")

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

    def _init(self, key: bytes, digits: int, period: int, algorithm: object) -> None:
        if isinstance(digits, bool) or not isinstance(digits, int) or digits not in _DIGITS:
            raise MalformedInputError("digits must be 6 or 8")
        if not isinstance(period, int) or isinstance(period, bool) or not 1 <= period <= 300:
            raise MalformedInputError("period must be a whole number of seconds from 1 to 300")
        if not isinstance(algorithm, str) or algorithm not in ALGORITHMS:
            raise MalformedInputError("algorithm must be SHA1, SHA256 or SHA512")
        if not key:
            raise MalformedInputError("the TOTP key is empty")
        self._key = key
        # HMAC (RFC 2104) with the padded key hashed once here: each code then costs
        # two hash-state copies instead of a full key schedule (about 4x faster).
        new, block = _HASHES[algorithm]
        padded = (new(key).digest() if len(key) > block else key).ljust(block, b"\0")
        self._inner = new(padded.translate(_IPAD))
        self._outer = new(padded.translate(_OPAD))
        self._modulus = 10**digits
        self.digits = digits
        self.period = period
        self.algorithm: Algorithm = algorithm  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"TOTP(digits={self.digits}, period={self.period}, algorithm={self.algorithm!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Hash states cannot be pickled or copied by default; rebuild from the key.
        return (_rebuild, (self._key, self.digits, self.period, self.algorithm))

    @property
    def secret(self) -> str:
        """The secret as unpadded base32 (for provisioning only)."""
        return base64.b32encode(self._key).decode("ascii").rstrip("=")

    def step(self, at: float) -> int:
        """The RFC 6238 time step ``T`` for Unix time ``at`` (T0 = 0)."""
        return int(at // self.period)

    def _codes(self, first: int, stop: int) -> list[bytes]:
        """HOTP values for counters ``first`` to ``stop - 1`` as ASCII bytes.

        The one place codes are made: HMAC from the precomputed pads, then RFC 4226
        dynamic truncation. One call per window keeps the hot path free of per-step
        method calls.
        """
        inner, outer, digits, modulus = self._inner, self._outer, self.digits, self._modulus
        pack, unpack = _COUNTER, _UINT32
        codes = []
        for step in range(first, stop):
            keyed = inner.copy()
            keyed.update(pack(step))
            mac = outer.copy()
            mac.update(keyed.digest())
            digest = mac.digest()
            binary: int = unpack(digest, digest[-1] & 0x0F)[0] & 0x7FFFFFFF
            codes.append(b"%0*d" % (digits, binary % modulus))
        return codes

    def code_for_step(self, step: int) -> str:
        """The HOTP value (RFC 4226) for counter ``step`` (0 to 2**64 - 1)."""
        if not 0 <= step <= _MAX_COUNTER:
            raise MalformedInputError("a counter must be from 0 to 2**64 - 1")
        return self._codes(step, step + 1)[0].decode("ascii")

    def at(self, at: float) -> str:
        """The code valid at Unix time ``at``."""
        return self.code_for_step(self.step(at))

    def match(self, code: str, at: float, window: int = 1) -> int | None:
        """The step in ``[T - window, T + window]`` whose code equals ``code``, else ``None``.

        ``code`` must already be normalised. Every step of the window is computed and
        compared in constant time, with no early exit, so timing reveals nothing about
        which step (if any) matched. Steps before the epoch are not in the window.

        Two steps' codes collide about once in a million; then the step nearest to
        ``T`` wins, the past before the future. A device in step with the server thus
        always claims ``T`` itself, and a code repeated in consecutive steps is not
        mistaken for a replay of the earlier step.
        """
        current = int(at // self.period)
        first = current - window if current > window else 0
        stop = current + window + 1 if current + window < _MAX_COUNTER else _MAX_COUNTER + 1
        candidate = code.encode("ascii")
        equal = hmac.compare_digest
        matched: int | None = None
        best = 2 * window + 1  # rank: 0 for T, 1 for T-1, 2 for T+1, 3 for T-2, ...
        for index, expected in enumerate(self._codes(first, stop)):
            if equal(expected, candidate):
                offset = first + index - current
                rank = 2 * offset if offset >= 0 else -2 * offset - 1
                if rank < best:
                    best, matched = rank, first + index
        return matched

    def provisioning_uri(self, account: str, issuer: str) -> str:
        """The Key URI (``otpauth://totp/Issuer:account?...``) that authenticator apps scan;
        :class:`~stepup.errors.InvalidAccountNameError` if it is longer than a QR code holds
        (:data:`MAX_KEY_URI_LENGTH`)."""
        check_key_uri_label(account, issuer)
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
        uri = f"otpauth://totp/{label}?{query}"
        if len(uri) > MAX_KEY_URI_LENGTH:
            raise InvalidAccountNameError(
                f"the Key URI would be {len(uri)} characters and a QR code holds at most"
                f" {MAX_KEY_URI_LENGTH}: shorten the account or the issuer"
            )
        return uri


def check_key_uri_label(account: object, issuer: object) -> None:
    """:class:`~stepup.errors.InvalidAccountNameError` (a :class:`MalformedInputError`)
    unless ``account`` and ``issuer`` can make a Key URI's
    label: each well formed (:func:`stepup.ids.is_well_formed_id`: text, not empty, at
    most :data:`~stepup.ids.MAX_ID_LENGTH` characters, no control character, no lone
    surrogate, which no URI can encode) and without ``:``. The message names the rule
    broken: the length limit when that is the cause."""
    for name, value in (("account", account), ("issuer", issuer)):
        if isinstance(value, str) and len(value) > MAX_ID_LENGTH:
            raise InvalidAccountNameError(
                f"{name} must be at most {MAX_ID_LENGTH} characters (this one has {len(value)})"
            )
        if not is_well_formed_id(value) or ":" in value:
            raise InvalidAccountNameError(
                f"{name} must be non-empty text without ':' or control characters"
            )


def _rebuild(key: bytes, digits: int, period: int, algorithm: Algorithm) -> TOTP:
    return TOTP.from_key(key, digits=digits, period=period, algorithm=algorithm)


def _qr(uri: str) -> Any:
    """The QR code of ``uri``, or :class:`~stepup.errors.InvalidAccountNameError` if none
    holds it."""
    import segno

    try:
        return segno.make(uri, error=_QR_ERROR)
    except segno.DataOverflowError:
        raise InvalidAccountNameError(
            f"{len(uri)} characters are more than a QR code holds"
            f" (at most {MAX_KEY_URI_LENGTH} for a Key URI)"
        ) from None


def qr_svg(uri: str, *, scale: int = 4) -> str:
    """An SVG QR code of ``uri``: a standalone ``<svg>`` element (with its namespace),
    ready to save as a file or inline in HTML.

    It has a ``viewBox`` as well as its natural ``width``/``height``, so a stylesheet that
    sizes it scales the whole code instead of cropping its finder patterns, and a white
    background with the quiet zone, so it scans on a dark page too."""
    out = io.BytesIO()
    _qr(uri).save(
        out, kind="svg", scale=scale, light="#fff", omitsize=True, xmldecl=False, nl=False
    )
    svg = out.getvalue().decode("utf-8")
    size = re.search(r'viewBox="0 0 (\d+) (\d+)"', svg)
    if size is None:  # pragma: no cover - segno always writes one with omitsize
        return svg
    width, height = size.groups()
    return svg.replace("<svg ", f'<svg width="{width}" height="{height}" ', 1)


#: Dark and light modules in the 256-colour palette's colour cube (16 is black, 231
#: white): terminal themes remap the 16 basic colours, rarely the cube.
_TERMINAL_DARK: Final = "\x1b[38;5;16;48;5;231m"
_TERMINAL_RESET: Final = "\x1b[0m"
_HALF_BLOCKS: Final = {(True, True): "\u2588", (True, False): "\u2580", (False, True): "\u2584"}


def qr_text(uri: str, *, border: int = 4) -> str:
    """A QR code of ``uri`` for a terminal: Unicode half blocks, two module rows per
    line, with both colours set explicitly (black modules on white, and the quiet zone
    of ``border`` modules) so it scans on light and dark terminals alike."""
    qr = _qr(uri)
    rows = [[bool(bit) for bit in row] for row in qr.matrix_iter(scale=1, border=border)]
    if len(rows) % 2:
        rows.append([False] * len(rows[0]))
    lines = []
    for top, bottom in zip(rows[::2], rows[1::2], strict=True):
        cells = "".join(_HALF_BLOCKS.get(pair, " ") for pair in zip(top, bottom, strict=True))
        lines.append(f"{_TERMINAL_DARK}{cells}{_TERMINAL_RESET}\n")
    return "".join(lines)
