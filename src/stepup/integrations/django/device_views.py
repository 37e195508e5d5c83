"""The TOTP device views (included by ``stepup.integrations.django.urls``): add another
authenticator app (a QR code and key, confirmed with a code from it), rename one,
remove one. Adding asks for a fresh re-authentication for ``2fa.device.add``, removing
for the action that removing two-factor takes (``STEPUP["DISABLE_ACTION"]``); the core
decides everything else (see :meth:`stepup.twofactor.TwoFactor.begin_device` and the
methods after it). Every POST is checked by Django's CSRF."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, cast

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from ...errors import StepupError
from ...policy import TOTP_DEVICE_ADD
from ..views import (
    ENROLLING,
    ENROLMENT_TTL,
    TEXT,
    TwoFactorPage,
    device_name_refusal,
    device_refusal,
    enrolment_page,
    form_code,
    posted_name,
    posted_value,
    refusal_status,
    two_factor_message,
)
from ._request import RequestStepup, outage_response, stepup_for
from .views import (
    View,
    _account_name,
    _commit_as_they_go,
    _form_post,
    _get,
    _message,
    _redirect,
    _render,
    enrolling,
    two_factor_page,
)

__all__ = ["device_add", "device_confirm", "device_remove", "device_rename"]


def _refused(request: HttpRequest, bound: RequestStepup, exc: StepupError) -> HttpResponse:
    """The settings page again with what the core said (or a message page)."""
    refusal = device_refusal(exc)
    if refusal is None:
        raise exc
    status, text = refusal
    assert bound.subject is not None
    if status in (400, 409) and text != "enrolment_expired":
        return two_factor_page(request, bound, bound.subject.user_id, TEXT[text], status)
    if status == 503:  # the store could not answer: nothing changed
        return outage_response(request, bound.url("two_factor"))
    return _message(request, status, TEXT[text], link=bound.url("two_factor"))


def _name_refused(
    request: HttpRequest, bound: RequestStepup, exc: StepupError, typed: str, device_id: str | None
) -> HttpResponse:
    """A name the core refused: the settings page with it at the field it was typed in
    (``device_id``'s rename field, or the new app's for ``None``), which alone points at
    the error; any other refusal as :func:`_refused` answers it."""
    named = device_name_refusal(exc, typed, device_id)
    if named is None:
        return _refused(request, bound, exc)
    assert bound.subject is not None
    # The core reads a name only outside configuration-file mode (it refuses that
    # first), so the page lists the devices.
    page = TwoFactorPage.of(bound.two_factor.devices(bound.subject.user_id), error=named)
    return _render(request, "stepup/two_factor.html", 400, page=page)


def _adding_page(
    request: HttpRequest,
    bound: RequestStepup,
    enrolment: Any,
    error: Any = "",
    status: int | None = None,
) -> HttpResponse:
    assert bound.subject is not None
    page = enrolment_page(
        enrolment,
        account=_account_name(request, bound.subject),
        issuer=bound.two_factor.issuer,
        error=error,
        adding=True,
    )
    if status is None:
        status = 200 if not error else 400
    return _render(request, "stepup/two_factor_enrol.html", status, page=page)


def _signed_in(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Signed in, or the sign-in response; any typed refusal of the core as a page."""

    @wraps(view)
    def answer(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        bound = stepup_for(request)
        if bound.subject is None:
            return bound.sign_in_response()  # a script's 401 titled as the pages read
        try:
            return view(request, bound, *args, **kwargs)
        except StepupError as exc:
            return _refused(request, bound, exc)

    return answer


def _adding(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Adding another app asks for a fresh re-authentication for ``2fa.device.add`` first,
    as removing one does for ``2fa.disable``: an app an intruder adds to a stolen session
    is their second factor."""

    @wraps(view)
    def answer(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        bound = stepup_for(request)
        refusal = bound.guard(TOTP_DEVICE_ADD, None, bound.url("two_factor"))
        if refusal is not None:
            return refusal
        return view(request, *args, **kwargs)

    return answer


@_adding
@_signed_in
def _add(request: HttpRequest, bound: RequestStepup) -> HttpResponse:
    """Begins another app and answers 303 to the GET, which shows it: a reload, Back or a
    re-posted kept form never begins a second one (whose key the scanned app lacks)."""
    assert bound.subject is not None
    account = _account_name(request, bound.subject)
    name = posted_name(request.POST.getlist("name"))
    try:
        enrolment = bound.two_factor.begin_device(bound.subject.user_id, account, name=name)
    except StepupError as exc:
        return _name_refused(request, bound, exc, name, None)
    request.session[ENROLLING] = enrolment.device_id  # only this session sees it again
    return _redirect(bound.url("device_add"))


@_adding
@_signed_in
def _adding_now(request: HttpRequest, bound: RequestStepup) -> HttpResponse:
    """The app this session began adding, as often as it is asked for (it begins none);
    none pending (expired, another session's, never begun): the settings page."""
    assert bound.subject is not None
    account = _account_name(request, bound.subject)
    pending = bound.two_factor.pending_device(
        bound.subject.user_id, account, max_age=ENROLMENT_TTL, device_id=enrolling(request)
    )
    if pending is None:
        messages.info(request, TEXT["enrolment_expired"], fail_silently=True)
        return _redirect(bound.url("two_factor"))
    return _adding_page(request, bound, pending)


@_adding
@_signed_in
def _confirm(request: HttpRequest, bound: RequestStepup) -> HttpResponse:
    assert bound.subject is not None
    user_id, tf = bound.subject.user_id, bound.two_factor
    result = tf.confirm_device(user_id, form_code(posted_value(request.POST.getlist("code"))))
    if result.ok:
        request.session.pop(ENROLLING, None)
        messages.info(request, TEXT["device_added"], fail_silently=True)
        return _redirect(bound.url("two_factor"))
    # The same QR code and key again, with the error: the phone may have them already
    # (if this session began it; another session's secret is not shown).
    account = _account_name(request, bound.subject)
    pending = tf.pending_device(
        user_id, account, max_age=ENROLMENT_TTL, device_id=enrolling(request)
    )
    if pending is None:
        link = bound.url("two_factor")
        return _message(request, 400, TEXT["enrolment_expired"], link=link)
    # The status goes to the page's renderer, which adds what it calls for (a 429's
    # Retry-After); set afterwards, the headers were a 400's.
    status = refusal_status(result.reason)
    return _adding_page(request, bound, pending, two_factor_message(result), status)


@_signed_in
def _rename(request: HttpRequest, bound: RequestStepup, device_id: str) -> HttpResponse:
    assert bound.subject is not None
    name = posted_name(request.POST.getlist("name"))
    try:
        bound.two_factor.rename_device(bound.subject.user_id, device_id, name)
    except StepupError as exc:
        return _name_refused(request, bound, exc, name, device_id)
    messages.info(request, TEXT["device_renamed"], fail_silently=True)
    return _redirect(bound.url("two_factor"))


def _remove(request: HttpRequest, device_id: str) -> HttpResponse:
    bound = stepup_for(request)
    refusal = bound.guard(bound.services.disable_action, None, bound.url("two_factor"))
    if refusal is not None:
        return refusal
    subject = bound.subject
    assert subject is not None  # the guard let a signed-in user through
    tf = bound.two_factor
    try:
        last = len(tf.devices(subject.user_id)) == 1
        tf.remove_device(subject.user_id, device_id, actor_id=subject.user_id)
    except StepupError as exc:
        return _refused(request, bound, exc)
    messages.info(request, TEXT["turned_off" if last else "device_removed"], fail_silently=True)
    return _redirect(bound.url("two_factor"))


_add_post = _form_post(_add)
_add_get = _get(_adding_now)


def _add_either(request: HttpRequest) -> HttpResponse:
    """One path, as in Flask and Starlette: GET (and HEAD) shows, POST begins."""
    if request.method in ("GET", "HEAD"):
        return _add_get(request)
    return _add_post(request)


# csrf_exempt for the middleware: the POST runs Django's CSRF check itself (_form_post).
# Any other method is 405 naming all three (RFC 9110 section 15.5.6), not _form_post's POST.
device_add = _commit_as_they_go(
    cast(View, require_http_methods(["GET", "HEAD", "POST"])(csrf_exempt(_add_either)))
)
device_confirm = _form_post(_confirm)
device_rename = _form_post(_rename)
device_remove = _form_post(_remove)
