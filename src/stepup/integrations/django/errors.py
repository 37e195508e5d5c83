"""The one error the Django integration adds to the core's."""

from __future__ import annotations

from ...errors import StepupError

__all__ = ["SignInRequiredError"]


class SignInRequiredError(StepupError):
    """Nobody is signed in (``SUBJECT_LOADER`` returned ``None``), so there is no session
    to re-authenticate. :class:`StepupMiddleware` answers with Django's login redirect
    for browsers and 401 for API clients."""
