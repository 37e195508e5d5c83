"""One check for identifiers that come from outside (a URL path, a form, an app's call)
before they reach a store.

A store can hold any well-formed text, but not every text: PostgreSQL refuses a NUL
byte and every driver refuses a lone surrogate, and such a store failure would be
reported as "unavailable" (503) for what is bad input. The entry points that take an
identifier from a request refuse it here first, with the answer they give an unknown
one, and change nothing. Those that take one from the app's own code (a subject its
loader built, a user id it passes) refuse it with :func:`checked_id`, a
:class:`~stepup.errors.MalformedInputError` naming the argument. This is not on any
per-request hot path: ``Reauth.check`` reads the store with the ids as given, and a
store that cannot hold one fails closed there.
"""

from __future__ import annotations

import re
from typing import Final, Protocol, TypeGuard

from .errors import MalformedInputError

__all__ = [
    "MAX_ID_LENGTH",
    "SESSION_RECORD_SEPARATOR",
    "checked_id",
    "checked_session_id",
    "checked_subject",
    "is_well_formed_id",
]

#: The longest identifier accepted, in characters.
MAX_ID_LENGTH: Final = 1024
#: C0 and C1 control characters (NUL included), DEL, and surrogates (a lone one
#: cannot be encoded as UTF-8; a ``str`` holds no paired ones).
_REFUSED: Final = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
#: What no session id may contain: stepup keeps a session's own records (a sliding
#: window's renewals, the transaction epoch) as grants under the session id followed by
#: this and a name, so a session whose id held it could read or write another session's.
#: (The integrations' session ids are URL-safe base64; Django's, Flask's and Starlette's
#: session keys are alphanumeric or URL-safe too.)
SESSION_RECORD_SEPARATOR: Final = "#"


def is_well_formed_id(value: object) -> TypeGuard[str]:
    """Is ``value`` an identifier a store can hold? It refuses anything that is not a
    ``str``; the empty string; more than :data:`MAX_ID_LENGTH` characters; control
    characters (C0, including NUL, DEL and C1); and lone surrogates (not UTF-8)."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_ID_LENGTH
        and _REFUSED.search(value) is None
    )


def checked_id(value: object, name: str) -> str:
    """``value`` when it is a well-formed identifier (:func:`is_well_formed_id`), else
    :class:`~stepup.errors.MalformedInputError` naming ``name`` (never the value: an
    overlong or binary id does not belong in a message)."""
    if not is_well_formed_id(value):
        raise MalformedInputError(
            f"{name} must be non-empty text of at most {MAX_ID_LENGTH} characters,"
            " without control characters or lone surrogates"
        )
    return value


class _Ids(Protocol):
    @property
    def user_id(self) -> str: ...
    @property
    def session_id(self) -> str: ...


def checked_session_id(value: object, name: str) -> str:
    """``value`` when it is a well-formed identifier (:func:`checked_id`) without
    :data:`SESSION_RECORD_SEPARATOR`, else :class:`~stepup.errors.MalformedInputError`
    naming ``name``."""
    session_id = checked_id(value, name)
    if SESSION_RECORD_SEPARATOR in session_id:
        raise MalformedInputError(
            f"{name} must not contain {SESSION_RECORD_SEPARATOR!r}: stepup keeps a"
            " session's own records under its id followed by it"
        )
    return session_id


def checked_subject(subject: _Ids) -> None:
    """The ids of a :class:`~stepup.subject.Subject` the app's loader built, checked as
    :func:`checked_id` checks one, and a session id without
    :data:`SESSION_RECORD_SEPARATOR` (:func:`checked_session_id`): a typed input error
    naming the field, not a store's "unavailable"."""
    checked_id(subject.user_id, "subject.user_id")
    checked_session_id(subject.session_id, "subject.session_id")
