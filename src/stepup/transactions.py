"""Grants bound to one transaction: a canonical digest of an action and its parameters.

For a critical rule with ``bind_transaction=True``, a re-authentication counts for one
action on one target only ("delete workspace prod-eu"), once: the app computes
:func:`transaction_digest` from the action, the parameters that name the target and the
tenant it runs in, passes it to ``Reauth.record(..., transaction=...)`` after the
re-authentication and to ``Reauth.check(..., transaction=...)`` when the action runs;
the check consumes the proof (single-use, atomically through the store's
``take_challenge``). A proof for ``prod-eu`` cannot be spent on ``prod-us``, nor on
another tenant's ``prod-eu``. Where a passkey is the method, pass the same
digest as the WebAuthn challenge's ``transaction`` so the authenticator signs it. Pure.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from typing import Any, Final

from .errors import MalformedInputError
from .ids import checked_id

__all__ = [
    "MAX_CANONICAL_BYTES",
    "MAX_DEPTH",
    "MAX_INT_BITS",
    "is_transaction_digest",
    "transaction_digest",
]

_DIGEST: Final = re.compile(r"[0-9a-f]{64}")
#: How deeply parameters may nest (a list in a mapping in a list ... counts each level).
MAX_DEPTH: Final = 16
#: How big the canonical JSON of an action and its parameters may be (bytes): the
#: parameters name a target, they are not a document.
MAX_CANONICAL_BYTES: Final = 16_384
#: The most bits an integer may have (a 1024-bit number has 309 digits): an id, an
#: amount or a count fits, a number built to cost time does not.
MAX_INT_BITS: Final = 1024
MAX_ACTION_LENGTH: Final = 200


def _canonical(value: Any, budget: list[int], depth: int = 0) -> Any:
    """A plain copy of ``value`` with one canonical JSON form, or MalformedInputError.

    Only JSON values: ``None``, booleans, integers of at most 1024 bits, finite floats,
    strings, lists (a tuple is a list) and mappings with string keys. A mapping naming
    a key twice (a custom ``Mapping`` whose ``items`` repeat one) is refused rather than
    collapsed, and subclasses are read as their base type (an ``IntEnum`` is its int, a
    ``str`` subclass its text), so what is hashed is what JSON would carry. ``budget``
    counts the items and characters left, so a huge payload stops early.
    """
    if depth > MAX_DEPTH:
        raise MalformedInputError("transaction parameters are nested too deeply")
    budget[0] -= 1
    if budget[0] < 0:
        raise MalformedInputError("transaction parameters are too large")
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if value.bit_length() > MAX_INT_BITS:
            raise MalformedInputError("a transaction parameter is a number too large")
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise MalformedInputError("transaction parameters must be finite numbers")
        return float(value)
    if isinstance(value, str):
        budget[0] -= len(value)
        if budget[0] < 0:
            raise MalformedInputError("transaction parameters are too large")
        return str.__str__(value)
    if isinstance(value, list | tuple):
        return [_canonical(item, budget, depth + 1) for item in value]
    if isinstance(value, Mapping):
        result: dict[str, Any] = {}
        count = 0
        for key, item in value.items():
            if not isinstance(key, str):
                raise MalformedInputError("transaction parameter names must be strings")
            name = _canonical(key, budget, depth + 1)
            if name in result:
                raise MalformedInputError("a transaction parameter is named twice")
            result[name] = _canonical(item, budget, depth + 1)
            count += 1
        if count != len(result) or count != len(value):
            raise MalformedInputError("a transaction parameter is named twice")
        return result
    raise MalformedInputError(
        f"transaction parameters must be JSON values, not {type(value).__name__}"
    )


def transaction_digest(
    action: str, params: Mapping[str, Any], *, tenant_id: str | None = None
) -> str:
    """SHA-256 (hex) of the action and the canonical JSON of ``params`` (sorted keys, no
    whitespace, ASCII): the same parameters in any order give the same digest; any
    other value, or another action, gives another.

    ``tenant_id``: the tenant the action runs in, a part of its target: workspace
    ``prod-eu`` of tenant A is not ``prod-eu`` of tenant B, so a proof recorded for one
    cannot be spent on the other. Pass it whenever the app has more than one tenant
    (every framework integration passes the guard's tenant).

    Nothing is normalised that could make two targets one: ``"1"``, ``1``, ``1.0`` and
    ``true`` differ, ``-0.0`` differs from ``0.0``, and text is hashed as given (the
    NFC and NFD forms of "café" are two names, as they are two keys in the app's
    database). Bad input (not a JSON value, a key named twice, an integer of more than
    :data:`MAX_INT_BITS` bits, nesting deeper than :data:`MAX_DEPTH`, canonical JSON over
    :data:`MAX_CANONICAL_BYTES`) raises :class:`MalformedInputError`.
    """
    if not isinstance(action, str) or not action or len(action) > MAX_ACTION_LENGTH:
        raise MalformedInputError("a transaction needs its action name")
    if not isinstance(params, Mapping):
        raise MalformedInputError("transaction parameters must be a mapping")
    plain = _canonical(params, [MAX_CANONICAL_BYTES])
    named: dict[str, Any] = {"action": str.__str__(action), "params": plain}
    if tenant_id is not None:
        named["tenant"] = str.__str__(checked_id(tenant_id, "tenant_id"))
    canonical = json.dumps(
        named,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
        allow_nan=False,
    ).encode("ascii")
    if len(canonical) > MAX_CANONICAL_BYTES:
        raise MalformedInputError("transaction parameters are too large")
    return hashlib.sha256(canonical).hexdigest()


def is_transaction_digest(value: object) -> bool:
    return isinstance(value, str) and _DIGEST.fullmatch(value) is not None
