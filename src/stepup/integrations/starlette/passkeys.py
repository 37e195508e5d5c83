"""Passkey pages and JSON endpoints for Starlette and FastAPI (mounted with the other
ready-made views when the :class:`~stepup.integrations.starlette.Stepup` has
``passkeys_rp_id``; see :mod:`stepup.integrations.passkey_endpoint` for the routes).

Forms carry the CSRF token in their ``csrf_token`` field, scripts in the
``X-CSRF-Token`` header (read whatever the body's type, as Flask and Django do).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial, wraps
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ...errors import StoreUnavailableError, UnknownActionError
from ...passkeys import AsyncPasskeys, PasskeyLimitError
from ...redirects import safe_return_path_or_default
from ...subject import Subject
from ..http import Client, SignInRequiredError, client_kind
from ..passkey_endpoint import (
    PASSKEY_ADD,
    PASSKEY_REMOVE,
    PasskeyBodyError,
    action_field,
    aread_json,
    assertion_options_response,
    body_error_response,
    field,
    json_response,
    limit_response,
    malformed_response,
    message_response,
    name_field,
    off_channel,
    parse_json,
    passkey_error,
    passkey_message,
    passkey_status,
    posts_form,
    refuse_form,
    registration_response,
    result_response,
    script_response,
)
from ..passkey_endpoint import TEXT as PASSKEY_TEXT
from ..transaction import TransactionExpiredError, confirming_page
from ..views import TEXT, PasskeysPage, ReauthPage, posted_name, reauth_page
from ._util import request_info, session_of, to_response
from .csrf import FIELD_NAME
from .pages import bounded_form, leave_note, passkey_urls, take_notes
from .stepup import PENDING_SIGN_IN

if TYPE_CHECKING:
    from .pages import StepupPages

__all__ = ["passkey_routes", "passkey_urls"]


def _is_json(request: Request) -> bool:
    """Is the body JSON (anything but a browser's form, see ``posts_form``)?"""
    return not posts_form(request.headers.get("content-type"))


async def _read(request: Request) -> dict[str, Any]:
    return await aread_json(request.stream(), request.headers.get("content-length"))


class _PasskeyViews:
    def __init__(self, pages: StepupPages) -> None:
        self.pages = pages
        self.s = pages.stepup
        passkeys = self.s.passkeys
        assert passkeys is not None  # mounted only when configured
        self.passkeys: AsyncPasskeys = passkeys

    async def _locale(self, request: Request) -> str:
        """The locale of a JSON answer's ``title``: the pages' (``stepup-passkeys.js``
        shows the title in the page's error box)."""
        return await self.s.locale(request)

    # who, and the CSRF token --------------------------------------------------------

    async def _user(self, request: Request) -> Subject | Response:
        return await self.pages.signed_in(request)

    async def _token(self, request: Request, binding: str) -> dict[str, Any] | Response | None:
        """The CSRF token bound to ``binding`` (the session, or a pending sign-in),
        checked before anything else is: a refusal (403) when it does not hold, else
        the form with ``credential`` parsed, or ``None`` for a JSON body (whatever its
        ``Content-Type``; :meth:`_body` reads it). The token is a form's ``csrf_token``
        field, else the ``X-CSRF-Token`` header, whatever the body's type (as Flask and
        Django): picking the source by the type alone refused a script's token."""
        form = None
        if posts_form(request.headers.get("content-type")):
            form = await bounded_form(request)
            if form is None:  # beyond stepup's form limits: unread, refused
                return await self.pages.csrf_failed(request)
        field_token = form.get(FIELD_NAME) if form is not None else None
        token = field_token or request.headers.get("x-csrf-token")
        if not self.s.csrf.verify(request, token, binding):
            return await self.pages.csrf_failed(request)  # JSON 403 "csrf" for a script
        if form is None:
            return None
        values: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str)}
        # A name sent twice is no name (refused as an empty one), as in every framework.
        values["name"] = posted_name(form.getlist("name"))
        try:
            values["credential"] = parse_json(values.get("credential", ""))
        except PasskeyBodyError:
            values["credential"] = {}
        return values

    async def _body(
        self, request: Request, form: dict[str, Any] | None, *, json_only: bool = False
    ) -> dict[str, Any] | Response:
        """The body once :meth:`_token` passed: the form it read, or the script's JSON
        (400 ``malformed`` when it is none, or, ``json_only`` (a begin), a form)."""
        try:
            if json_only:
                refuse_form(request.headers.get("content-type"))
            return form if form is not None else await _read(request)
        except PasskeyBodyError:
            return to_response(malformed_response(await self._locale(request)))

    async def _guard(self, request: Request, action: str) -> Response | None:
        """A fresh re-authentication for ``action``, coming back to the list after."""
        try:
            decision = await self.s.check(request, action)
        except SignInRequiredError:
            return self.s.sign_in_response(request, locale=await self._locale(request))
        if decision.ok:
            return None
        return await self.s.respond(request, decision, self.s.url(request, "passkeys"))

    async def _prologue(
        self,
        request: Request,
        action: str | None = None,
        *,
        body: bool = True,
        json_only: bool = False,
    ) -> tuple[Subject, dict[str, Any]] | Response:
        """The web channel, the CSRF token, signed in, for ``action`` a fresh grant, and
        then the body (unless not ``body``: a removal reads none, as in Flask and
        Django; ``json_only``: a begin, posted no form), in that order, as Flask and
        Django (a script without a valid token gets its 403 ``csrf`` whether or not
        anyone is signed in; one without the grant its 401 ``reauth_required`` whatever
        it sent): the refusal of the first step that fails, or the subject and the body."""
        subject = await self.s.subject(request)
        if subject is not None and off_channel(subject):
            return await self.pages.off_channel(request)  # before the token, as elsewhere
        # Nobody signed in: the token of a page shown before sign-in (bound to nobody).
        form = await self._token(request, subject.session_id if subject is not None else "")
        if isinstance(form, Response):
            return form
        if subject is None:
            return self.s.sign_in_response(request, locale=await self._locale(request))
        if action is not None:
            refused = await self._guard(request, action)
            if refused is not None:
                return refused
        if not body:
            return subject, {}
        data = await self._body(request, form, json_only=json_only)
        if isinstance(data, Response):
            return data
        return subject, data

    # the passkeys page --------------------------------------------------------------

    async def page(
        self, request: Request, subject: Subject, error: str = "", status: int = 200
    ) -> Response:
        registered = await self.passkeys.registered(subject.user_id)
        limit = self.passkeys.rp.max_passkeys_per_user
        return await self.pages.render(
            request,
            "passkeys.html",
            binding=subject.session_id,
            status=status,
            page=PasskeysPage.of(registered, error, limit=limit),
            messages=take_notes(request),
        )

    async def list(self, request: Request) -> Response:
        subject = await self._user(request)
        if isinstance(subject, Response):
            return subject
        return await self.page(request, subject)

    def _back(self, request: Request, note: str) -> Response:
        """Back to the passkeys page, which says ``note`` once (Flask's and Django's
        flash message)."""
        leave_note(request, PASSKEY_TEXT[note])
        return RedirectResponse(self.s.url(request, "passkeys"), status_code=303)

    async def register_begin(self, request: Request) -> Response:
        checked = await self._prologue(request, PASSKEY_ADD, json_only=True)
        if isinstance(checked, Response):
            return checked
        subject, _ = checked
        name = await self.s.account_name(subject.user_id)
        try:
            options = await self.passkeys.begin_registration(subject, name)
        except PasskeyLimitError:
            return to_response(limit_response(await self._locale(request)))
        return to_response(json_response(200, options))

    async def register_finish(self, request: Request) -> Response:
        checked = await self._prologue(request, PASSKEY_ADD)
        if isinstance(checked, Response):
            return checked
        subject, data = checked
        credential = data.get("credential") or {}
        try:
            name = name_field(data)
        except PasskeyBodyError as exc:  # a name that is not text
            return to_response(body_error_response(exc, await self._locale(request)))
        result = await self.passkeys.finish_registration(subject, credential, name)
        if _is_json(request):
            return to_response(registration_response(result, await self._locale(request)))
        if not result:
            error = passkey_message(result.reason)
            return await self.page(request, subject, error, passkey_status(result.reason))
        return self._back(request, "added")

    async def _done(self, request: Request, ok: bool, text: str) -> Response:
        if client_kind(request_info(request)) is not Client.BROWSER:
            if ok:
                return to_response(json_response(200, {"ok": True}))
            return to_response(message_response(404, "not_found", await self._locale(request)))
        return self._back(request, text if ok else "not_found")

    async def rename(self, request: Request) -> Response:
        checked = await self._prologue(request)
        if isinstance(checked, Response):
            return checked
        subject, data = checked
        credential_id = str(request.path_params["credential_id"])
        try:
            name = name_field(data)
        except PasskeyBodyError as exc:  # a name that is not text
            return to_response(body_error_response(exc, await self._locale(request)))
        renamed = await self.passkeys.rename(subject.user_id, credential_id, name)
        return await self._done(request, renamed, "renamed")

    async def remove(self, request: Request) -> Response:
        checked = await self._prologue(request, PASSKEY_REMOVE, body=False)
        if isinstance(checked, Response):
            return checked
        subject, _ = checked
        credential_id = str(request.path_params["credential_id"])
        removed = await self.passkeys.remove(
            subject.user_id, credential_id, removed_by=subject.user_id
        )
        return await self._done(request, removed, "removed")

    # re-authentication ----------------------------------------------------------------

    async def _reauth_page(
        self, request: Request, subject: Subject, data: dict[str, Any]
    ) -> ReauthPage:
        """The re-auth page the request is about: from the query for the page's form
        (as the password form), from the JSON body for scripts."""
        if not _is_json(request):
            return await self.pages.reauth_page(request, subject)
        action = action_field(data)  # not text: unknown, a 400 (as Flask and Django)
        offer = await self.s.reauth.offer(subject, action)
        next_value, home = field(data, "next"), self.s.home(request)
        page = reauth_page(self.s.policy, subject, action, next_value, offer=offer, home=home)
        pending = self.s.pending_transaction(request, subject, action, data.get("transaction"))
        return confirming_page(self.s.policy, page, pending)

    async def reauth_begin(self, request: Request) -> Response:
        checked = await self._prologue(request, json_only=True)
        if isinstance(checked, Response):
            return checked
        subject, data = checked
        try:
            page = await self._reauth_page(request, subject, data)
        except UnknownActionError:
            return to_response(message_response(400, "unknown_action", await self._locale(request)))
        except TransactionExpiredError:
            return to_response(
                message_response(400, "transaction_expired", await self._locale(request))
            )
        if not page.passkey:
            return to_response(message_response(400, "not_offered", await self._locale(request)))
        # A transaction-bound action: the authenticator signs the transaction's digest. Only
        # the passkeys that can prove the offered alternative are listed (hwk: device-bound).
        bound = page.transaction or None
        options = await self.passkeys.begin_authentication(
            subject, transaction=bound, proves=page.methods
        )
        return to_response(
            assertion_options_response(options, await self._locale(request), page.methods)
        )

    async def reauth_finish(self, request: Request) -> Response:
        checked = await self._prologue(request)
        if isinstance(checked, Response):
            return checked
        subject, data = checked
        json_client = _is_json(request)
        try:
            page = await self._reauth_page(request, subject, data)
        except UnknownActionError:
            return to_response(message_response(400, "unknown_action", await self._locale(request)))
        except TransactionExpiredError:
            return to_response(
                message_response(400, "transaction_expired", await self._locale(request))
            )
        if not page.passkey:
            if json_client:
                return to_response(
                    message_response(400, "not_offered", await self._locale(request))
                )
            return await self.pages.reauth_form(request, subject, page, 400)
        bound = page.transaction or None
        credential = data.get("credential") or {}
        result = await self.passkeys.finish_authentication(
            subject, credential, transaction=bound, proves=page.methods
        )
        if not result:
            if json_client:
                return to_response(result_response(result, await self._locale(request)))
            page = page.with_error(passkey_message(result.reason))
            return await self.pages.reauth_form(
                request, subject, page, passkey_status(result.reason)
            )
        methods = sorted(result.methods)
        if not json_client:
            resume = (page.resume or None, page.action)
            return await self.pages.record(
                request,
                subject,
                methods,
                page.next,
                resume=resume,
                transaction=bound,
                signed=result.transaction,
            )
        try:
            await self.s.record_reauth(
                request, subject, methods, transaction=bound, signed=result.transaction
            )
        except StoreUnavailableError:
            return to_response(message_response(503, "unavailable", await self._locale(request)))
        # The session id was renewed, and the CSRF tokens bound to it with it: hand over
        # one for the renewed session.
        return await self._with_csrf_token(request, {"ok": True, "next": page.next})

    async def _with_csrf_token(self, request: Request, answer: dict[str, Any]) -> Response:
        """``answer`` as JSON with ``csrf_token``: a token for the session as it is now
        (after a renewal or a sign-in), for the script's next request."""
        token = await self.s.csrf_token(request)
        response = to_response(json_response(200, {**answer, "csrf_token": token}))
        return self.s.set_csrf_cookie(request, response)

    # the second factor at sign-in ----------------------------------------------------

    async def _pending(
        self, request: Request, *, json_only: bool = False
    ) -> tuple[Any, dict[str, Any]] | Response:
        """The sign-in waiting in this session and the CSRF-checked body (the token of
        the sign-in's page, bound to it). The token first, as Flask and Django: a
        request without a valid one gets its 403 ``csrf`` even when no sign-in waits
        (one that expired still binds its page's token: that page's request is told
        the sign-in expired; with none kept, the session's own token is the valid one,
        and its request is told the same)."""
        form = await self._token(request, await self._pending_binding(request))
        if isinstance(form, Response):
            return form
        pending = self.s.pending_sign_in(request)
        if pending is None:
            return await self._expired(request)
        data = await self._body(request, form, json_only=json_only)
        if isinstance(data, Response):
            return data
        return pending, data

    async def _expired(self, request: Request) -> Response:
        """No sign-in waits (expired, or used already): the page, or JSON for a script."""
        if _is_json(request):
            return to_response(
                message_response(400, "sign_in_expired", await self._locale(request))
            )
        return await self.pages.message(request, TEXT["sign_in_expired"], 400)

    async def sign_in_begin(self, request: Request) -> Response:
        """Options for the passkey of the sign-in waiting in this session (JSON)."""
        checked = await self._pending(request, json_only=True)
        if isinstance(checked, Response):
            return checked
        pending, _ = checked
        options = await self.passkeys.begin_sign_in(str(pending["user_id"]), str(pending["nonce"]))
        return to_response(assertion_options_response(options, await self._locale(request)))

    async def sign_in_finish(self, request: Request) -> Response:
        """The passkey as the second factor: signed in on success (a redirect to ``next``
        for the page's form, ``{"ok": true, "next": ...}`` for a script)."""
        checked = await self._pending(request)
        if isinstance(checked, Response):
            return checked
        pending, data = checked
        user_id, nonce = str(pending["user_id"]), str(pending["nonce"])
        result = await self.passkeys.finish_sign_in(user_id, nonce, data.get("credential") or {})
        if not result:
            if _is_json(request):
                return to_response(result_response(result, await self._locale(request)))
            status = passkey_status(result.reason)
            return await self.pages.verify_page(request, pending, passkey_error(result), status)
        proved = result.sign_in_methods(self.pages.proved(pending))
        if not await self.pages.finish_sign_in(request, pending, proved):
            return await self._expired(request)  # the waiting sign-in was used already
        next_path = safe_return_path_or_default(pending.get("next"))
        if _is_json(request):
            return await self._with_csrf_token(request, {"ok": True, "next": next_path})
        return RedirectResponse(next_path, status_code=303)

    async def _pending_binding(self, request: Request) -> str:
        """What the token of a sign-in's second step is bound to: the nonce of the
        sign-in kept in the session, fresh or expired; with none kept (finished, or never
        begun), the session's own binding (the signed-in session, or nobody), so its
        valid token is told the sign-in expired, as in Flask and Django, not refused."""
        nonce = _kept_nonce(request)
        if nonce is not None:
            return nonce
        subject = await self.s.subject(request)
        return subject.session_id if subject is not None else ""

    async def script(self, request: Request) -> Response:
        return to_response(script_response())


def _kept_nonce(request: Request) -> str | None:
    """The nonce of the sign-in kept in the session, fresh or expired (``None``: none)."""
    kept = session_of(request).get(PENDING_SIGN_IN)
    nonce = kept.get("nonce") if isinstance(kept, dict) else None
    return nonce if isinstance(nonce, str) else None


def _fail_closed(
    pages: StepupPages,
    view: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    """A store that cannot answer is a 503 that says so, never a 500 (nothing changed):
    the "try again" page for a browser (the passkeys page's, back to it), the JSON
    ``unavailable`` for a script; both with ``Retry-After``."""

    @wraps(view)
    async def answer(request: Request) -> Response:
        try:
            return await view(request)
        except StoreUnavailableError:
            link = pages.stepup.url(request, "passkeys") if request.method == "GET" else ""
            return await pages.store_unavailable(request, link)

    return answer


def passkey_routes(pages: StepupPages) -> list[BaseRoute]:
    views = _PasskeyViews(pages)
    fail_closed = partial(_fail_closed, pages)
    post = ["POST"]
    return [
        Route("/passkeys", fail_closed(views.list), methods=["GET"], name="passkeys"),
        Route("/passkeys/register/begin", fail_closed(views.register_begin), methods=post),
        Route("/passkeys/register/finish", fail_closed(views.register_finish), methods=post),
        Route("/passkeys/{credential_id}/rename", fail_closed(views.rename), methods=post),
        Route("/passkeys/{credential_id}/remove", fail_closed(views.remove), methods=post),
        Route("/reauth/passkey/begin", fail_closed(views.reauth_begin), methods=post),
        Route("/reauth/passkey/finish", fail_closed(views.reauth_finish), methods=post),
        Route("/2fa/verify/passkey/begin", fail_closed(views.sign_in_begin), methods=post),
        Route("/2fa/verify/passkey/finish", fail_closed(views.sign_in_finish), methods=post),
        Route("/stepup-passkeys.js", views.script, methods=["GET"], name="passkey_script"),
    ]
