"""Signing in and out, the account page and its details, two-factor settings, users."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ..adapters.idp.password import PasswordReason
from ..redirects import safe_return_path_or_default
from .seed import DEMO_USERS
from .web import Demo

__all__ = ["AccountViews"]

_MAX_FIELD = 255


class AccountViews:
    def __init__(self, demo: Demo) -> None:
        self.demo = demo

    def routes(self) -> list[BaseRoute]:
        guard = self.demo.stepup.requires_reauth
        both = ["GET", "POST"]
        return [
            Route("/", self.home),
            Route("/login", self.login, methods=both),
            Route("/logout", self.logout, methods=both),
            Route("/account", self.account),
            Route("/account/edit", guard("user.update")(self.edit), methods=both),
            Route("/security", self.security),
            Route("/users", self.users),
        ]

    async def home(self, request: Request) -> Response:
        user = await self.demo.user(request)
        return RedirectResponse("/account" if user else "/login", status_code=303)

    # signing in and out -------------------------------------------------------

    async def login(self, request: Request) -> Response:
        demo = self.demo
        next_path = safe_return_path_or_default(request.query_params.get("next"), "/account")
        if request.method == "GET":
            return self.login_page(request, next_path, "", "")
        form = await demo.form(request)
        if form is None:
            return demo.csrf_failed(request)
        email = str(form.get("email", ""))[:_MAX_FIELD]
        next_path = safe_return_path_or_default(form.get("next"), "/account")
        user = await demo.data.user_by_email(email)
        stored = None
        if user is not None and user.login == "password":
            stored = await demo.data.password_hash(user.id)
        # The password adapter throttles per user and costs the same for unknown users.
        result = await demo.sign_in_passwords.verify(
            user.id if user is not None else f"unknown:{email.lower()}",
            form.get("password"),
            stored,
        )
        if not result.ok or user is None:
            if user is not None:
                demo.audit.app_event("SignInFailed", user.id, reason=result.reason.value)
            error = "Wrong email or password."
            if result.reason is PasswordReason.THROTTLED:
                error = "Too many attempts. Wait a while and try again."
            status = 429 if result.reason is PasswordReason.THROTTLED else 401
            return self.login_page(request, next_path, email, error, status)
        if result.new_hash is not None:
            await demo.data.set_password_hash(user.id, result.new_hash)
        second_step = await demo.stepup.begin_sign_in(request, user.id, next=next_path)
        if second_step is not None:  # 2FA is on: stepup's code step, then complete_sign_in
            return second_step
        await demo.complete_sign_in(request, user.id)
        return RedirectResponse(next_path, status_code=303)

    def login_page(
        self, request: Request, next_path: str, email: str, error: str, status: int = 200
    ) -> Response:
        return self.demo.render(
            request,
            "login.html",
            status=status,
            next=next_path,
            email=email,
            error=error,
            sso_buttons=self.demo.sso_buttons,
            demo_users=DEMO_USERS,
        )

    async def logout(self, request: Request) -> Response:
        demo = self.demo
        if request.method == "GET":
            return demo.render(request, "logout.html")
        if await demo.form(request) is None:
            return demo.csrf_failed(request)
        await demo.sign_out(request)
        return RedirectResponse("/login", status_code=303)

    # the account ----------------------------------------------------------------

    async def account(self, request: Request) -> Response:
        user = await self.demo.signed_in(request)
        if isinstance(user, Response):
            return user
        return self.demo.render(request, "account.html", user=user)

    async def edit(self, request: Request) -> Response:
        demo = self.demo
        user = await demo.signed_in(request)
        if isinstance(user, Response):
            return user
        if request.method == "GET":
            return demo.render(request, "account_edit.html", user=user, error="")
        form = await demo.form(request)
        if form is None:
            return demo.csrf_failed(request)
        name = " ".join(str(form.get("name", "")).split())[:_MAX_FIELD]
        email = str(form.get("email", "")).strip()[:_MAX_FIELD]
        taken = await demo.data.user_by_email(email)
        error = ""
        if not name or "@" not in email:
            error = "Enter a name and an email address."
        elif taken is not None and taken.id != user.id:
            error = "Another user has this email address."
        if error:
            return demo.render(request, "account_edit.html", status=400, user=user, error=error)
        await demo.data.update_user(user.id, name=name, email=email)
        demo.audit.app_event("UserUpdated", user.id)
        return demo.redirect(request, "/account", "Your details were saved.")

    # two-factor settings and users ---------------------------------------------

    async def security(self, request: Request) -> Response:
        demo = self.demo
        user = await demo.signed_in(request)
        if isinstance(user, Response):
            return user
        enrolled = await demo.stepup.two_factor.is_enrolled(user.id)
        urls = {
            name: demo.stepup.url(request, name) for name in ("enrol", "recovery_codes", "remove")
        }
        return demo.render(request, "security.html", user=user, enrolled=enrolled, urls=urls)

    async def users(self, request: Request) -> Response:
        demo = self.demo
        user = await demo.signed_in(request)
        if isinstance(user, Response):
            return user
        if not user.is_admin:
            return demo.forbidden(request)
        rows = []
        for other in await demo.data.users(user.tenant_id):
            enrolled = await demo.stepup.two_factor.is_enrolled(other.id)
            remove = demo.stepup.url(request, "admin_remove", user_id=other.id)
            rows.append((other, enrolled, f"{remove}?next=/users"))
        return demo.render(request, "users.html", user=user, rows=rows)
