"""One set of pages for every framework: the templates, their context, the stylesheet.

The templates are Jinja2 files in ``stepup/integrations/templates/stepup/``. Flask
renders them with its own Jinja environment (the blueprint's template folder), and
Starlette and Django with :func:`environment`. Each framework hands the template the
same context (see ``docs/pages.md``), built here by :func:`page_context` from:

- ``page``: the view model (:mod:`stepup.integrations.views`);
- ``urls``: where the forms post and the links go, by name;
- ``csrf_field``: a callable giving the framework's hidden CSRF input;
- ``messages``: flash messages (msgids), shown translated;
- the locale: ``lang``, ``_``/``gettext``/``ngettext`` and ``t``, which translates a
  view model's :class:`stepup.i18n.Message` or msgid.

An app overrides any page by shipping a template of the same name (``stepup/reauth.html``)
where its framework looks first; the stylesheet is served by each integration at the
``stylesheet`` URL.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, tzinfo
from email.utils import format_datetime
from importlib import resources
from typing import Any, Final

import jinja2
from markupsafe import Markup

from ..i18n import AppCatalog, Message, negotiate, translate, translations
from .http import RETRY_AFTER, HttpResponse

__all__ = [
    "CODES_SCRIPT",
    "EXTENSIONS",
    "PAGE_HEADERS",
    "TEMPLATES",
    "choose_locale",
    "codes_script",
    "codes_script_response",
    "environment",
    "page_context",
    "page_headers",
    "stylesheet",
    "stylesheet_response",
]

#: The package folder the pages are loaded from (``stepup/<name>.html`` under it).
TEMPLATES: Final = ("stepup.integrations", "templates")
#: Jinja extensions the pages need (``{% trans %}``).
EXTENSIONS: Final = ("jinja2.ext.i18n",)

#: stepup pages hold one-time secrets and confirm dangerous actions: never cached, never
#: framed (a framed "Remove" button is a clickjacking target), and their addresses (a
#: kept form's ``resume`` token, ``next``, the action) never sent as a Referer to
#: another site (an identity provider the page's form leads to, a link of the app's).
PAGE_HEADERS: Final = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}
#: A page answered 503 (the store could not answer) also says when to try again, as
#: every other 503 does (:data:`~stepup.integrations.http.RETRY_AFTER`).
_UNAVAILABLE_PAGE_HEADERS: Final = {**PAGE_HEADERS, "Retry-After": RETRY_AFTER}


def page_headers(status: int, page: object = None) -> Mapping[str, str]:
    """The headers of a page answered with ``status``: :data:`PAGE_HEADERS`, and
    ``Retry-After`` on a 503, and on a 429 whose page says until when attempts are
    paused (its error's ``retry_at``, as an HTTP-date: RFC 9110 10.2.3)."""
    if status == 503:
        return _UNAVAILABLE_PAGE_HEADERS
    if status == 429:
        retry_at = getattr(getattr(page, "error", None), "retry_at", None)
        if isinstance(retry_at, int | float) and math.isfinite(retry_at) and retry_at >= 0:
            moment = datetime.fromtimestamp(math.ceil(retry_at), UTC)
            return {**PAGE_HEADERS, "Retry-After": format_datetime(moment, usegmt=True)}
    return PAGE_HEADERS


def environment(*overrides: jinja2.BaseLoader) -> jinja2.Environment:
    """A Jinja environment that looks in ``overrides`` first (the app's own
    ``stepup/*.html``), then in the bundled pages."""
    loader = jinja2.ChoiceLoader([*overrides, jinja2.PackageLoader(*TEMPLATES)])
    return jinja2.Environment(loader=loader, autoescape=True, extensions=list(EXTENSIONS))


def choose_locale(selected: str | None, accept_language: str | None) -> str:
    """The page's locale: the app's choice (its locale hook) when stepup has it, else the
    best match for the request's ``Accept-Language``, else English."""
    if selected:
        chosen = negotiate(selected.replace("_", "-"), default="")
        if chosen:
            return chosen
    return negotiate(accept_language)


def page_context(
    *,
    locale: str,
    urls: Mapping[str, str],
    csrf_field: Callable[[], Markup],
    messages: Iterable[str | Message] = (),
    tz: tzinfo = UTC,
    app_catalog: AppCatalog | None = None,
    **values: Any,
) -> dict[str, Any]:
    """Everything a page template reads, the same in every framework. ``t()`` asks the
    app's own catalog too (``app_catalog``) for the texts the app gave: its action
    descriptions, a transaction's description."""
    catalog = translations(locale)

    def t(text: str | Message) -> str:
        return translate(text, locale, tz, app_catalog)

    return {
        "lang": locale,
        "gettext": catalog.gettext,
        "ngettext": catalog.ngettext,
        "_": catalog.gettext,
        "t": t,
        "urls": dict(urls),
        "csrf_field": csrf_field,
        "messages": [t(m) for m in messages],
        **values,
    }


def stylesheet() -> bytes:
    """The pages' small stylesheet (``stepup/integrations/static/stepup.css``)."""
    return resources.files("stepup.integrations").joinpath("static/stepup.css").read_bytes()


def stylesheet_response() -> HttpResponse:
    """The stylesheet, for the route each integration serves it on."""
    headers = {"Content-Type": "text/css; charset=utf-8", "Cache-Control": "public, max-age=3600"}
    return HttpResponse(200, headers, stylesheet())


#: The recovery codes page's script (its Copy and Print buttons), served by each
#: integration at ``<prefix>/stepup-codes.js`` (the ``codes_script`` URL): a file, never
#: an inline script, so an app's ``script-src 'self'`` policy lets it run.
CODES_SCRIPT: Final = "stepup-codes.js"


def codes_script() -> bytes:
    """``stepup/integrations/static/stepup-codes.js``."""
    return resources.files("stepup.integrations").joinpath(f"static/{CODES_SCRIPT}").read_bytes()


def codes_script_response() -> HttpResponse:
    """The recovery codes page's script, for the route each integration serves it on."""
    headers = {
        "Content-Type": "text/javascript; charset=utf-8",
        "Cache-Control": "public, max-age=3600",
    }
    return HttpResponse(200, headers, codes_script())
