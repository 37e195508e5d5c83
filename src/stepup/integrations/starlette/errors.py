"""The one error the Starlette integration adds to the core's."""

from __future__ import annotations

from ...errors import StepupError

__all__ = ["SignInRequiredError"]


class SignInRequiredError(StepupError):
    """No one is signed in (the app's ``subject_loader`` returned ``None``), so there is
    no session to re-authenticate. The middleware answers 401, or 303 to ``login_url``."""
