"""One root error with narrow leaves, so callers can tell every failure apart.

No message built here ever contains a secret, a code or a password.
"""

from __future__ import annotations

__all__ = [
    "AlreadyEnrolledError",
    "ConcurrentUpdateError",
    "ConfigurationError",
    "DeviceLimitError",
    "InvalidAccountNameError",
    "InvalidDeviceNameError",
    "MalformedInputError",
    "ManagedByConfigFileError",
    "NotEnrolledError",
    "PermissionDeniedError",
    "StepupError",
    "StoreConfigurationError",
    "StoreUnavailableError",
    "UnknownActionError",
    "UnknownDeviceError",
]


class StepupError(Exception):
    """Root of every error stepup raises on purpose."""


class ConfigurationError(StepupError, ValueError):
    """A setting is missing or invalid; raised at start-up, never silently defaulted."""


class MalformedInputError(StepupError, ValueError):
    """Input that can never be valid (not merely wrong)."""


class StoreUnavailableError(StepupError):
    """The store could not answer. Every decision that needed it is a denial."""


class StoreConfigurationError(ConfigurationError, StoreUnavailableError):
    """A store could not be opened at start-up. Meant for the person running the app,
    it names the store's URL (never its password), what was being done and the
    driver's reason. Only start-up steps raise it (``SQLStore.sqlite``,
    ``create_schema``, ``check``); decisions only ever see a bare
    :class:`StoreUnavailableError`."""

    def __init__(self, url: str, operation: str, reason: str) -> None:
        super().__init__(f"cannot {operation} at {url}: {reason}")
        self.url = url
        self.operation = operation
        self.reason = reason


class ConcurrentUpdateError(StoreUnavailableError):
    """A record kept changing under a compare-and-set, try after try; nothing was
    written. Handled like an unavailable store (deny, try again later)."""


class UnknownActionError(StepupError, LookupError):
    """An action name that no policy rule knows: a typo must never switch protection off."""

    def __init__(self, action: object) -> None:
        if isinstance(action, str):
            message = f"unknown action {action!r}: add it to the policy or fix the name"
        else:  # a JSON list or number where a name belongs: never echoed back
            message = f"an action is named by a string, not {type(action).__name__}"
        super().__init__(message)
        self.action = action if isinstance(action, str) else ""


class PermissionDeniedError(StepupError):
    """The actor may not do this (HTTP 403 class)."""


class NotEnrolledError(StepupError, LookupError):
    """The user has no confirmed two-factor credential."""


class AlreadyEnrolledError(StepupError):
    """The user already has a confirmed two-factor credential; remove it first."""


class ManagedByConfigFileError(StepupError):
    """Two-factor secrets come from the configuration file; the API may not change them."""


class InvalidDeviceNameError(MalformedInputError):
    """A device name that is empty, too long, or holds control or bidirectional
    formatting characters; nothing was changed."""


class InvalidAccountNameError(MalformedInputError):
    """An account name (or issuer) that cannot go into an authenticator app's Key URI:
    not text, empty, with ``:`` or control characters, or making a URI longer than a QR
    code holds; nothing was stored."""


class UnknownDeviceError(StepupError, LookupError):
    """The user has no (confirmed) device with that id; nothing was changed."""


class DeviceLimitError(StepupError):
    """The user has as many TOTP devices as allowed; remove one to add another."""
