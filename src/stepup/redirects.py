"""Where to send the user after a re-authentication: a same-origin path, nothing else.

The return location comes from the request (``?next=...``), so an attacker picks it.
Instead of listing tricks, we accept one narrow shape and check it at every
percent-decoding level, because some server or app along the way may decode it again:

* a string of at most :data:`MAX_RETURN_LENGTH` characters, no surrounding whitespace;
* printable ASCII (no backslash, ``<``, ``>``, ``"`` or backtick) plus non-ASCII
  letters, marks and digits: no control or invisible character, which browsers strip
  (``/\\t/evil`` becomes ``//evil``), and no look-alike of ``/`` or ``\\``;
* starting with exactly one ``/``: no scheme, no host, and still so after decoding and
  after resolving ``.`` and ``..`` segments.

See ``docs/redirects.md`` for the list of what is refused and why.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

from .errors import ConfigurationError, MalformedInputError

__all__ = [
    "MAX_RETURN_LENGTH",
    "UnsafeRedirectError",
    "safe_return_path",
    "safe_return_path_or_default",
]

#: Longer values are refused: no real return path needs more, and browsers cap URLs.
MAX_RETURN_LENGTH = 2048

#: Percent-decoding rounds checked; a value still changing after that is refused.
_MAX_DECODES = 4

# Not valid unencoded in a URL; a backslash turns into "/" in browsers.
_REFUSED_ASCII = frozenset('\\<>"`')

# Characters that look like "/" or "\" without normalising to them under NFKC.
_SLASH_LOOKALIKES = frozenset(
    "\u1735\u2044\u2215\u2216\u2571\u2572\u27cb\u27cd\u29f5\u29f6\u29f8\u29f9"
    "\u2afb\u2afd\u3033\ufe68\uff0f\uff3c"
)

_HOST = re.compile(r"[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(?::[0-9]{1,5})?")


class UnsafeRedirectError(MalformedInputError):
    """A return location that could leave the site. ``reason`` says which rule it broke;
    the message never repeats the value (it is attacker-chosen and may be huge)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"unsafe return location: {reason}")
        self.reason = reason


def safe_return_path(
    value: object, *, default: str = "/", allowed_hosts: Iterable[str] = ()
) -> str:
    """Return ``value`` unchanged if it is a safe same-origin path, else raise
    :class:`UnsafeRedirectError`.

    ``None`` means "no return location was given" and yields ``default`` (which is
    checked too). ``allowed_hosts`` (exact host names, optionally ``host:port``) also
    admits absolute ``https://`` URLs to those hosts; by default none.
    """
    hosts = _hosts(allowed_hosts)
    if value is None:
        return _check(default, frozenset())
    return _check(value, hosts)


def safe_return_path_or_default(
    value: object, default: str = "/", *, allowed_hosts: Iterable[str] = ()
) -> str:
    """Like :func:`safe_return_path`, but an unsafe value gives ``default``.

    ``default`` itself must be safe: an unsafe one is a programming error and raises.
    """
    fallback = _check(default, frozenset())
    try:
        return safe_return_path(value, default=fallback, allowed_hosts=allowed_hosts)
    except UnsafeRedirectError:
        return fallback


def _hosts(allowed_hosts: Iterable[str]) -> frozenset[str]:
    if isinstance(allowed_hosts, str):
        raise ConfigurationError("allowed_hosts must be a collection of host names, not a str")
    hosts = frozenset(h.lower() for h in allowed_hosts)
    for host in hosts:
        if not _HOST.fullmatch(host):
            raise ConfigurationError(f"allowed_hosts: {host!r} is not a host name")
    return hosts


def _check(value: object, hosts: frozenset[str]) -> str:
    if not isinstance(value, str):
        raise UnsafeRedirectError("not a string")
    if not value:
        raise UnsafeRedirectError("empty")
    if len(value) > MAX_RETURN_LENGTH:
        raise UnsafeRedirectError("too long")
    if value != value.strip():
        raise UnsafeRedirectError("surrounding whitespace")
    for char in value:
        _check_raw_char(char)
    if value.startswith("/"):
        target = value
    elif hosts:
        target = _same_site_part(value, hosts)
    else:
        raise UnsafeRedirectError("not a path")
    for _ in range(_MAX_DECODES):
        _check_structure(target)
        decoded = unquote(target, errors="replace")
        if decoded == target:
            return value
        for char in decoded:
            _check_decoded_char(char)
        target = decoded
    raise UnsafeRedirectError("too deeply encoded")


def _check_raw_char(char: str) -> None:
    code = ord(char)
    if code < 0x80:
        if code < 0x20 or code == 0x7F:
            raise UnsafeRedirectError("control character")
        if char in _REFUSED_ASCII:
            raise UnsafeRedirectError("backslash" if char == "\\" else "character not allowed")
        return
    category = unicodedata.category(char)
    if category[0] == "C":
        raise UnsafeRedirectError("control or invisible character")
    # Letters, marks and digits only; their compatibility forms must be too (so no
    # fullwidth or circled punctuation sneaks through).
    if category[0] not in "LMN" or not all(map(_word_char, unicodedata.normalize("NFKC", char))):
        raise UnsafeRedirectError("character not allowed")


def _word_char(char: str) -> bool:
    if char.isascii():
        return char.isalnum()
    return unicodedata.category(char)[0] in "LMN"


def _check_decoded_char(char: str) -> None:
    """Decoded text may hold anything a query can; refuse only what changes the shape."""
    if char == "\\":
        raise UnsafeRedirectError("encoded backslash")
    category = unicodedata.category(char)
    if category[0] == "C" or category in ("Zl", "Zp"):
        raise UnsafeRedirectError("encoded control or invisible character")
    if char in _SLASH_LOOKALIKES or (
        not char.isascii() and any(c in "/\\" for c in unicodedata.normalize("NFKC", char))
    ):
        raise UnsafeRedirectError("encoded slash look-alike")


def _check_structure(target: str) -> None:
    if target[1:2] in ("/", "\\"):
        raise UnsafeRedirectError("protocol-relative")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        raise UnsafeRedirectError("not a path")
    if _remove_dot_segments(parts.path).startswith("//"):
        raise UnsafeRedirectError("dot segments reach another host")


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4 for a path that starts with "/"."""
    segments = path.split("/")[1:]
    out: list[str] = []
    for segment in segments:
        if segment == "..":
            if out:
                out.pop()
        elif segment != ".":
            out.append(segment)
    if segments and segments[-1] in (".", ".."):
        out.append("")
    return "/" + "/".join(out)


def _same_site_part(value: str, hosts: frozenset[str]) -> str:
    """For an absolute URL to an allowed host, the path+query+fragment to check."""
    if value[:8].lower() != "https://":
        raise UnsafeRedirectError("not a path")
    netloc = urlsplit(value).netloc
    if netloc.lower() not in hosts or value[8 : 8 + len(netloc)] != netloc:
        raise UnsafeRedirectError("host not allowed")
    rest = value[8 + len(netloc) :]
    if not rest:
        return "/"
    return rest if rest.startswith("/") else "/" + rest
