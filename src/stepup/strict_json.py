"""JSON as RFC 8259 means it, for documents from outside (a tenant PATCH, a token's
header and payload, an introspection answer): every member name once, no ``NaN`` or
``Infinity``, bounded nesting. ``json.loads`` takes all three, and parsers disagree on
a repeated name (the last one wins here, the first elsewhere: RFC 7515 section 5.2,
RFC 8725 section 3.5), so a proxy or an audit log could read another value than the
one acted on."""

from __future__ import annotations

import json
import math
from typing import Any, Final

__all__ = ["NotStrictJSONError", "strict_json", "strict_json_object"]


class NotStrictJSONError(ValueError):
    """Not one RFC 8259 JSON document: unparseable, not UTF-8, a repeated member name,
    ``NaN``/``Infinity``, or nested beyond what the decoder can follow."""


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        raise NotStrictJSONError("a member name is repeated")
    return document


def _no_constant(name: str) -> Any:
    raise NotStrictJSONError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    """A number with a fraction or an exponent, as a float: one beyond a float's range
    (``1e999``) is refused, as ``Infinity`` is (RFC 8259 6: such numbers do not
    interoperate), instead of becoming ``inf``, which no JSON answer can hold."""
    value = float(text)
    if not math.isfinite(value):
        raise NotStrictJSONError("a number is out of range")
    return value


_DECODER: Final = json.JSONDecoder(
    object_pairs_hook=_unique_members, parse_constant=_no_constant, parse_float=_finite_float
)


def strict_json(text: str | bytes) -> Any:
    """The JSON value in ``text``, else :class:`NotStrictJSONError`."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        return _DECODER.decode(text)
    except RecursionError:  # "[[[[..." a few thousand deep
        raise NotStrictJSONError("JSON nested too deeply") from None
    except NotStrictJSONError:
        raise
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, too long a number
        raise NotStrictJSONError(str(exc)) from None


def strict_json_object(text: str | bytes) -> dict[str, Any]:
    """The JSON object in ``text``, else :class:`NotStrictJSONError`."""
    value = strict_json(text)
    if not isinstance(value, dict):
        raise NotStrictJSONError("not a JSON object")
    return value
