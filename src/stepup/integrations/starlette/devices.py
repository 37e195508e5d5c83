"""The two-factor settings page and the TOTP device views: see the user's
authenticator apps, add another (a QR code and key, confirmed with a code from it),
rename one, remove one. Adding asks for a fresh re-authentication for
``2fa.device.add``, removing for ``2fa.disable``, the action removing two-factor takes;
the core decides everything else (see
:meth:`stepup.twofactor.AsyncTwoFactor.begin_device` and the methods after it)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ...errors import StepupError
from ...i18n import Message
from ...policy import TOTP_DEVICE_ADD
from ...subject import Subject
from ..views import (
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
from .pages import StepupPages, enrolling, leave_note, note_enrolling, take_notes

__all__ = ["device_routes"]


class _DevicePages:
    def __init__(self, pages: StepupPages) -> None:
        self.pages = pages
        self.stepup = pages.stepup

    def urls(self, request: Request) -> dict[str, str]:
        """What the settings and adding pages link to: the real views (the usual
        ``recovery_codes`` and ``remove`` links are the page itself)."""
        s = self.stepup
        found = {name: s.url(request, name) for name in ("recovery_codes", "remove")}
        for name in ("device_add", "device_confirm"):
            found[name] = s.url(request, name)
        for name in ("device_rename", "device_remove"):
            found[name] = s.url(request, name, device_id="__ID__")
        found["done"] = found["two_factor"] = s.url(request, "two_factor")
        return found

    async def settings(
        self, request: Request, subject: Subject, error: Message | str = "", status: int = 200
    ) -> Response:
        tf = self.stepup.two_factor
        if tf.config_users is not None:
            enrolled = await tf.is_enrolled(subject.user_id)
            page = TwoFactorPage(enrolled=enrolled, managed_by_file=True)
        else:  # the devices say whether it is on, and which apps it is on
            page = TwoFactorPage.of(await tf.devices(subject.user_id), error=error)
        return await self.pages.render(
            request,
            "two_factor.html",
            binding=subject.session_id,
            status=status,
            urls=self.urls(request),
            page=page,
            messages=take_notes(request),
        )

    def _back(self, request: Request, note: str) -> Response:
        leave_note(request, note)
        return RedirectResponse(self.stepup.url(request, "two_factor"), 303)

    async def refused(
        self,
        request: Request,
        subject: Subject,
        exc: StepupError,
        *,
        typed: str | None = None,
        device_id: str | None = None,
    ) -> Response:
        """The settings page again with what the core said (or a message page).
        ``typed``: the name the person typed, into ``device_id``'s rename field or
        (``None``) the new app's; a refused name is shown there again, and that field
        points at the error (the core reads a name only outside configuration-file
        mode, so the page lists the devices)."""
        named = None if typed is None else device_name_refusal(exc, typed, device_id)
        if named is not None:
            return await self.settings(request, subject, named, 400)
        refusal = device_refusal(exc)
        if refusal is None:
            raise exc
        status, text = refusal
        if status in (400, 409) and text != "enrolment_expired":
            return await self.settings(request, subject, TEXT[text], status)
        link = self.stepup.url(request, "two_factor")
        if status == 503:  # the store could not answer: nothing changed
            return await self.pages.store_unavailable(request, link)
        return await self.pages.message(request, TEXT[text], status, link)

    async def _posted(self, request: Request) -> tuple[Subject, Any] | Response:
        subject = await self.pages.signed_in(request)
        if isinstance(subject, Response):
            return subject
        form = await self.pages.form(request, subject.session_id)
        if form is None:
            return await self.pages.csrf_failed(request)
        return subject, form

    async def page(self, request: Request) -> Response:
        subject = await self.pages.signed_in(request)
        if isinstance(subject, Response):
            return subject
        try:
            return await self.settings(request, subject)
        except StepupError as exc:
            return await self.refused(request, subject, exc)

    async def adding_page(
        self,
        request: Request,
        subject: Subject,
        enrolment: Any,
        account: str,
        error: Any = "",
        status: int = 200,
    ) -> Response:
        issuer = self.stepup.two_factor.issuer
        page = enrolment_page(enrolment, account=account, issuer=issuer, error=error, adding=True)
        return await self.pages.render(
            request,
            "two_factor_enrol.html",
            binding=subject.session_id,
            status=status,
            urls=self.urls(request),
            page=page,
        )

    async def add(self, request: Request) -> Response:
        """POST begins another app and answers 303 to the GET, which shows it: a reload,
        Back or a re-posted kept form never begins a second one (whose key the scanned
        app lacks)."""
        if request.method != "POST":
            return await self.adding(request)
        posted = await self._posted(request)
        if isinstance(posted, Response):
            return posted
        subject, form = posted
        tf = self.stepup.two_factor
        name = posted_name(form.getlist("name"))
        try:
            account = await self.stepup.account_name(subject.user_id)
            enrolment = await tf.begin_device(subject.user_id, account, name=name)
        except StepupError as exc:
            return await self.refused(request, subject, exc, typed=name)
        note_enrolling(request, enrolment.device_id)  # only this session sees it again
        return RedirectResponse(self.stepup.url(request, "device_add"), 303)

    async def adding(self, request: Request) -> Response:
        """The app this session began adding, as often as it is asked for (it begins
        none); none pending (expired, another session's, never begun): the settings page."""
        subject = await self.pages.signed_in(request)
        if isinstance(subject, Response):
            return subject
        try:
            account = await self.stepup.account_name(subject.user_id)
            pending = await self.stepup.two_factor.pending_device(
                subject.user_id, account, max_age=ENROLMENT_TTL, device_id=enrolling(request)
            )
        except StepupError as exc:
            return await self.refused(request, subject, exc)
        if pending is None:
            return self._back(request, TEXT["enrolment_expired"])
        return await self.adding_page(request, subject, pending, account)

    async def confirm(self, request: Request) -> Response:
        posted = await self._posted(request)
        if isinstance(posted, Response):
            return posted
        subject, form = posted
        tf = self.stepup.two_factor
        try:
            result = await tf.confirm_device(
                subject.user_id, form_code(posted_value(form.getlist("code"), None))
            )
            if result.ok:
                note_enrolling(request, None)
                return self._back(request, TEXT["device_added"])
            # The same QR code and key again, with the error: the phone may have them (if
            # this session began it; another session's secret is not shown).
            account = await self.stepup.account_name(subject.user_id)
            pending = await tf.pending_device(
                subject.user_id, account, max_age=ENROLMENT_TTL, device_id=enrolling(request)
            )
        except StepupError as exc:
            return await self.refused(request, subject, exc)
        if pending is None:
            link = self.stepup.url(request, "two_factor")
            return await self.pages.message(request, TEXT["enrolment_expired"], 400, link)
        error, status = two_factor_message(result), refusal_status(result.reason)
        return await self.adding_page(request, subject, pending, account, error, status)

    async def rename(self, request: Request) -> Response:
        posted = await self._posted(request)
        if isinstance(posted, Response):
            return posted
        subject, form = posted
        device_id = request.path_params["device_id"]
        name = posted_name(form.getlist("name"))
        try:
            await self.stepup.two_factor.rename_device(subject.user_id, device_id, name)
        except StepupError as exc:
            return await self.refused(request, subject, exc, typed=name, device_id=device_id)
        return self._back(request, TEXT["device_renamed"])

    async def remove(self, request: Request) -> Response:
        posted = await self._posted(request)
        if isinstance(posted, Response):
            return posted
        subject, _ = posted
        tf = self.stepup.two_factor
        try:
            last = len(await tf.devices(subject.user_id)) == 1
            await tf.remove_device(
                subject.user_id, request.path_params["device_id"], actor_id=subject.user_id
            )
        except StepupError as exc:
            return await self.refused(request, subject, exc)
        return self._back(request, TEXT["turned_off" if last else "device_removed"])


def device_routes(pages: StepupPages) -> list[BaseRoute]:
    """The settings page and the device views; adding another app (begin and confirm) is
    guarded by ``2fa.device.add``, removing one by ``2fa.disable``."""
    views = _DevicePages(pages)
    # The channel before the guard (see StepupPages.routes); signed_in checks it again.
    disable = pages.web_only_guarded("2fa.disable")
    adding = pages.web_only_guarded(TOTP_DEVICE_ADD)
    return [
        Route("/2fa", views.page, methods=["GET"], name="two_factor"),
        Route("/2fa/devices/add", adding(views.add), methods=["GET", "POST"], name="device_add"),
        Route(
            "/2fa/devices/confirm", adding(views.confirm), methods=["POST"], name="device_confirm"
        ),
        Route(
            "/2fa/devices/{device_id}/rename", views.rename, methods=["POST"], name="device_rename"
        ),
        Route(
            "/2fa/devices/{device_id}/remove",
            disable(views.remove),
            methods=["POST"],
            name="device_remove",
        ),
    ]
