"""Tenant settings (the flag, flipped through stepup's JSON:API endpoint) and the audit log."""

from __future__ import annotations

from typing import Final

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
        page = _page_number(request.query_params.get("page"))
        # A member sees their own events; a tenant admin sees everyone's in the tenant.
        scope = {"tenant_id": user.tenant_id} if user.is_admin else {"user_id": user.id}
        rows = await demo.data.audit(**scope, limit=AUDIT_PAGE + 1, offset=(page - 1) * AUDIT_PAGE)
        return demo.render(
            request,
            "audit.html",
            user=user,
            entries=rows[:AUDIT_PAGE],
            page=page,
            newer=page - 1 if page > 1 else None,
            older=page + 1 if len(rows) > AUDIT_PAGE else None,
            everyone=user.is_admin,
        )


#: Entries on one page of the audit log.
AUDIT_PAGE: Final = 50
_MAX_PAGE: Final = 10_000


def _page_number(value: str | None) -> int:
    """``?page=N`` (1 when absent or not a sensible whole number)."""
    if value is None or not value.isascii() or not value.isdigit():
        return 1
    return min(max(int(value[:6]), 1), _MAX_PAGE)
