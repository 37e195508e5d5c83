"""What every demo view shares: who is signed in, rendering with CSRF, forms, flashes,
and the one way a page and its form are handled and guarded.

The demo's own forms use the integration's :class:`CsrfProtection` (Starlette has
none), bound to the session like stepup's forms.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Collection
from dataclasses import replace
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import Any, Final

from argon2 import PasswordHasher
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..adapters.idp.password import AsyncPasswordReauth
from ..adapters.storage.base import AsyncStore
from ..clock import Clock
from ..errors import InvalidAccountNameError, StoreUnavailableError
from ..events import EventBus
from ..i18n import translate
from ..integrations.http import Client, client_kind
from ..integrations.pages import PAGE_HEADERS
from ..integrations.passkey_endpoint import PASSKEY_ADD
from ..integrations.starlette import ContextFunction, CsrfProtection, Stepup
from ..integrations.starlette._util import request_info
from ..integrations.starlette.csrf import FIELD_NAME
from ..integrations.views import TEXT
from ..reauth import Allowed, AllowReason
from ..sealing import SecretBox
from ..subject import Subject
from ..totp import check_key_uri_label
from .audit import AuditLog
from .data import DemoData, User
from .settings import DemoSettings
from .status import STATUS_ACTION, grant_status, human_duration

__all__ = ["GET_POST", "TEMPLATES", "Demo", "GrantStatusMiddleware", "Views"]

#: The demo's pages, and its layout for stepup's (``stepup/base.html``).
TEMPLATES: Final = Path(__file__).parent / "templates"
_USER = "user"
_SID = "sid"
#: RFC 5321 section 4.5.3.1.3: no address is longer (a Key URI then always fits a QR code).
_LONGEST_EMAIL: Final = 254
_FLASH = "flash"
logger = logging.getLogger("stepup.demo")
#: A page and its form at one address.
GET_POST: Final = ("GET", "POST")
#: The language of the demo's own pages (base.html's ``lang`` unless stepup's page
#: passes its own): stepup's texts on them are said in it too.
DEMO_LOCALE: Final = "en"


def _datetime(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")


class Demo:
    """The demo's services, handed to every group of views. It builds the
    :class:`Stepup` whose hooks are its own methods."""

    def __init__(
        self,
        *,
        settings: DemoSettings,
        store: AsyncStore,
        data: DemoData,
        audit: AuditLog,
        clock: Clock,
        secret_key: str,
        box: SecretBox,
        events: EventBus,
        hasher: PasswordHasher | None = None,
        oidc: Any = None,
        saml: Any = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.data = data
        self.audit = audit
        self.clock = clock
        self.stepup = Stepup(
            store=store,
            secret_key=secret_key,
            clock=clock,
            events=events,
            subject_loader=self.subject,
            tenant_loader=self.tenant_id,
            password_hash_loader=data.password_hash,
            password_rehash_saver=data.set_password_hash,
            is_tenant_admin=self.is_tenant_admin,
            has_full_access=self.has_full_access,
            account_name=self.account_name,
            complete_sign_in=self.complete_sign_in,
            login_url="/login",
            templates=TEMPLATES,
            issuer=settings.issuer,
            secret_box=box,
            passwords=AsyncPasswordReauth(store, hasher=hasher, clock=clock, events=events),
            oidc=oidc,
            saml=saml,
            # Passkeys for every seed action (the policy offers a passkey first to a user
            # who has one); RP id localhost, as WebAuthn refuses an IP address.
            passkeys_rp_id="localhost",
            passkeys_rp_name=settings.issuer,
            passkeys_origins=(settings.passkey_origin,),
        )
        filters = self.stepup.templates.env.filters
        filters["datetime"] = _datetime
        filters["duration"] = human_duration
        # Sign-in passwords share the per-user throttle; their events are the app's own.
        self.sign_in_passwords = AsyncPasswordReauth(store, hasher=hasher, clock=clock)
        self.sso_buttons: tuple[tuple[str, str], ...] = ()  # (label, start path)

    # who ----------------------------------------------------------------------

    async def user(self, request: Request) -> User | None:
        """The signed-in user (looked up once per request)."""
        state = request.scope.setdefault("state", {})
        if "demo_user" not in state:
            user_id = request.session.get(_USER)
            user = await self.data.user(user_id) if isinstance(user_id, str) else None
            state["demo_user"] = user if isinstance(request.session.get(_SID), str) else None
        user_or_none: User | None = state["demo_user"]
        return user_or_none

    async def subject(self, request: Request) -> Subject | None:
        """stepup's ``subject_loader``."""
        user = await self.user(request)
        if user is None:
            return None
        sid = str(request.session[_SID])
        identity = user.identity
        if user.login == "oidc" and self.settings.oidc is not None:
            # The re-auth page's button: "Continue with <the provider's name>".
            identity = replace(identity, provider=self.settings.oidc.display_name)
        return Subject(user.id, sid, identity, roles=frozenset({user.role}))

    async def tenant_id(self, request: Request) -> str:
        user = await self.user(request)
        return user.tenant_id if user is not None else ""

    async def is_tenant_admin(self, subject: Subject, tenant_id: str) -> bool:
        user = await self.data.user(subject.user_id)
        return user is not None and user.is_admin and user.tenant_id == tenant_id

    async def account_name(self, user_id: str) -> str | None:
        """How an authenticator app and a passkey name the account: the e-mail address
        the person signs in with, not the internal id; the id (``None``) for an address
        no Key URI label can carry (a quoted ``:``, or longer than an address may be)."""
        user = await self.data.user(user_id)
        if user is None or len(user.email) > _LONGEST_EMAIL:
            return None
        try:
            check_key_uri_label(user.email, self.settings.issuer)
        except InvalidAccountNameError:
            return None
        return user.email

    async def has_full_access(self, subject: Subject) -> bool:
        user = await self.data.user(subject.user_id)
        return user is not None and user.is_admin

    async def complete_sign_in(self, request: Request, user_id: str) -> None:
        """stepup's ``complete_sign_in``: a new session id at every sign-in (grants are
        bound to it), and nothing left of the previous session."""
        request.session.clear()
        request.session.update({_USER: user_id, _SID: secrets.token_urlsafe(16)})
        request.scope.setdefault("state", {}).pop("demo_user", None)
        self.audit.app_event("SignedIn", user_id)

    async def finish_sign_in(self, request: Request, user_id: str, next_path: str) -> Response:
        """After the password or single sign-on: stepup's code step when 2FA is on (it
        calls :meth:`complete_sign_in`), else signed in now and on to ``next_path``.
        Nobody is signed in while stepup's store cannot say whether a second factor is
        needed: its "try again" page (503) instead."""
        try:
            second_step = await self.stepup.begin_sign_in(request, user_id, next=next_path)
        except StoreUnavailableError:
            return await self.unavailable(request)
        if second_step is not None:
            return second_step
        await self.complete_sign_in(request, user_id)
        return RedirectResponse(next_path, status_code=303)

    async def sign_out(self, request: Request) -> None:
        """Revoke this session's grant and end the session. Whatever fails before (the
        store, a lookup) is logged and the session is cleared all the same: Sign out
        always signs out (an exception would reach the browser as a 500 without the
        cleared session's cookie)."""
        user: User | None = None
        try:
            user = await self.user(request)
            await self.stepup.sign_out(request)  # revokes this session's grant
        except Exception:
            logger.exception("sign-out: this session's grant was not revoked; it ends anyway")
        finally:
            request.session.clear()
            request.scope.setdefault("state", {}).pop("demo_user", None)
        if user is not None:
            self.audit.app_event("SignedOut", user.id)

    # stepup's store down --------------------------------------------------------

    def unavailable_text(self) -> str:
        """What stepup's pages say when its store is down, in the language of the demo's
        own pages (English, base.html) whatever the browser asks for: a demo page reads
        in one language (WCAG 2.1 SC 3.1.2); stepup's own pages are in the browser's."""
        return translate(TEXT["unavailable"], DEMO_LOCALE)

    async def unavailable(self, request: Request) -> Response:
        """stepup's own "try again" page (503, ``Retry-After``) for a store outage, in
        the browser's language; without one, the demo's (English, as its title)."""
        page = await self.stepup.outage_page(request)
        if page is not None:
            return page
        text = self.unavailable_text()
        return self.render(request, "message.html", status=503, title="Please try again", text=text)

    async def signed_in(self, request: Request) -> User | Response:
        """The user, or the redirect to the sign-in page."""
        user = await self.user(request)
        if user is None:
            return self.stepup.sign_in_response(request)
        return user

    async def confirmed_for(self, request: Request, action: str) -> float | None:
        """How many seconds more this session's re-authentication lets ``action`` go ahead
        without asking (the core's check answers with a fresh grant), or ``None``: no
        such grant, the flag off for an action that asks only when it is on, or nobody
        signed in. A page says so after the prompt, so the second press is obvious."""
        if await self.user(request) is None:
            return None
        decision = await self.stepup.check(request, action)
        if (
            not isinstance(decision, Allowed)
            or decision.reason is not AllowReason.FRESH_GRANT
            or decision.valid_until is None
        ):
            return None
        return max(0.0, decision.valid_until - self.clock())

    # pages and forms ----------------------------------------------------------

    def binding(self, request: Request) -> str:
        sid = request.session.get(_SID)
        return sid if isinstance(sid, str) else ""

    def render(
        self, request: Request, template: str, *, status: int = 200, **context: Any
    ) -> Response:
        token, fresh = self.stepup.csrf.issue(request, self.binding(request))
        values = {
            "csrf_field": FIELD_NAME,
            "csrf_token": token,
            "logout_token": token,
            "flashes": request.session.pop(_FLASH, []),
            **context,
        }
        # The headers of stepup's own pages: the demo's confirm pages (regenerate a key,
        # edit the account) are no more to be cached or framed than stepup's.
        response = self.stepup.templates.TemplateResponse(
            request, template, values, status_code=status, headers=PAGE_HEADERS
        )
        if fresh is not None:
            CsrfProtection.set_cookie(request, response, fresh)
        return response

    async def form(self, request: Request) -> FormData | Response:
        """The posted form, or the 403 page when its CSRF token does not hold."""
        form = await request.form()
        if not self.stepup.csrf.verify(request, form.get(FIELD_NAME), self.binding(request)):
            text = "This form expired or did not come from this site. Go back, reload it and retry."
            title = "Please try again"
            return self.render(request, "message.html", status=403, title=title, text=text)
        return form

    async def page_and_form(
        self,
        request: Request,
        page: Callable[[], Response],
        submit: Callable[[FormData], Awaitable[Response]],
    ) -> Response:
        """A page (GET) and its form (POST) at one address: the form is submitted only
        with the page's CSRF token. The route's guard has run before either."""
        if request.method == "GET":
            return page()
        form = await self.form(request)
        if isinstance(form, Response):
            return form
        return await submit(form)

    async def confirm(
        self,
        request: Request,
        *,
        title: str,
        text: str,
        button: str,
        cancel: str,
        act: Callable[[], Awaitable[object]],
        done: str,
    ) -> Response:
        """An action with nothing to fill in: the question (GET), then ``act`` (POST,
        which does it and audits it) and back to ``cancel`` with ``done`` flashed."""

        def page() -> Response:
            return self.render(
                request, "confirm.html", title=title, text=text, button=button, cancel=cancel
            )

        async def submit(_: FormData) -> Response:
            await act()
            return self.redirect(request, cancel, done)

        return await self.page_and_form(request, page, submit)

    def not_found(self, request: Request) -> Response:
        return self.render(request, "message.html", status=404, title="Not found", text="")

    async def http_error(self, request: Request, exc: Exception) -> Response:
        """Starlette's own refusals, an address no route has (404) and a method its route
        does not take (405): for a browser, a page in the demo's layout (its title, its
        language, the header and its menu, a way back to the start), not Starlette's
        bare "Not Found"; a script (JSON, a bearer token) gets Starlette's plain text."""
        assert isinstance(exc, HTTPException)
        headers = dict(exc.headers or {})  # a 405's Allow
        if client_kind(request_info(request)) is not Client.BROWSER:
            return PlainTextResponse(exc.detail, status_code=exc.status_code, headers=headers)
        if exc.status_code == 405:
            title = "Request not allowed"
            text = "This address does not take this kind of request."
        else:
            title = "Page not found"
            text = "There is no page at this address. Check the address, or start again."
        page = self.render(request, "message.html", status=exc.status_code, title=title, text=text)
        page.headers.update(headers)
        return page

    def forbidden(
        self, request: Request, text: str = "Only a tenant admin can see this page."
    ) -> Response:
        """The 403 page, saying why (``text``)."""
        return self.render(request, "message.html", status=403, title="Not allowed", text=text)

    def flash(self, request: Request, text: str) -> None:
        request.session[_FLASH] = [*request.session.get(_FLASH, []), text]

    def redirect(self, request: Request, path: str, flash: str = "") -> Response:
        if flash:
            self.flash(request, flash)
        return RedirectResponse(path, status_code=303)


class Views:
    """A group of the demo's views, over its services."""

    def __init__(self, demo: Demo) -> None:
        self.demo = demo

    def routes(self) -> list[BaseRoute]:
        raise NotImplementedError

    def sensitive(
        self,
        path: str,
        action: str,
        endpoint: Callable[[Request], Awaitable[Response]],
        *,
        context: ContextFunction | None = None,
        methods: Collection[str] = GET_POST,
        admins_only: str = "",
    ) -> Route:
        """A sensitive page and its form, both behind stepup's guard for ``action``: the
        prompt comes before anything is filled in and brings the user back here.

        ``admins_only``: only a tenant admin may do it; anyone else signed in gets the 403
        page with this sentence, before the guard (no prompt for what they may not do)."""
        guard = self.demo.stepup.requires_reauth(action, context=context)
        guarded = guard(endpoint)
        if admins_only:
            guarded = self.admins_only(guarded, admins_only)
        return Route(path, guarded, methods=methods)

    def admins_only(
        self, endpoint: Callable[[Request], Awaitable[Response]], why: str
    ) -> Callable[[Request], Awaitable[Response]]:
        """``endpoint`` for a tenant admin; the 403 page saying ``why`` for anyone else
        signed in. Signed out, ``endpoint`` answers (its guard sends to the sign-in page)."""
        demo = self.demo

        @wraps(endpoint)
        async def for_admins(request: Request) -> Response:
            user = await demo.user(request)
            if user is not None and not user.is_admin:
                return demo.forbidden(request, why)
            return await endpoint(request)

        return for_admins


#: Where a page's banner goes; the middleware fills it in once the view has run.
GRANT_STATUS_SLOT: Final = b"<!--grant-status-->"
#: Where stepup's pages (``templates/stepup/base.html``) say that the session has just
#: confirmed it is the user: filled in on the passkeys page, emptied on the others.
CONFIRMED_SLOT: Final = b"<!--confirmed-->"


class GrantStatusMiddleware:
    """The banner on every page, the demo's and stepup's, says what the core answers
    for :data:`STATUS_ACTION` once the view has run: a view that changed the session's
    grants (enrolling revokes them, a re-authentication records one) shows the state it
    left, not the one it found. The page marks the banner's place (``base.html`` puts
    :data:`GRANT_STATUS_SLOT` there for a signed-in user); this fills it in."""

    def __init__(self, app: ASGIApp, demo: Demo) -> None:
        self.app = app
        self.demo = demo

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/static/"):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        await self.demo.user(request)  # who the page is rendered for (its menu)
        start: Message | None = None
        body: list[bytes] = []

        async def send_with_banner(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                head = dict(message.get("headers", []))
                if head.get(b"content-type", b"").startswith(b"text/html"):
                    start = message  # held until the page is complete
                    return
            elif message["type"] == "http.response.body" and start is not None:
                body.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                page = b"".join(body)
                if GRANT_STATUS_SLOT in page:
                    page = page.replace(GRANT_STATUS_SLOT, await self.banner(request), 1)
                if CONFIRMED_SLOT in page:
                    page = page.replace(CONFIRMED_SLOT, await self.confirmed(request), 1)
                headers = [(k, v) for k, v in start["headers"] if k != b"content-length"]
                headers.append((b"content-length", str(len(page)).encode()))
                await send({**start, "headers": headers})
                await send({"type": "http.response.body", "body": page})
                return
            await send(message)

        await self.app(scope, receive, send_with_banner)

    async def confirmed(self, request: Request) -> bytes:
        """On stepup's passkeys page: a line when this session may add a passkey without
        being asked (back from the prompt that "Add a passkey" led to), and for how long.
        Adding a passkey ends every re-authentication of the user, so the line is gone
        once it is added."""
        if request.url.path != self.demo.stepup.url(request, "passkeys"):
            return b""
        left = await self.demo.confirmed_for(request, PASSKEY_ADD)
        if left is None:
            return b""
        text = (
            "You have confirmed it is you: add your passkey now, without being asked again"
            f" for {human_duration(left)}."
        )
        template = self.demo.stepup.templates.get_template("_confirmed.html")
        return template.render(text=text).encode()

    async def banner(self, request: Request) -> bytes:
        """The banner for the session as the view left it (none once signed out)."""
        request.scope.setdefault("state", {}).pop("demo_user", None)  # sign-in, sign-out
        user = await self.demo.user(request)
        if user is None:
            return b""
        decision = await self.demo.stepup.check(request, STATUS_ACTION)
        status = grant_status(decision, self.demo.clock())
        template = self.demo.stepup.templates.get_template("_grant_status.html")
        return template.render(grant=status, admin=user.is_admin).encode()
