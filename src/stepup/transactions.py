"""Grants bound to one transaction: a canonical digest of an action and its parameters.

For a critical rule with ``bind_transaction=True``, a re-authentication counts for one
action on one target only ("delete workspace prod-eu"), once: the app computes
:func:`transaction_digest` from the action and the parameters that name the target,
passes it to ``Reauth.record(..., transaction=...)`` after the re-authentication and to
``Reauth.check(..., transaction=...)`` when the action runs; the check consumes the proof
(single-use, atomically through the store's ``take_challenge``). A proof for
``prod-eu`` cannot be spent on ``prod-us``. Where a passkey is the method, pass the same
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

__all__ = ["is_transaction_digest", "transaction_digest"]

_DIGEST: Final = re.compile(r"[0-9a-f]{64}")
_MAX_DEPTH: Final = 16


def _check(value: Any, depth: int = 0) -> None:
    """Only JSON values with one canonical form: no floats that are NaN or infinite,
    string keys only, bounded nesting."""
    if depth > _MAX_DEPTH:
        raise MalformedInputError("transaction parameters are nested too deeply")
    if value is None or isinstance(value, bool | int | str):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise MalformedInputError("transaction parameters must be finite numbers")
        return
    if isinstance(value, list | tuple):
        for item in value:
            _check(item, depth + 1)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise MalformedInputError("transaction parameter names must be strings")
            _check(item, depth + 1)
        return
    raise MalformedInputError(
        f"transaction parameters must be JSON values, not {type(value).__name__}"
    )


def transaction_digest(action: str, params: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the action and the canonical JSON of ``params`` (sorted keys, no
    whitespace, ASCII): the same parameters in any order give the same digest; any
    other value, or another action, gives another."""
    if not isinstance(action, str) or not action:
        raise MalformedInputError("a transaction needs its action name")
    if not isinstance(params, Mapping):
        raise MalformedInputError("transaction parameters must be a mapping")
    _check(params)
    canonical = json.dumps(
        {"action": action, "params": params},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
        allow_nan=False,
    )
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def is_transaction_digest(value: object) -> bool:
    return isinstance(value, str) and _DIGEST.fullmatch(value) is not None
