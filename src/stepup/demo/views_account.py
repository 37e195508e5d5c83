"""Signing in and out, the account page and its details, two-factor settings, users."""

from __future__ import annotations

from functools import partial
from typing import Final

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ..adapters.idp.password import PasswordReason
from ..errors import StoreUnavailableError
from ..integrations.views import throttled_message
from ..redirects import safe_return_path_or_default
from ..signin import SecondFactors
from .data import User
from .seed import DEMO_USERS
from .web import GET_POST, Views

__all__ = ["AccountViews"]

_MAX_FIELD = 255
#: The first step of signing in, by how the user signs in.
_FIRST_STEP: Final = {
    "password": "a password",
    "oidc": "OpenID Connect single sign-on",
    "saml": "SAML single sign-on",
}
#: The events after which the audit's last ``RecoveryCodeUsed`` no longer counts the
#: codes: new codes (enrolling, regenerating) or none (two-factor off).
_RECOVERY_EVENTS: Final = (
    "RecoveryCodeUsed",
    "RecoveryCodesRegenerated",
    "TwoFactorEnabled",
    "TwoFactorRemoved",
)


def sign_in_steps(user: User, factors: SecondFactors | None) -> str:
    """How ``user`` signs in, as stepup's sign-in asks (``factors``: the second factors
    it asks for; ``None`` when stepup's store cannot say)."""
    first = _FIRST_STEP[user.login]
    if factors is None:
        return f"{first} (whether a second step follows cannot be checked right now)"
    second = [
        *(["a code from an authenticator app"] if factors.totp else []),
        *(["a passkey"] if factors.passkeys else []),
    ]
    return f"{first}, then {' or '.join(second)}" if second else first


class AccountViews(Views):
    def routes(self) -> list[BaseRoute]:
        return [
            Route("/", self.home),
            Route("/login", self.login, methods=GET_POST),
            Route("/logout", self.logout, methods=GET_POST),
            Route("/account", self.account),
            self.sensitive("/account/edit", "user.update", self.edit),
            Route("/security", self.security),
            Route("/users", self.users),
        ]

    async def home(self, request: Request) -> Response:
        user = await self.demo.user(request)
        return RedirectResponse("/account" if user else "/login", status_code=303)

    # signing in and out -------------------------------------------------------

    async def login(self, request: Request) -> Response:
        next_path = safe_return_path_or_default(request.query_params.get("next"), "/account")

        def page() -> Response:
            return self.login_page(request, next_path, "", "")

        return await self.demo.page_and_form(request, page, partial(self.sign_in, request))

    async def sign_in(self, request: Request, form: FormData) -> Response:
        demo = self.demo
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
        if result.reason is PasswordReason.UNAVAILABLE:
            # stepup's store is down: the password was not checked, so it was neither
            # right nor wrong (the same answer for every email: it tells no account
            # apart). The same words as stepup's pages, in this page's language (the
            # demo's own pages are English, base.html); no failed sign-in is audited.
            error = demo.unavailable_text()
            page = self.login_page(request, next_path, email, error, 503)
            page.headers["Retry-After"] = "5"  # as stepup's own "try again" page
            return page
        if not result.ok or user is None:
            if user is not None:
                demo.audit.app_event("SignInFailed", user.id, reason=result.reason.value)
            error = "Wrong email or password."
            if result.reason is PasswordReason.THROTTLED:
                # The same words as stepup's pages (paused, and until when), in this
                # page's language: the demo's own pages are English (base.html).
                error = str(throttled_message(result.retry_at))
            status = 429 if result.reason is PasswordReason.THROTTLED else 401
            return self.login_page(request, next_path, email, error, status)
        if result.new_hash is not None:
            await demo.data.set_password_hash(user.id, result.new_hash)
        return await demo.finish_sign_in(request, user.id, next_path)

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
            # Both fields are marked: the message does not say which one was wrong.
            wrong_credentials=status == 401,
            sso_buttons=self.demo.sso_buttons,
            demo_users=DEMO_USERS,
            sso_accounts=self.sso_accounts(),
        )

    def sso_accounts(self) -> list[tuple[str, str]]:
        """The single sign-on provider's test account (``alice / alice-password``) and the
        provider's name, listed with the demo users; none unless one is configured."""
        oidc = self.demo.settings.oidc
        if oidc is None or not oidc.account_hint:
            return []
        return [(oidc.account_hint, oidc.display_name)]

    async def logout(self, request: Request) -> Response:
        demo = self.demo

        async def sign_out(_: FormData) -> Response:
            await demo.sign_out(request)
            return RedirectResponse("/login", status_code=303)

        return await demo.page_and_form(
            request, lambda: demo.render(request, "logout.html"), sign_out
        )

    # the account ----------------------------------------------------------------

    async def account(self, request: Request) -> Response:
        demo = self.demo
        user = await demo.signed_in(request)
        if isinstance(user, Response):
            return user
        try:
            factors: SecondFactors | None = await demo.stepup.second_factors(user.id)
        except StoreUnavailableError:
            factors = None
        steps = sign_in_steps(user, factors)
        return demo.render(request, "account.html", user=user, sign_in_steps=steps)

    async def edit(self, request: Request) -> Response:
        demo = self.demo
        user = await demo.signed_in(request)
        if isinstance(user, Response):
            return user

        def page(error: str = "", status: int = 200) -> Response:
            return demo.render(request, "account_edit.html", status=status, user=user, error=error)

        async def save(form: FormData) -> Response:
            name = " ".join(str(form.get("name", "")).split())[:_MAX_FIELD]
            email = str(form.get("email", "")).strip()[:_MAX_FIELD]
            taken = await demo.data.user_by_email(email)
            if not name or "@" not in email:
                return page("Enter a name and an email address.", 400)
            if taken is not None and taken.id != user.id:
                return page("Another user has this email address.", 400)
            await demo.data.update_user(user.id, name=name, email=email)
            demo.audit.app_event("UserUpdated", user.id)
            return demo.redirect(request, "/account", "Your details were saved.")

        return await demo.page_and_form(request, page, save)

    # two-factor settings and users ---------------------------------------------

    async def security(self, request: Request) -> Response:
        demo = self.demo
        user = await demo.signed_in(request)
        if isinstance(user, Response):
            return user
        devices = await demo.stepup.two_factor.devices(user.id)  # confirmed apps, oldest first
        enrolled = bool(devices)
        names = ("enrol", "recovery_codes", "remove", "passkeys", "two_factor")
        urls = {name: demo.stepup.url(request, name) for name in names}
        passkeys = demo.stepup.passkeys
        registered = await passkeys.registered(user.id) if passkeys is not None else ()
        return demo.render(
            request,
            "security.html",
            user=user,
            enrolled=enrolled,
            devices=devices,
            urls=urls,
            passkeys=registered,
            passkey_origin=demo.settings.passkey_origin,
            recovery_left=await self.recovery_codes_left(user.id) if enrolled else None,
        )

    async def recovery_codes_left(self, user_id: str) -> int | None:
        """How many recovery codes are left once one was used: the count the core's
        ``RecoveryCodeUsed`` event carried, from the audit log, unless codes were made
        anew (or two-factor turned off) since. ``None`` when none was used since."""
        await self.demo.audit.flush()  # the event of a sign-in moments ago
        last = await self.demo.data.latest_audit(user_id, _RECOVERY_EVENTS)
        if last is None or last.name != "RecoveryCodeUsed":
            return None
        remaining = last.details.get("remaining")
        return remaining if isinstance(remaining, int) else None

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
