"""Passkey pages and JSON endpoints (included by ``stepup.integrations.django.urls``;
see :mod:`stepup.integrations.passkey_endpoint` for the routes and what each answers).
Every POST is checked by Django's CSRF (a form field, or the ``X-CSRFToken`` header); a
script that fails it gets the JSON 403 ``csrf`` (see ``views._csrf_checked``)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token

from ...errors import StoreUnavailableError, UnknownActionError
from ...passkeys import PasskeyLimitError, Passkeys
from ...subject import Subject
from ..http import Client, client_kind
from ..passkey_endpoint import (
    PASSKEY_ADD,
    PASSKEY_REMOVE,
    TEXT,
    PasskeyBodyError,
    action_field,
    assertion_options_response,
    body_error_response,
    json_response,
    limit_response,
    malformed_response,
    message_response,
    name_field,
    parse_json,
    passkey_error,
    passkey_message,
    passkey_status,
    posts_form,
    read_json,
    refuse_form,
    registration_response,
    result_response,
    script_response,
)
from ..tenant_endpoint import stream_chunks
from ..transaction import TransactionExpiredError
from ..views import PasskeysPage, ReauthPage, posted_name
from ._pages import render_page
from ._request import RequestStepup, outage_response, stepup_for
from ._web import request_info, to_response
from .views import (
    _account_name,
    _after_reauth,
    _form_post,
    _get,
    _message,
    _open_page,
    _page,
    _redirect,
    _render_reauth,
    finish_sign_in,
    verify_page,
)

__all__ = [
    "passkey_remove",
    "passkey_rename",
    "passkey_script",
    "passkeys",
    "reauth_begin",
    "reauth_finish",
    "register_begin",
    "register_finish",
    "sign_in_begin",
    "sign_in_finish",
]


def _locale(request: HttpRequest) -> str:
    """The locale of a JSON answer's ``title``: the pages' (``stepup-passkeys.js`` shows
    the title in the page's error box)."""
    return stepup_for(request).locale()


def _is_json(request: HttpRequest) -> bool:
    """Is the body JSON (anything but a browser's form, see ``posts_form``)?"""
    return not posts_form(request.content_type)


def _read(request: HttpRequest) -> dict[str, Any]:
    return read_json(stream_chunks(request.read), request.headers.get("Content-Length"))


def _json_only(request: HttpRequest) -> dict[str, Any]:
    """The body of a JSON-only endpoint (a begin): a form is malformed."""
    refuse_form(request.content_type)
    return _read(request)


def _body(request: HttpRequest) -> dict[str, Any]:
    """The JSON body, or the form with its ``credential`` field parsed."""
    if _is_json(request):
        return _read(request)
    values: dict[str, Any] = request.POST.dict()
    values["credential"] = parse_json(values.get("credential", ""))
    return values


def _enabled(request: HttpRequest) -> tuple[RequestStepup, Passkeys] | HttpResponse:
    bound = stepup_for(request)
    passkeys = bound.services.passkeys
    if passkeys is None:
        return to_response(message_response(404, "not_configured", _locale(request)))
    return bound, passkeys


def _user(request: HttpRequest) -> tuple[RequestStepup, Passkeys, Subject] | HttpResponse:
    enabled = _enabled(request)
    if isinstance(enabled, HttpResponse):
        return enabled
    bound, passkeys = enabled
    subject = bound.subject
    if subject is None:
        return stepup_for(request).sign_in_response()
    return bound, passkeys, subject


def _guarded(
    request: HttpRequest, action: str
) -> tuple[RequestStepup, Passkeys, Subject] | HttpResponse:
    """Signed in, and a fresh re-authentication for ``action`` (back to the list after)."""
    enabled = _enabled(request)
    if isinstance(enabled, HttpResponse):
        return enabled
    bound, passkeys = enabled
    refusal = bound.guard(action, None, bound.url("passkeys"))
    if refusal is not None:
        return refusal
    subject = bound.subject
    assert subject is not None  # the guard let a signed-in user through
    return bound, passkeys, subject


def _passkeys(request: HttpRequest) -> HttpResponse:
    ready = _user(request)
    if isinstance(ready, HttpResponse):
        return ready
    _, passkeys, subject = ready
    return render_page(request, "stepup/passkeys.html", page=_passkeys_page(passkeys, subject))


def _passkeys_page(passkeys: Passkeys, subject: Subject, error: str = "") -> PasskeysPage:
    """The passkeys page's model: the user's passkeys, and whether they may add one."""
    registered = passkeys.registered(subject.user_id)
    return PasskeysPage.of(registered, error, limit=passkeys.rp.max_passkeys_per_user)


def _register_begin(request: HttpRequest) -> HttpResponse:
    ready = _guarded(request, PASSKEY_ADD)
    if isinstance(ready, HttpResponse):
        return ready
    _, passkeys, subject = ready
    try:
        _json_only(request)
    except PasskeyBodyError:
        return to_response(malformed_response(_locale(request)))
    # The name the authenticator shows: the username, as the TOTP app's label (never
    # inside the user handle, which is opaque).
    try:
        options = passkeys.begin_registration(subject, _account_name(request, subject))
    except PasskeyLimitError:
        return to_response(limit_response(_locale(request)))
    return to_response(json_response(200, options))


def _register_finish(request: HttpRequest) -> HttpResponse:
    ready = _guarded(request, PASSKEY_ADD)
    if isinstance(ready, HttpResponse):
        return ready
    bound, passkeys, subject = ready
    json_client = _is_json(request)
    try:
        data = _body(request)
        name = name_field(data) if json_client else posted_name(request.POST.getlist("name"))
    except PasskeyBodyError as exc:
        if json_client:
            return to_response(body_error_response(exc, _locale(request)))
        data, name = {"credential": {}}, posted_name(request.POST.getlist("name"))
    credential = data.get("credential") or {}
    result = passkeys.finish_registration(subject, credential, name)
    if json_client:
        return to_response(registration_response(result, _locale(request)))
    if not result:
        page = _passkeys_page(passkeys, subject, passkey_message(result.reason))
        status = passkey_status(result.reason)
        return render_page(request, "stepup/passkeys.html", status, page=page)
    messages.info(request, TEXT["added"], fail_silently=True)
    return _redirect(bound.url("passkeys"))


def _done(request: HttpRequest, bound: RequestStepup, ok: bool, text: str) -> HttpResponse:
    """A rename or removal: JSON for scripts, back to the list for a browser."""
    if client_kind(request_info(request)) is not Client.BROWSER:
        if ok:
            return to_response(json_response(200, {"ok": True}))
        return to_response(message_response(404, "not_found", _locale(request)))
    messages.info(request, TEXT[text] if ok else TEXT["not_found"], fail_silently=True)
    return _redirect(bound.url("passkeys"))


def _rename(request: HttpRequest, credential_id: str) -> HttpResponse:
    ready = _user(request)
    if isinstance(ready, HttpResponse):
        return ready
    bound, passkeys, subject = ready
    try:
        name = (
            name_field(_read(request))
            if _is_json(request)
            else posted_name(request.POST.getlist("name"))
        )
    except PasskeyBodyError as exc:  # not JSON, or a name that is not text
        return to_response(body_error_response(exc, _locale(request)))
    return _done(request, bound, passkeys.rename(subject.user_id, credential_id, name), "renamed")


def _remove(request: HttpRequest, credential_id: str) -> HttpResponse:
    ready = _guarded(request, PASSKEY_REMOVE)
    if isinstance(ready, HttpResponse):
        return ready
    bound, passkeys, subject = ready
    removed = passkeys.remove(subject.user_id, credential_id, removed_by=subject.user_id)
    return _done(request, bound, removed, "removed")


def _json_page(
    request: HttpRequest, data: dict[str, Any]
) -> tuple[RequestStepup, Subject, ReauthPage] | HttpResponse:
    """``_open_page`` for a script: its refusals as JSON (a store failure reaches
    :func:`_fail_closed`, a 503)."""
    bound = stepup_for(request)
    subject = bound.subject
    if subject is None:
        return stepup_for(request).sign_in_response()
    try:
        action_field(data)  # a JSON action that is not text: unknown, a 400
        return bound, subject, _page(request, bound, subject, data)
    except UnknownActionError:
        return to_response(message_response(400, "unknown_action", _locale(request)))
    except TransactionExpiredError:
        return to_response(message_response(400, "transaction_expired", _locale(request)))


def _reauth_begin(request: HttpRequest) -> HttpResponse:
    enabled = _enabled(request)
    if isinstance(enabled, HttpResponse):
        return enabled
    try:
        data = _json_only(request)
    except PasskeyBodyError:
        return to_response(malformed_response(_locale(request)))
    opened = _json_page(request, data)
    if isinstance(opened, HttpResponse):
        return opened
    _, subject, page = opened
    if not page.passkey:
        return to_response(message_response(400, "not_offered", _locale(request)))
    # A transaction-bound action: the authenticator signs the transaction's digest. Only
    # the passkeys that can prove the offered alternative are listed (hwk: device-bound).
    options = enabled[1].begin_authentication(
        subject, transaction=page.transaction or None, proves=page.methods
    )
    return to_response(assertion_options_response(options, _locale(request), page.methods))


def _reauth_finish(request: HttpRequest) -> HttpResponse:
    enabled = _enabled(request)
    if isinstance(enabled, HttpResponse):
        return enabled
    json_client = _is_json(request)
    try:
        data = _body(request)
    except PasskeyBodyError:
        if json_client:
            return to_response(malformed_response(_locale(request)))
        data = {**request.POST.dict(), "credential": {}}
    opened = _json_page(request, data) if json_client else _open_page(request, data)
    if isinstance(opened, HttpResponse):
        return opened
    bound, subject, page = opened
    if not page.passkey:
        if json_client:
            return to_response(message_response(400, "not_offered", _locale(request)))
        return _render_reauth(request, bound, subject, page, 400)
    transaction = page.transaction or None
    credential = data.get("credential") or {}
    result = enabled[1].finish_authentication(
        subject, credential, transaction=transaction, proves=page.methods
    )
    if not result:
        if json_client:
            return to_response(result_response(result, _locale(request)))
        page = page.with_error(passkey_message(result.reason))
        return _render_reauth(request, bound, subject, page, passkey_status(result.reason))
    resumed = bound.take_resumed(subject, page.resume or None, page.action)
    methods = tuple(sorted(result.methods))
    bound.record_reauth(subject, methods, transaction=transaction, signed=result.transaction)
    if json_client:
        # The session was renewed and its CSRF token rotated: hand the new one over.
        answer = {"ok": True, "next": page.next, "csrf_token": get_token(request)}
        return to_response(json_response(200, answer))
    return _after_reauth(request, resumed, page.next)


# the second factor at sign-in ----------------------------------------------------------


def _sign_in_begin(request: HttpRequest) -> HttpResponse:
    """Options for the passkey of the sign-in waiting in this session (JSON)."""
    enabled = _enabled(request)
    if isinstance(enabled, HttpResponse):
        return enabled
    bound, passkeys = enabled
    pending = bound.pending_sign_in()
    if pending is None or not pending.nonce:
        return to_response(message_response(400, "sign_in_expired", _locale(request)))
    try:
        _json_only(request)
    except PasskeyBodyError:
        return to_response(malformed_response(_locale(request)))
    options = passkeys.begin_sign_in(pending.user_id, pending.nonce)
    return to_response(assertion_options_response(options, _locale(request)))


def _sign_in_finish(request: HttpRequest) -> HttpResponse:
    """The passkey as the second factor: signed in on success (a redirect to ``next``
    for the page's form, ``{"ok": true, "next": ...}`` for a script)."""
    enabled = _enabled(request)
    if isinstance(enabled, HttpResponse):
        return enabled
    bound, passkeys = enabled
    json_client = _is_json(request)
    pending = bound.pending_sign_in()
    if pending is None or not pending.nonce:
        return _expired(request, json_client)
    try:
        data = _body(request)
    except PasskeyBodyError:
        if json_client:
            return to_response(malformed_response(_locale(request)))
        data = {"credential": {}}
    credential = data.get("credential") or {}
    result = passkeys.finish_sign_in(pending.user_id, pending.nonce, credential)
    if not result:
        if json_client:
            return to_response(result_response(result, _locale(request)))
        status = passkey_status(result.reason)
        return verify_page(request, bound, pending, passkey_error(result), status)
    if not finish_sign_in(bound, pending, result.sign_in_methods(pending.proved)):
        return _expired(request, json_client)  # the waiting sign-in was used already
    if json_client:
        # Signed in (Django's login rotates the CSRF token): the new one, for the script.
        answer = {"ok": True, "next": pending.next, "csrf_token": get_token(request)}
        return to_response(json_response(200, answer))
    return _redirect(pending.next)


def _expired(request: HttpRequest, json_client: bool) -> HttpResponse:
    """No sign-in waits (expired, or used already): the page, or JSON for a script."""
    if json_client:
        return to_response(message_response(400, "sign_in_expired", _locale(request)))
    return _message(request, 400, TEXT["sign_in_expired"])


def _script(request: HttpRequest) -> HttpResponse:
    return to_response(script_response())


def _fail_closed(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A store that cannot answer is a 503 that says so, never a 500 (nothing changed):
    the "try again" page for a browser (the passkeys page's, back to it), the JSON
    ``unavailable`` for a script; both with ``Retry-After``."""

    @wraps(view)
    def answer(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except StoreUnavailableError:
            link = stepup_for(request).url("passkeys") if request.method == "GET" else ""
            return outage_response(request, link)

    return answer


passkeys = _get(_fail_closed(_passkeys))
register_begin = _form_post(_fail_closed(_register_begin))
register_finish = _form_post(_fail_closed(_register_finish))
passkey_rename = _form_post(_fail_closed(_rename))
passkey_remove = _form_post(_fail_closed(_remove))
reauth_begin = _form_post(_fail_closed(_reauth_begin))
reauth_finish = _form_post(_fail_closed(_reauth_finish))
# The sign-in's second step: nobody is signed in yet (the pending sign-in is the session's).
sign_in_begin = _form_post(_fail_closed(_sign_in_begin), any_channel=True)
sign_in_finish = _form_post(_fail_closed(_sign_in_finish), any_channel=True)
passkey_script = _get(_script, any_channel=True)
