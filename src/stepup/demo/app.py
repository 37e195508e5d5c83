"""Build the demo app: the database, stepup's Starlette integration, the views."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from argon2 import PasswordHasher
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from ..adapters.storage.sql import AsyncSQLStore
from ..clock import Clock, system_clock
from ..errors import ConfigurationError
from ..events import EventBus
from .audit import AuditLog
from .data import DemoData
from .seed import prepare
from .settings import DemoSettings
from .views_account import AccountViews
from .views_admin import AdminViews
from .views_keys import KeyViews
from .views_workspaces import MemberViews, WorkspaceViews
from .web import Demo, GrantStatusMiddleware

__all__ = ["create_app"]

STATIC = Path(__file__).parent / "static"
SESSION_COOKIE = "stepup_demo"


def create_app(
    settings: DemoSettings | None = None,
    *,
    clock: Clock = system_clock,
    hasher: PasswordHasher | None = None,
) -> Starlette:
    """The demo as an ASGI app. Creates the database and the demo data on first use
    (synchronously, before serving). Tests pass a :class:`~stepup.testing.SettableClock`."""
    settings = settings or DemoSettings()
    prepared = prepare(settings.db_path, clock=clock, hasher=hasher)
    store = AsyncSQLStore.sqlite(settings.db_path)
    data = DemoData(store.engine)
    audit = AuditLog(data, clock)
    events = EventBus(audit)
    sso = None
    if settings.oidc is not None or settings.saml_idp_metadata is not None:
        from .sso import SingleSignOn

        try:
            sso = SingleSignOn(settings, store, clock)
        except ImportError as exc:
            extra = "saml" if (exc.name or "").startswith("saml2") else "oidc"
            raise ConfigurationError(
                f"single sign-on needs {exc.name}: pip install 'stepup-auth[demo,{extra}]'"
            ) from None
    demo = Demo(
        settings=settings,
        store=store,
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
        yield
        await audit.flush()
        if sso is not None:
            await sso.aclose()
        await store.aclose()

    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(
                SessionMiddleware,
                secret_key=prepared.secret_key,
                session_cookie=SESSION_COOKIE,
                same_site="lax",
            ),
            Middleware(GrantStatusMiddleware, demo=demo),
        ],
        lifespan=lifespan,
    )
    demo.stepup.install(app)  # StepupMiddleware and stepup's views under /stepup
    app.state.demo = demo
    return app
