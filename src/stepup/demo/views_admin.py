"""Tenant settings (the flag, flipped through stepup's JSON:API endpoint, or its form
without JavaScript) and the audit log."""

from __future__ import annotations

from typing import Final

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ..errors import PermissionDeniedError, StoreUnavailableError
from ..policy import TENANT_SETTINGS_UPDATE
from ..reauth import FEATURE_FLAG
from ..tenants import TenantNotFoundError
from .status import human_duration
from .web import Demo

__all__ = ["FLAG_RETURN", "AdminViews"]

#: Where the re-authentication for the Tenant page's button comes back to (the flag's
#: address, which shows the Tenant page): not the Tenant page itself, so that the
#: prompt's Cancel can go back there (stepup's Cancel never goes to the page the prompt
#: returns to, and else goes to the page the person came from).
FLAG_RETURN: Final = "/tenant/flag"


class AdminViews:
    def __init__(self, demo: Demo) -> None:
        self.demo = demo

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/tenant", self.tenant),
            Route(FLAG_RETURN, self.flag_page, methods=["GET"]),
            Route(FLAG_RETURN, self.set_flag, methods=["POST"]),
            Route("/audit", self.audit),
        ]

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
            flag_return=FLAG_RETURN,
            actions=demo.stepup.policy.table(),
            lifetime=demo.stepup.policy.lifetime,
        )

    async def flag_page(self, request: Request) -> Response:
        """Back from the re-authentication the button asked for: the Tenant page, saying
        that the confirmation holds (and for how long) so the second press is obvious;
        the button's script sent its PATCH before the prompt, and nothing changed yet."""
        demo = self.demo
        user = await demo.user(request)
        if user is None or not user.is_admin:  # nothing to press again
            return RedirectResponse("/tenant", status_code=303)
        left = await demo.confirmed_for(request, TENANT_SETTINGS_UPDATE)
        if left is None:  # not confirmed: the Tenant page as it is
            return RedirectResponse("/tenant", status_code=303)
        try:
            tenant = await demo.store.get_tenant(user.tenant_id)
        except StoreUnavailableError:
            tenant = None
        press = "the button"
        if tenant is not None:
            press = "“Turn off”" if tenant.flag(FEATURE_FLAG) else "“Turn on”"
        text = (
            f"You have confirmed it is you: press {press} again to change the setting,"
            f" without being asked again for {human_duration(left)}."
        )
        return demo.redirect(request, "/tenant", text)

    async def set_flag(self, request: Request) -> Response:
        """The Tenant page's button without JavaScript: a form with ``on`` (``true`` or
        ``false``). The same rules as stepup's PATCH endpoint, in its order: signed in
        (and the form's CSRF token), a tenant admin (403), a fresh re-authentication for
        ``tenant.settings.update`` whatever the flag (the prompt, then this form sent
        again), then the core's ``TenantSettings.patch`` with the seed's body."""
        demo = self.demo
        user = await demo.signed_in(request)
        if isinstance(user, Response):
            return user
        form = await demo.form(request)
        if isinstance(form, Response):
            return form
        subject = await demo.subject(request)
        assert subject is not None  # signed in above
        is_admin = await demo.is_tenant_admin(subject, user.tenant_id)
        if not is_admin:
            return _message(
                demo, request, 403, "Not allowed", "Only a tenant admin can change this."
            )
        value = form.get("on")
        if value not in ("true", "false"):
            text = "The form must say on=true or on=false. Nothing was changed."
            return _message(demo, request, 400, "Nothing changed", text)
        decision = await demo.stepup.check(request, TENANT_SETTINGS_UPDATE)
        if not decision.ok:
            return await demo.stepup.respond(request, decision, FLAG_RETURN)
        body = {
            "data": {
                "type": "tenant",
                "attributes": {"feature_flags": {FEATURE_FLAG: value == "true"}},
            }
        }
        try:
            await demo.stepup.tenants.patch(
                user.tenant_id, body, actor_id=subject.user_id, actor_is_tenant_admin=is_admin
            )
        except PermissionDeniedError:
            return _message(
                demo, request, 403, "Not allowed", "Only a tenant admin can change this."
            )
        except TenantNotFoundError:
            return demo.not_found(request)
        except StoreUnavailableError:
            text = "Tenant settings cannot be changed right now. Try again in a moment."
            return _message(demo, request, 503, "Not changed", text)
        state = "on" if value == "true" else "off"
        return demo.redirect(
            request, "/tenant", f"Re-authentication for sensitive actions is {state}."
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


def _message(demo: Demo, request: Request, status: int, title: str, text: str) -> Response:
    return demo.render(request, "message.html", status=status, title=title, text=text)


def _page_number(value: str | None) -> int:
    """``?page=N`` (1 when absent or not a sensible whole number)."""
    if value is None or not value.isascii() or not value.isdigit():
        return 1
    return min(max(int(value[:6]), 1), _MAX_PAGE)
