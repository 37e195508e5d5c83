"""The TOTP device views of the ``stepup`` blueprint: add another authenticator app
(a QR code and key, confirmed with a code from it), rename one, remove one. Adding
asks for a fresh re-authentication for ``2fa.device.add``, removing for the action that
removing two-factor takes (``STEPUP_DISABLE_ACTION``); the core decides everything else (see
:meth:`stepup.twofactor.TwoFactor.begin_device` and the methods after it)."""

from __future__ import annotations

from functools import wraps
from typing import Any, Final

from flask import flash, request, session, url_for

from ...errors import StepupError
from ...policy import TOTP_DEVICE_ADD
from ..views import (
    ENROLLING,
    ENROLMENT_TTL,
    TEXT,
    DeviceNameMessage,
    TwoFactorPage,
    device_name_refusal,
    device_refusal,
    enrolment_page,
    form_code,
    posted_name,
    refusal_status,
    two_factor_message,
)
from ._state import AppState, state
from ._views import (
    _message,
    _posted,
    _redirect,
    _render,
    _signed_in,
    _unavailable,
    enrolling,
    two_factor_page,
)

__all__ = ["ROUTES"]


def _refused(
    exc: StepupError,
    app_state: AppState,
    user_id: str,
    *,
    typed: str | None = None,
    device_id: str | None = None,
) -> Any:
    """The settings page again with what the core said (or a message page). ``typed``:
    the name the person typed, into ``device_id``'s rename field or (``None``) the new
    app's; a refused name is shown there again, and that field points at the error."""
    named = None if typed is None else device_name_refusal(exc, typed, device_id)
    if named is not None:
        return _name_refused(app_state, user_id, named)
    refusal = device_refusal(exc)
    if refusal is None:
        raise exc
    status, text = refusal
    if status in (400, 409) and text != "enrolment_expired":
        return two_factor_page(app_state, user_id, TEXT[text], status)
    if status == 503:  # the store could not answer: nothing changed
        return _unavailable(url_for("stepup.two_factor"))
    return _message(status, TEXT[text], link=url_for("stepup.two_factor"))


def _name_refused(app_state: AppState, user_id: str, named: DeviceNameMessage) -> Any:
    """The settings page with the refused name at its field. The core reads a name only
    outside configuration-file mode (it refuses that first), so the page lists devices."""
    page = TwoFactorPage.of(app_state.two_factor.devices(user_id), error=named)
    return _render("stepup/two_factor.html", 400, page=page)


def _adding_page(app_state: AppState, enrolment: Any, account: str, error: Any = "") -> Any:
    issuer = app_state.two_factor.issuer
    return enrolment_page(enrolment, account=account, issuer=issuer, error=error, adding=True)


def _fresh_for_adding() -> Any:
    """A fresh re-authentication for ``2fa.device.add`` first (``None``: go on), as removing
    asks for one: an app an intruder adds to a stolen session is their second factor."""
    app_state = state()
    return app_state.guard(TOTP_DEVICE_ADD, None, url_for("stepup.two_factor"))


def add() -> Any:
    """POST begins another app and answers 303 to the GET, which shows it: a reload, Back
    or a re-posted kept form never begins a second one (whose key the scanned app lacks)."""
    refusal = _fresh_for_adding()
    if refusal is not None:
        return refusal
    app_state, subject = _signed_in()
    if subject is None:
        return app_state.unauthenticated()
    if request.method != "POST":
        return _adding(app_state, subject.user_id)
    name = posted_name(request.form.getlist("name"))
    try:
        account = app_state.account_name(subject.user_id)
        enrolment = app_state.two_factor.begin_device(subject.user_id, account, name=name)
    except StepupError as exc:
        return _refused(exc, app_state, subject.user_id, typed=name)
    session[ENROLLING] = enrolment.device_id  # only this session sees its secret again
    return _redirect(url_for("stepup.device_add"))


def _adding(app_state: AppState, user_id: str) -> Any:
    """The app this session began adding, as often as it is asked for (it begins none);
    none pending (expired, another session's, never begun): the settings page."""
    try:
        account = app_state.account_name(user_id)
        pending = app_state.two_factor.pending_device(
            user_id, account, max_age=ENROLMENT_TTL, device_id=enrolling()
        )
    except StepupError as exc:
        return _refused(exc, app_state, user_id)
    if pending is None:
        flash(TEXT["enrolment_expired"], "stepup")
        return _redirect(url_for("stepup.two_factor"))
    return _render("stepup/two_factor_enrol.html", page=_adding_page(app_state, pending, account))


def confirm() -> Any:
    refusal = _fresh_for_adding()
    if refusal is not None:
        return refusal
    app_state, subject = _signed_in()
    if subject is None:
        return app_state.unauthenticated()
    tf = app_state.two_factor
    try:
        result = tf.confirm_device(subject.user_id, form_code(_posted("code")))
        if result.ok:
            session.pop(ENROLLING, None)
            flash(TEXT["device_added"], "stepup")
            return _redirect(url_for("stepup.two_factor"))
        # The same QR code and key again, with the error: the phone may have them already
        # (if this session began it; another session's secret is not shown).
        account = app_state.account_name(subject.user_id)
        pending = tf.pending_device(
            subject.user_id, account, max_age=ENROLMENT_TTL, device_id=enrolling()
        )
    except StepupError as exc:
        return _refused(exc, app_state, subject.user_id)
    if pending is None:
        return _message(400, TEXT["enrolment_expired"], link=url_for("stepup.two_factor"))
    page = _adding_page(app_state, pending, account, two_factor_message(result))
    return _render("stepup/two_factor_enrol.html", refusal_status(result.reason), page=page)


def rename(device_id: str) -> Any:
    app_state, subject = _signed_in()
    if subject is None:
        return app_state.unauthenticated()
    name = posted_name(request.form.getlist("name"))
    try:
        app_state.two_factor.rename_device(subject.user_id, device_id, name)
    except StepupError as exc:
        return _refused(exc, app_state, subject.user_id, typed=name, device_id=device_id)
    flash(TEXT["device_renamed"], "stepup")
    return _redirect(url_for("stepup.two_factor"))


def remove(device_id: str) -> Any:
    app_state = state()
    refusal = app_state.guard(app_state.disable_action, None, url_for("stepup.two_factor"))
    if refusal is not None:
        return refusal
    subject = app_state.subject()
    assert subject is not None  # the guard let a signed-in user through
    tf = app_state.two_factor
    try:
        last = len(tf.devices(subject.user_id)) == 1
        tf.remove_device(subject.user_id, device_id, actor_id=subject.user_id)
    except StepupError as exc:
        return _refused(exc, app_state, subject.user_id)
    flash(TEXT["turned_off"] if last else TEXT["device_removed"], "stepup")
    return _redirect(url_for("stepup.two_factor"))


def _fail_closed(view: Any) -> Any:
    """A store that cannot answer is a 503 page, never a 500 (nothing changed)."""

    @wraps(view)
    def answer(*args: Any, **kwargs: Any) -> Any:
        try:
            return view(*args, **kwargs)
        except StepupError as exc:
            refusal = device_refusal(exc)
            if refusal is None:
                raise
            if refusal[0] == 503:
                return _unavailable()
            return _message(refusal[0], TEXT[refusal[1]])

    return answer


#: (rule, endpoint, view, methods) for the blueprint.
ROUTES: Final[list[tuple[str, str, Any, list[str]]]] = [
    (rule, endpoint, _fail_closed(view), methods)
    for rule, endpoint, view, methods in [
        ("/2fa/devices/add", "device_add", add, ["GET", "POST"]),
        ("/2fa/devices/confirm", "device_confirm", confirm, ["POST"]),
        ("/2fa/devices/<device_id>/rename", "device_rename", rename, ["POST"]),
        ("/2fa/devices/<device_id>/remove", "device_remove", remove, ["POST"]),
    ]
]
