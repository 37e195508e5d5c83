"""The ready-made views: re-authentication, two-factor, and the tenant settings endpoint.

Each view reads the request, calls one core service, and renders a template or a
redirect. Which methods a page asks for comes from the core (through
:mod:`stepup.integrations.views`); every return location goes through
``safe_return_path_or_default``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from functools import wraps
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlencode

from markupsafe import Markup
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route, request_response
from starlette.types import Receive, Scope, Send

from ..._flow import run_async
from ...errors import (
    AlreadyEnrolledError,
    ConfigurationError,
    InvalidAccountNameError,
    MalformedInputError,
    ManagedByConfigFileError,
    NotEnrolledError,
    PermissionDeniedError,
    StepupError,
    StoreUnavailableError,
    UnknownActionError,
)
from ...i18n import Message
from ...policy import TENANT_SETTINGS_UPDATE
from ...redirects import safe_return_path_or_default
from ...subject import Subject
from ..http import (
    RETRY_AFTER,
    Client,
    authentication_required,
    client_kind,
)
from ..pages import (
    codes_script_response,
    page_context,
    page_headers,
    stylesheet_response,
)
from ..passkey_endpoint import (
    INTERACTIVE_ONLY,
    csrf_response,
    off_channel,
    off_channel_response,
)
from ..passkey_endpoint import TEXT as PASSKEY_TEXT
from ..resume import (
    DonePage,
    NotResumedPage,
    note_resume_after_sso,
    repeated_action_response,
    resume_answer,
    resume_page,
    resume_token,
    retry_query,
    script_response,
    status_action,
    status_response,
    take_resume_after_sso,
    transaction_bound_response,
    unknown_action_response,
)
from ..tenant_endpoint import admin_refusal, aread_body
from ..transaction import TransactionExpiredError, confirming_page
from ..views import (
    CANCEL_SIGN_IN,
    ENROLLING,
    ENROLMENT_TTL,
    FORM_MAX_BYTES,
    RECOVERY_REGENERATE,
    TEXT,
    EnrolmentPage,
    FirstStep,
    MessagePage,
    ReauthPage,
    RecoveryCodesPage,
    VerifyPage,
    cancel_path,
    enrolment_page,
    form_code,
    full_access_arguments,
    hook_says_yes,
    password_error_field,
    password_message,
    posted_value,
    reauth_page,
    refusal_status,
    report_code_failure,
    take_waiting_sign_in,
    tenant_decision_response,
    tenant_error_response,
    tenant_method_not_allowed,
    tenant_request_refusal,
    tenant_response,
    two_factor_message,
    wants_cancel,
)
from ._util import call_hook, request_info, session_of, to_response
from .csrf import FIELD_NAME, CsrfProtection
from .stepup import PATHS, PENDING_SIGN_IN, takes_identity

if TYPE_CHECKING:
    from .stepup import StepupCore

__all__ = ["NOTE", "StepupPages", "leave_note", "passkey_urls", "take_notes"]

View = Callable[[Request], Awaitable[Response]]

#: The session key of a kept form a SAML answer left for the resume view.
RESUME_AFTER_SSO: Final = "stepup.resume_after_sso"
#: The session key of a note for the next two-factor or passkeys page ("The
#: authenticator app was added.", "The passkey was renamed."), shown once (the flash
#: message of Flask and Django).
NOTE: Final = "stepup.device_note"


def enrolling(request: Request) -> str:
    """The device id this session began enrolling, or ``""``, which matches no device
    (also without ``SessionMiddleware``: then a reload begins a new enrolment)."""
    kept = request.session.get(ENROLLING) if "session" in request.scope else None
    return kept if isinstance(kept, str) else ""


def note_enrolling(request: Request, device_id: str | None) -> None:
    """Keep (or, with ``None``, forget) the device this session began enrolling."""
    if "session" not in request.scope:
        return
    if device_id is None:
        request.session.pop(ENROLLING, None)
    else:
        request.session[ENROLLING] = device_id


def leave_note(request: Request, text: str) -> None:
    """Say ``text`` once, on the next page that shows notes (kept in the session: an app
    without ``SessionMiddleware`` shows none)."""
    if "session" in request.scope:
        request.session[NOTE] = text


def take_notes(request: Request) -> list[str]:
    """The note left for this page, if any (it is shown once)."""
    note = request.session.pop(NOTE, None) if "session" in request.scope else None
    return [note] if isinstance(note, str) else []


class _EveryMethod:
    """An endpoint Starlette routes every method to. A function endpoint is routed only
    the methods its ``Route`` names (``GET`` when none), so any other gets Starlette's
    405; an ASGI app with ``methods=None`` is routed them all, and answers them itself."""

    def __init__(self, endpoint: Callable[[Request], Awaitable[Response]]) -> None:
        self._app = request_response(endpoint)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)


#: What a form posted to stepup's pages may hold. Its own forms are a few short fields
#: (a password, a code, a CSRF token, a passkey's answer of a few KiB): reading stops at
#: the first field over :data:`~stepup.integrations.views.FORM_MAX_BYTES` (Starlette reads
#: the body in chunks as it parses), and the form is refused. Starlette's defaults admit
#: 1,000 fields of 1 MiB each. Flask's pages refuse a form body over the same number
#: before Werkzeug reads it (Werkzeug reads a urlencoded body whole and, unless the app
#: sets ``MAX_CONTENT_LENGTH``, however large; its ``MAX_FORM_MEMORY_SIZE`` of 500 KB
#: bounds multipart fields only); Django refuses a body over its
#: ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (2.5 MB by default).
FORM_LIMITS: Final = {"max_files": 0, "max_fields": 64, "max_part_size": FORM_MAX_BYTES}
#: Marks a request whose form was refused: its body is partly read and cannot be again.
_UNREADABLE_FORM: Final = "stepup.unreadable_form"


async def bounded_form(request: Request) -> FormData | None:
    """The posted form within :data:`FORM_LIMITS`, or ``None`` for one beyond them (the
    same answer each time it is asked for)."""
    if _UNREADABLE_FORM in request.scope:
        return None
    try:
        return await request.form(**FORM_LIMITS)
    except (HTTPException, MultiPartException):
        request.scope[_UNREADABLE_FORM] = True
        return None


class StepupPages:
    """The views of one :class:`Stepup`; :meth:`routes` lists them (the passkey and
    federated views, built on these, are added by ``app.Stepup.routes``)."""

    def __init__(self, stepup: StepupCore) -> None:
        self.stepup = stepup

    def routes(self) -> list[BaseRoute]:
        # The channel is checked before the guard (web_only), so an API key or a bearer
        # token reads the 403 of a page it may not use, not a re-authentication it cannot
        # give; signed_in checks it again in every view.
        regenerate = self.web_only_guarded(RECOVERY_REGENERATE)
        disable = self.web_only_guarded("2fa.disable")
        # Authorization first: someone without full access gets the 403, never a detour
        # through a re-authentication that could not help (as in Flask and Django).
        admin_disable = self.web_only_guarded("2fa.disable", first=self.full_access_only)
        both = ["GET", "POST"]
        routes: list[BaseRoute] = [
            Route("/stepup.css", self.stylesheet, methods=["GET"], name="stylesheet"),
            Route("/reauth", self.reauth, methods=both, name="reauth"),
            Route("/reauth/status", self.reauth_status, methods=["GET"], name="reauth_status"),
            Route("/reauth/done", self.reauth_done, methods=["GET"], name="reauth_done"),
            Route("/reauth/resume", self.reauth_resume, methods=["GET"], name="reauth_resume"),
            Route("/stepup-reauth.js", self.script, methods=["GET"], name="script"),
            Route(PATHS["codes_script"], self.codes_script, methods=["GET"], name="codes_script"),
            # POST only, CSRF-checked, as in Flask and Django: a GET or HEAD (a link, a
            # prefetch) is 405 and begins nothing.
            Route("/2fa/enrol", self.enrol, methods=["POST"], name="enrol"),
            Route("/2fa/confirm", self.enrol_confirm, methods=["POST"], name="confirm"),
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
                admin_disable(self.admin_remove),
                methods=both,
                name="admin_remove",
            ),
            # Every method reaches the view (a JSON:API 405 for all but PATCH, not
            # Starlette's plain-text one or the app's handler for HTTPException).
            Route("/tenants/{tenant_id}", _EveryMethod(self.tenant), name="tenant"),
        ]
        return routes

    # rendering ----------------------------------------------------------------

    async def stylesheet(self, request: Request) -> Response:
        return to_response(stylesheet_response())

    async def script(self, request: Request) -> Response:
        return to_response(script_response())

    async def codes_script(self, request: Request) -> Response:
        return to_response(codes_script_response())

    def codes_page(self, codes: tuple[str, ...]) -> RecoveryCodesPage:
        """The recovery codes just made, headed by the site and the time for their file."""
        s = self.stepup
        return RecoveryCodesPage(codes, s.two_factor.issuer, s.clock())

    async def render(
        self,
        request: Request,
        template: str,
        *,
        binding: str,
        status: int = 200,
        issued: tuple[str, str | None] | None = None,
        urls: Mapping[str, str] | None = None,
        **context: Any,
    ) -> Response:
        """Render ``stepup/<template>`` in the request's locale, with a CSRF token bound
        to ``binding`` (``issued``: the token and new cookie already made for the page;
        ``urls``: links the page needs besides the usual ones)."""
        s = self.stepup
        token, fresh = issued if issued is not None else s.csrf.issue(request, binding)
        query = request.url.query
        here = request.url.path + (f"?{query}" if query else "")
        enrol, settings = s.url(request, "enrol"), s.url(request, "two_factor")
        links = {
            "stylesheet": s.url(request, "stylesheet"),
            "script": s.url(request, "script"),
            "codes_script": self.stepup.url(request, "codes_script"),
            "reauth_password": here,
            "two_factor": settings,  # "Set it up first", as in Flask and Django
            "enrol": enrol,
            "confirm": s.url(request, "confirm"),
            "verify": s.url(request, "verify"),
            "recovery_codes": here,
            "remove": here,
            "done": settings,  # the recovery codes' Done, the enrolment's Cancel
        }
        page = context.get("page")
        if isinstance(page, ReauthPage) and page.sso:
            start = s.url(request, f"{page.sso}_start")
            where = {"next": page.next, "action": page.action}
            if page.resume:  # the start reads the page from its query, as this one did
                where["resume"] = page.resume
            if page.transaction:
                where["transaction"] = page.transaction
            links["sso_start"] = f"{start}?{urlencode(where)}"
        if s.passkeys is not None:
            links |= passkey_urls(s, request, page)
        links |= urls or {}

        def csrf_field() -> Markup:
            return Markup('<input type="hidden" name="{}" value="{}">').format(FIELD_NAME, token)

        values = page_context(
            locale=await s.locale(request),
            app_catalog=s.app_catalog,
            urls=links,
            csrf_field=csrf_field,
            **context,
        )
        response = s.templates.TemplateResponse(
            request,
            f"stepup/{template}",
            values,
            status_code=status,
            headers=page_headers(status, context.get("page")),
        )
        if fresh is not None:
            CsrfProtection.set_cookie(request, response, fresh)
        return response

    async def message(self, request: Request, text: str, status: int, link: str = "") -> Response:
        s, home = self.stepup, self.stepup.home(request)
        # "Sign in again" goes where a signed-out browser is sent (login_url), else home.
        page = MessagePage.about(text, link=link, sign_in=s.login_url or home, home=home)
        return await self.render(request, "message.html", binding="", status=status, page=page)

    async def form(self, request: Request, binding: str) -> FormData | None:
        """The posted form, or ``None`` when its CSRF token does not hold, or it is not
        one of stepup's forms: a few short fields, no file (see :data:`FORM_LIMITS`)."""
        form = await bounded_form(request)
        if form is None or not self.stepup.csrf.verify(request, form.get(FIELD_NAME), binding):
            return None
        return form

    async def csrf_failed(self, request: Request) -> Response:
        """A request that failed the CSRF check: a script (it asks for JSON) gets the
        JSON 403 ``csrf`` every framework answers; a browser, the message page."""
        if client_kind(request_info(request)) is not Client.BROWSER:
            return to_response(csrf_response(await self.stepup.locale(request)))
        return await self.message(request, TEXT["csrf"], 403)

    async def signed_in(self, request: Request, *, any_channel: bool = False) -> Subject | Response:
        """The signed-in subject, or the response that ends the view: the sign-in for
        nobody, and unless ``any_channel`` (re-authentication with a password or a
        provider) a 403 that changes nothing for a subject on another channel than the
        interactive web (see :func:`~stepup.integrations.passkey_endpoint.off_channel`).
        Every view that acts on the signed-in user starts here, so a view added later is
        closed to API keys until it says otherwise."""
        subject = await self.stepup.subject(request)
        if subject is None:
            locale = await self.stepup.locale(request)
            return self.stepup.sign_in_response(request, locale=locale)
        if not any_channel and off_channel(subject):
            return await self.off_channel(request)
        return subject

    async def off_channel(self, request: Request) -> Response:
        """The 403 for a subject on another channel: JSON for a script, the message page
        for a browser."""
        if client_kind(request_info(request)) is not Client.BROWSER:
            return to_response(off_channel_response(await self.stepup.locale(request)))
        return await self.message(request, PASSKEY_TEXT[INTERACTIVE_ONLY], 403)

    def web_only(self, view: View) -> View:
        """``view`` for the interactive web channel only, checked before anything it
        wraps (a guard): the 403 of :meth:`off_channel` otherwise."""

        @wraps(view)
        async def answer(request: Request) -> Response:
            if off_channel(await self.stepup.subject(request)):
                return await self.off_channel(request)
            return await view(request)

        return answer

    def web_only_guarded(
        self, action: str, *, first: Callable[[View], View] | None = None
    ) -> Callable[[View], View]:
        """Guard a view by ``action`` (``requires_reauth``), behind :meth:`web_only` and
        ``first`` (a check that comes before the guard). A refused form that cannot be
        kept comes back to the two-factor settings page after the re-authentication, as
        in Flask and Django."""
        stepup = self.stepup
        guard = stepup.requires_reauth(action, return_to=lambda r: stepup.url(r, "two_factor"))
        before = first if first is not None else (lambda view: view)
        return lambda view: self.web_only(before(guard(view)))

    def full_access_only(self, view: View) -> View:
        """``view`` for a signed-in admin with full access to the ``user_id`` of the path
        only: anyone else gets the 403 before anything else (a guard) runs."""
        s = self.stepup

        @wraps(view)
        async def answer(request: Request) -> Response:
            subject = await self.signed_in(request)
            if isinstance(subject, Response):
                return subject
            target = request.path_params["user_id"]
            hook = s.has_full_access
            if not hook_says_yes(
                await call_hook(hook, *full_access_arguments(hook, subject, target))
            ):
                return await self.message(request, TEXT["admin_only"], 403)
            return await view(request)

        return answer

    # re-authentication --------------------------------------------------------

    async def reauth_page(self, request: Request, subject: Subject) -> ReauthPage:
        """The re-auth page for this request's ``action`` and ``next``, with its Cancel
        place and whether a second factor must be set up first (an unknown action raises
        :class:`UnknownActionError`; a transaction-bound action without its transaction
        in the session :class:`TransactionExpiredError`)."""
        s, params = self.stepup, request.query_params
        action = params.get("action", "")
        offer = await s.reauth.offer(subject, action)  # the strongest way the user has
        home = s.home(request)  # no next (or an unsafe one), no place to cancel to: the root
        page = reauth_page(s.policy, subject, action, params.get("next"), offer=offer, home=home)
        posted = None
        if request.method == "POST":
            form = await bounded_form(request)  # None: the view's CSRF check refuses it
            posted = None if form is None else form.get("cancel")
        cancel = cancel_path(
            next_path=page.next,
            reauth_path=s.url(request, "reauth"),
            configured=s.cancel_url,
            posted=posted,
            referer=request.headers.get("referer", ""),
            origin=f"{request.url.scheme}://{request.url.netloc}",
            home=home,
        )
        enrolled = not page.totp or await s.two_factor.is_enrolled(subject.user_id)
        resume = resume_token(params) or ""
        page = replace(page, cancel=cancel, needs_enrolment=not enrolled, resume=resume)
        # Only a transaction this session's guard kept: the digest merely picks one.
        pending = s.pending_transaction(request, subject, action, params.get("transaction"))
        return confirming_page(s.policy, page, pending)

    async def reauth(self, request: Request) -> Response:
        subject = await self.signed_in(request, any_channel=True)
        if isinstance(subject, Response):
            return subject
        try:
            page = await self.reauth_page(request, subject)
        except UnknownActionError:
            return await self.message(request, TEXT["unknown_action"], 400)
        except TransactionExpiredError:
            return await self.message(request, TEXT["transaction_expired"], 400)
        except StoreUnavailableError:  # what the user has enrolled could not be read
            return await self.store_unavailable(request)
        if request.method == "POST":
            return await self.reauth_post(request, subject, page)
        return await self.reauth_form(request, subject, page)

    async def reauth_form(
        self, request: Request, subject: Subject, page: ReauthPage, status: int = 200
    ) -> Response:
        if page.password and not page.account:  # for the password manager (never read back)
            page = replace(page, account=await self.stepup.account_name(subject.user_id))
        return await self.render(
            request, "reauth.html", binding=subject.session_id, status=status, page=page
        )

    async def reauth_post(self, request: Request, subject: Subject, page: ReauthPage) -> Response:
        s = self.stepup
        form = await self.form(request, subject.session_id)
        if form is None:
            return await self.csrf_failed(request)
        # The password, unless the page offers the code alone (a rule that accepts TOTP
        # alone: the code below is the whole proof); then the code when the page asks.
        methods: list[str] = []
        if not page.password and not page.code_alone:
            error = TEXT["use_provider"]
            return await self.reauth_form(request, subject, page.with_error(error), 400)
        if page.password:
            stored = None
            if s.password_hash_loader is not None:
                stored = await call_hook(s.password_hash_loader, subject.user_id)
            result = await s.passwords.verify(
                subject, posted_value(form.getlist("password"), None), stored
            )
            if not result.ok:
                page = page.with_error(password_message(result), password_error_field(result))
                status = refusal_status(result.reason)
                return await self.reauth_form(request, subject, page, status)
            if result.new_hash is not None and s.password_rehash_saver is not None:
                await call_hook(s.password_rehash_saver, subject.user_id, result.new_hash)
            methods.append("pwd")
        if page.totp:
            refused = await self.refused_code(
                request, subject, page, posted_value(form.getlist("code"), None)
            )
            if refused is not None:
                return refused
            methods.append("otp")
        return await self.record(
            request,
            subject,
            methods,
            page.next,
            resume=(page.resume or None, page.action),
            transaction=page.transaction or None,
            retry=f"{s.url(request, 'reauth')}?{retry_query(page)}",
        )

    async def refused_code(
        self, request: Request, subject: Subject, page: ReauthPage, code: object
    ) -> Response | None:
        """The page again when the second-factor code on the form does not verify."""
        try:
            result = await self.stepup.two_factor.verify(subject.user_id, form_code(code))
        except NotEnrolledError:
            error = TEXT["needs_enrolment"]
            return await self.reauth_form(request, subject, page.with_error(error), 400)
        if result.ok:
            return None
        report_code_failure(self.stepup.events, self.stepup.clock, subject.user_id, result)
        page = page.with_error(two_factor_message(result), "code")
        return await self.reauth_form(request, subject, page, refusal_status(result.reason))

    async def record(
        self,
        request: Request,
        subject: Subject,
        methods: list[str],
        next_path: str,
        authenticated_at: float | None = None,
        resume: tuple[str | None, str] | None = None,
        *,
        level: str | None = None,
        transaction: str | None = None,
        signed: str | None = None,
        cross_site: bool = False,
        retry: str = "",
    ) -> Response:
        """Record the grant (at ``level``, bound to ``transaction`` when given), then go
        to ``next_path``, or send the suspended form that ``resume`` (its token and the
        action) names again, with a CSRF token for the renewed session: the app's own
        CSRF check runs on the replay. The form is taken only once the grant is stored:
        a store failure answers 503 (``retry``: the link to try again) and loses nothing.
        ``cross_site``: the answer came as another site's POST (SAML's ACS), without the
        browser's SameSite=Lax binding cookie, so a kept form is left for
        :meth:`reauth_resume` to take."""
        s = self.stepup
        token, action = resume if resume is not None else (None, "")
        try:
            renewed, old = await s.record_reauth(
                request,
                subject,
                methods,
                authenticated_at,
                level=level,
                transaction=transaction,
                signed=signed,
            )
        except StoreUnavailableError:  # nothing recorded, the kept form still waits
            return await self.store_unavailable(request, retry)
        resumed = None
        if not cross_site:
            resumed = await s.take_resumed(renewed, token, action, request, renewed_from=old)
        if cross_site and token is not None:
            session = session_of(request)
            note_resume_after_sso(
                session, renewed.session_id, token, action, s.clock(), key=RESUME_AFTER_SSO
            )
            query = urlencode({"next": safe_return_path_or_default(next_path)})
            return RedirectResponse(f"{s.url(request, 'reauth_resume')}?{query}", 303)
        return await self.after_reauth(request, resumed, next_path)

    async def after_reauth(self, request: Request, resumed: object, next_path: str) -> Response:
        """Back to ``next_path``, or the suspended form sent again with a CSRF token for
        the renewed session, or (a form another browser sent) the page that says it was
        not sent."""
        s = self.stepup
        answer = resume_answer(resumed, next_path)
        if answer is None:
            return RedirectResponse(safe_return_path_or_default(next_path), status_code=303)
        binding = await s._csrf_binding(request)
        if isinstance(answer, NotResumedPage):
            return await self.render(request, "not_resumed.html", binding=binding, page=answer)
        issued = s.csrf.issue(request, binding)  # the replay's token, for the new session
        page = resume_page(answer, FIELD_NAME, issued[0])
        return await self.render(request, "resume.html", binding=binding, issued=issued, page=page)

    async def reauth_resume(self, request: Request) -> Response:
        """Where a SAML re-authentication sends the browser on: the IdP's cross-site POST
        to the ACS carried no SameSite=Lax binding cookie, this same-site request does,
        so the kept form the ACS noted is taken (and checked against it) here."""
        s = self.stepup
        subject = await self.signed_in(request, any_channel=True)
        if isinstance(subject, Response):
            return subject
        next_path = safe_return_path_or_default(request.query_params.get("next"), s.home(request))
        session = session_of(request)
        noted = take_resume_after_sso(session, subject.session_id, s.clock(), key=RESUME_AFTER_SSO)
        if noted is None:
            return RedirectResponse(next_path, status_code=303)
        resumed = await s.take_resumed(subject, *noted, request)
        return await self.after_reauth(request, resumed, next_path)

    async def reauth_status(self, request: Request) -> Response:
        """Does ``action`` need a re-authentication now, and how? Nothing is performed.
        Nobody signed in: 401 before the action is looked at (the answer tells nobody
        which actions the policy knows)."""
        s = self.stepup
        # Every answer is JSON: titled as the pages read.
        info = request_info(request).in_locale(await s.locale(request))
        subject = await s.subject(request)
        if subject is None:
            return to_response(authentication_required(info))
        action = status_action(request.query_params.getlist("action"))
        if action is None:
            return to_response(repeated_action_response())
        try:
            if action and s.policy.rule_for(action).bind_transaction:
                return to_response(transaction_bound_response(action))
            # A look: it renews no sliding window (only a sensitive action does).
            decision = await s.reauth.peek(subject, action, await s.tenant_id(request))
        except UnknownActionError:
            return to_response(unknown_action_response(action))
        answer = status_response(
            decision,
            info,
            reauth_url=s.url(request, "reauth"),
            done_path=s.url(request, "reauth_done"),
            action=action,
        )
        return to_response(answer)

    async def reauth_done(self, request: Request) -> Response:
        """Where the helper's re-auth window lands: tells its opener, hands over a CSRF
        token for the renewed session."""
        subject = await self.signed_in(request, any_channel=True)
        if isinstance(subject, Response):
            return subject
        issued = self.stepup.csrf.issue(request, subject.session_id)
        return await self.render(
            request,
            "reauth_done.html",
            binding=subject.session_id,
            issued=issued,
            page=DonePage(issued[0]),
        )

    async def unavailable(self, request: Request, link: str = "") -> Response:
        """The "try again" page (503) a browser gets when the store is down (``link``:
        where to try again), with ``Retry-After`` as the JSON 503 says."""
        page = await self.message(request, TEXT["unavailable"], 503, link)
        page.headers["Retry-After"] = RETRY_AFTER
        return page

    async def store_unavailable(self, request: Request, link: str = "") -> Response:
        """503 when the store could not answer: a script gets the JSON ``unavailable``
        (:meth:`StepupCore.store_unavailable`), a browser the page that says to try
        again in a moment (``link``: where)."""
        if client_kind(request_info(request)) is not Client.BROWSER:
            return await self.stepup.store_unavailable(request)
        return await self.unavailable(request, link)

    # two-factor: enrolment ----------------------------------------------------

    def enrolment_page(self, enrolment: Any, account: str) -> EnrolmentPage:
        return enrolment_page(enrolment, account=account, issuer=self.stepup.two_factor.issuer)

    async def enrol(self, request: Request) -> Response:
        """Begin an enrolment, or show again the one this session began a moment ago (a
        reload posts the form again): the phone may have its secret. Another session's
        is not shown: it begins a new one."""
        subject = await self.signed_in(request)
        if isinstance(subject, Response):
            return subject
        if await self.form(request, subject.session_id) is None:
            return await self.csrf_failed(request)
        tf = self.stepup.two_factor
        try:
            account = await self.stepup.account_name(subject.user_id)
            enrolment = await tf.pending_enrolment(
                subject.user_id, account, max_age=ENROLMENT_TTL, device_id=enrolling(request)
            )
            if enrolment is None:
                enrolment = await tf.begin_enrolment(subject.user_id, account)
                note_enrolling(request, enrolment.device_id)
        except StepupError as exc:
            return await self.enrol_refused(request, exc)
        page = self.enrolment_page(enrolment, account)
        return await self.render(
            request, "two_factor_enrol.html", binding=subject.session_id, page=page
        )

    async def enrol_confirm(self, request: Request) -> Response:
        subject = await self.signed_in(request)
        if isinstance(subject, Response):
            return subject
        form = await self.form(request, subject.session_id)
        if form is None:
            return await self.csrf_failed(request)
        tf = self.stepup.two_factor
        try:
            confirmation = await tf.confirm_enrolment(
                subject.user_id, form_code(posted_value(form.getlist("code"), None))
            )
            if not confirmation.ok:
                # The same QR code and key again, with the error: the phone may have them.
                account = await self.stepup.account_name(subject.user_id)
                pending = await tf.pending_enrolment(
                    subject.user_id, account, max_age=ENROLMENT_TTL, device_id=enrolling(request)
                )
        except StepupError as exc:
            return await self.enrol_refused(request, exc)
        if not confirmation.ok:
            if pending is None:
                link = self.stepup.url(request, "two_factor")
                return await self.message(request, TEXT["enrolment_expired"], 400, link)
            page = self.enrolment_page(pending, account)
            return await self.render(
                request,
                "two_factor_enrol.html",
                binding=subject.session_id,
                status=refusal_status(confirmation.result.reason),
                page=page.with_error(two_factor_message(confirmation.result)),
            )
        note_enrolling(request, None)
        codes = self.codes_page(confirmation.recovery_codes)
        return await self.render(
            request, "recovery_codes.html", binding=subject.session_id, page=codes
        )

    async def enrol_refused(self, request: Request, exc: StepupError) -> Response:
        """What beginning or confirming an enrolment answers when the core refuses."""
        if isinstance(exc, AlreadyEnrolledError):
            # As in Flask and Django: back to the two-factor page, which says it is on.
            leave_note(request, TEXT["already_on"])
            return RedirectResponse(self.stepup.url(request, "two_factor"), status_code=303)
        if isinstance(exc, ManagedByConfigFileError):
            return await self.message(request, TEXT["in_config_file"], 409)
        link = self.stepup.url(request, "two_factor")
        if isinstance(exc, NotEnrolledError):  # none pending (expired, never begun)
            return await self.message(request, TEXT["enrolment_expired"], 400, link)
        if isinstance(exc, InvalidAccountNameError):  # the app's account_name: nothing stored
            return await self.message(request, TEXT["account_name"], 400, link)
        if isinstance(exc, StoreUnavailableError):
            return await self.store_unavailable(request)
        raise exc

    # two-factor: the sign-in step ---------------------------------------------

    async def verify_page(
        self,
        request: Request,
        pending: Mapping[str, Any],
        error: Message | str = "",
        status: int = 200,
    ) -> Response:
        """The sign-in's second step, offering what the user has (a code, a passkey, a
        recovery code), with the error of the last try."""
        try:
            factors = await self.stepup.second_factors(str(pending["user_id"]))
        except StoreUnavailableError:  # what the user has could not be read: fail closed
            return await self.store_unavailable(request)
        page = VerifyPage.of(factors, error)
        binding = str(pending["nonce"])
        return await self.render(
            request, "two_factor_verify.html", binding=binding, status=status, page=page
        )

    async def finish_sign_in(
        self, request: Request, pending: Mapping[str, Any], proved: tuple[str, ...]
    ) -> bool:
        """Spend the waiting sign-in in the store, then sign the user in
        (``complete_sign_in``, given how they signed in when it takes it); with the
        policy's sign_in_counts, the sign-in is the first re-authentication, with what
        the login and the second step ``proved``, for the identity kept with the pending
        sign-in. ``False``: the store no longer holds it (completed already, from a copy
        of this session's cookie; expired), answered as an expired sign-in, nobody
        signed in. A store outage raises, nobody signed in. An error once the user is
        signed in clears the session before it goes on: a sign-in that did not finish
        leaves nobody signed in."""
        s = self.stepup
        first = FirstStep.kept(pending)  # checked by pending_sign_in: from the session
        if first is None:
            raise MalformedInputError("the pending sign-in does not hold together")
        user_id = str(pending["user_id"])
        spend = take_waiting_sign_in(user_id, str(pending["nonce"]), s.clock())
        taken = await run_async(spend, s.store)
        session = session_of(request)
        session.pop(PENDING_SIGN_IN, None)
        if not taken:
            return False
        hook = s.complete_sign_in
        assert hook is not None  # begin_sign_in checked it
        if takes_identity(hook):
            await call_hook(hook, request, user_id, first.signed_in_with)
        else:
            await call_hook(hook, request, user_id)
        try:
            if s.policy.sign_in_counts:  # off: nothing to load, nothing to record
                subject = await s.subject(request)
                if subject is None:
                    raise ConfigurationError("complete_sign_in did not sign the user in")
                subject = replace(subject, identity=first.signed_in_with)
                await s.reauth.record_sign_in(subject, proved, first.authenticated_at)
        except BaseException:
            session.clear()
            raise
        return True

    @staticmethod
    def proved(pending: Mapping[str, Any]) -> tuple[str, ...]:
        """What the app's login proved before the second step."""
        saved = pending.get("proved")
        return tuple(str(m) for m in saved) if isinstance(saved, list) and saved else ("pwd",)

    async def verify(self, request: Request) -> Response:
        s = self.stepup
        pending = self.stepup.pending_sign_in(request)
        if pending is None:
            return await self.message(request, TEXT["sign_in_expired"], 400)
        binding = str(pending["nonce"])
        if request.method != "POST":  # GET, and HEAD alike (RFC 9110 9.3.2): no change
            return await self.verify_page(request, pending)
        form = await self.form(request, binding)
        if form is None:
            return await self.csrf_failed(request)
        if wants_cancel(form.getlist(CANCEL_SIGN_IN)):
            # "Sign in as someone else": the waiting sign-in is spent, as at sign-out, so
            # no copy of this session can finish it; nobody is signed in.
            await s.drop_waiting_sign_in(request)
            return RedirectResponse(s.login_url or s.home(request), status_code=303)
        user_id = str(pending["user_id"])
        recovery = form_code(posted_value(form.getlist("recovery_code"), None))
        try:
            if recovery:
                result = await s.two_factor.use_recovery_code(user_id, recovery)
            else:
                result = await s.two_factor.verify(
                    user_id, form_code(posted_value(form.getlist("code"), None))
                )
        except NotEnrolledError:  # as in Flask and Django: the pending sign-in stays
            return await self.message(request, TEXT["sign_in_expired"], 400)
        except ManagedByConfigFileError:  # the file holds no recovery codes
            return await self.verify_page(request, pending, TEXT["no_recovery_codes"], 400)
        if not result.ok:
            status = refusal_status(result.reason)
            return await self.verify_page(
                request, pending, two_factor_message(result, recovery=bool(recovery)), status
            )
        # What the login proved, plus the code (a recovery code proves no second factor).
        first = self.proved(pending)
        proved = first if recovery else (*first, "otp")
        if not await self.finish_sign_in(request, pending, proved):
            return await self.message(request, TEXT["sign_in_expired"], 400)
        return RedirectResponse(safe_return_path_or_default(pending.get("next")), 303)

    # two-factor: recovery codes and removal (guarded by re-authentication) ----

    async def recovery_codes(self, request: Request) -> Response:
        subject = await self.signed_in(request)
        if isinstance(subject, Response):
            return subject
        if request.method != "POST":  # GET, and HEAD alike: nothing is regenerated
            off = await self.off_for(request, subject)
            if off is not None:
                return off
            return await self.render(
                request, "recovery_regenerate.html", binding=subject.session_id
            )
        if await self.form(request, subject.session_id) is None:
            return await self.csrf_failed(request)
        try:
            codes = await self.stepup.two_factor.regenerate_recovery_codes(subject.user_id)
        except NotEnrolledError:  # as in Flask and Django: the settings page says it is off
            return RedirectResponse(self.stepup.url(request, "two_factor"), status_code=303)
        except ManagedByConfigFileError:
            return await self.message(request, TEXT["in_config_file"], 409)
        except StoreUnavailableError:
            return await self.store_unavailable(request)
        page = self.codes_page(codes)
        return await self.render(
            request, "recovery_codes.html", binding=subject.session_id, page=page
        )

    async def off_for(self, request: Request, subject: Subject) -> Response | None:
        """What the confirm page of new recovery codes or of removing one's own 2FA
        answers instead when two-factor is off, so its button could do nothing: ``303``
        to the settings page, which says so (where the button's POST goes in Flask and
        Django); ``None``: show the page."""
        s = self.stepup
        try:
            enrolled = await s.two_factor.is_enrolled(subject.user_id)
        except StoreUnavailableError:
            return await self.store_unavailable(request)
        if not enrolled:
            return RedirectResponse(s.url(request, "two_factor"), status_code=303)
        return None

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
        next_path = safe_return_path_or_default(request.query_params.get("next"), s.home(request))
        if request.method != "POST":  # GET, and HEAD alike: nothing is removed
            off = None if target is not None else await self.off_for(request, subject)
            if off is not None:
                return off
            return await self.render(
                request, "remove.html", binding=subject.session_id, target=target, next=next_path
            )
        if await self.form(request, subject.session_id) is None:
            return await self.csrf_failed(request)
        full_access = target is not None and hook_says_yes(
            await call_hook(
                s.has_full_access, *full_access_arguments(s.has_full_access, subject, target)
            )
        )
        try:
            await s.two_factor.remove(
                target or subject.user_id,
                actor_id=subject.user_id,
                actor_has_full_access=full_access,
            )
        except PermissionDeniedError:
            return await self.message(request, TEXT["admin_only"], 403)
        except NotEnrolledError:
            if target is not None:  # as in Flask and Django
                return await self.message(request, TEXT["user_not_enrolled"], 404)
            # One's own, off already (another tab): as in Flask and Django, the same as
            # a removal, which the settings page confirms.
        except ManagedByConfigFileError:
            return await self.message(request, TEXT["in_config_file"], 409)
        except StoreUnavailableError:
            return await self.store_unavailable(request)
        if target is None and "next" not in request.query_params:
            # As in Flask and Django: back to the settings page, which says it is off.
            leave_note(request, TEXT["turned_off"])
            return RedirectResponse(s.url(request, "two_factor"), status_code=303)
        if target is not None and client_kind(request_info(request)) is not Client.BROWSER:
            return Response(status_code=204)  # as in Flask and Django: a script reads no page
        return RedirectResponse(next_path, status_code=303)

    # tenant settings ----------------------------------------------------------

    async def tenant(self, request: Request) -> Response:
        if request.method != "PATCH":  # OPTIONS and HEAD too: the resource's own 405
            locale = await self.stepup.locale(request)
            return to_response(tenant_method_not_allowed(locale))
        return await self.tenant_patch(request)

    async def tenant_patch(self, request: Request) -> Response:
        """The seed's JSON:API ``PATCH``. Who may ask is settled before a byte of the body
        is read: signed in (401), a JSON body (415), an acceptable ``Accept`` (406), no
        query parameter (400), a tenant admin (403), and a fresh
        re-authentication for ``tenant.settings.update`` whatever the flag says (the
        guarded JSON endpoints' 401/403/503 as a JSON:API document, see
        :func:`~stepup.integrations.views.tenant_decision_response`; the app's
        ``reauth_response`` still replaces it). Then the body is read up to the limit and
        parsed by the core (400/422, nothing changed)."""
        s = self.stepup
        subject = await s.subject(request)
        # JSON:API titles in the pages' locale (the app's hook, then Accept-Language).
        locale = await s.locale(request)
        refusal = tenant_request_refusal(
            subject is not None,
            request.headers.get("content-type", ""),
            locale,
            request.headers.get("accept"),
            request.query_params.keys(),
        )
        if refusal is not None:
            return to_response(refusal)
        assert subject is not None  # refused above
        tenant_id = request.path_params["tenant_id"]
        is_admin = hook_says_yes(await call_hook(s.is_tenant_admin, subject, tenant_id))
        refusal = admin_refusal(is_admin, locale)
        if refusal is not None:
            return to_response(refusal)
        decision = await s.reauth.check(subject, TENANT_SETTINGS_UPDATE, tenant_id)
        if not decision.ok:
            if s.reauth_response is not None:  # the app's answer still wins
                custom = await call_hook(s.reauth_response, request, decision)
                if custom is not None:
                    return custom
            # Back to the page the request came from (the tenant page) after re-auth,
            # else to the app's root.
            info = request_info(request, s.return_path(request)).in_locale(locale)
            reauth_url = s.url(request, "reauth")
            refused = tenant_decision_response(decision, info, reauth_url=reauth_url)
            assert refused is not None  # the decision was not ok
            return to_response(refused)
        try:
            body = await aread_body(request.stream(), request.headers.get("content-length"))
            tenant = await s.tenants.patch(
                tenant_id, body, actor_id=subject.user_id, actor_is_tenant_admin=is_admin
            )
        except StepupError as exc:
            answer = tenant_error_response(exc, locale)
            if answer is None:
                raise
            return to_response(answer)
        return to_response(tenant_response(tenant))


def passkey_urls(s: StepupCore, request: Request, page: object) -> dict[str, str]:
    """The URLs the passkey pages use; the re-auth page's finish carries its ``next``,
    ``action`` and ``resume`` in the query, as the password form does."""
    urls = {
        name: s.url(request, name)
        for name in (
            "passkeys",
            "passkey_register_begin",
            "passkey_register_finish",
            "reauth_passkey_begin",
            "sign_in_passkey_begin",
            "sign_in_passkey_finish",
            "passkey_script",
        )
    }
    for name in ("passkey_rename", "passkey_remove"):
        urls[name] = s.url(request, name, credential_id="__ID__")
    finish = s.url(request, "reauth_passkey_finish")
    if isinstance(page, ReauthPage):
        query = {"next": page.next, "action": page.action}
        if page.resume:
            query["resume"] = page.resume
        if page.transaction:
            query["transaction"] = page.transaction
        finish = f"{finish}?{urlencode(query)}"
    urls["reauth_passkey_finish"] = finish
    return urls
