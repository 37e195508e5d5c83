"""Re-authentication views for sessions that signed in through OIDC or SAML.

The start views send the browser to the provider (the adapters store the challenge);
the OIDC callback and the SAML ACS hand the answer to the adapter and record a grant
only when its outcome is ``ok``. When the rule also asks for a code, the start form
carries it: it is checked before leaving, and added to the grant on the way back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Final, Protocol
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ...errors import NotEnrolledError, PermissionDeniedError, StepupError, UnknownActionError
from ...subject import Subject
from ..views import ReauthPage, reauth_page, two_factor_message
from ._util import session_of
from .pages import code_status, with_error

if TYPE_CHECKING:
    from .pages import StepupPages

__all__ = ["FederatedOutcome", "OIDCAdapter", "SAMLAdapter", "oidc_routes", "saml_routes"]

#: Session key of a code checked at a start view, waiting for the provider's answer.
OTP_PROOF: Final = "stepup.otp_proof"


class FederatedOutcome(Protocol):
    @property
    def ok(self) -> bool: ...

    @property
    def method(self) -> str: ...

    @property
    def return_to(self) -> str | None: ...


class _OIDCOutcome(FederatedOutcome, Protocol):
    @property
    def auth_time(self) -> float | None: ...


class _SAMLOutcome(FederatedOutcome, Protocol):
    @property
    def authn_instant(self) -> float | None: ...


class _SAMLRedirect(Protocol):
    @property
    def url(self) -> str: ...


class OIDCAdapter(Protocol):
    """What :class:`stepup.adapters.idp.oidc.AsyncOIDCReauth` offers."""

    async def start(self, subject: Subject, *, return_to: str, action: str = "") -> str: ...

    async def complete(
        self, subject: Subject, callback_params: Mapping[str, str]
    ) -> _OIDCOutcome: ...


class SAMLAdapter(Protocol):
    """What :class:`stepup.adapters.idp.saml.AsyncSAMLServiceProvider` offers."""

    async def start(
        self, subject: Subject, *, return_to: str, action: str = ""
    ) -> _SAMLRedirect: ...

    async def complete(
        self, subject: Subject, saml_response: str, relay_state: str | None = None
    ) -> _SAMLOutcome: ...

    def metadata(self) -> str: ...


class _Federated:
    def __init__(self, pages: StepupPages, kind: str) -> None:
        self.pages = pages
        self.stepup = pages.stepup
        self.kind = kind

    async def start(self, request: Request) -> Response:
        """Check the form (and the code, when the rule asks for one), then leave."""
        pages, s = self.pages, self.stepup
        subject = await pages.signed_in(request)
        if isinstance(subject, Response):
            return subject
        params = request.query_params
        try:
            page = reauth_page(s.policy, subject, params.get("action", ""), params.get("next"))
        except UnknownActionError:
            return pages.message(request, "Unknown action", "This link is not valid.", 400)
        if page.sso != self.kind:
            return pages.reauth_form(request, subject, page, 400)
        session_of(request).pop(OTP_PROOF, None)
        if request.method == "POST":
            form = await pages.form(request, subject.session_id)
            if form is None:
                return pages.csrf_failed(request)
            if page.totp:
                failed = await self.check_code(request, subject, page, form.get("code"))
                if failed is not None:
                    return failed
        elif page.totp:  # the code comes with the reauth page's form
            return pages.reauth_form(request, subject, page)
        try:
            location = await self.provider_url(subject, page)
        except PermissionDeniedError:
            text = "You did not sign in through this provider."
            return pages.message(request, "Not possible", text, 403)
        except StepupError:
            return pages.unavailable(request)
        return RedirectResponse(location, status_code=303)

    async def check_code(
        self, request: Request, subject: Subject, page: ReauthPage, code: object
    ) -> Response | None:
        s, pages = self.stepup, self.pages
        try:
            result = await s.two_factor.verify(subject.user_id, code)
        except NotEnrolledError:
            error = "This action needs two-factor authentication: turn it on first."
            return pages.reauth_form(request, subject, with_error(page, error), 400)
        if not result.ok:
            page = with_error(page, two_factor_message(result))
            return pages.reauth_form(request, subject, page, code_status(result))
        session_of(request)[OTP_PROOF] = {"session": subject.session_id, "at": s.clock()}
        return None

    def proven_methods(self, request: Request, subject: Subject, method: str) -> list[str]:
        """The provider's method, plus ``otp`` if this session proved a code at the start
        within the challenge time."""
        proof = session_of(request).pop(OTP_PROOF, None)
        methods = [method]
        if (
            isinstance(proof, dict)
            and proof.get("session") == subject.session_id
            and isinstance(proof.get("at"), int | float)
            and 0 <= self.stepup.clock() - proof["at"] < self.stepup.sign_in_ttl
        ):
            methods.append("otp")
        return methods

    async def finish(
        self, request: Request, subject: Subject, outcome: FederatedOutcome, at: float | None
    ) -> Response:
        pages = self.pages
        if not outcome.ok:
            session_of(request).pop(OTP_PROOF, None)
            retry = self.stepup.url(request, "reauth")
            if outcome.return_to:
                retry += "?" + urlencode({"next": outcome.return_to})
            text = "Your identity provider did not confirm it is you. Please try again."
            return pages.render(
                request,
                "message.html",
                binding="",
                status=400,
                title="Not confirmed",
                text=text,
                retry=retry,
            )
        methods = self.proven_methods(request, subject, outcome.method)
        return await pages.record(request, subject, methods, outcome.return_to or "/", at)

    async def provider_url(self, subject: Subject, page: ReauthPage) -> str:
        raise NotImplementedError


class _OIDC(_Federated):
    def __init__(self, pages: StepupPages, adapter: OIDCAdapter) -> None:
        super().__init__(pages, "oidc")
        self.adapter = adapter

    async def provider_url(self, subject: Subject, page: ReauthPage) -> str:
        return await self.adapter.start(subject, return_to=page.next, action=page.action)

    async def callback(self, request: Request) -> Response:
        subject = await self.pages.signed_in(request)
        if isinstance(subject, Response):
            return subject
        outcome = await self.adapter.complete(subject, dict(request.query_params))
        return await self.finish(request, subject, outcome, outcome.auth_time)


class _SAML(_Federated):
    def __init__(self, pages: StepupPages, adapter: SAMLAdapter) -> None:
        super().__init__(pages, "saml")
        self.adapter = adapter

    async def provider_url(self, subject: Subject, page: ReauthPage) -> str:
        redirect = await self.adapter.start(subject, return_to=page.next, action=page.action)
        return redirect.url

    async def acs(self, request: Request) -> Response:
        """The IdP posts here cross-site, so there is no CSRF token: the adapter accepts
        only a signed answer to a pending request of this very session."""
        subject = await self.pages.signed_in(request)
        if isinstance(subject, Response):
            return subject
        form = await request.form()
        response, relay = form.get("SAMLResponse"), form.get("RelayState")
        outcome = await self.adapter.complete(
            subject,
            response if isinstance(response, str) else "",
            relay if isinstance(relay, str) else None,
        )
        return await self.finish(request, subject, outcome, outcome.authn_instant)

    async def metadata(self, request: Request) -> Response:
        return Response(self.adapter.metadata(), media_type="application/samlmetadata+xml")


def oidc_routes(pages: StepupPages) -> Sequence[BaseRoute]:
    assert pages.stepup.oidc is not None
    views = _OIDC(pages, pages.stepup.oidc)
    return [
        Route("/oidc/start", views.start, methods=["GET", "POST"], name="oidc_start"),
        Route("/oidc/callback", views.callback, methods=["GET"], name="oidc_callback"),
    ]


def saml_routes(pages: StepupPages) -> Sequence[BaseRoute]:
    assert pages.stepup.saml is not None
    views = _SAML(pages, pages.stepup.saml)
    return [
        Route("/saml/start", views.start, methods=["GET", "POST"], name="saml_start"),
        Route("/saml/acs", views.acs, methods=["POST"], name="saml_acs"),
        Route("/saml/metadata", views.metadata, methods=["GET"], name="saml_metadata"),
    ]
