"""stepup: step-up authentication for Python web apps.

Re-authentication for sensitive actions ("sudo mode") and TOTP two-factor
authentication, with pluggable stores and thin framework integrations.
"""

from .clock import Clock, system_clock
from .errors import (
    AlreadyEnrolledError,
    ConfigurationError,
    MalformedInputError,
    ManagedByConfigFileError,
    NotEnrolledError,
    PermissionDeniedError,
    StepupError,
    StoreUnavailableError,
    UnknownActionError,
)
from .events import EventBus, StepupEvent
from .throttle import ThrottlePolicy
from .totp import TOTP, generate_secret
from .twofactor import AsyncTwoFactor, Channel, TwoFactor
from .verifier import AsyncTOTPVerifier, TOTPVerifier, VerifyReason, VerifyResult

__all__ = [
    "TOTP",
    "AlreadyEnrolledError",
    "AsyncTOTPVerifier",
    "AsyncTwoFactor",
    "Channel",
    "Clock",
    "ConfigurationError",
    "EventBus",
    "MalformedInputError",
    "ManagedByConfigFileError",
    "NotEnrolledError",
    "PermissionDeniedError",
    "StepupError",
    "StepupEvent",
    "StoreUnavailableError",
    "TOTPVerifier",
    "ThrottlePolicy",
    "TwoFactor",
    "UnknownActionError",
    "VerifyReason",
    "VerifyResult",
    "generate_secret",
    "system_clock",
]
