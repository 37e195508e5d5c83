"""``StepupMiddleware``: ``request.stepup`` on every request, sync or async.

Put it after ``SessionMiddleware`` and ``AuthenticationMiddleware``. It sends a browser
whose sign-in was held for stepup's second step to that step (a view signed the user
in some other way than ``begin_sign_in``: see ``_request.hold_sign_in``). It also answers
the typed errors of ``request.stepup.require(...)`` raised anywhere in a view, through
the app's replaceable ``REAUTH_RESPONSE`` hook, answers a store outage that escapes a
view with the 503 "try again" page (JSON for a script), and reads a small multipart
form POST's body before the CSRF middleware parses it, so a kept form keeps its order.

Django builds it when it builds the app (``get_wsgi_application``,
``get_asgi_application``, the test client's first request): a setting that stepup's
system checks call an error stops the app there (``ImproperlyConfigured``), since a
WSGI or ASGI server runs no checks and every request would fail.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.core.checks import CheckMessage, run_checks
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse

from ...errors import ConfigurationError, StoreUnavailableError
from ...reauth import ReauthRequiredError, ReauthUnavailableError
from ...resume import MAX_BYTES
from ..http import SignInRequiredError
from ._request import (
    HELD,
    attach,
    held_sign_in_response,
    outage_response,
    read_form_body,
    uncacheable_if_let_through,
)
from .services import get_stepup

__all__ = ["StepupMiddleware"]


class StepupMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        refuse_unusable_settings()
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __repr__(self) -> str:
        return f"StepupMiddleware(async={self.is_async})"

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        if self.is_async:
            return self.__acall__(request)
        read_form_body(attach(request).request, MAX_BYTES)
        response: HttpResponse = self.get_response(request)
        return _after(request, response)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        read_form_body(attach(request).request, MAX_BYTES)
        response: HttpResponse = await self.get_response(request)
        return _after(request, response)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """Turn the errors of ``request.stepup.require`` into the usual responses, and a
        store outage that escapes a view (stepup's or the project's, say its login view
        calling ``request.stepup.begin_sign_in``) into the 503 that says to try again in a
        moment (the outage was logged where it happened: never a 500, nor a traceback)."""
        bound = getattr(request, "stepup", None)
        if bound is None:
            return None
        if isinstance(exception, ReauthRequiredError | ReauthUnavailableError):
            response: HttpResponse = bound.respond(exception.decision)
            return response
        if isinstance(exception, SignInRequiredError):
            signed_out: HttpResponse = bound.sign_in_response()  # titled as the pages read
            return signed_out
        if isinstance(exception, StoreUnavailableError):
            return outage_response(request)
        return None


#: The errors of the system checks that do not stop the app here (see below).
_NOT_HERE: Final = frozenset({"stepup.E008"})


def refuse_unusable_settings() -> None:
    """Raise ``ImproperlyConfigured`` for every error stepup's system checks report
    (not one the project silenced), each with its id, its message (which names the
    setting or the environment variable, never its value) and its hint. The checks build
    the services as the first request would (and keep them for it); without the app's
    checks registered, the services are built here.

    ``stepup.E008`` (a decorator's unknown action) is the checks' alone: the decorator
    raises ``UnknownActionError`` while its view is imported whenever the policy can be
    built, and when the policy cannot be built, that is an error of its own, which
    stops the app. The names it reports are every name remembered in this process, also
    under settings since changed (``override_settings``)."""
    errors = [
        message
        for message in run_checks(tags=["stepup"])
        if message.is_serious() and not message.is_silenced() and message.id not in _NOT_HERE
    ]
    if errors:
        raise ImproperlyConfigured("\n".join(_line(message) for message in errors))
    try:
        get_stepup()
    except ConfigurationError as exc:
        raise ImproperlyConfigured(str(exc)) from exc


def _line(message: CheckMessage) -> str:
    hint = f" (hint: {message.hint})" if message.hint else ""
    return f"{message.id}: {message.msg}{hint}"


def _after(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """A sign-in held for stepup's second step during this request (``hold_sign_in``)
    is answered with that step, not with the view's answer (which thought it had
    signed the user in). What a check of this request let through is marked for no
    cache to keep (the site-wide cache middleware, outside this one, then skips it)."""
    if getattr(request, HELD, False):
        return held_sign_in_response(request, response)
    answer: HttpResponse = uncacheable_if_let_through(request, response)
    return answer
