"""The ready-made views (include ``stepup.integrations.django.urls``).

Re-authentication (password form, OIDC and SAML round trips), two-factor enrolment,
the sign-in code step, recovery codes, removal by the user and by an admin, and the
tenant settings ``PATCH``. Forms are protected by Django's CSRF. The pages are the
shared Jinja2 templates (see :mod:`stepup.integrations.django._pages`); a project
overrides any of them with a file of the same name in its template directories.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from functools import wraps
from typing import Any, Final, TypeAlias, cast
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import (
    RequestDataTooBig,
    SuspiciousMultipartForm,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.http.multipartparser import MultiPartParserError
from django.middleware.csrf import CsrfViewMiddleware
from django.utils.decorators import decorator_from_middleware
from django.utils.log import log_response
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST, require_safe

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
from ...i18n import Message
from ...policy import TENANT_SETTINGS_UPDATE
from ...redirects import safe_return_path_or_default
from ...subject import Subject
from ..http import RETRY_AFTER, Client, authentication_required, client_kind, form_return_path
from ..pages import codes_script_response, stylesheet_response
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
from ._pages import render_page
from ._request import CSRF_FIELD, RequestStepup, answer_locale, outage_response, stepup_for
from ._session import PendingSignIn, drop_waiting_sign_in
from ._web import home_path, request_info, sign_in_path, to_response

__all__ = [
    "admin_two_factor_remove",
    "oidc_callback",
    "oidc_start",
    "reauth",
    "reauth_done",
    "reauth_password",
    "reauth_resume",
    "reauth_status",
    "recovery_codes",
    "saml_acs",
    "saml_metadata",
    "saml_start",
    "script",
    "stylesheet",
    "tenant",
    "two_factor",
    "two_factor_confirm",
    "two_factor_enrol",
    "two_factor_remove",
    "two_factor_verify",
]

View: TypeAlias = Callable[..., HttpResponse]


# shared pieces -------------------------------------------------------------------------


_render = render_page


def _message(request: HttpRequest, status: int, message: str, *, link: str = "") -> HttpResponse:
    page = MessagePage.about(message, link=link, sign_in=sign_in_path(), home=home_path())
    return _render(request, "stepup/message.html", status, page=page)


def outage_page(request: HttpRequest, link: str = "") -> HttpResponse:
    """The "try again" page (503) a browser gets when the store is down (``link``: where
    to try again), from a guard or a view."""
    response = _message(request, 503, TEXT["unavailable"], link=link)
    response["Retry-After"] = RETRY_AFTER  # as the JSON 503 says
    return response


def _stylesheet(request: HttpRequest) -> HttpResponse:
    return to_response(stylesheet_response())


def _redirect(location: str) -> HttpResponse:
    return HttpResponseRedirect(location, status=303)


def _page(
    request: HttpRequest, bound: RequestStepup, subject: Subject, values: QueryDict
) -> ReauthPage:
    action = values.get("action", "")
    offer = bound.reauth.offer(subject, action)  # the strongest way the user has
    home = home_path()  # no next (or an unsafe one), no place to cancel to: the root
    page = reauth_page(bound.policy, subject, action, values.get("next"), offer=offer, home=home)
    cancel = cancel_path(
        next_path=page.next,
        reauth_path=bound.url("reauth"),
        configured=bound.services.cancel_url,
        posted=request.POST.get("cancel") if request.method == "POST" else None,
        referer=request.headers.get("Referer", ""),
        origin=f"{request.scheme}://{request.get_host()}",
        home=home,
    )
    enrolled = not page.totp or bound.two_factor.is_enrolled(subject.user_id)
    resume = resume_token(values) or ""
    page = replace(page, cancel=cancel, needs_enrolment=not enrolled, resume=resume)
    # Only a transaction this session's guard kept: the digest merely picks one.
    pending = bound.pending_transaction(subject, action, values.get("transaction"))
    return confirming_page(bound.policy, page, pending)


def _render_reauth(
    request: HttpRequest, bound: RequestStepup, subject: Subject, page: ReauthPage, status: int
) -> HttpResponse:
    if page.password and not page.account:  # for the password manager (never read back)
        page = replace(page, account=_account_name(request, subject))
    return _render(request, "stepup/reauth.html", status, page=page)


def _open_page(
    request: HttpRequest, values: QueryDict
) -> tuple[RequestStepup, Subject, ReauthPage] | HttpResponse:
    """The signed-in subject and its re-auth page, or the response that ends the view
    (nobody signed in, unknown action)."""
    bound = stepup_for(request)
    subject = bound.subject
    if subject is None:
        return stepup_for(request).sign_in_response()
    try:
        return bound, subject, _page(request, bound, subject, values)
    except UnknownActionError:
        return _message(request, 400, TEXT["unknown_action"])
    except TransactionExpiredError:
        return _message(request, 400, TEXT["transaction_expired"])
    except StoreUnavailableError:  # what the user has enrolled could not be read
        return outage_response(request)


def _refused_code(
    request: HttpRequest, bound: RequestStepup, subject: Subject, page: ReauthPage
) -> HttpResponse | None:
    """The page again when the second-factor code on the form does not verify."""
    services = bound.services
    refused = code_refusal(
        page,
        lambda: _verify_code(request, bound, subject),
        failed=lambda result: report_code_failure(
            services.events, services.clock, subject.user_id, result
        ),
    )
    if refused is None or refused.page is None:
        return None
    return _render_reauth(request, bound, subject, refused.page, refused.status)


def _posted(request: HttpRequest, name: str) -> object:
    """A field of this form: its one value, ``""`` when absent, and
    :data:`~stepup.integrations.views.REPEATED` (which the core refuses as malformed)
    when it was sent more than once (``request.POST.get`` would read the last)."""
    return posted_value(request.POST.getlist(name))


def _verify_code(request: HttpRequest, bound: RequestStepup, subject: Subject) -> Any:
    return bound.two_factor.verify(subject.user_id, form_code(_posted(request, "code")))


def _commit_as_they_go(view: View) -> View:
    """Run in autocommit even with ``ATOMIC_REQUESTS``: a throttle charge must stay
    counted whatever happens later in the request (each store operation is its own
    transaction), so no error after it can roll it back."""
    for alias in settings.DATABASES:
        view = cast(View, transaction.non_atomic_requests(using=alias)(view))
    return view


def _web_only(view: View) -> View:
    """The interactive web channel only: a subject on another (an API key, a bearer
    token, message injection) gets a 403 that changes nothing (see
    :func:`~stepup.integrations.passkey_endpoint.off_channel`), JSON for a script, the
    message page for a browser; before the CSRF check, so it is what such a client
    reads."""

    @wraps(view)
    def answer(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not off_channel(stepup_for(request).subject):
            return view(request, *args, **kwargs)
        if client_kind(request_info(request)) is not Client.BROWSER:
            return to_response(off_channel_response(stepup_for(request).locale()))
        return _message(request, 403, PASSKEY_TEXT[INTERACTIVE_ONLY])

    return answer


class _CsrfCheck(CsrfViewMiddleware):  # type: ignore[misc]
    """Django's own CSRF check (origin, referer, token: the middleware's, unchanged),
    whose refusal is the answer every framework gives on stepup's views: the JSON 403
    ``csrf`` for a request that asks for JSON, the translated 403 message page for a
    browser (not the project's ``CSRF_FAILURE_VIEW``, so the page reads the same in
    Flask and Starlette). Logged as Django logs its own refusals."""

    def _reject(self, request: HttpRequest, reason: str) -> HttpResponse:
        if client_kind(request_info(request)) is Client.BROWSER:
            response = _message(request, 403, TEXT["csrf"])
        else:
            response = to_response(csrf_response(answer_locale(request)))
        log_response(
            "Forbidden (%s): %s", reason, request.path, response=response, request=request,
            logger=_CSRF_LOGGER,
        )  # fmt: skip
        return response


_CSRF_LOGGER = logging.getLogger("django.security.csrf")  # where Django logs its refusals


def _csrf_checked(view: View) -> View:
    """:func:`~django.views.decorators.csrf.csrf_protect` answering scripts in JSON.
    The project's ``CsrfViewMiddleware`` would refuse first (its page, before the view
    runs), so the view is ``csrf_exempt`` for the middleware and runs the same check
    itself: one check, Django's, whether the middleware is installed or not."""
    return cast(View, csrf_exempt(decorator_from_middleware(_CsrfCheck)(view)))


def _form_post(view: View, *, any_channel: bool = False) -> View:
    """POST only, with Django's CSRF check even when the middleware is missing (a script
    that fails it gets JSON, see :func:`_csrf_checked`); the interactive web channel
    only (:func:`_web_only`) unless ``any_channel``, so a view added later is closed to
    API keys until it says otherwise."""
    checked = _csrf_checked(view)
    if not any_channel:
        checked = _web_only(checked)
    return _commit_as_they_go(cast(View, require_POST(_secrets_hidden(checked))))


#: The form fields that hold a secret: Django's error reports (mailed to ADMINS, the
#: DEBUG page, error trackers reading them) show them as stars, as for its LoginView.
SECRET_FIELDS: Final = ("password", "code", "recovery_code")


def _secrets_hidden(view: View) -> View:
    """``view`` with :func:`~django.views.decorators.debug.sensitive_post_parameters`
    for :data:`SECRET_FIELDS`: a 500 anywhere on the way (the app's middleware, a
    ``user_logged_in`` receiver) never mails a password, a code or a recovery code."""
    return cast(View, sensitive_post_parameters(*SECRET_FIELDS)(view))


def _get(view: View, *, any_channel: bool = False) -> View:
    """GET, and HEAD (RFC 9110 section 9.1: a server that answers GET answers HEAD, as
    Flask and Starlette do); the interactive web channel only unless ``any_channel``
    (see :func:`_form_post`)."""
    return _commit_as_they_go(cast(View, require_safe(view if any_channel else _web_only(view))))


# re-authentication ---------------------------------------------------------------------


def _reauth(request: HttpRequest) -> HttpResponse:
    opened = _open_page(request, request.GET)
    if isinstance(opened, HttpResponse):
        return opened
    bound, subject, page = opened
    return _render_reauth(request, bound, subject, page, 200)


def _reauth_password(request: HttpRequest) -> HttpResponse:
    opened = _open_page(request, request.POST)
    if isinstance(opened, HttpResponse):
        return opened
    bound, subject, page = opened
    hooks = bound.services.hooks
    step = password_step(
        page,
        subject,
        _posted(request, "password"),
        passwords=bound.passwords,
        load_hash=hooks.password_hash_loader,
        save_rehash=hooks.password_rehash_saver,
        verify_code=lambda: _verify_code(request, bound, subject),
        missing_loader="set STEPUP['PASSWORD_HASH_LOADER'] for password re-auth",
    )
    if step.page is not None:
        return _render_reauth(request, bound, subject, step.page, step.status)
    try:
        bound.record_reauth(subject, step.methods, transaction=page.transaction or None)
    except StoreUnavailableError:  # nothing recorded, the kept form still waits
        return outage_response(request, f"{bound.url('reauth')}?{retry_query(page)}")
    resumed = bound.take_resumed(subject, page.resume or None, page.action)
    return _after_reauth(request, resumed, page.next)


def _after_reauth(request: HttpRequest, resumed: Any, next_path: str) -> HttpResponse:
    """Back to ``next``, or the suspended form sent again with a fresh CSRF token (the
    one ``record_reauth`` rotated to), so Django's CSRF check runs on the replay, or (a
    form another browser sent) the page that says it was not sent. ``resumed``: the
    claim on the kept form, taken now that the grant is stored."""
    if isinstance(resumed, ResumeClaim):
        resumed = stepup_for(request).resume_claimed(resumed)
    answer = resume_answer(resumed, next_path)
    if answer is None:
        return _redirect(next_path)
    if isinstance(answer, NotResumedPage):
        return _render(request, "stepup/not_resumed.html", page=answer)
    from django.middleware.csrf import get_token

    page = resume_page(answer, CSRF_FIELD, get_token(request))
    return _render(request, "stepup/resume.html", page=page)


def _reauth_resume(request: HttpRequest) -> HttpResponse:
    """Where a SAML re-authentication sends the browser on: the IdP's cross-site POST to
    the ACS carried no SameSite=Lax binding cookie, this same-site request does, so the
    kept form the ACS noted is taken (and checked against it) here."""
    bound = stepup_for(request)
    subject = bound.subject
    if subject is None:
        return stepup_for(request).sign_in_response()
    next_path = safe_return_path_or_default(request.GET.get("next"), home_path())
    now = bound.services.clock()
    noted = take_resume_after_sso(request.session, subject.session_id, now)
    if noted is None:
        return _redirect(next_path)
    resumed = bound.take_resumed(subject, *noted)
    return _after_reauth(request, resumed, next_path)


def _reauth_status(request: HttpRequest) -> HttpResponse:
    """Does ``action`` need a re-authentication now, and how? Nothing is performed.
    Nobody signed in: 401 before the action is looked at (the answer tells nobody which
    actions the policy knows)."""
    bound = stepup_for(request)
    info = bound.answer_info()  # every answer is JSON: titled as the pages read
    if bound.subject is None:
        return to_response(authentication_required(info))
    action = status_action(request.GET.getlist("action"))
    if action is None:
        return to_response(repeated_action_response())
    try:
        if action and bound.policy.rule_for(action).bind_transaction:
            return to_response(transaction_bound_response(action))
        decision = bound.peek(action)  # a look: it renews no sliding window
    except UnknownActionError:
        return to_response(unknown_action_response(action))
    answer = status_response(
        decision,
        info,
        reauth_url=bound.url("reauth"),
        done_path=bound.url("reauth_done"),
        action=action,
    )
    return to_response(answer)


def _reauth_done(request: HttpRequest) -> HttpResponse:
    """Where the helper's re-auth window lands: tells its opener, hands over the token."""
    from django.middleware.csrf import get_token

    if stepup_for(request).subject is None:
        return stepup_for(request).sign_in_response()
    return _render(request, "stepup/reauth_done.html", page=DonePage(get_token(request)))


def _script(request: HttpRequest) -> HttpResponse:
    return to_response(script_response())


def _codes_script(request: HttpRequest) -> HttpResponse:
    """The recovery codes page's Copy and Print (``stepup-codes.js``)."""
    return to_response(codes_script_response())


def _sso_start(request: HttpRequest, kind: str, providers: dict[str, Any]) -> HttpResponse:
    """Check the form (and the code, when the rule asks for one), then leave for the
    provider; that the code was proved rides with the trip's own single-use state and
    comes back on the outcome of that very trip only."""
    opened = _open_page(request, request.POST)
    if isinstance(opened, HttpResponse):
        return opened
    bound, subject, page = opened
    provider = provider_for(providers, subject)
    if page.sso != kind or provider is None:
        return _message(request, 400, TEXT["sso_unavailable"])
    if page.totp:
        refused = _refused_code(request, bound, subject, page)
        if refused is not None:
            return refused
    # The level the rule needs: the provider is asked for it (acr_values, or a
    # RequestedAuthnContext) and the adapter refuses an answer below it.
    # The transaction, the suspended form and the code's proof ride with the trip's own
    # state, handed back on its outcome (two trips in two tabs never swap theirs, and
    # no other answer, a forged one included, can use them up).
    extra = (
        sso_level_request(bound.policy, page, kind)
        | sso_transaction_request(page)
        | sso_resume_request(page)
        | sso_otp_request(page.totp)  # the code was checked above
    )
    try:
        target = provider.start(subject, return_to=page.next, action=page.action, **extra)
    except PermissionDeniedError:
        return _message(request, 403, TEXT["sso_other_provider"])
    except StepupError:
        return _message(request, 503, TEXT["sso_unreachable"])
    note_sso_trip(request.session, subject.session_id, kind, bound.services.clock())
    return _redirect(str(getattr(target, "url", target)))


def _sso_finish(
    request: HttpRequest,
    providers: dict[str, Any],
    outcome_of: Callable[[Any, Subject], Any],
    *,
    cross_site: bool = False,
) -> HttpResponse:
    """The provider's answer; ``cross_site``: it came as another site's POST (SAML's
    ACS), without the browser's SameSite=Lax binding cookie, so a kept form is left for
    the resume view to take."""
    bound = stepup_for(request)
    subject = bound.subject
    if subject is None:
        return stepup_for(request).sign_in_response()
    provider = provider_for(providers, subject)
    if provider is None:
        return _message(request, 400, TEXT["sso_unavailable"])
    outcome = outcome_of(provider, subject)
    services = bound.services
    trip_began = take_sso_trip(
        request.session, subject.session_id, outcome.method, services.clock(), services.sign_in_ttl
    )
    action = str(getattr(outcome, "action", "") or "")
    # What the session still keeps of the transaction the trip confirms: sso_answer
    # grants its single-use proof, or refuses when it no longer waits.
    kept = bound.pending_transaction(subject, action, sso_transaction(outcome))
    proved = sso_otp_proved(outcome)
    answer = sso_answer(outcome, proved, bound.policy, home=home_path(), kept=kept)
    # Where to try again: after a refusal, and after a store failure.
    again = f"{bound.url('reauth')}?{urlencode(sso_retry_query(answer.next, outcome))}"
    if not answer.ok:
        report_sso_refusal(
            services.events,
            subject.user_id,
            outcome,
            services.clock(),
            trip_began=trip_began,
            reason=answer.reason,
        )
        link = again if answer.retry else ""
        return _message(request, answer.status, answer.message, link=link)
    try:
        renewed, _ = bound.record_reauth(
            subject,
            answer.methods,
            answer.authenticated_at,
            level=answer.level,
            transaction=answer.transaction,
        )
    except StoreUnavailableError:  # nothing recorded, the kept form still waits
        return outage_response(request, again)
    token = sso_resume(outcome)
    resumed = None if cross_site else bound.take_resumed(subject, token, action)
    if cross_site and token is not None:
        now = services.clock()
        note_resume_after_sso(request.session, renewed.session_id, token, action, now)
        query = urlencode({"next": answer.next})
        return _redirect(f"{bound.url('reauth_resume')}?{query}")
    return _after_reauth(request, resumed, answer.next)


def _oidc_start(request: HttpRequest) -> HttpResponse:
    return _sso_start(request, "oidc", stepup_for(request).services.oidc)


def _oidc_callback(request: HttpRequest) -> HttpResponse:
    params = oidc_callback_params(
        (key, value) for key in request.GET for value in request.GET.getlist(key)
    )
    return _sso_finish(
        request, stepup_for(request).services.oidc, lambda p, s: p.complete(s, params)
    )


def _saml_start(request: HttpRequest) -> HttpResponse:
    return _sso_start(request, "saml", stepup_for(request).services.saml)


def _saml_metadata(request: HttpRequest) -> HttpResponse:
    """This service provider's metadata, to register with the IdP (the only one, or
    ``?provider=name``)."""
    providers = stepup_for(request).services.saml
    name = request.GET.get("provider")
    provider = providers.get(name) if name else None
    if provider is None and not name and len(providers) == 1:
        provider = next(iter(providers.values()))
    if provider is None:
        return HttpResponse("no such SAML provider", status=404, content_type="text/plain")
    return HttpResponse(provider.metadata(), content_type="application/samlmetadata+xml")


#: What reading ``request.POST`` raises for a body Django refuses to parse.
_UNREADABLE_FORM = (
    MultiPartParserError,  # multipart without (or with a bad) boundary
    RequestDataTooBig,  # over DATA_UPLOAD_MAX_MEMORY_SIZE
    SuspiciousMultipartForm,
    TooManyFieldsSent,  # over DATA_UPLOAD_MAX_NUMBER_FIELDS
    TooManyFilesSent,
)


def _saml_acs(request: HttpRequest) -> HttpResponse:
    try:
        response, relay = request.POST.get("SAMLResponse", ""), request.POST.get("RelayState")
    except _UNREADABLE_FORM:
        # No SAMLResponse: the same page as any other unreadable answer, not Django's
        # bare "Bad Request (400)".
        response, relay = "", None
    return _sso_finish(
        request,
        stepup_for(request).services.saml,
        lambda p, s: p.complete(s, response, relay),
        cross_site=True,
    )


# two-factor authentication --------------------------------------------------------------


def _account_name(request: HttpRequest, subject: Subject) -> str:
    """The label in the authenticator app: the username when Django knows it."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and str(user.pk) == subject.user_id:
        return str(user.get_username())
    return subject.user_id


def _two_factor(request: HttpRequest) -> HttpResponse:
    bound = stepup_for(request)
    subject = bound.subject
    if subject is None:
        return stepup_for(request).sign_in_response()
    return two_factor_page(request, bound, subject.user_id)


def two_factor_page(
    request: HttpRequest, bound: RequestStepup, user_id: str, error: str = "", status: int = 200
) -> HttpResponse:
    """The two-factor settings page: on with the user's devices, off, or set in the file."""
    tf = bound.two_factor
    if tf.config_users is not None:
        page = TwoFactorPage(enrolled=tf.is_enrolled(user_id), managed_by_file=True)
    else:  # the devices say whether it is on, and which apps it is on
        page = TwoFactorPage.of(tf.devices(user_id), error=error)
    return _render(request, "stepup/two_factor.html", status, page=page)


def enrolling(request: HttpRequest) -> str:
    """The device id this session began enrolling, or ``""``, which matches no device."""
    kept = request.session.get(ENROLLING)
    return kept if isinstance(kept, str) else ""


def _two_factor_enrol(request: HttpRequest) -> HttpResponse:
    bound = stepup_for(request)
    subject = bound.subject
    if subject is None:
        return stepup_for(request).sign_in_response()
    account = _account_name(request, subject)
    two_factor = bound.two_factor
    try:
        # The enrolment this session began a moment ago, if any: its secret may be on the
        # phone already. Another session's is not shown: it begins a new one.
        enrolment = two_factor.pending_enrolment(
            subject.user_id, account, max_age=ENROLMENT_TTL, device_id=enrolling(request)
        )
        if enrolment is None:
            enrolment = two_factor.begin_enrolment(subject.user_id, account)
            request.session[ENROLLING] = enrolment.device_id
    except AlreadyEnrolledError:
        messages.info(request, TEXT["already_on"], fail_silently=True)
        return _redirect(bound.url("two_factor"))
    except ManagedByConfigFileError:
        return _message(request, 409, TEXT["in_config_file"])
    except InvalidAccountNameError:  # the app's account name: nothing was stored
        return _message(request, 400, TEXT["account_name"], link=bound.url("two_factor"))
    page = _enrolment_page(bound, enrolment, account)
    return _render(request, "stepup/two_factor_enrol.html", page=page)


def _enrolment_page(bound: RequestStepup, enrolment: Any, account: str) -> EnrolmentPage:
    return enrolment_page(enrolment, account=account, issuer=bound.two_factor.issuer)


def _two_factor_confirm(request: HttpRequest) -> HttpResponse:
    bound = stepup_for(request)
    subject = bound.subject
    if subject is None:
        return stepup_for(request).sign_in_response()
    try:
        confirmation = bound.two_factor.confirm_enrolment(
            subject.user_id, form_code(_posted(request, "code"))
        )
    except NotEnrolledError:  # none pending (expired, never begun): the page says so
        return _message(request, 400, TEXT["enrolment_expired"], link=bound.url("two_factor"))
    except (AlreadyEnrolledError, ManagedByConfigFileError):
        return _redirect(bound.url("two_factor"))
    if not confirmation.ok:
        # The same QR code and key again, with the error: the phone may have them already.
        account = _account_name(request, subject)
        try:
            pending = bound.two_factor.pending_enrolment(
                subject.user_id, account, max_age=ENROLMENT_TTL, device_id=enrolling(request)
            )
        except InvalidAccountNameError:  # the account name no longer makes a Key URI
            return _message(request, 400, TEXT["account_name"], link=bound.url("two_factor"))
        if pending is None:
            link = bound.url("two_factor")
            return _message(request, 400, TEXT["enrolment_expired"], link=link)
        again = _enrolment_page(bound, pending, account)
        again = again.with_error(two_factor_message(confirmation.result))
        status = refusal_status(confirmation.result.reason)
        return _render(request, "stepup/two_factor_enrol.html", status, page=again)
    request.session.pop(ENROLLING, None)
    page = _codes_page(bound, confirmation.recovery_codes)
    return _render(request, "stepup/recovery_codes.html", page=page)


def _codes_page(bound: RequestStepup, codes: tuple[str, ...]) -> RecoveryCodesPage:
    """The recovery codes just made, headed by the site and the time for their file."""
    return RecoveryCodesPage(codes, bound.two_factor.issuer, bound.services.clock())


def verify_page(
    request: HttpRequest,
    bound: RequestStepup,
    pending: PendingSignIn,
    error: Message | str = "",
    status: int = 200,
) -> HttpResponse:
    """The sign-in's second step, offering what the user has (a code, a passkey, a
    recovery code), with the error of the last try."""
    try:
        factors = bound.second_factors(pending.user_id)
    except StoreUnavailableError:  # what the user has could not be read: fail closed
        return outage_response(request)
    page = VerifyPage.of(factors, error)
    return _render(request, "stepup/two_factor_verify.html", status, page=page)


def finish_sign_in(bound: RequestStepup, pending: PendingSignIn, proved: tuple[str, ...]) -> bool:
    """Sign the user in as they signed in (a password, OIDC or SAML); with the policy's
    sign_in_counts, the sign-in is the first re-authentication, with what the login and
    the second step ``proved`` (see :meth:`RequestStepup.complete_sign_in`). ``False``:
    the waiting sign-in was used already (or expired): nobody signed in."""
    return bound.complete_sign_in(pending, proved)


def _two_factor_verify(request: HttpRequest) -> HttpResponse:
    """The sign-in code step (the app's login view sends the user here with
    ``request.stepup.begin_sign_in``); the user is signed in only after it."""
    bound = stepup_for(request)
    pending = bound.pending_sign_in()
    if pending is None:
        return _message(request, 400, TEXT["sign_in_expired"])
    if request.method != "POST":
        return verify_page(request, bound, pending)
    if wants_cancel(request.POST.getlist(CANCEL_SIGN_IN)):
        # "Sign in as someone else": the waiting sign-in is spent, as at sign-out, so
        # no copy of this session can finish it; nobody is signed in.
        drop_waiting_sign_in(request.session, bound.services)
        return _redirect(sign_in_path())
    recovery = form_code(_posted(request, "recovery_code"))
    try:
        if recovery:
            result = bound.two_factor.use_recovery_code(pending.user_id, recovery)
        else:
            code = form_code(_posted(request, "code"))
            result = bound.two_factor.verify(pending.user_id, code)
    except NotEnrolledError:
        return _message(request, 400, TEXT["sign_in_expired"])
    except ManagedByConfigFileError:  # the file holds no recovery codes
        return verify_page(request, bound, pending, TEXT["no_recovery_codes"], 400)
    if not result.ok:
        status = refusal_status(result.reason)
        return verify_page(
            request, bound, pending, two_factor_message(result, recovery=bool(recovery)), status
        )
    # What the login proved, plus the code (a recovery code proves no second factor).
    proved = pending.proved if recovery else (*pending.proved, "otp")
    if not finish_sign_in(bound, pending, proved):
        return _message(request, 400, TEXT["sign_in_expired"])
    return _redirect(pending.next)


def _recovery_codes(request: HttpRequest) -> HttpResponse:
    bound = stepup_for(request)
    refusal = bound.guard(bound.services.recovery_action, None, bound.url("two_factor"))
    if refusal is not None:
        return refusal
    subject = bound.subject
    assert subject is not None  # the guard let a signed-in user through
    try:
        codes = bound.two_factor.regenerate_recovery_codes(subject.user_id)
    except NotEnrolledError:
        return _redirect(bound.url("two_factor"))
    except ManagedByConfigFileError:
        return _message(request, 409, TEXT["in_config_file"])
    except StoreUnavailableError:  # nothing changed: fail closed, and say so
        return outage_response(request)
    page = _codes_page(bound, codes)
    return _render(request, "stepup/recovery_codes.html", page=page)


def _two_factor_remove(request: HttpRequest) -> HttpResponse:
    bound = stepup_for(request)
    refusal = bound.guard(bound.services.disable_action, None, bound.url("two_factor"))
    if refusal is not None:
        return refusal
    subject = bound.subject
    assert subject is not None
    try:
        bound.two_factor.remove(subject.user_id, actor_id=subject.user_id)
    except NotEnrolledError:
        pass
    except ManagedByConfigFileError:
        return _message(request, 409, TEXT["in_config_file"])
    except StoreUnavailableError:
        return outage_response(request)
    messages.info(request, TEXT["turned_off"], fail_silently=True)
    return _redirect(bound.url("two_factor"))


def _admin_two_factor_remove(request: HttpRequest, user_id: str) -> HttpResponse:
    """An admin with full access removes another user's 2FA (after re-authenticating
    for the disable action, like the user would)."""
    bound = stepup_for(request)
    subject = bound.subject
    if subject is None:
        return stepup_for(request).sign_in_response()
    if not bound.has_full_access(user_id):
        return _message(request, 403, TEXT["admin_only"])
    back = safe_return_path_or_default(request.POST.get("next"), home_path())
    refusal = bound.guard(bound.services.disable_action, None, back)
    if refusal is not None:
        return refusal
    try:
        bound.two_factor.remove(user_id, actor_id=subject.user_id, actor_has_full_access=True)
    except NotEnrolledError:
        return _message(request, 404, TEXT["user_not_enrolled"])
    except ManagedByConfigFileError:
        return _message(request, 409, TEXT["in_config_file"])
    except StoreUnavailableError:
        return outage_response(request)
    if client_kind(request_info(request)) is not Client.BROWSER:
        return HttpResponse(status=204)
    messages.info(request, TEXT["removed"], fail_silently=True)
    return _redirect(back)


# tenant settings ---------------------------------------------------------------------


def _patch_only(view: View) -> View:
    """``PATCH`` only: any other method (``OPTIONS`` and ``HEAD`` included) gets the
    resource's JSON:API 405 with ``Allow: PATCH``, logged as ``require_http_methods``
    logs its own."""

    @wraps(view)
    def answer(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method == "PATCH":
            return view(request, *args, **kwargs)
        response = to_response(tenant_method_not_allowed(answer_locale(request)))
        log_response(
            "Method Not Allowed (%s): %s", request.method, request.path,
            response=response, request=request,
        )  # fmt: skip
        return response

    return answer


def _tenant(request: HttpRequest, tenant_id: str) -> HttpResponse:
    """The seed's JSON:API ``PATCH``. Who may ask is settled before a byte of the body is
    read: signed in (401), a JSON body (415), an acceptable ``Accept`` (406), no query
    parameter (400), a tenant admin (403), and a fresh
    re-authentication for ``tenant.settings.update`` whatever the flag says (the guarded
    JSON endpoints' 401/403/503 as a JSON:API document, see
    :func:`~stepup.integrations.views.tenant_decision_response`; the app's
    ``REAUTH_RESPONSE`` still replaces it). Then the body is read up to the limit and
    parsed by the core (400/422, nothing changed)."""
    bound = stepup_for(request)
    subject = bound.subject
    # JSON:API titles in the pages' locale (the app's hook, then Accept-Language).
    locale = bound.locale()
    content_type = request.headers.get("Content-Type", "")
    accept = request.headers.get("Accept")
    query = request.GET.keys()
    refusal = tenant_request_refusal(subject is not None, content_type, locale, accept, query)
    if refusal is not None:
        return to_response(refusal)
    assert subject is not None  # refused above
    is_admin = bound.is_tenant_admin(tenant_id)
    refusal = admin_refusal(is_admin, locale)
    if refusal is not None:
        return to_response(refusal)
    decision = bound.reauth.check(subject, TENANT_SETTINGS_UPDATE, tenant_id)
    if not decision.ok:
        hook = bound.services.hooks.reauth_response  # the app's answer still wins
        custom = hook(request, decision) if hook is not None else None
        if custom is not None:
            return cast(HttpResponse, custom)
        # Back to the page the request came from (the tenant page) after re-authenticating.
        referer = request.headers.get("Referer", "")
        origin = f"{request.scheme}://{request.get_host()}"
        back = form_return_path(
            request.method or "", referer, None, request, origin=origin, home=home_path()
        )
        info = bound.answer_info(back)
        refused = tenant_decision_response(decision, info, reauth_url=bound.url("reauth"))
        assert refused is not None  # the decision was not ok
        return to_response(refused)
    try:
        body = read_body(stream_chunks(request.read), request.headers.get("Content-Length"))
        updated = bound.tenant_settings.patch(
            tenant_id, body, actor_id=subject.user_id, actor_is_tenant_admin=is_admin
        )
    except StepupError as exc:
        refusal = tenant_error_response(exc, locale)
        if refusal is None:
            raise
        return to_response(refusal)
    return to_response(tenant_response(updated))


# Open to every channel: re-authentication with a password or a provider (the core
# decides which channels it asks), its status and done pages, and the static files.
# Every other page (two-factor, its devices, passkeys, re-authentication with a passkey)
# serves the interactive web channel only (_web_only). The sign-in's second step, the
# SAML ACS and the tenant endpoint have wrappers of their own, below.
stylesheet = _get(_stylesheet, any_channel=True)
reauth = _get(_reauth, any_channel=True)
reauth_password = _form_post(_reauth_password, any_channel=True)
reauth_status = _get(_reauth_status, any_channel=True)
reauth_done = _get(_reauth_done, any_channel=True)
reauth_resume = _get(_reauth_resume, any_channel=True)
script = _get(_script, any_channel=True)
codes_script = _get(_codes_script, any_channel=True)
oidc_start = _form_post(_oidc_start, any_channel=True)
oidc_callback = _get(_oidc_callback, any_channel=True)
saml_start = _form_post(_saml_start, any_channel=True)
saml_metadata = _get(_saml_metadata, any_channel=True)
# Posted by the IdP's page in the browser, not by our form: the SAML response's signature
# and its one-time InResponseTo, bound to this session, stand in for a CSRF token.
saml_acs = _commit_as_they_go(cast(View, csrf_exempt(require_POST(_saml_acs))))
two_factor = _get(_two_factor)
two_factor_enrol = _form_post(_two_factor_enrol)
two_factor_confirm = _form_post(_two_factor_confirm)
# Before sign-in (no subject yet, so no channel to hold it to): GET and HEAD show the
# step, POST is checked for CSRF as every form (a script that fails it gets JSON).
two_factor_verify = _commit_as_they_go(
    cast(
        View,
        require_http_methods(["GET", "HEAD", "POST"])(
            _secrets_hidden(_csrf_checked(_two_factor_verify))
        ),
    )
)
recovery_codes = _form_post(_recovery_codes)
two_factor_remove = _form_post(_two_factor_remove)
admin_two_factor_remove = _form_post(_admin_two_factor_remove)
# CSRF: this JSON:API endpoint is authenticated by the session cookie, so it is exempt
# from the form token only because it accepts nothing but application/vnd.api+json or
# application/json (415 otherwise). A cross-site page cannot send those content types
# without a CORS preflight, which this app does not grant; a form can only send
# urlencoded, multipart or text/plain bodies, and forms cannot send PATCH at all.
tenant = _commit_as_they_go(cast(View, csrf_exempt(_patch_only(_tenant))))
