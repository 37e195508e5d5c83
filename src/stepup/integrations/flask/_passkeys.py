"""Passkey pages and JSON endpoints of the ``stepup`` blueprint (see
:mod:`stepup.integrations.passkey_endpoint` for the routes and what each answers)."""

from __future__ import annotations

from functools import wraps
from typing import Any, Final

from flask import flash, request, url_for

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
from ..views import PasskeysPage, posted_name
from ._state import AppState, state
from ._views import (
    _after_reauth,
    _message,
    _open_page,
    _Opened,
    _page_from,
    _redirect,
    _render,
    _render_reauth,
    _unavailable,
    finish_login,
    verify_page,
)
from ._web import request_info, to_response

__all__ = ["ROUTES"]


def _locale() -> str:
    """The locale of a JSON answer's ``title``: the pages' (``stepup-passkeys.js`` shows
    the title in the page's error box)."""
    return state().locale()


def _is_json() -> bool:
    """Is the body JSON (anything but a browser's form, see ``posts_form``)?"""
    return not posts_form(request.content_type)


def _read() -> dict[str, Any]:
    return read_json(stream_chunks(request.stream.read), request.headers.get("Content-Length"))


def _json_only() -> dict[str, Any]:
    """The body of a JSON-only endpoint (a begin): a form is malformed, never ``{}``
    (Werkzeug's form parser has read its body, so the stream would look empty)."""
    refuse_form(request.content_type)
    return _read()


def _body() -> dict[str, Any]:
    """The JSON body, or the form with its ``credential`` field parsed."""
    if _is_json():
        return _read()
    values: dict[str, Any] = request.form.to_dict()
    values["credential"] = parse_json(values.get("credential", ""))
    return values


def _form_name() -> str:
    """The form's passkey name: sent more than once, no name (refused as an empty one)."""
    return posted_name(request.form.getlist("name"))


def _enabled() -> tuple[AppState, Passkeys] | Any:
    app_state = state()
    if app_state.passkeys is None:
        return to_response(message_response(404, "not_configured", _locale()))
    return app_state, app_state.passkeys


def _user() -> tuple[AppState, Passkeys, Subject] | Any:
    enabled = _enabled()
    if not isinstance(enabled, tuple):
        return enabled
    app_state, passkeys = enabled
    subject = app_state.subject()
    if subject is None:
        return app_state.unauthenticated()
    return app_state, passkeys, subject


def _guarded(action: str) -> tuple[AppState, Passkeys, Subject] | Any:
    """Signed in, and a fresh re-authentication for ``action`` (back to the list after)."""
    enabled = _enabled()
    if not isinstance(enabled, tuple):
        return enabled
    app_state, passkeys = enabled
    refusal = app_state.guard(action, None, url_for("stepup.passkeys"))
    if refusal is not None:
        return refusal
    subject = app_state.subject()
    assert subject is not None  # the guard let a signed-in user through
    return app_state, passkeys, subject


def passkeys_page() -> Any:
    ready = _user()
    if not isinstance(ready, tuple):
        return ready
    _, passkeys, subject = ready
    return _render("stepup/passkeys.html", page=_page(passkeys, subject))


def _page(passkeys: Passkeys, subject: Subject, error: str = "") -> PasskeysPage:
    """The passkeys page's model: the user's passkeys, and whether they may add one."""
    registered = passkeys.registered(subject.user_id)
    return PasskeysPage.of(registered, error, limit=passkeys.rp.max_passkeys_per_user)


def register_begin() -> Any:
    ready = _guarded(PASSKEY_ADD)
    if not isinstance(ready, tuple):
        return ready
    app_state, passkeys, subject = ready
    try:
        _json_only()
    except PasskeyBodyError:
        return to_response(malformed_response(_locale()))
    name = app_state.account_name(subject.user_id)
    try:
        options = passkeys.begin_registration(subject, name)
    except PasskeyLimitError:
        return to_response(limit_response(_locale()))
    return to_response(json_response(200, options))


def register_finish() -> Any:
    ready = _guarded(PASSKEY_ADD)
    if not isinstance(ready, tuple):
        return ready
    _, passkeys, subject = ready
    json_client = _is_json()
    try:
        data = _body()
        name = name_field(data) if json_client else _form_name()
    except PasskeyBodyError as exc:
        if json_client:
            return to_response(body_error_response(exc, _locale()))
        data, name = {"credential": {}}, _form_name()
    result = passkeys.finish_registration(subject, data.get("credential") or {}, name)
    if json_client:
        return to_response(registration_response(result, _locale()))
    if not result:
        page = _page(passkeys, subject, passkey_message(result.reason))
        return _render("stepup/passkeys.html", passkey_status(result.reason), page=page)
    flash(TEXT["added"], "stepup")
    return _redirect(url_for("stepup.passkeys"))


def _done(ok: bool, text: str) -> Any:
    """A rename or removal: 204/404 for scripts, back to the list for a browser."""
    if client_kind(request_info(request)) is not Client.BROWSER:
        return to_response(json_response(200, {"ok": True}) if ok else _not_found())
    flash(TEXT[text] if ok else TEXT["not_found"], "stepup")
    return _redirect(url_for("stepup.passkeys"))


def _not_found() -> Any:
    return message_response(404, "not_found", _locale())


def rename(credential_id: str) -> Any:
    ready = _user()
    if not isinstance(ready, tuple):
        return ready
    _, passkeys, subject = ready
    try:
        name = name_field(_read()) if _is_json() else _form_name()
    except PasskeyBodyError as exc:  # not JSON, or a name that is not text
        return to_response(body_error_response(exc, _locale()))
    return _done(passkeys.rename(subject.user_id, credential_id, name), "renamed")


def remove(credential_id: str) -> Any:
    ready = _guarded(PASSKEY_REMOVE)
    if not isinstance(ready, tuple):
        return ready
    _, passkeys, subject = ready
    removed = passkeys.remove(subject.user_id, credential_id, removed_by=subject.user_id)
    return _done(removed, "removed")


def _json_page(data: dict[str, Any]) -> _Opened | Any:
    """:func:`_open_page` for a script: its refusals as JSON (a store failure reaches
    :func:`_fail_closed`, a 503)."""
    app_state, subject = state(), state().subject()
    if subject is None:
        return app_state.unauthenticated()
    try:
        action_field(data)  # a JSON action that is not text: unknown, a 400
        return _Opened(app_state, subject, _page_from(data, subject, app_state))
    except UnknownActionError:
        return to_response(message_response(400, "unknown_action", _locale()))
    except TransactionExpiredError:
        return to_response(message_response(400, "transaction_expired", _locale()))


def reauth_begin() -> Any:
    enabled = _enabled()
    if not isinstance(enabled, tuple):
        return enabled
    try:
        data = _json_only()
    except PasskeyBodyError:
        return to_response(malformed_response(_locale()))
    opened = _json_page(data)
    if not isinstance(opened, _Opened):
        return opened
    if not opened.page.passkey:
        return to_response(message_response(400, "not_offered", _locale()))
    # A transaction-bound action: the authenticator signs the transaction's digest. Only
    # the passkeys that can prove the offered alternative are listed (hwk: device-bound).
    transaction, methods = opened.page.transaction or None, opened.page.methods
    options = enabled[1].begin_authentication(
        opened.subject, transaction=transaction, proves=methods
    )
    return to_response(assertion_options_response(options, _locale(), methods))


def reauth_finish() -> Any:
    enabled = _enabled()
    if not isinstance(enabled, tuple):
        return enabled
    json_client = _is_json()
    try:
        data = _body()
    except PasskeyBodyError:
        if json_client:
            return to_response(malformed_response(_locale()))
        data = {**request.form.to_dict(), "credential": {}}
    opened = _json_page(data) if json_client else _open_page(data)
    if not isinstance(opened, _Opened):
        return opened
    app_state, subject, page = opened
    if not page.passkey:
        if json_client:
            return to_response(message_response(400, "not_offered", _locale()))
        return _render_reauth(app_state, subject, page, 400)
    transaction = page.transaction or None
    credential = data.get("credential") or {}
    result = enabled[1].finish_authentication(
        subject, credential, transaction=transaction, proves=page.methods
    )
    if not result:
        if json_client:
            return to_response(result_response(result, _locale()))
        page = page.with_error(passkey_message(result.reason))
        return _render_reauth(app_state, subject, page, passkey_status(result.reason))
    resumed = app_state.take_resumed(subject, page.resume or None, page.action)
    methods = tuple(sorted(result.methods))
    app_state.record_reauth(subject, methods, transaction=transaction, signed=result.transaction)
    if json_client:
        # The session was renewed and its CSRF token with it: hand the new one over.
        answer = {"ok": True, "next": page.next, "csrf_token": app_state.csrf.token()}
        return to_response(json_response(200, answer))
    return _after_reauth(app_state, resumed, page.next)


# the second factor at sign-in ----------------------------------------------------------


def sign_in_begin() -> Any:
    """Options for the passkey of the sign-in waiting in this session (JSON)."""
    enabled = _enabled()
    if not isinstance(enabled, tuple):
        return enabled
    app_state, passkeys = enabled
    pending = app_state.pending_login()
    if pending is None or not pending.nonce:
        return to_response(message_response(400, "sign_in_expired", _locale()))
    try:
        _json_only()
    except PasskeyBodyError:
        return to_response(malformed_response(_locale()))
    options = passkeys.begin_sign_in(pending.user_id, pending.nonce)
    return to_response(assertion_options_response(options, _locale()))


def sign_in_finish() -> Any:
    """The passkey as the second factor: signed in on success (a redirect to ``next``
    for the page's form, ``{"ok": true, "next": ...}`` for a script)."""
    enabled = _enabled()
    if not isinstance(enabled, tuple):
        return enabled
    app_state, passkeys = enabled
    json_client = _is_json()
    pending = app_state.pending_login()
    if pending is None or not pending.nonce:
        if json_client:
            return to_response(message_response(400, "sign_in_expired", _locale()))
        return _message(400, TEXT["sign_in_expired"])
    try:
        data = _body()
    except PasskeyBodyError:
        if json_client:
            return to_response(malformed_response(_locale()))
        data = {"credential": {}}
    result = passkeys.finish_sign_in(pending.user_id, pending.nonce, data.get("credential") or {})
    if not result:
        if json_client:
            return to_response(result_response(result, _locale()))
        return verify_page(app_state, pending, passkey_error(result), passkey_status(result.reason))
    if not finish_login(app_state, pending, result.sign_in_methods(pending.proved)):
        if json_client:  # the waiting sign-in was used already (or expired)
            return to_response(message_response(400, "sign_in_expired", _locale()))
        return _message(400, TEXT["sign_in_expired"])
    if json_client:
        # Signed in: a new session, so a new CSRF token for the script's next request.
        answer = {"ok": True, "next": pending.next, "csrf_token": app_state.csrf.token()}
        return to_response(json_response(200, answer))
    return _redirect(pending.next)


def script() -> Any:
    return to_response(script_response())


def _fail_closed(view: Any) -> Any:
    """A store that cannot answer is a 503 that says so, never a 500 (nothing changed):
    the "try again" page for a browser (the passkeys page's, back to it), the JSON
    ``unavailable`` for a script; both with ``Retry-After``."""

    @wraps(view)
    def answer(*args: Any, **kwargs: Any) -> Any:
        try:
            return view(*args, **kwargs)
        except StoreUnavailableError:
            return _unavailable(url_for("stepup.passkeys") if request.method == "GET" else "")

    return answer


#: (rule, endpoint, view, methods) for the blueprint.
ROUTES: Final[list[tuple[str, str, Any, list[str]]]] = [
    (rule, endpoint, _fail_closed(view), methods)
    for rule, endpoint, view, methods in [
        ("/passkeys", "passkeys", passkeys_page, ["GET"]),
        ("/passkeys/register/begin", "passkey_register_begin", register_begin, ["POST"]),
        ("/passkeys/register/finish", "passkey_register_finish", register_finish, ["POST"]),
        ("/passkeys/<credential_id>/rename", "passkey_rename", rename, ["POST"]),
        ("/passkeys/<credential_id>/remove", "passkey_remove", remove, ["POST"]),
        ("/reauth/passkey/begin", "reauth_passkey_begin", reauth_begin, ["POST"]),
        ("/reauth/passkey/finish", "reauth_passkey_finish", reauth_finish, ["POST"]),
        ("/2fa/verify/passkey/begin", "sign_in_passkey_begin", sign_in_begin, ["POST"]),
        ("/2fa/verify/passkey/finish", "sign_in_passkey_finish", sign_in_finish, ["POST"]),
        ("/stepup-passkeys.js", "passkey_script", script, ["GET"]),
    ]
]
