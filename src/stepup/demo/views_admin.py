"""Tenant settings (the flag, flipped through stepup's JSON:API endpoint) and the audit log."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..errors import StoreUnavailableError
from ..reauth import FEATURE_FLAG
from .web import Demo

__all__ = ["AdminViews"]


class AdminViews:
    def __init__(self, demo: Demo) -> None:
        self.demo = demo

    def routes(self) -> list[BaseRoute]:
        return [Route("/tenant", self.tenant), Route("/audit", self.audit)]

    async def tenant(self, request: Request) -> Response:
        demo = self.demo
        user = await demo.signed_in(request)
        if isinstance(user, Response):
            return user
        try:
            tenant = await demo.store.get_tenant(user.tenant_id)
        except StoreUnavailableError:
            tenant = None
        flag_on = tenant is not None and tenant.flag(FEATURE_FLAG)
        return demo.render(
            request,
            "tenant.html",
            user=user,
            tenant_name=(tenant.attributes.get("name") if tenant else None) or user.tenant_id,
            flag=FEATURE_FLAG,
            flag_on=flag_on,
            patch_url=demo.stepup.url(request, "tenant", tenant_id=user.tenant_id),
            actions=demo.stepup.policy.table(),
            lifetime=demo.stepup.policy.lifetime,
        )

    async def audit(self, request: Request) -> Response:
        demo = self.demo
        user = await demo.signed_in(request)
        if isinstance(user, Response):
            return user
        await demo.audit.flush()
        entries = await demo.data.audit()
        return demo.render(request, "audit.html", user=user, entries=entries)
