"""The ready-made views, as a blueprint named ``stepup``.

Re-authentication (password form, OIDC and SAML round trips), two-factor enrolment,
the sign-in code step, recovery codes, removal by the user and by an admin, and the
tenant settings ``PATCH``. Templates live in ``templates/stepup/``; an app overrides
any of them by shipping a template with the same name.
"""

from __future__ import annotations

from typing import Any, Final, NamedTuple

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from markupsafe import Markup
from werkzeug.wrappers import Response as BaseResponse

from ...errors import (
    AlreadyEnrolledError,
    ConfigurationError,
    ManagedByConfigFileError,
    NotEnrolledError,
    PermissionDeniedError,
    StepupError,
    UnknownActionError,
)
from ...redirects import safe_return_path_or_default
from ...subject import Subject
from ..http import Client, client_kind
from ..views import (
    SSO_NOT_CONFIRMED,
    ReauthPage,
    RecoveryCodesPage,
    enrolment_page,
    forget_otp_proof,
    note_otp_proof,
    provider_for,
    reauth_page,
    refusal_status,
    sso_answer,
    take_otp_proof,
    tenant_error_response,
    tenant_request_refusal,
    tenant_response,
    two_factor_message,
)
from ._csrf import FIELD
from ._state import AppState, state
from ._web import request_info, to_response

__all__ = ["build_blueprint"]

#: Posted by the IdP's page in the browser, not by our form: the SAML response's
#: signature and its one-time InResponseTo bound to this session stand in for a token.
_CSRF_EXEMPT: Final = frozenset({"stepup.saml_acs"})


def build_blueprint() -> Blueprint:
    bp = Blueprint("stepup", __name__, template_folder="templates")
    bp.before_request(_check_csrf)
    bp.app_context_processor(_template_globals)
    routes: list[tuple[str, str, Any, list[str]]] = [
        ("/reauth", "reauth", reauth, ["GET"]),
        ("/reauth/password", "reauth_password", reauth_password, ["POST"]),
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
        ("/tenants/<tenant_id>", "tenant", tenant_patch, ["PATCH"]),
    ]
    for rule, endpoint, view, methods in routes:
        bp.add_url_rule(rule, endpoint, view, methods=methods)
    return bp


# shared pieces --------------------------------------------------------------------


def _template_globals() -> dict[str, Any]:
    def csrf_token() -> str:
        return state().csrf.token()

    def csrf_field() -> Markup:
        return Markup('<input type="hidden" name="{}" value="{}">').format(FIELD, csrf_token())

    return {"stepup_csrf_token": csrf_token, "stepup_csrf_field": csrf_field}


def _check_csrf() -> Any:
    if request.method != "POST" or request.endpoint in _CSRF_EXEMPT:
        return None
    token = request.form.get(FIELD) or request.headers.get("X-CSRF-Token")
    if state().csrf.valid(token):
        return None
    return _message(400, "This form has expired. Go back, reload the page and try again.")


def _render(template: str, status: int = 200, **context: Any) -> Any:
    """A page: never cached (it may show a secret, a code or a CSRF token) and never
    framed (a framed password form invites clickjacking), unless the app said otherwise."""
    response = current_app.make_response((render_template(template, **context), status))
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("X-Frame-Options", "DENY")
    return response


def _message(status: int, message: str, *, link: str = "") -> Any:
    return _render("stepup/message.html", status, message=message, link=link)


def _signed_in() -> tuple[AppState, Subject | None]:
    app_state = state()
    return app_state, app_state.subject()


def _page_from(values: Any, subject: Subject, app_state: AppState) -> ReauthPage:
    return reauth_page(app_state.policy, subject, values.get("action", ""), values.get("next"))


def _render_reauth(app_state: AppState, subject: Subject, page: ReauthPage, status: int) -> Any:
    enrolled = not page.totp or app_state.two_factor.is_enrolled(subject.user_id)
    return _render("stepup/reauth.html", status, page=page, needs_enrolment=not enrolled)


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
        return _message(400, "This page was called for an unknown action.")


def _refused_code(app_state: AppState, subject: Subject, page: ReauthPage) -> Any | None:
    """The page again when the second-factor code on the form does not verify."""
    try:
        code = app_state.two_factor.verify(subject.user_id, request.form.get("otp", ""))
    except NotEnrolledError:
        return _render_reauth(app_state, subject, page, 400)
    if code.ok:
        return None
    page = page.with_error(two_factor_message(code))
    return _render_reauth(app_state, subject, page, refusal_status(code.reason))


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
    if not page.password:
        return _render_reauth(app_state, subject, page, 400)
    loader = app_state.hooks.password_hash_loader
    if loader is None:
        raise ConfigurationError("register a password_hash_loader for password re-authentication")
    result = app_state.passwords.verify(
        subject, request.form.get("password", ""), loader(subject.user_id)
    )
    saver = app_state.hooks.password_rehash_saver
    if result.new_hash is not None and saver is not None:
        saver(subject.user_id, result.new_hash)
    if not result.ok:
        page = page.with_error(result.public_message)
        return _render_reauth(app_state, subject, page, refusal_status(result.reason))
    methods = ["pwd"]
    if page.totp:
        refused = _refused_code(app_state, subject, page)
        if refused is not None:
            return refused
        methods.append("otp")
    app_state.reauth.record(subject, methods)
    return _redirect(page.next)


def _sso_start(kind: str, providers: Any) -> Any:
    """Check the form (and the code, when the rule asks for one), then leave for the
    provider; the code's proof waits in the session for the provider's answer."""
    opened = _open_page(request.form)
    if not isinstance(opened, _Opened):
        return opened
    app_state, subject, page = opened
    provider = provider_for(providers, subject)
    if page.sso != kind or provider is None:
        return _message(400, "Single sign-on is not available for this account.")
    forget_otp_proof(session)
    if page.totp:
        refused = _refused_code(app_state, subject, page)
        if refused is not None:
            return refused
        note_otp_proof(session, subject.session_id, app_state.clock())
    try:
        target = provider.start(subject, return_to=page.next, action=page.action)
    except PermissionDeniedError:
        return _message(403, "Your session did not sign in through this provider.")
    except StepupError:
        return _message(503, "Your identity provider cannot be reached right now.")
    return _redirect(getattr(target, "url", target))


def _sso_finish(providers: Any, outcome_of: Any) -> Any:
    app_state, subject = _signed_in()
    if subject is None:
        return app_state.unauthenticated()
    provider = provider_for(providers, subject)
    if provider is None:
        return _message(400, "Single sign-on is not available for this account.")
    outcome = outcome_of(provider, subject)
    proved_code = take_otp_proof(
        session, subject.session_id, app_state.clock(), app_state.login_ttl
    )
    answer = sso_answer(outcome, proved_code)
    if not answer.ok:
        again = url_for("stepup.reauth", next=answer.next)
        return _message(answer.status, SSO_NOT_CONFIRMED, link=again)
    app_state.reauth.record(subject, answer.methods, authenticated_at=answer.authenticated_at)
    return _redirect(answer.next)


def oidc_start() -> Any:
    return _sso_start("oidc", state().oidc)


def oidc_callback() -> Any:
    params = request.args.to_dict()
    return _sso_finish(state().oidc, lambda p, s: p.complete(s, params))


def saml_start() -> Any:
    return _sso_start("saml", state().saml)


def saml_acs() -> Any:
    response, relay = request.form.get("SAMLResponse", ""), request.form.get("RelayState")
    return _sso_finish(state().saml, lambda p, s: p.complete(s, response, relay))


# two-factor authentication ------------------------------------------------------------


def two_factor() -> Any:
    app_state, subject = _signed_in()
    if subject is None:
        return app_state.unauthenticated()
    return _render(
        "stepup/two_factor.html",
        enrolled=app_state.two_factor.is_enrolled(subject.user_id),
        managed_by_file=app_state.two_factor.config_users is not None,
    )


def two_factor_enrol() -> Any:
    app_state, subject = _signed_in()
    if subject is None:
        return app_state.unauthenticated()
    account = subject.user_id
    try:
        enrolment = app_state.two_factor.begin_enrolment(subject.user_id, account)
    except AlreadyEnrolledError:
        flash("Two-factor authentication is already on.", "stepup")
        return _redirect(url_for("stepup.two_factor"))
    except ManagedByConfigFileError:
        return _message(409, "Two-factor authentication is set in the configuration file.")
    tf = app_state.two_factor
    page = enrolment_page(
        enrolment, account=account, issuer=tf.issuer, digits=tf.digits, period=tf.period
    )
    return _render("stepup/two_factor_enrol.html", page=page)


def two_factor_confirm() -> Any:
    app_state, subject = _signed_in()
    if subject is None:
        return app_state.unauthenticated()
    try:
        confirmation = app_state.two_factor.confirm_enrolment(
            subject.user_id, request.form.get("code", "")
        )
    except (NotEnrolledError, AlreadyEnrolledError, ManagedByConfigFileError):
        return _redirect(url_for("stepup.two_factor"))
    if not confirmation.ok:
        message = two_factor_message(confirmation.result)
        return _render(
            "stepup/two_factor_enrol.html",
            refusal_status(confirmation.result.reason),
            page=None,
            error=message,
        )
    codes = RecoveryCodesPage(confirmation.recovery_codes)
    return _render("stepup/recovery_codes.html", page=codes)


def two_factor_verify() -> Any:
    app_state = state()
    pending = app_state.pending_login()
    if pending is None:
        return _message(400, "Your sign-in has expired. Please sign in again.")
    if request.method == "GET":
        return _render("stepup/two_factor_verify.html", error="")
    recovery = request.form.get("recovery_code", "").strip()
    try:
        if recovery:
            result = app_state.two_factor.use_recovery_code(pending.user_id, recovery)
        else:
            result = app_state.two_factor.verify(pending.user_id, request.form.get("code", ""))
    except NotEnrolledError:
        return _message(400, "Your sign-in has expired. Please sign in again.")
    if not result.ok:
        return _render(
            "stepup/two_factor_verify.html",
            refusal_status(result.reason),
            error=two_factor_message(result),
        )
    app_state.complete_login(pending)
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
    return _render("stepup/recovery_codes.html", page=RecoveryCodesPage(codes))


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
        return _message(409, "Two-factor authentication is set in the configuration file.")
    flash("Two-factor authentication is off.", "stepup")
    return _redirect(url_for("stepup.two_factor"))


def admin_remove(user_id: str) -> Any:
    app_state, subject = _signed_in()
    if subject is None:
        return app_state.unauthenticated()
    full_access = app_state.hooks.has_full_access
    if full_access is None or not full_access(subject):
        return _message(403, "Only an administrator with full access may do this.")
    back = safe_return_path_or_default(request.form.get("next"))
    refusal = app_state.guard(app_state.disable_action, None, back)
    if refusal is not None:
        return refusal
    try:
        app_state.two_factor.remove(user_id, actor_id=subject.user_id, actor_has_full_access=True)
    except NotEnrolledError:
        return _message(404, "This user has no two-factor authentication.")
    except ManagedByConfigFileError:
        return _message(409, "Two-factor authentication is set in the configuration file.")
    if client_kind(request_info(request)) is not Client.BROWSER:
        return Response(status=204)
    flash("Two-factor authentication was removed.", "stepup")
    return _redirect(back)


# tenant settings ---------------------------------------------------------------------


def tenant_patch(tenant_id: str) -> Any:
    app_state, subject = _signed_in()
    refusal = tenant_request_refusal(subject is not None, request.content_type or "")
    if refusal is not None:
        return to_response(refusal)
    assert subject is not None  # refused above
    is_admin = app_state.hooks.is_tenant_admin
    try:
        tenant = app_state.tenant_settings.patch(
            tenant_id,
            request.get_data(),
            actor_id=subject.user_id,
            actor_is_tenant_admin=is_admin is not None and is_admin(subject, tenant_id),
        )
    except StepupError as exc:
        refusal = tenant_error_response(exc)
        if refusal is None:
            raise
        return to_response(refusal)
    return to_response(tenant_response(tenant))
