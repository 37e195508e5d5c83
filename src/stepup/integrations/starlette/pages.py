"""The ready-made views: re-authentication, two-factor, and the tenant settings endpoint.

Each view reads the request, calls one core service, and renders a template or a
redirect. Which methods a page asks for comes from the core (through
:mod:`stepup.integrations.views`); every return location goes through
``safe_return_path_or_default``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ...errors import (
    AlreadyEnrolledError,
    ManagedByConfigFileError,
    NotEnrolledError,
    PermissionDeniedError,
    StepupError,
    StoreUnavailableError,
    UnknownActionError,
)
from ...redirects import safe_return_path_or_default
from ...subject import Subject
from ..views import (
    RECOVERY_REGENERATE,
    ReauthPage,
    RecoveryCodesPage,
    enrolment_page,
    reauth_page,
    refusal_status,
    tenant_error_response,
    tenant_request_refusal,
    tenant_response,
    two_factor_message,
)
from ._util import call_hook, session_of, to_response
from .csrf import FIELD_NAME, CsrfProtection
from .stepup import PENDING_SIGN_IN

if TYPE_CHECKING:
    from .stepup import Stepup

__all__ = ["StepupPages"]

#: stepup pages hold one-time secrets and confirm dangerous actions: never cached, never
#: framed (a framed "Remove" button is a clickjacking target).
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
}


class StepupPages:
    """The views of one :class:`Stepup`; :meth:`routes` lists them."""

    def __init__(self, stepup: Stepup) -> None:
        self.stepup = stepup

    def routes(self) -> list[BaseRoute]:
        s = self.stepup
        regenerate = s.requires_reauth(RECOVERY_REGENERATE)
        disable = s.requires_reauth("2fa.disable")
        both = ["GET", "POST"]
        routes: list[BaseRoute] = [
            Route("/reauth", self.reauth, methods=both, name="reauth"),
            Route("/2fa/enrol", self.enrol, methods=both, name="enrol"),
            Route("/2fa/verify", self.verify, methods=both, name="verify"),
            Route(
                "/2fa/recovery-codes",
                regenerate(self.recovery_codes),
                methods=both,
                name="recovery_codes",
            ),
            Route("/2fa/remove", disable(self.remove), methods=both, name="remove"),
            Route(
                "/2fa/users/{user_id}/remove",
                disable(self.admin_remove),
                methods=both,
                name="admin_remove",
            ),
            Route("/tenants/{tenant_id}", self.tenant, methods=["PATCH"], name="tenant"),
        ]
        if s.oidc is not None:
            from .federated import oidc_routes

            routes += oidc_routes(self)
        if s.saml is not None:
            from .federated import saml_routes

            routes += saml_routes(self)
        return routes

    # rendering ----------------------------------------------------------------

    def render(
        self, request: Request, template: str, *, binding: str, status: int = 200, **context: Any
    ) -> Response:
        """Render ``stepup/<template>`` with a CSRF token bound to ``binding``."""
        s = self.stepup
        token, fresh = s.csrf.issue(request, binding)
        query = request.url.query
        values = {
            "csrf_token": token,
            "csrf_field": FIELD_NAME,
            "form_action": request.url.path + (f"?{query}" if query else ""),
            "urls": {name: s.url(request, name) for name in ("reauth", "enrol", "remove")},
            **context,
        }
        response = s.templates.TemplateResponse(
            request, f"stepup/{template}", values, status_code=status, headers=_PAGE_HEADERS
        )
        if fresh is not None:
            CsrfProtection.set_cookie(request, response, fresh)
        return response

    def message(self, request: Request, title: str, text: str, status: int) -> Response:
        return self.render(
            request, "message.html", binding="", status=status, title=title, text=text
        )

    async def form(self, request: Request, binding: str) -> FormData | None:
        """The posted form, or ``None`` when its CSRF token does not hold."""
        form = await request.form()
        if not self.stepup.csrf.verify(request, form.get(FIELD_NAME), binding):
            return None
        return form

    def csrf_failed(self, request: Request) -> Response:
        text = "This form expired or did not come from this site. Go back, reload it and retry."
        return self.message(request, "Please try again", text, 403)

    async def signed_in(self, request: Request) -> Subject | Response:
        subject = await self.stepup.subject(request)
        return subject if subject is not None else self.stepup.sign_in_response(request)

    # re-authentication --------------------------------------------------------

    async def reauth(self, request: Request) -> Response:
        subject = await self.signed_in(request)
        if isinstance(subject, Response):
            return subject
        params = request.query_params
        try:
            page = reauth_page(
                self.stepup.policy, subject, params.get("action", ""), params.get("next")
            )
        except UnknownActionError:
            return self.message(request, "Unknown action", "This link is not valid.", 400)
        if request.method == "POST":
            return await self.reauth_post(request, subject, page)
        return self.reauth_form(request, subject, page)

    def reauth_form(
        self, request: Request, subject: Subject, page: ReauthPage, status: int = 200
    ) -> Response:
        s = self.stepup
        start = {
            "oidc": s.url(request, "oidc_start"),
            "saml": s.url(request, "saml_start"),
        }.get(page.sso, "")
        return self.render(
            request,
            "reauth.html",
            binding=subject.session_id,
            status=status,
            page=page,
            sso_start=start,
        )

    async def reauth_post(self, request: Request, subject: Subject, page: ReauthPage) -> Response:
        s = self.stepup
        form = await self.form(request, subject.session_id)
        if form is None:
            return self.csrf_failed(request)
        if not page.password:
            error = "Confirm with your sign-in provider instead."
            return self.reauth_form(request, subject, page.with_error(error), 400)
        stored = None
        if s.password_hash_loader is not None:
            stored = await call_hook(s.password_hash_loader, subject.user_id)
        result = await s.passwords.verify(subject, form.get("password"), stored)
        if not result.ok:
            page = page.with_error(result.public_message)
            return self.reauth_form(request, subject, page, refusal_status(result.reason))
        if result.new_hash is not None and s.password_rehash_saver is not None:
            await call_hook(s.password_rehash_saver, subject.user_id, result.new_hash)
        methods = ["pwd"]
        if page.totp:
            refused = await self.refused_code(request, subject, page, form.get("code"))
            if refused is not None:
                return refused
            methods.append("otp")
        return await self.record(request, subject, methods, page.next)

    async def refused_code(
        self, request: Request, subject: Subject, page: ReauthPage, code: object
    ) -> Response | None:
        """The page again when the second-factor code on the form does not verify."""
        try:
            result = await self.stepup.two_factor.verify(subject.user_id, code)
        except NotEnrolledError:
            error = "This action needs two-factor authentication: turn it on first."
            return self.reauth_form(request, subject, page.with_error(error), 400)
        if result.ok:
            return None
        page = page.with_error(two_factor_message(result))
        return self.reauth_form(request, subject, page, refusal_status(result.reason))

    async def record(
        self,
        request: Request,
        subject: Subject,
        methods: list[str],
        next_path: str,
        authenticated_at: float | None = None,
    ) -> Response:
        try:
            await self.stepup.reauth.record(subject, methods, authenticated_at=authenticated_at)
        except StoreUnavailableError:
            return self.unavailable(request)
        return RedirectResponse(safe_return_path_or_default(next_path), status_code=303)

    def unavailable(self, request: Request) -> Response:
        return self.message(request, "Try again soon", "This cannot be done right now.", 503)

    # two-factor: enrolment ----------------------------------------------------

    async def enrol(self, request: Request) -> Response:
        subject = await self.signed_in(request)
        if isinstance(subject, Response):
            return subject
        tf = self.stepup.two_factor
        try:
            if request.method == "POST":
                return await self.enrol_confirm(request, subject)
            enrolment = await tf.begin_enrolment(subject.user_id, subject.user_id)
        except AlreadyEnrolledError:
            text = "Two-factor authentication is already on for your account."
            return self.message(request, "Already on", text, 409)
        except ManagedByConfigFileError:
            text = "Two-factor authentication is set in the configuration file."
            return self.message(request, "Managed by configuration", text, 409)
        except StoreUnavailableError:
            return self.unavailable(request)
        page = enrolment_page(
            enrolment,
            account=subject.user_id,
            issuer=tf.issuer,
            digits=tf.digits,
            period=tf.period,
        )
        return self.render(request, "enrol.html", binding=subject.session_id, page=page)

    async def enrol_confirm(self, request: Request, subject: Subject) -> Response:
        form = await self.form(request, subject.session_id)
        if form is None:
            return self.csrf_failed(request)
        try:
            confirmation = await self.stepup.two_factor.confirm_enrolment(
                subject.user_id, form.get("code")
            )
        except NotEnrolledError:
            text = "No set-up was started, or it was replaced. Start again."
            return self.message(request, "Start again", text, 400)
        if not confirmation.ok:
            return self.render(
                request,
                "enrol.html",
                binding=subject.session_id,
                status=refusal_status(confirmation.result.reason),
                page=None,
                error=two_factor_message(confirmation.result),
            )
        page = RecoveryCodesPage(confirmation.recovery_codes)
        return self.render(request, "recovery_codes.html", binding=subject.session_id, page=page)

    # two-factor: the sign-in step ---------------------------------------------

    async def verify(self, request: Request) -> Response:
        s = self.stepup
        pending = s.pending_sign_in(request)
        if pending is None:
            text = "Your sign-in expired or was not started. Please sign in again."
            return self.message(request, "Sign in again", text, 400)
        binding = str(pending["nonce"])
        if request.method == "GET":
            return self.render(request, "verify.html", binding=binding, error="")
        form = await self.form(request, binding)
        if form is None:
            return self.csrf_failed(request)
        user_id = str(pending["user_id"])
        recovery = form.get("recovery_code")
        try:
            if recovery:
                result = await s.two_factor.use_recovery_code(user_id, recovery)
            else:
                result = await s.two_factor.verify(user_id, form.get("code"))
        except NotEnrolledError:
            session_of(request).pop(PENDING_SIGN_IN, None)
            return self.message(request, "Sign in again", "Please sign in again.", 400)
        if not result.ok:
            error = two_factor_message(result)
            status = refusal_status(result.reason)
            return self.render(request, "verify.html", binding=binding, status=status, error=error)
        session_of(request).pop(PENDING_SIGN_IN, None)
        assert s.complete_sign_in is not None  # begin_sign_in checked it
        await call_hook(s.complete_sign_in, request, user_id)
        return RedirectResponse(safe_return_path_or_default(pending.get("next")), 303)

    # two-factor: recovery codes and removal (guarded by re-authentication) ----

    async def recovery_codes(self, request: Request) -> Response:
        subject = await self.signed_in(request)
        if isinstance(subject, Response):
            return subject
        if request.method == "GET":
            return self.render(request, "recovery_regenerate.html", binding=subject.session_id)
        if await self.form(request, subject.session_id) is None:
            return self.csrf_failed(request)
        try:
            codes = await self.stepup.two_factor.regenerate_recovery_codes(subject.user_id)
        except NotEnrolledError:
            return self.not_enrolled(request)
        except StoreUnavailableError:
            return self.unavailable(request)
        page = RecoveryCodesPage(codes)
        return self.render(request, "recovery_codes.html", binding=subject.session_id, page=page)

    async def remove(self, request: Request) -> Response:
        return await self.remove_for(request, None)

    async def admin_remove(self, request: Request) -> Response:
        return await self.remove_for(request, request.path_params["user_id"])

    async def remove_for(self, request: Request, target: str | None) -> Response:
        """Remove 2FA: the user's own (``target`` None) or another user's, which the core
        allows only to an actor with full access."""
        s = self.stepup
        subject = await self.signed_in(request)
        if isinstance(subject, Response):
            return subject
        next_path = safe_return_path_or_default(request.query_params.get("next"))
        if request.method == "GET":
            return self.render(
                request, "remove.html", binding=subject.session_id, target=target, next=next_path
            )
        if await self.form(request, subject.session_id) is None:
            return self.csrf_failed(request)
        full_access = target is not None and await call_hook(s.has_full_access, subject)
        try:
            await s.two_factor.remove(
                target or subject.user_id,
                actor_id=subject.user_id,
                actor_has_full_access=bool(full_access),
            )
        except PermissionDeniedError:
            text = "Only an administrator with full access can do this."
            return self.message(request, "Not allowed", text, 403)
        except NotEnrolledError:
            return self.not_enrolled(request)
        except ManagedByConfigFileError:
            text = "Two-factor authentication is set in the configuration file."
            return self.message(request, "Managed by configuration", text, 409)
        except StoreUnavailableError:
            return self.unavailable(request)
        return RedirectResponse(next_path, status_code=303)

    def not_enrolled(self, request: Request) -> Response:
        text = "Two-factor authentication is not on for this account."
        return self.message(request, "Not enabled", text, 404)

    # tenant settings ----------------------------------------------------------

    async def tenant(self, request: Request) -> Response:
        s = self.stepup
        subject = await s.subject(request)
        refusal = tenant_request_refusal(
            subject is not None, request.headers.get("content-type", "")
        )
        if refusal is not None:
            return to_response(refusal)
        assert subject is not None  # refused above
        tenant_id = request.path_params["tenant_id"]
        is_admin = await call_hook(s.is_tenant_admin, subject, tenant_id)
        try:
            tenant = await s.tenants.patch(
                tenant_id,
                await request.body(),
                actor_id=subject.user_id,
                actor_is_tenant_admin=bool(is_admin),
            )
        except StepupError as exc:
            answer = tenant_error_response(exc)
            if answer is None:
                raise
            return to_response(answer)
        return to_response(tenant_response(tenant))
