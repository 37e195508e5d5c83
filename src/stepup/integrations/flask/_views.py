"""The ready-made views, as a blueprint named ``stepup``.

Re-authentication (password form, OIDC and SAML round trips), two-factor enrolment,
the sign-in code step, recovery codes, removal by the user and by an admin, and the
tenant settings ``PATCH``. The pages are the shared ones
(``stepup/integrations/templates/stepup/``, see :mod:`stepup.integrations.pages`); an
app overrides any of them by shipping a template with the same name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any, Final, NamedTuple
from urllib.parse import urlencode

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    get_flashed_messages,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.blueprints import BlueprintSetupState
from markupsafe import Markup
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response as BaseResponse
from werkzeug.wsgi import get_input_stream

from ...errors import (
    AlreadyEnrolledError,
    InvalidAccountNameError,
    ManagedByConfigFileError,
    NotEnrolledError,
    PermissionDeniedError,
    StepupError,
    StoreUnavailableError,
    UnknownActionError,
)
from ...policy import TENANT_SETTINGS_UPDATE
from ...redirects import safe_return_path_or_default
from ...subject import Subject
from ..http import (
    RETRY_AFTER,
    Client,
    authentication_required,
    client_kind,
    form_return_path,
    retry_later,
)
from ..pages import (
    EXTENSIONS,
    codes_script_response,
    page_context,
    page_headers,
    stylesheet_response,
)
from ..passkey_endpoint import (
    INTERACTIVE_ONLY,
    csrf_response,
    message_response,
    off_channel,
    off_channel_response,
)
from ..passkey_endpoint import TEXT as PASSKEY_TEXT
from ..resume import (
    DonePage,
    NotResumedPage,
    ResumeClaim,
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
from ..tenant_endpoint import admin_refusal, read_body, stream_chunks
from ..transaction import TransactionExpiredError, confirming_page
from ..views import (
    CANCEL_SIGN_IN,
    ENROLLING,
    ENROLMENT_TTL,
    FORM_MAX_BYTES,
    SAML_FORM_MAX_BYTES,
    TEXT,
    EnrolmentPage,
    MessagePage,
    ReauthPage,
    RecoveryCodesPage,
    TwoFactorPage,
    VerifyPage,
    cancel_path,
    code_refusal,
    enrolment_page,
    form_code,
    note_sso_trip,
    oidc_callback_params,
    password_step,
    posted_value,
    provider_for,
    reauth_page,
    refusal_status,
    report_code_failure,
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
    tenant_decision_response,
    tenant_error_response,
    tenant_method_not_allowed,
    tenant_request_refusal,
    tenant_response,
    two_factor_message,
    wants_cancel,
)
from ._csrf import flask_wtf_of
from ._state import AppState, PendingLogin, state
from ._web import home_path, request_info, sign_in_path, to_response

__all__ = ["build_blueprint"]


#: Posted by the IdP's page in the browser, not by our form: the SAML response's
#: signature and its one-time InResponseTo bound to this session stand in for a token.
#: The tenant resource's 405 (any method but PATCH) changes nothing and reads nothing:
#: it answers before any check, as Django's and Starlette's do.
_CSRF_EXEMPT: Final = frozenset({"stepup.saml_acs", "stepup.tenant_other_methods"})
#: The views that serve a subject on any channel: re-authentication with a password or a
#: provider (the core decides which channels it asks), its status and done pages, the
#: sign-in's second step (nobody is signed in yet), the tenant endpoint (a JSON:API
#: resource, guarded whatever the channel) and the static files. Every other view (the
#: passkey and two-factor pages, their JSON endpoints, re-authentication with a passkey,
#: and any view added later) serves the interactive web channel only: see
#: :func:`_web_channel_only`.
_ANY_CHANNEL: Final = frozenset(
    {
        "stepup.reauth",
        "stepup.reauth_password",
        "stepup.reauth_status",
        "stepup.reauth_done",
        "stepup.reauth_resume",
        "stepup.script",
        "stepup.oidc_start",
        "stepup.oidc_callback",
        "stepup.saml_start",
        "stepup.saml_acs",
        "stepup.two_factor_verify",
        "stepup.sign_in_passkey_begin",
        "stepup.sign_in_passkey_finish",
        "stepup.passkey_script",
        "stepup.codes_script",
        "stepup.tenant",
        "stepup.tenant_other_methods",
        "stepup.stylesheet",
    }
)


Route = tuple[str, str, Any, list[str]]


def build_blueprint(more: Iterable[Route] = ()) -> Blueprint:
    """The views' blueprint, with ``more`` routes (the passkey views, which build on
    this module: the extension passes them, so nothing here imports them back)."""
    bp = Blueprint("stepup", __name__, template_folder="../templates")
    bp.record_once(_add_i18n)
    bp.url_value_preprocessor(_bound_forms)  # before every before_request hook, the app's too
    bp.register_error_handler(RequestEntityTooLarge, _form_too_large)
    bp.before_request(_web_channel_only)  # first: an API key gets its 403, not a CSRF error
    bp.before_request(_check_csrf)
    bp.record_once(_exempt_acs_from_flask_wtf)
    bp.record_once(_read_guarded_forms_first)
    bp.record_once(_answer_outages_with_the_page)
    bp.record_once(_answer_store_outages)
    _answer_flask_wtf_refusals(bp)
    bp.app_context_processor(_template_globals)
    routes: list[Route] = [
        ("/reauth", "reauth", reauth, ["GET"]),
        ("/reauth/password", "reauth_password", reauth_password, ["POST"]),
        ("/reauth/status", "reauth_status", reauth_status, ["GET"]),
        ("/reauth/done", "reauth_done", reauth_done, ["GET"]),
        ("/reauth/resume", "reauth_resume", reauth_resume, ["GET"]),
        ("/stepup-reauth.js", "script", script, ["GET"]),
        ("/stepup-codes.js", "codes_script", codes_script, ["GET"]),
        ("/reauth/oidc/start", "oidc_start", oidc_start, ["POST"]),
        ("/reauth/oidc/callback", "oidc_callback", oidc_callback, ["GET"]),
        ("/reauth/saml/start", "saml_start", saml_start, ["POST"]),
        ("/reauth/saml/acs", "saml_acs", saml_acs, ["POST"]),
        ("/2fa", "two_factor", two_factor, ["GET"]),
        ("/2fa/enrol", "two_factor_enrol", two_factor_enrol, ["POST"]),
        ("/2fa/confirm", "two_factor_confirm", two_factor_confirm, ["POST"]),
        ("/2fa/verify", "two_factor_verify", two_factor_verify, ["GET", "POST"]),
        ("/2fa/recovery-codes", "recovery_codes", recovery_codes, ["POST"]),
        ("/2fa/remove", "two_factor_remove", two_factor_remove, ["POST"]),
        ("/users/<user_id>/2fa/remove", "admin_two_factor_remove", admin_remove, ["POST"]),
        ("/stepup.css", "stylesheet", stylesheet, ["GET"]),
    ]
    for rule, endpoint, view, methods in [*routes, *more]:
        bp.add_url_rule(rule, endpoint, view, methods=methods)
    # The tenant resource answers every other method itself (a JSON:API 405, OPTIONS
    # included), not with Werkzeug's HTML 405 or Flask's automatic OPTIONS.
    for endpoint, view, methods in [
        ("tenant", tenant_patch, ["PATCH"]),
        ("tenant_other_methods", tenant_other_methods, list(_NOT_PATCH)),
    ]:
        bp.add_url_rule(
            "/tenants/<tenant_id>", endpoint, view, methods=methods, provide_automatic_options=False
        )
    return bp


# shared pieces --------------------------------------------------------------------


def _add_i18n(setup: Any) -> None:
    """The pages' ``{% trans %}`` in the app's Jinja environment (the catalog itself
    comes with each page's context, in the request's locale)."""
    for extension in EXTENSIONS:
        setup.app.jinja_env.add_extension(extension)


def stylesheet() -> Any:
    return to_response(stylesheet_response())


def script() -> Any:
    return to_response(script_response())


def codes_script() -> Any:
    return to_response(codes_script_response())


def _codes_page(app_state: AppState, codes: tuple[str, ...]) -> RecoveryCodesPage:
    """The recovery codes just made, headed by the site and the time for their file."""
    return RecoveryCodesPage(codes, app_state.two_factor.issuer, app_state.clock())


def _template_globals() -> dict[str, Any]:
    def csrf_token() -> str:
        return state().csrf.token()

    def csrf_field() -> Markup:
        field = state().csrf.field
        return Markup('<input type="hidden" name="{}" value="{}">').format(field, csrf_token())

    return {"stepup_csrf_token": csrf_token, "stepup_csrf_field": csrf_field}


def _answer_outages_with_the_page(setup: BlueprintSetupState) -> None:
    """The guard's answer to a browser when the store is down: the "try again" page
    (the guard's state has no pages of its own; scripts keep the JSON 503)."""
    setup.app.extensions["stepup"].outage_page = _outage_page


def _outage_page(link: str = "") -> Any:
    """The "try again" page (503) a browser gets when the store is down (``link``: where
    to try again), from a guard or a view."""
    response = _message(503, TEXT["unavailable"], link=link)
    response.headers["Retry-After"] = RETRY_AFTER  # as the JSON 503 says
    return response


def _answer_store_outages(setup: BlueprintSetupState) -> None:
    """A store outage that escapes a view, stepup's or the app's own (its login view
    calling ``begin_two_factor``, a ``require``), is the 503 that says to try again in a
    moment (JSON for a script), never a 500: app-wide, unless the app has a handler of
    its own for the error (registered before ``init_app`` or after: it wins)."""
    handlers = setup.app.error_handler_spec[None][None]
    if StoreUnavailableError not in handlers:
        setup.app.register_error_handler(StoreUnavailableError, _store_unavailable)


def _store_unavailable(error: StoreUnavailableError) -> Any:
    """The outage was logged where it happened (``stepup.store``): the answer only says
    to try again. An app that answers every :class:`StepupError` its own way keeps
    doing so."""
    own = current_app.error_handler_spec[None][None].get(StepupError)
    if own is not None:
        return own(error)
    return _unavailable()


def _read_guarded_forms_first(setup: BlueprintSetupState) -> None:
    """Before every other hook of the app (Flask-WTF's check parses the form), read the
    body of a guarded view's small form POST, so a kept form keeps its fields in the
    order they were sent (see :meth:`AppState.read_guarded_form`)."""

    def read() -> None:
        # Only a POST can carry a form to keep: every other request (most of an app's)
        # pays this one comparison, not the view lookup.
        if request.method == "POST":
            state().read_guarded_form()

    setup.app.before_request_funcs.setdefault(None, []).insert(0, read)


def _exempt_acs_from_flask_wtf(setup: BlueprintSetupState) -> None:
    """The app's Flask-WTF must not check the SAML ACS or the tenant resource's 405
    either (see ``_CSRF_EXEMPT``): exempt them now when ``CSRFProtect`` is already
    registered, else before Flask-WTF's first check (an app-level hook registered now
    runs before one registered later).

    The hook's work is done at the app's first request: Flask refuses new hooks after
    it, so no ``CSRFProtect`` can be registered later. Every later request only reads
    a flag."""
    pending = [True]

    def exempt(app: Any) -> None:
        csrf = flask_wtf_of(app)
        if csrf is not None:
            for view in (saml_acs, tenant_other_methods):
                csrf.exempt(f"{view.__module__}.{view.__name__}")

    def exempt_once() -> None:
        if pending:
            exempt(current_app)
            pending.clear()

    exempt(setup.app)
    setup.app.before_request(exempt_once)


#: The bodies Werkzeug parses into ``request.form`` (a urlencoded one read whole).
_FORM_TYPES: Final = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


def _bound_forms(endpoint: str | None, _values: dict[str, Any] | None) -> None:
    """Cap a form posted to stepup's views before anything reads it: Werkzeug reads a
    urlencoded body whole, however large (``MAX_FORM_MEMORY_SIZE`` bounds multipart
    fields only), unless ``MAX_CONTENT_LENGTH`` is set, and it is unset by default. This
    is the blueprint's URL value preprocessor because Flask runs those before every
    ``before_request`` hook, the app's own too (Flask-WTF's check reads the form there).
    The app's own smaller ``MAX_CONTENT_LENGTH`` stays; its own views are not touched,
    and JSON bodies are read by stepup's own bounded readers. A form over the cap is
    :func:`_form_too_large`."""
    if request.mimetype not in _FORM_TYPES:
        return
    cap = SAML_FORM_MAX_BYTES if endpoint == "stepup.saml_acs" else FORM_MAX_BYTES
    own = request.max_content_length
    if own is None or own > cap:
        _cap_body(cap)


def _cap_body(cap: int) -> None:
    """Read no more than ``cap`` bytes of this request's body: a ``Content-Length`` over
    it, or a chunked body that runs past it, is a ``RequestEntityTooLarge``."""
    try:
        request.max_content_length = cap  # Flask 3.1 and later
    except AttributeError:  # Flask 3.0: read-only; the stream Werkzeug would make, capped
        setattr(request, "stream", get_input_stream(request.environ, max_content_length=cap))  # noqa: B010


def _form_too_large(error: RequestEntityTooLarge) -> Any:
    """A form over :data:`~stepup.integrations.views.FORM_MAX_BYTES` is not one of
    stepup's forms: refused as a form whose CSRF token does not hold (403: JSON for a
    script, the page for a browser), as Starlette refuses it. Any other body over the
    app's own ``MAX_CONTENT_LENGTH`` keeps Werkzeug's 413."""
    if request.mimetype in _FORM_TYPES:
        return _csrf_refused()
    return error


def _posted(name: str) -> object:
    """A field of this form: its one value, ``""`` when absent, and
    :data:`~stepup.integrations.views.REPEATED` (which the core refuses as malformed)
    when it was sent more than once."""
    return posted_value(request.form.getlist(name))


def _web_channel_only() -> Any:
    """A subject on another channel than the interactive web (an API key, a bearer
    token, message injection) gets a 403 that changes nothing from every view not in
    :data:`_ANY_CHANNEL` (see :func:`~stepup.integrations.passkey_endpoint.off_channel`):
    JSON for a script, the message page for a browser."""
    if request.endpoint is None or request.endpoint in _ANY_CHANNEL:
        return None
    if not off_channel(state().subject()):
        return None
    if client_kind(request_info(request)) is not Client.BROWSER:
        return to_response(off_channel_response(state().locale()))
    return _message(403, PASSKEY_TEXT[INTERACTIVE_ONLY])


def _check_csrf() -> Any:
    if request.method != "POST" or request.endpoint in _CSRF_EXEMPT:
        return None
    csrf = state().csrf
    if csrf.valid(csrf.submitted()):
        return None
    return _csrf_refused()


def _csrf_refused() -> Any:
    """A request that failed the CSRF check: a script (it asks for JSON) gets the JSON
    403 ``csrf`` every framework answers; a browser, the message page."""
    if client_kind(request_info(request)) is not Client.BROWSER:
        return to_response(csrf_response(state().locale()))
    return _message(403, TEXT["csrf"])


def _answer_flask_wtf_refusals(bp: Blueprint) -> None:
    """With the app's Flask-WTF, its check refuses first (``CSRFError``, before stepup's
    own): on stepup's routes a script gets the same JSON 403 ``csrf``; a browser gets
    what the app answers without stepup (its own handler for the error, else
    Flask-WTF's 400)."""
    try:
        from flask_wtf.csrf import CSRFError
    except ImportError:  # no Flask-WTF: stepup's own check is the only one
        return

    def answer(error: CSRFError) -> Any:
        if client_kind(request_info(request)) is not Client.BROWSER:
            return to_response(csrf_response(state().locale()))
        find = getattr(current_app, "_find_error_handler", None)
        handler = find(error, []) if find is not None else None  # the app's, not ours
        return handler(error) if handler is not None else error

    bp.register_error_handler(CSRFError, answer)


#: The views the pages link to or post to, by the name the templates use.
_URLS: Final = {
    "stylesheet": "stepup.stylesheet",
    "script": "stepup.script",
    "codes_script": "stepup.codes_script",
    "reauth_password": "stepup.reauth_password",
    "two_factor": "stepup.two_factor",
    "enrol": "stepup.two_factor_enrol",
    "confirm": "stepup.two_factor_confirm",
    "verify": "stepup.two_factor_verify",
    "recovery_codes": "stepup.recovery_codes",
    "remove": "stepup.two_factor_remove",
    "done": "stepup.two_factor",
}


#: The URLs the passkey pages use, by the name the templates use.
PASSKEY_URLS: Final = {
    "passkeys": "stepup.passkeys",
    "passkey_register_begin": "stepup.passkey_register_begin",
    "passkey_register_finish": "stepup.passkey_register_finish",
    "reauth_passkey_begin": "stepup.reauth_passkey_begin",
    "reauth_passkey_finish": "stepup.reauth_passkey_finish",
    "sign_in_passkey_begin": "stepup.sign_in_passkey_begin",
    "sign_in_passkey_finish": "stepup.sign_in_passkey_finish",
    "passkey_script": "stepup.passkey_script",
}


def passkey_urls() -> dict[str, str]:
    found = {name: url_for(endpoint) for name, endpoint in PASSKEY_URLS.items()}
    for name in ("passkey_rename", "passkey_remove"):
        found[name] = url_for(f"stepup.{name}", credential_id="__ID__")
    return found


def device_urls() -> dict[str, str]:
    """The TOTP device views' URLs (``__ID__`` stands for a device id)."""
    found = {name: url_for(f"stepup.{name}") for name in ("device_add", "device_confirm")}
    for name in ("device_rename", "device_remove"):
        found[name] = url_for(f"stepup.{name}", device_id="__ID__")
    return found


def _render(template: str, status: int = 200, **context: Any) -> Any:
    """A page, in the request's locale: never cached (it may show a secret, a code or a
    CSRF token) and never framed (a framed password form invites clickjacking), unless
    the app said otherwise."""
    urls = {name: url_for(endpoint) for name, endpoint in _URLS.items()} | passkey_urls()
    urls |= device_urls()
    page = context.get("page")
    if isinstance(page, ReauthPage) and page.sso:
        urls["sso_start"] = url_for(f"stepup.{page.sso}_start")
    app_state = state()
    values = page_context(
        locale=app_state.locale(),
        app_catalog=app_state.app_catalog,
        urls=urls,
        csrf_field=_template_globals()["stepup_csrf_field"],
        messages=[str(m) for m in get_flashed_messages(category_filter=["stepup"])],
        **context,
    )
    response = current_app.make_response((render_template(template, **values), status))
    for header, value in page_headers(status, context.get("page")).items():
        response.headers.setdefault(header, value)
    return response


def _message(status: int, message: str, *, link: str = "") -> Any:
    page = MessagePage.about(message, link=link, sign_in=sign_in_path(), home=home_path())
    return _render("stepup/message.html", status, page=page)


def _signed_in() -> tuple[AppState, Subject | None]:
    app_state = state()
    return app_state, app_state.subject()


def _page_from(values: Any, subject: Subject, app_state: AppState) -> ReauthPage:
    action = values.get("action", "")
    offer = app_state.reauth.offer(subject, action)  # the strongest way the user has
    home = home_path()  # no next (or an unsafe one), no place to cancel to: the root
    next_value = values.get("next")
    page = reauth_page(app_state.policy, subject, action, next_value, offer=offer, home=home)
    cancel = cancel_path(
        next_path=page.next,
        reauth_path=url_for("stepup.reauth"),
        configured=app_state.cancel_url,
        posted=request.form.get("cancel") if request.method == "POST" else None,
        referer=request.headers.get("Referer", ""),
        origin=request.host_url.rstrip("/"),
        home=home,
    )
    enrolled = not page.totp or app_state.two_factor.is_enrolled(subject.user_id)
    resume = resume_token(values) or ""
    page = replace(page, cancel=cancel, needs_enrolment=not enrolled, resume=resume)
    # Only a transaction this session's guard kept: the digest merely picks one.
    pending = app_state.pending_transaction(subject, action, values.get("transaction"))
    return confirming_page(app_state.policy, page, pending)


def _render_reauth(app_state: AppState, subject: Subject, page: ReauthPage, status: int) -> Any:
    if page.password and not page.account:  # for the password manager (never read back)
        page = replace(page, account=app_state.account_name(subject.user_id))
    return _render("stepup/reauth.html", status, page=page)


class _Opened(NamedTuple):
    app_state: AppState
    subject: Subject
    page: ReauthPage


def _open_page(values: Any) -> _Opened | Any:
    """The signed-in subject and its re-auth page, or the response that ends the view
    (nobody signed in, unknown action)."""
    app_state, subject = _signed_in()
    if subject is None:
        return app_state.unauthenticated()
    try:
        return _Opened(app_state, subject, _page_from(values, subject, app_state))
    except UnknownActionError:
        return _message(400, TEXT["unknown_action"])
    except TransactionExpiredError:
        return _message(400, TEXT["transaction_expired"])
    except StoreUnavailableError:  # what the user has enrolled could not be read
        return _unavailable()


def _refused_code(app_state: AppState, subject: Subject, page: ReauthPage) -> Any | None:
    """The page again when the second-factor code on the form does not verify."""
    refused = code_refusal(
        page,
        lambda: _verify_code(app_state, subject),
        failed=lambda result: report_code_failure(
            app_state.events, app_state.clock, subject.user_id, result
        ),
    )
    if refused is None or refused.page is None:
        return None
    return _render_reauth(app_state, subject, refused.page, refused.status)


def _verify_code(app_state: AppState, subject: Subject) -> Any:
    return app_state.two_factor.verify(subject.user_id, form_code(_posted("code")))


def _redirect(location: str) -> BaseResponse:
    return redirect(location, 303)


# re-authentication ------------------------------------------------------------------


def reauth() -> Any:
    opened = _open_page(request.args)
    if not isinstance(opened, _Opened):
        return opened
    app_state, subject, page = opened
    return _render_reauth(app_state, subject, page, 200)


def reauth_password() -> Any:
    opened = _open_page(request.form)
    if not isinstance(opened, _Opened):
        return opened
    app_state, subject, page = opened
    step = password_step(
        page,
        subject,
        _posted("password"),
        passwords=app_state.passwords,
        load_hash=app_state.hooks.password_hash_loader,
        save_rehash=app_state.hooks.password_rehash_saver,
        verify_code=lambda: _verify_code(app_state, subject),
        missing_loader="register a password_hash_loader for password re-authentication",
    )
    if step.page is not None:
        return _render_reauth(app_state, subject, step.page, step.status)
    try:
        app_state.record_reauth(subject, step.methods, transaction=page.transaction or None)
    except StoreUnavailableError:  # nothing recorded, the kept form still waits
        return _unavailable(f"{url_for('stepup.reauth')}?{retry_query(page)}")
    resumed = app_state.take_resumed(subject, page.resume or None, page.action)
    return _after_reauth(app_state, resumed, page.next)


def _unavailable(link: str = "") -> Any:
    """503 when the store could not answer: a script gets the JSON ``unavailable``, a
    browser the page that says to try again in a moment (``link``: where); both with
    ``Retry-After``."""
    if client_kind(request_info(request)) is not Client.BROWSER:
        answer = message_response(503, "unavailable", state().locale())
        return to_response(retry_later(answer))
    return _outage_page(link)


def _after_reauth(app_state: AppState, resumed: Any, next_path: str) -> Any:
    """Back to ``next``, or the suspended form sent again with a fresh CSRF token, or
    (a form another browser sent) the page that says it was not sent. ``resumed``: the
    claim on the kept form, taken now that the grant is stored."""
    if isinstance(resumed, ResumeClaim):
        resumed = app_state.resume_claimed(resumed)
    answer = resume_answer(resumed, next_path)
    if answer is None:
        return _redirect(next_path)
    if isinstance(answer, NotResumedPage):
        return _render("stepup/not_resumed.html", page=answer)
    page = resume_page(answer, app_state.csrf.field, app_state.csrf.token())
    return _render("stepup/resume.html", page=page)


def reauth_resume() -> Any:
    """Where a SAML re-authentication sends the browser on: the IdP's cross-site POST to
    the ACS carried no SameSite=Lax binding cookie, this same-site request does, so the
    kept form the ACS noted is taken (and checked against it) here."""
    app_state, subject = _signed_in()
    next_path = safe_return_path_or_default(request.args.get("next"), home_path())
    if subject is None:
        return app_state.unauthenticated()
    noted = take_resume_after_sso(session, subject.session_id, app_state.clock())
    if noted is None:
        return _redirect(next_path)
    resumed = app_state.take_resumed(subject, *noted)
    return _after_reauth(app_state, resumed, next_path)


def reauth_status() -> Any:
    """Does ``action`` need a re-authentication now, and how? Nothing is performed.
    Nobody signed in: 401 before the action is looked at (the answer tells nobody which
    actions the policy knows)."""
    app_state, subject = _signed_in()
    info = app_state.answer_info()  # every answer is JSON: titled as the pages read
    if subject is None:
        return to_response(authentication_required(info))
    action = status_action(request.args.getlist("action"))
    if action is None:
        return to_response(repeated_action_response())
    try:
        if action and app_state.policy.rule_for(action).bind_transaction:
            return to_response(transaction_bound_response(action))
        decision = app_state.peek(action)  # a look: it renews no sliding window
    except UnknownActionError:
        return to_response(unknown_action_response(action))
    answer = status_response(
        decision,
        info,
        reauth_url=url_for("stepup.reauth"),
        done_path=url_for("stepup.reauth_done"),
        action=action,
    )
    return to_response(answer)


def reauth_done() -> Any:
    """Where the helper's re-auth window lands: tells its opener, hands over the token."""
    app_state, subject = _signed_in()
    if subject is None:
        return app_state.unauthenticated()
    return _render("stepup/reauth_done.html", page=DonePage(app_state.csrf.token()))


def _sso_start(kind: str, providers: Any) -> Any:
    """Check the form (and the code, when the rule asks for one), then leave for the
    provider; that the code was proved rides with the trip's own single-use state and
    comes back on the outcome of that very trip only."""
    opened = _open_page(request.form)
    if not isinstance(opened, _Opened):
        return opened
    app_state, subject, page = opened
    provider = provider_for(providers, subject)
    if page.sso != kind or provider is None:
        return _message(400, TEXT["sso_unavailable"])
    if page.totp:
        refused = _refused_code(app_state, subject, page)
        if refused is not None:
            return refused
    # The level the rule needs: the provider is asked for it (acr_values, or a
    # RequestedAuthnContext) and the adapter refuses an answer below it.
    # The transaction, the suspended form and the code's proof ride with the trip's own
    # state, handed back on its outcome (two trips in two tabs never swap theirs, and
    # no other answer, a forged one included, can use them up).
    extra = (
        sso_level_request(app_state.policy, page, kind)
        | sso_transaction_request(page)
        | sso_resume_request(page)
        | sso_otp_request(page.totp)  # the code was checked above
    )
    try:
        target = provider.start(subject, return_to=page.next, action=page.action, **extra)
    except PermissionDeniedError:
        return _message(403, TEXT["sso_other_provider"])
    except StepupError:
        return _message(503, TEXT["sso_unreachable"])
    note_sso_trip(session, subject.session_id, kind, app_state.clock())
    return _redirect(getattr(target, "url", target))


def _sso_finish(providers: Any, outcome_of: Any, *, cross_site: bool = False) -> Any:
    """The provider's answer; ``cross_site``: it came as another site's POST (SAML's
    ACS), without the browser's SameSite=Lax binding cookie, so a kept form is left for
    :func:`reauth_resume` to take."""
    app_state, subject = _signed_in()
    if subject is None:
        return app_state.unauthenticated()
    provider = provider_for(providers, subject)
    if provider is None:
        return _message(400, TEXT["sso_unavailable"])
    outcome = outcome_of(provider, subject)
    trip_began = take_sso_trip(
        session, subject.session_id, outcome.method, app_state.clock(), app_state.login_ttl
    )
    action = str(getattr(outcome, "action", "") or "")
    # What the session still keeps of the transaction the trip confirms: sso_answer
    # grants its single-use proof, or refuses when it no longer waits.
    kept = app_state.pending_transaction(subject, action, sso_transaction(outcome))
    proved = sso_otp_proved(outcome)
    answer = sso_answer(outcome, proved, app_state.policy, home=home_path(), kept=kept)
    # Where to try again: after a refusal, and after a store failure.
    again = f"{url_for('stepup.reauth')}?{urlencode(sso_retry_query(answer.next, outcome))}"
    if not answer.ok:
        report_sso_refusal(
            app_state.events,
            subject.user_id,
            outcome,
            app_state.clock(),
            trip_began=trip_began,
            reason=answer.reason,
        )
        return _message(answer.status, answer.message, link=again if answer.retry else "")
    try:
        renewed, _ = app_state.record_reauth(
            subject,
            answer.methods,
            answer.authenticated_at,
            level=answer.level,
            transaction=answer.transaction,
        )
    except StoreUnavailableError:  # nothing recorded, the kept form still waits
        return _unavailable(again)
    token = sso_resume(outcome)
    resumed = None if cross_site else app_state.take_resumed(subject, token, action)
    if cross_site and token is not None:
        note_resume_after_sso(session, renewed.session_id, token, action, app_state.clock())
        query = urlencode({"next": answer.next})
        return _redirect(f"{url_for('stepup.reauth_resume')}?{query}")
    return _after_reauth(app_state, resumed, answer.next)


def oidc_start() -> Any:
    return _sso_start("oidc", state().oidc)


def oidc_callback() -> Any:
    params = oidc_callback_params(request.args.items(multi=True))
    return _sso_finish(state().oidc, lambda p, s: p.complete(s, params))


def saml_start() -> Any:
    return _sso_start("saml", state().saml)


def saml_acs() -> Any:
    try:
        response, relay = request.form.get("SAMLResponse", ""), request.form.get("RelayState")
    except RequestEntityTooLarge:
        # No SAMLResponse: the same page as any other unreadable answer (as in Django and
        # Starlette), not a 413.
        response, relay = "", None
    return _sso_finish(state().saml, lambda p, s: p.complete(s, response, relay), cross_site=True)


# two-factor authentication ------------------------------------------------------------


def two_factor() -> Any:
    app_state, subject = _signed_in()
    if subject is None:
        return app_state.unauthenticated()
    return two_factor_page(app_state, subject.user_id)


def two_factor_page(app_state: AppState, user_id: str, error: str = "", status: int = 200) -> Any:
    """The two-factor settings page: on with the user's devices, off, or set in the file."""
    tf = app_state.two_factor
    if tf.config_users is not None:
        page = TwoFactorPage(enrolled=tf.is_enrolled(user_id), managed_by_file=True)
    else:  # the devices say whether it is on, and which apps it is on
        page = TwoFactorPage.of(tf.devices(user_id), error=error)
    return _render("stepup/two_factor.html", status, page=page)


def enrolling() -> str:
    """The device id this session began enrolling, or ``""``, which matches no device."""
    kept = session.get(ENROLLING)
    return kept if isinstance(kept, str) else ""


def two_factor_enrol() -> Any:
    app_state, subject = _signed_in()
    if subject is None:
        return app_state.unauthenticated()
    tf = app_state.two_factor
    try:
        # The enrolment this session began a moment ago, if any: its secret may be on
        # the phone already. Another session's is not shown: it begins a new one.
        account = app_state.account_name(subject.user_id)
        enrolment = tf.pending_enrolment(
            subject.user_id, account, max_age=ENROLMENT_TTL, device_id=enrolling()
        )
        if enrolment is None:
            enrolment = tf.begin_enrolment(subject.user_id, account)
            session[ENROLLING] = enrolment.device_id
    except AlreadyEnrolledError:
        flash(TEXT["already_on"], "stepup")
        return _redirect(url_for("stepup.two_factor"))
    except ManagedByConfigFileError:
        return _message(409, TEXT["in_config_file"])
    except InvalidAccountNameError:  # the app's account_name: nothing was stored
        return _message(400, TEXT["account_name"], link=url_for("stepup.two_factor"))
    return _render(
        "stepup/two_factor_enrol.html", page=_enrolment_page(app_state, enrolment, account)
    )


def _enrolment_page(app_state: AppState, enrolment: Any, account: str) -> EnrolmentPage:
    return enrolment_page(enrolment, account=account, issuer=app_state.two_factor.issuer)


def two_factor_confirm() -> Any:
    app_state, subject = _signed_in()
    if subject is None:
        return app_state.unauthenticated()
    try:
        confirmation = app_state.two_factor.confirm_enrolment(
            subject.user_id, form_code(_posted("code"))
        )
    except NotEnrolledError:  # none pending (expired, never begun): the page says so
        return _message(400, TEXT["enrolment_expired"], link=url_for("stepup.two_factor"))
    except (AlreadyEnrolledError, ManagedByConfigFileError):
        return _redirect(url_for("stepup.two_factor"))
    if not confirmation.ok:
        # The same QR code and key again, with the error: the phone may have them already.
        tf = app_state.two_factor
        account = app_state.account_name(subject.user_id)
        try:
            pending = tf.pending_enrolment(
                subject.user_id, account, max_age=ENROLMENT_TTL, device_id=enrolling()
            )
        except InvalidAccountNameError:  # the app's account_name no longer makes a Key URI
            return _message(400, TEXT["account_name"], link=url_for("stepup.two_factor"))
        if pending is None:
            return _message(400, TEXT["enrolment_expired"], link=url_for("stepup.two_factor"))
        page = _enrolment_page(app_state, pending, account).with_error(
            two_factor_message(confirmation.result)
        )
        status = refusal_status(confirmation.result.reason)
        return _render("stepup/two_factor_enrol.html", status, page=page)
    session.pop(ENROLLING, None)
    codes = _codes_page(app_state, confirmation.recovery_codes)
    return _render("stepup/recovery_codes.html", page=codes)


def verify_page(
    app_state: AppState, pending: PendingLogin, error: Any = "", status: int = 200
) -> Any:
    """The sign-in's second step, offering what the user has (a code, a passkey, a
    recovery code), with the error of the last try."""
    try:
        factors = app_state.second_factors(pending.user_id)
    except StoreUnavailableError:  # what the user has could not be read: fail closed
        return _unavailable()
    return _render("stepup/two_factor_verify.html", status, page=VerifyPage.of(factors, error))


def finish_login(app_state: AppState, pending: PendingLogin, proved: tuple[str, ...]) -> bool:
    """Sign the user in as they signed in (a password, OIDC or SAML); with the policy's
    sign_in_counts, the sign-in is the first re-authentication, with what the login and
    the second step ``proved`` (see :meth:`AppState.complete_login`). ``False``: the
    waiting sign-in was used already (or expired): nobody signed in."""
    return app_state.complete_login(pending, proved)


def two_factor_verify() -> Any:
    app_state = state()
    pending = app_state.pending_login()
    if pending is None:
        return _message(400, TEXT["sign_in_expired"])
    if request.method == "GET":
        return verify_page(app_state, pending)
    if wants_cancel(request.form.getlist(CANCEL_SIGN_IN)):
        # "Sign in as someone else": the waiting sign-in is spent, as at sign-out, so
        # no copy of this session can finish it; nobody is signed in.
        app_state.drop_waiting_sign_in()
        return _redirect(sign_in_path())
    recovery = form_code(_posted("recovery_code"))
    try:
        if recovery:
            result = app_state.two_factor.use_recovery_code(pending.user_id, recovery)
        else:
            code = form_code(_posted("code"))
            result = app_state.two_factor.verify(pending.user_id, code)
    except NotEnrolledError:
        return _message(400, TEXT["sign_in_expired"])
    except ManagedByConfigFileError:  # the file holds no recovery codes
        return verify_page(app_state, pending, TEXT["no_recovery_codes"], 400)
    if not result.ok:
        status = refusal_status(result.reason)
        return verify_page(
            app_state, pending, two_factor_message(result, recovery=bool(recovery)), status
        )
    # What the app's login proved, plus the code (a recovery code proves no second factor).
    proved = pending.proved if recovery else (*pending.proved, "otp")
    if not finish_login(app_state, pending, proved):
        return _message(400, TEXT["sign_in_expired"])
    return _redirect(pending.next)


def recovery_codes() -> Any:
    app_state = state()
    refusal = app_state.guard(app_state.recovery_action, None, url_for("stepup.two_factor"))
    if refusal is not None:
        return refusal
    subject = app_state.subject()
    assert subject is not None  # the guard let a signed-in user through
    try:
        codes = app_state.two_factor.regenerate_recovery_codes(subject.user_id)
    except NotEnrolledError:
        return _redirect(url_for("stepup.two_factor"))
    except ManagedByConfigFileError:
        return _message(409, TEXT["in_config_file"])
    except StoreUnavailableError:  # nothing changed: fail closed, and say so
        return _unavailable()
    return _render("stepup/recovery_codes.html", page=_codes_page(app_state, codes))


def two_factor_remove() -> Any:
    app_state = state()
    refusal = app_state.guard(app_state.disable_action, None, url_for("stepup.two_factor"))
    if refusal is not None:
        return refusal
    subject = app_state.subject()
    assert subject is not None
    try:
        app_state.two_factor.remove(subject.user_id, actor_id=subject.user_id)
    except NotEnrolledError:
        pass
    except ManagedByConfigFileError:
        return _message(409, TEXT["in_config_file"])
    except StoreUnavailableError:
        return _unavailable()
    flash(TEXT["turned_off"], "stepup")
    return _redirect(url_for("stepup.two_factor"))


def admin_remove(user_id: str) -> Any:
    app_state, subject = _signed_in()
    if subject is None:
        return app_state.unauthenticated()
    if not app_state.has_full_access(subject, user_id):
        return _message(403, TEXT["admin_only"])
    back = safe_return_path_or_default(request.form.get("next"), home_path())
    refusal = app_state.guard(app_state.disable_action, None, back)
    if refusal is not None:
        return refusal
    try:
        app_state.two_factor.remove(user_id, actor_id=subject.user_id, actor_has_full_access=True)
    except NotEnrolledError:
        return _message(404, TEXT["user_not_enrolled"])
    except ManagedByConfigFileError:
        return _message(409, TEXT["in_config_file"])
    except StoreUnavailableError:
        return _unavailable()
    if client_kind(request_info(request)) is not Client.BROWSER:
        return Response(status=204)
    flash(TEXT["removed"], "stepup")
    return _redirect(back)


# tenant settings ---------------------------------------------------------------------


#: The methods the tenant resource answers with its 405: every one of RFC 9110. Flask
#: routes only the methods a rule names, so an extension method (PROPFIND...) still gets
#: Werkzeug's 405.
_NOT_PATCH: Final = ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "CONNECT")


def tenant_other_methods(tenant_id: str) -> Any:
    """405 JSON:API ``method_not_allowed`` with ``Allow: PATCH``."""
    return to_response(tenant_method_not_allowed(state().locale()))


def tenant_patch(tenant_id: str) -> Any:
    """The seed's JSON:API ``PATCH``. Who may ask is settled before a byte of the body is
    read: signed in (401), a JSON body (415), an acceptable ``Accept`` (406), no query
    parameter (400), a tenant admin (403), and a fresh
    re-authentication for ``tenant.settings.update`` whatever the flag says (the guarded
    JSON endpoints' 401/403/503 as a JSON:API document, see
    :func:`~stepup.integrations.views.tenant_decision_response`; the app's
    ``response_handler`` still replaces it). Then the body is read up to the limit and
    parsed by the core (400/422, nothing changed)."""
    app_state, subject = _signed_in()
    # JSON:API titles in the pages' locale (the app's hook, then Accept-Language).
    locale = app_state.locale()
    refusal = tenant_request_refusal(
        subject is not None,
        request.content_type or "",
        locale,
        request.headers.get("Accept"),
        request.args.keys(),
    )
    if refusal is not None:
        return to_response(refusal)
    assert subject is not None  # refused above
    is_admin = app_state.is_tenant_admin(subject, tenant_id)
    refusal = admin_refusal(is_admin, locale)
    if refusal is not None:
        return to_response(refusal)
    decision = app_state.reauth.check(subject, TENANT_SETTINGS_UPDATE, tenant_id)
    if not decision.ok:
        handler = app_state.hooks.response_handler  # the app's answer still wins
        custom = handler(decision, request) if handler is not None else None
        if custom is not None:
            return make_response(custom)
        # Back to the page the request came from (the tenant page) after re-authenticating.
        referer = request.referrer or ""
        back = form_return_path(
            request.method, referer, None, request, origin=request.host_url, home=home_path()
        )
        info = app_state.answer_info(back)
        refused = tenant_decision_response(decision, info, reauth_url=url_for("stepup.reauth"))
        assert refused is not None  # the decision was not ok
        return to_response(refused)
    try:
        body = read_body(stream_chunks(request.stream.read), request.headers.get("Content-Length"))
        tenant = app_state.tenant_settings.patch(
            tenant_id, body, actor_id=subject.user_id, actor_is_tenant_admin=is_admin
        )
    except StepupError as exc:
        refusal = tenant_error_response(exc, locale)
        if refusal is None:
            raise
        return to_response(refusal)
    return to_response(tenant_response(tenant))
