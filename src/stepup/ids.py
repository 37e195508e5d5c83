"""One check for identifiers that come from outside (a URL path, a form, an app's call)
before they reach a store.

A store can hold any well-formed text, but not every text: PostgreSQL refuses a NUL
byte and every driver refuses a lone surrogate, and such a store failure would be
reported as "unavailable" (503) for what is bad input. The entry points that take an
identifier from a request refuse it here first, with the answer they give an unknown
one, and change nothing. This is not on any per-request hot path.
"""

from __future__ import annotations

import re
from typing import Final, TypeGuard

__all__ = ["MAX_ID_LENGTH", "is_well_formed_id"]

#: The longest identifier accepted, in characters.
MAX_ID_LENGTH: Final = 1024
#: C0 and C1 control characters (NUL included), DEL, and surrogates (a lone one
#: cannot be encoded as UTF-8; a ``str`` holds no paired ones).
_REFUSED: Final = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def is_well_formed_id(value: object) -> TypeGuard[str]:
    """Is ``value`` an identifier a store can hold? It refuses anything that is not a
    ``str``; the empty string; more than :data:`MAX_ID_LENGTH` characters; control
    characters (C0, including NUL, DEL and C1); and lone surrogates (not UTF-8)."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_ID_LENGTH
        and _REFUSED.search(value) is None
    )
