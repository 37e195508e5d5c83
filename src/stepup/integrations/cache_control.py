"""The ``Cache-Control`` value of a response that no cache may keep.

A page a guard let through was served because this person holds a fresh grant now: a
cache that kept it would serve it again after the grant is revoked or expires, or to
someone else (ASVS 5.0 14.3.2). :func:`uncacheable` turns the value the application set
(or none) into one that says ``private, no-store``, keeping the application's other
directives that do not allow storing or reusing the response.
"""

from __future__ import annotations

from typing import Final

__all__ = ["uncacheable"]

#: What every guarded response says.
_REQUIRED: Final = ("private", "no-store")

_BARE: Final = ", ".join(_REQUIRED)

#: Directives dropped from the application's value: the two above (written again bare:
#: ``private="Set-Cookie"`` lets a shared cache keep the rest), those that let a cache
#: keep or reuse the response (``public``, freshness and staleness lifetimes,
#: ``immutable``), and ``must-understand``, which lets a cache that knows the status
#: code ignore ``no-store`` (RFC 9111, 5.2.2.3).
_DROPPED: Final = frozenset(
    {
        *_REQUIRED,
        "public",
        "max-age",
        "s-maxage",
        "immutable",
        "stale-while-revalidate",
        "stale-if-error",
        "must-understand",
    }
)


def _directives(value: str) -> list[str]:
    """The comma-separated directives of ``value``, stripped; a comma inside a quoted
    argument (``no-cache="Set-Cookie, Vary"``) does not split."""
    found: list[str] = []
    start = 0
    quoted = False
    escaped = False
    for index, char in enumerate(value):
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            found.append(value[start:index].strip())
            start = index + 1
    found.append(value[start:].strip())
    return [directive for directive in found if directive]


def uncacheable(value: str | None) -> str:
    """``value`` (a ``Cache-Control`` header, or ``None``) made to forbid storing.

    The result starts with ``private, no-store``, then the application's other
    directives in their order (``no-cache``, ``must-revalidate``, ``no-transform``,
    extensions) as written. Applying it twice gives the same value."""
    if not value or value == _BARE:
        return _BARE  # most responses set none, or this very value (marked once before)
    kept = [
        directive
        for directive in _directives(value or "")
        if directive.partition("=")[0].strip().lower() not in _DROPPED
    ]
    return ", ".join((*_REQUIRED, *kept))
