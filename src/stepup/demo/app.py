"""Build the demo app: the database, stepup's Starlette integration, the views."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from argon2 import PasswordHasher
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from ..adapters.storage.base import AsyncStore
from ..adapters.storage.sql import AsyncSQLStore
from ..clock import Clock, system_clock
from ..errors import ConfigurationError, StoreUnavailableError
from ..events import EventBus
from ..tenants import AsyncTenantSettings
from .address import OneAddressMiddleware
from .audit import AuditLog
from .data import DemoData
from .seed import TENANT, TENANT_NAME, prepare
from .settings import DemoSettings
from .views_account import AccountViews
from .views_admin import AdminViews
from .views_keys import KeyViews
from .views_workspaces import MemberViews, WorkspaceViews
from .web import Demo, GrantStatusMiddleware

__all__ = ["create_app"]

STATIC = Path(__file__).parent / "static"
SESSION_COOKIE = "stepup_demo"
logger = logging.getLogger("stepup.demo")


def create_app(
    settings: DemoSettings | None = None,
    *,
    clock: Clock = system_clock,
    hasher: PasswordHasher | None = None,
    store: AsyncStore | None = None,
) -> Starlette:
    """The demo as an ASGI app. Creates the database and the demo data on first use
    (synchronously, before serving). Tests pass a :class:`~stepup.testing.SettableClock`.

    ``store``: stepup's own store (grants, second factors, throttles, tenant settings,
    SSO challenges) in place of the demo's SQLite database, e.g. an
    :class:`~stepup.adapters.storage.redis.AsyncRedisStore`, to see the demo through
    that store's outages; the demo's own data stays in SQLite. The demo's tenant is
    created in it at start-up when it answers. The app does not close a store it was
    given."""
    settings = settings or DemoSettings()
    prepared = prepare(settings.db_path, clock=clock, hasher=hasher)
    database = AsyncSQLStore.sqlite(settings.db_path)
    data = DemoData(database.engine)
    stepup_store: AsyncStore = database if store is None else store
    audit = AuditLog(data, clock)
    events = EventBus(audit)
    sso = None
    if settings.oidc is not None or settings.saml_idp_metadata is not None:
        from .sso import SingleSignOn

        try:
            sso = SingleSignOn(settings, stepup_store, clock)
        except ImportError as exc:
            extra = "saml" if (exc.name or "").startswith("saml2") else "oidc"
            raise ConfigurationError(
                f"single sign-on needs {exc.name}: pip install 'stepup-auth[demo,{extra}]'"
            ) from None
    demo = Demo(
        settings=settings,
        store=stepup_store,
        data=data,
        audit=audit,
        clock=clock,
        secret_key=prepared.secret_key,
        box=prepared.box,
        events=events,
        hasher=hasher,
        oidc=sso.oidc_reauth if sso is not None else None,
        saml=sso.saml_reauth if sso is not None else None,
    )
    routes: list[BaseRoute] = [
        *AccountViews(demo).routes(),
        *KeyViews(demo).routes(),
        *WorkspaceViews(demo).routes(),
        *MemberViews(demo, "contract").routes(),
        *MemberViews(demo, "workspace").routes(),
        *AdminViews(demo).routes(),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    if sso is not None:
        routes += sso.routes(demo)
        demo.sso_buttons = sso.buttons()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if store is not None:  # prepare() made the tenant in the SQLite database only
            tenants = AsyncTenantSettings(store, clock=clock)
            try:
                await tenants.ensure(TENANT, {"name": TENANT_NAME})
            except StoreUnavailableError:
                logger.warning("stepup's store is unavailable: the tenant %r is not made", TENANT)
        yield
        await audit.flush()
        if sso is not None:
            await sso.aclose()
        await database.aclose()

    async def store_down(request: Request, exc: Exception) -> Response:
        """A demo page that reads stepup's store (the 2FA settings, the users' list)
        while it is down: stepup's "try again" page (503), not a server error."""
        logger.warning("%s %s: %s", request.method, request.url.path, exc)
        return await demo.unavailable(request)

    # At localhost, a request under 127.0.0.1 (or [::1]) is sent there: one address, one
    # cookie jar, the one the SSO redirect URIs and the passkey origin are built on.
    one_address = [Middleware(OneAddressMiddleware, demo=demo)] if settings.at_localhost else []
    app = Starlette(
        routes=routes,
        exception_handlers={
            StoreUnavailableError: store_down,
            404: demo.http_error,  # no such address: the demo's page, not "Not Found"
            405: demo.http_error,
        },
        middleware=[
            Middleware(
                SessionMiddleware,
                secret_key=prepared.secret_key,
                session_cookie=SESSION_COOKIE,
                same_site="lax",
            ),
            *one_address,
            Middleware(GrantStatusMiddleware, demo=demo),
        ],
        lifespan=lifespan,
    )
    demo.stepup.install(app)  # StepupMiddleware and stepup's views under /stepup
    app.state.demo = demo
    return app
