"""Readers of one setting's value, the same in every framework that takes settings
(Flask's ``STEPUP_*`` keys, Django's ``settings.STEPUP``).

Each takes the value and the setting's name as the app spells it (``STEPUP_CLOCK``,
``STEPUP['CLOCK']``) and returns what the services are built with, or raises a
:class:`~stepup.errors.ConfigurationError` naming the setting and the cause, so a wrong
value stops the app at start-up instead of failing some later request. Values are never
echoed, except a dotted path that cannot be imported (a name, not a secret).
No web framework here: dotted paths are imported with :mod:`importlib`.
"""

from __future__ import annotations

import importlib
import inspect
import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from argon2 import Parameters, PasswordHasher

from ..adapters.idp.password_formats import (
    HashVerifier,
    MalformedHashError,
    UnsupportedHashError,
    default_verifiers,
    find_verifier,
)
from ..errors import ConfigurationError
from ..ids import MAX_ID_LENGTH, is_well_formed_id

__all__ = [
    "callable_setting",
    "clock_setting",
    "dummy_password_hash",
    "flag",
    "import_dotted",
    "non_empty_text",
    "password_hasher",
    "path_setting",
    "positive_seconds",
    "provider_mapping",
    "sync_adapter",
    "tenant_id",
]


def non_empty_text(value: object, setting: str) -> str:
    """A non-empty string (a tenant id, an issuer name, an action name)."""
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{setting} must be a non-empty string")
    return value


def tenant_id(value: object, setting: str) -> str:
    """A non-empty string that is a tenant id a store can hold
    (:func:`stepup.ids.is_well_formed_id`): one with a control character, or longer than
    an id may be, would start the app and then fail every guarded request."""
    tenant = non_empty_text(value, setting)
    if not is_well_formed_id(tenant):
        raise ConfigurationError(
            f"{setting} must be a tenant id: at most {MAX_ID_LENGTH} characters,"
            " without control characters or lone surrogates"
        )
    return tenant


def positive_seconds(value: object, setting: str) -> float:
    """A positive, finite number of seconds: ``True`` is no number, and ``inf`` or
    ``nan`` would make a step that never ends (or never starts)."""
    problem = ConfigurationError(f"{setting} must be a positive, finite number of seconds")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise problem
    try:
        seconds = float(value)
    except OverflowError:  # an int no float holds (10**400)
        raise problem from None
    if not math.isfinite(seconds) or not seconds > 0:
        raise problem
    return seconds


def flag(value: object, setting: str) -> bool:
    """Exactly ``True`` or ``False`` (a string like ``"False"`` would read as true)."""
    if not isinstance(value, bool):
        raise ConfigurationError(f"{setting} must be True or False")
    return value


def path_setting(value: object, setting: str) -> str:
    """A file's path: a string or a :class:`pathlib.Path` (any ``os.PathLike`` of text)."""
    path = os.fspath(value) if isinstance(value, os.PathLike) else value
    if not isinstance(path, str) or not path:
        raise ConfigurationError(f"{setting} must be a path")
    return path


def import_dotted(path: str, setting: str) -> object:
    """What ``"package.module.name"`` names, imported now."""
    module_name, _, name = path.rpartition(".")
    try:
        if not module_name or not name:
            raise ImportError(path)
        return getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError):
        raise ConfigurationError(f"{setting}: cannot import {path!r}") from None


def callable_setting(value: object, setting: str) -> Callable[..., Any] | None:
    """A callable, or its dotted path (imported now); ``None`` when not set."""
    if value is None:
        return None
    if isinstance(value, str):
        value = import_dotted(value, setting)
    if not callable(value):
        raise ConfigurationError(f"{setting} must be a callable or its dotted path")
    return value


#: The Unix times a clock's first reading must lie between: 2020-01-01 and 3000-01-01
#: (UTC). Seconds since boot (``time.monotonic``) fall below, milliseconds or
#: nanoseconds (``time.time_ns``) above.
_PLAUSIBLE_NOW: Final = (1_577_836_800.0, 32_503_680_000.0)


def clock_setting(value: object, setting: str) -> Callable[[], float] | None:
    """A clock (:func:`callable_setting`) read once now: its reading must be the Unix
    time in seconds, as ``time.time``'s is. ``time.monotonic`` is a callable too, but
    grants and codes would be dated in seconds since boot."""
    clock = callable_setting(value, setting)
    if clock is None:
        return None
    try:
        now = clock()
    except Exception as exc:  # what a request would meet; named by type, never a value
        raise ConfigurationError(
            f"{setting}: reading the clock raised {type(exc).__name__}"
        ) from None
    low, high = _PLAUSIBLE_NOW
    if isinstance(now, bool) or not isinstance(now, int | float) or not low <= now < high:
        raise ConfigurationError(
            f"{setting} must return the Unix time in seconds, as time.time does: its"
            " reading now is not a time between 2020 and 3000"
        )
    return clock


def password_hasher(value: object, setting: str) -> PasswordHasher | None:
    """``None`` (stepup's argon2id profile), an argon2 ``PasswordHasher`` or
    ``Parameters``, or the dotted path of either."""
    if value is None:
        return None
    if isinstance(value, str):
        value = import_dotted(value, setting)
    if isinstance(value, Parameters):
        return PasswordHasher.from_parameters(value)
    if not isinstance(value, PasswordHasher):
        raise ConfigurationError(
            f"{setting} must be None, an argon2 PasswordHasher or Parameters, or the dotted"
            " path of one"
        )
    return value


def dummy_password_hash(
    value: object, setting: str, verifiers: Sequence[HashVerifier] | None
) -> Callable[[], str] | None:
    """``None`` (the default: an argon2id dummy from the hasher), or a stored hash in the
    app's own format, which an unknown user's password is then checked against, so that
    costs what a known user's check costs. One of ``verifiers`` (the ones the password
    check uses; ``None``: the default formats) must read it: a hash they refuse would be
    no check at all. The message names the format's problem, never the hash."""
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{setting} must be None or a password hash (a string)")
    try:
        # Recognising reads the format only: any hasher's parameters do.
        find_verifier(verifiers or default_verifiers(PasswordHasher()), value)
    except (MalformedHashError, UnsupportedHashError) as exc:
        raise ConfigurationError(
            f"{setting} must be a hash the password verifiers read: {exc}"
        ) from None
    return lambda: value


def provider_mapping(value: object, setting: str) -> dict[str, Any]:
    """A mapping of provider name (``Identity.provider``) to what the caller reads
    each value as."""
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{setting} must be a dict of provider name to config")
    if not all(isinstance(name, str) and name for name in value):
        raise ConfigurationError(f"{setting}: provider names must be non-empty strings")
    return dict(value)


def sync_adapter(value: object, setting: str) -> bool:
    """Is ``value`` an SSO adapter (``start`` and ``complete``)? An async one (its
    methods coroutine functions) is refused: a sync framework would get a coroutine."""
    start, complete = getattr(value, "start", None), getattr(value, "complete", None)
    if not (callable(start) and callable(complete)):
        return False
    if inspect.iscoroutinefunction(start) or inspect.iscoroutinefunction(complete):
        raise ConfigurationError(
            f"{setting} holds an async adapter: this framework calls providers"
            " synchronously; give the sync one (OIDCReauth, SAMLServiceProvider) or its config"
        )
    return True
