"""Re-authentication views for sessions that signed in through OIDC or SAML.

The start views send the browser to the provider (the adapters store the challenge);
the OIDC callback and the SAML ACS hand the answer to the adapter and record a grant
only when its outcome is ``ok``. When the rule also asks for a code, the start form
carries it: it is checked before leaving, rides with the trip's own single-use state,
and is added to the grant when the answer to that very trip comes back ``ok``. The
start views take only a POST with the CSRF token: another site cannot start a trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ...errors import PermissionDeniedError, StepupError, UnknownActionError
from ...subject import Subject
from ..transaction import TransactionExpiredError
from ..views import (
    TEXT,
    ProviderOutcome,
    ReauthPage,
    note_sso_trip,
    oidc_callback_params,
    posted_value,
    report_sso_refusal,
    sso_answer,
    sso_level_request,
    sso_otp_proved,
    sso_otp_request,
    sso_resume,
    sso_resume_request,
    sso_retry_query,
    sso_transaction,
    sso_transaction_request,
    take_sso_trip,
)
from ._util import session_of
from .providers import OIDCAdapter, SAMLAdapter

if TYPE_CHECKING:
    from .pages import StepupPages

__all__ = ["OIDCAdapter", "SAMLAdapter", "oidc_routes", "saml_routes"]

#: Session key of a trip to the provider this session began, waiting for its answer.
SSO_TRIP: Final = "stepup.sso_trip"


class _Federated:
    def __init__(self, pages: StepupPages, kind: str) -> None:
        self.pages = pages
        self.stepup = pages.stepup
        self.kind = kind

    async def start(self, request: Request) -> Response:
        """Check the form (its CSRF token, and the code when the rule asks for one),
        then leave. POST only (the route takes nothing else)."""
        pages, s = self.pages, self.stepup
        subject = await pages.signed_in(request)
        if isinstance(subject, Response):
            return subject
        try:
            page = await pages.reauth_page(request, subject)
        except UnknownActionError:
            return await pages.message(request, TEXT["unknown_action"], 400)
        except TransactionExpiredError:
            return await pages.message(request, TEXT["transaction_expired"], 400)
        if page.sso != self.kind:
            return await pages.reauth_form(request, subject, page, 400)
        form = await pages.form(request, subject.session_id)
        if form is None:
            return await pages.csrf_failed(request)
        if page.totp:
            code = posted_value(form.getlist("code"), None)  # refused if sent twice
            refused = await pages.refused_code(request, subject, page, code)
            if refused is not None:
                return refused
        try:
            location = await self.provider_url(subject, page)
        except PermissionDeniedError:
            return await pages.message(request, TEXT["sso_other_provider"], 403)
        except StepupError:
            return await pages.message(request, TEXT["sso_unreachable"], 503)
        session = session_of(request)
        note_sso_trip(session, subject.session_id, self.kind, s.clock(), key=SSO_TRIP)
        return RedirectResponse(location, status_code=303)

    async def finish(
        self, request: Request, subject: Subject, outcome: ProviderOutcome
    ) -> Response:
        """Record the grant for an ``ok`` answer (with ``otp`` when the outcome says a code
        was proved at the start of this very trip), else show why not with a link to try
        again."""
        s, pages = self.stepup, self.pages
        session = session_of(request)
        trip_began = take_sso_trip(
            session, subject.session_id, self.kind, s.clock(), s.sign_in_ttl, key=SSO_TRIP
        )
        action = str(getattr(outcome, "action", "") or "")
        # What the session still keeps of the transaction the trip confirms: sso_answer
        # grants its single-use proof, or refuses when it no longer waits.
        kept = s.pending_transaction(request, subject, action, sso_transaction(outcome))
        proved = sso_otp_proved(outcome)
        answer = sso_answer(outcome, proved, s.policy, home=s.home(request), kept=kept)
        # Where to try again: after a refusal, and after a store failure.
        retry = s.url(request, "reauth") + "?" + urlencode(sso_retry_query(answer.next, outcome))
        if not answer.ok:
            report_sso_refusal(
                s.events,
                subject.user_id,
                outcome,
                s.clock(),
                trip_began=trip_began,
                reason=answer.reason,
            )
            link = retry if answer.retry else ""
            return await pages.message(request, answer.message, answer.status, link)
        methods = list(answer.methods)
        return await pages.record(
            request,
            subject,
            methods,
            answer.next,
            answer.authenticated_at,
            resume=(sso_resume(outcome), action),
            level=answer.level,
            transaction=answer.transaction,
            # SAML's answer is another site's POST: no SameSite=Lax binding cookie.
            cross_site=self.kind == "saml",
            retry=retry,
        )

    def level_request(self, page: ReauthPage) -> dict[str, Any]:
        """What the provider is asked for: the level the page's rule needs (the adapter
        refuses an answer below it), and the transaction the trip confirms, the
        suspended form it resumes and whether a code was proved for it (they ride with
        the trip's own state and come back on its outcome: two trips in two tabs never
        swap theirs, and no other answer uses them up). ``start`` reaches the provider
        only after the code, when the page asks for one, was checked."""
        level = sso_level_request(self.stepup.policy, page, self.kind)
        trip = sso_transaction_request(page) | sso_resume_request(page)
        return level | trip | sso_otp_request(page.totp)

    async def provider_url(self, subject: Subject, page: ReauthPage) -> str:
        raise NotImplementedError


class _OIDC(_Federated):
    def __init__(self, pages: StepupPages, adapter: OIDCAdapter) -> None:
        super().__init__(pages, "oidc")
        self.adapter = adapter

    async def provider_url(self, subject: Subject, page: ReauthPage) -> str:
        level = self.level_request(page)
        return await self.adapter.start(subject, return_to=page.next, action=page.action, **level)

    async def callback(self, request: Request) -> Response:
        subject = await self.pages.signed_in(request)
        if isinstance(subject, Response):
            return subject
        outcome = await self.adapter.complete(
            subject, oidc_callback_params(request.query_params.multi_items())
        )
        return await self.finish(request, subject, outcome)


class _SAML(_Federated):
    def __init__(self, pages: StepupPages, adapter: SAMLAdapter) -> None:
        super().__init__(pages, "saml")
        self.adapter = adapter

    async def provider_url(self, subject: Subject, page: ReauthPage) -> str:
        level = self.level_request(page)
        redirect = await self.adapter.start(
            subject, return_to=page.next, action=page.action, **level
        )
        return redirect.url

    async def acs(self, request: Request) -> Response:
        """The IdP posts here cross-site, so there is no CSRF token: the adapter accepts
        only a signed answer to a pending request of this very session."""
        subject = await self.pages.signed_in(request)
        if isinstance(subject, Response):
            return subject
        try:
            # Two fields, one up to the SAML reader's 512 KiB: a few more, and no file.
            form = await request.form(max_files=0, max_fields=16, max_part_size=1024 * 1024)
        except (HTTPException, MultiPartException):
            # A body Starlette's form parser refuses (multipart without a boundary, a
            # field over its size limit, too many fields or files): no SAMLResponse, so
            # the same page as any other unreadable answer, not Starlette's plain text.
            form = FormData()
        response, relay = form.get("SAMLResponse"), form.get("RelayState")
        outcome = await self.adapter.complete(
            subject,
            response if isinstance(response, str) else "",
            relay if isinstance(relay, str) else None,
        )
        return await self.finish(request, subject, outcome)

    async def metadata(self, request: Request) -> Response:
        return Response(self.adapter.metadata(), media_type="application/samlmetadata+xml")


def oidc_routes(pages: StepupPages) -> Sequence[BaseRoute]:
    assert pages.stepup.oidc is not None
    views = _OIDC(pages, pages.stepup.oidc)
    return [
        Route("/oidc/start", views.start, methods=["POST"], name="oidc_start"),
        Route("/oidc/callback", views.callback, methods=["GET"], name="oidc_callback"),
    ]


def saml_routes(pages: StepupPages) -> Sequence[BaseRoute]:
    assert pages.stepup.saml is not None
    views = _SAML(pages, pages.stepup.saml)
    return [
        Route("/saml/start", views.start, methods=["POST"], name="saml_start"),
        Route("/saml/acs", views.acs, methods=["POST"], name="saml_acs"),
        Route("/saml/metadata", views.metadata, methods=["GET"], name="saml_metadata"),
    ]
