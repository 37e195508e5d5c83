"""Starlette integration: middleware, a route guard, and the ready-made views.

::

    stepup = Stepup(store=..., secret_key=..., subject_loader=..., tenant_loader=...)

    @stepup.requires_reauth("api_key.regenerate")
    async def regenerate(request): ...

    app = Starlette(routes=[Route("/api-key/regenerate", regenerate, methods=["POST"])])
    stepup.install(app)  # StepupMiddleware + the views under /stepup

FastAPI apps use :mod:`stepup.integrations.fastapi` instead.
"""

from ..._extras import needs_extra

with needs_extra(__name__, "starlette"):
    from ..http import SignInRequiredError
    from .app import Stepup, get_stepup
    from .csrf import CsrfProtection
    from .middleware import StepupMiddleware, UncacheableMiddleware
    from .stepup import PATHS, ContextFunction

__all__ = [
    "PATHS",
    "ContextFunction",
    "CsrfProtection",
    "SignInRequiredError",
    "Stepup",
    "StepupMiddleware",
    "UncacheableMiddleware",
    "get_stepup",
]
