"""The public :class:`Stepup`: the core object with its views and middleware.

The imports point one way: this module assembles the pages (``pages``), the views
built on them (``devices``, ``passkeys``, ``federated``) and the middleware, each of which
imports only the core object (``stepup.StepupCore``) below it.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Router

from ...errors import ConfigurationError
from .devices import device_routes
from .federated import oidc_routes, saml_routes
from .middleware import StepupMiddleware
from .pages import StepupPages
from .passkeys import passkey_routes
from .stepup import StepupCore

__all__ = ["Stepup", "get_stepup"]


class Stepup(StepupCore):
    __doc__ = StepupCore.__doc__

    def routes(self) -> list[BaseRoute]:
        """The ready-made views, to mount under ``prefix``."""
        pages = StepupPages(self)
        routes = pages.routes() + device_routes(pages)
        if self.passkeys is not None:
            routes += passkey_routes(pages)
        if self.oidc is not None:
            routes += oidc_routes(pages)
        if self.saml is not None:
            routes += saml_routes(pages)
        return routes

    async def outage_page(self, request: Request) -> Response | None:
        """The "try again" page (503) a browser gets when the store is down."""
        return await StepupPages(self).unavailable(request)

    def mount(self) -> Mount:
        # No redirect for a trailing slash: Starlette's would answer any method (a PATCH
        # included) with a 307 to an absolute URL built from the request's Host header.
        router = Router(routes=self.routes(), redirect_slashes=False)
        return Mount(self.prefix, app=router, name="stepup")

    def install(self, app: Starlette) -> None:
        """Add :class:`StepupMiddleware` and mount the views (before the app starts).

        The middleware goes innermost of the app's middleware, right around the routes:
        its answer to a refusal raised by a dependency or a view then passes through the
        app's ``SessionMiddleware``, so what the refusal kept in the session (the
        transaction a re-auth page confirms) reaches the browser."""
        if app.middleware_stack is not None:
            raise RuntimeError("Cannot add middleware after an application has started")
        app.user_middleware.append(Middleware(StepupMiddleware, stepup=self))
        app.router.routes.append(self.mount())


def get_stepup(request: Request) -> Stepup:
    """The :class:`Stepup` that :class:`StepupMiddleware` put into the scope."""
    stepup = request.scope.get("stepup")
    if not isinstance(stepup, Stepup):
        raise ConfigurationError("StepupMiddleware is not installed (see Stepup.install)")
    return stepup
