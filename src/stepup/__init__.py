"""stepup: step-up authentication for Python web apps.

Re-authentication for sensitive actions ("sudo mode") and TOTP two-factor
authentication, with pluggable stores and thin framework integrations.
"""

# The one version source: setuptools reads it for the distribution (pyproject.toml), and
# ``stepup --version`` prints it.
__version__ = "0.1.0"

from .clock import Clock, system_clock
from .errors import (
    AlreadyEnrolledError,
    ConcurrentUpdateError,
    ConfigurationError,
    DeviceLimitError,
    InvalidDeviceNameError,
    MalformedInputError,
    ManagedByConfigFileError,
    NotEnrolledError,
    PermissionDeniedError,
    StepupError,
    StoreUnavailableError,
    UnknownActionError,
    UnknownDeviceError,
)
from .events import EventBus, StepupEvent
from .policy import Policy, Rule, Sensitivity
from .reauth import (
    Allowed,
    AsyncReauth,
    Reauth,
    ReauthRequired,
    ReauthRequiredError,
    ReauthUnavailable,
    ReauthUnavailableError,
    UnavailableReason,
)
from .redirects import UnsafeRedirectError, safe_return_path, safe_return_path_or_default
from .subject import Identity, LoginMethod, Subject
from .tenants import AsyncTenantSettings, TenantSettings
from .throttle import ThrottlePolicy
from .totp import TOTP, generate_secret
from .twofactor import AsyncTwoFactor, Channel, TwoFactor
from .verifier import AsyncTOTPVerifier, TOTPVerifier, VerifyReason, VerifyResult

__all__ = [
    "TOTP",
    "Allowed",
    "AlreadyEnrolledError",
    "AsyncReauth",
    "AsyncTOTPVerifier",
    "AsyncTenantSettings",
    "AsyncTwoFactor",
    "Channel",
    "Clock",
    "ConcurrentUpdateError",
    "ConfigurationError",
    "DeviceLimitError",
    "EventBus",
    "Identity",
    "InvalidDeviceNameError",
    "LoginMethod",
    "MalformedInputError",
    "ManagedByConfigFileError",
    "NotEnrolledError",
    "PermissionDeniedError",
    "Policy",
    "Reauth",
    "ReauthRequired",
    "ReauthRequiredError",
    "ReauthUnavailable",
    "ReauthUnavailableError",
    "Rule",
    "Sensitivity",
    "StepupError",
    "StepupEvent",
    "StoreUnavailableError",
    "Subject",
    "TOTPVerifier",
    "TenantSettings",
    "ThrottlePolicy",
    "TwoFactor",
    "UnavailableReason",
    "UnknownActionError",
    "UnknownDeviceError",
    "UnsafeRedirectError",
    "VerifyReason",
    "VerifyResult",
    "generate_secret",
    "safe_return_path",
    "safe_return_path_or_default",
    "system_clock",
]
