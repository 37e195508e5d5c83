"""stepup's pages in a Django project: the shared Jinja2 templates, rendered into an
``HttpResponse``, with Django's CSRF token and messages.

The project overrides a page the Django way: a file of the same name
(``stepup/reauth.html``) in a directory of ``TEMPLATES[...]["DIRS"]`` or in an installed
app's ``templates/`` (or ``jinja2/``) directory wins over the bundled one. The pages are
Jinja2 templates whatever backend the project uses for its own (see ``docs/pages.md``).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Final

import jinja2
from django.apps import apps
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.urls import reverse
from markupsafe import Markup

from ..pages import environment, page_context, page_headers
from ..views import ReauthPage
from ._request import stepup_for

__all__ = ["locale_of", "override_problems", "render_page"]

#: The views the pages link to or post to, by the name the templates use.
_URLS: Final = {
    "stylesheet": "stylesheet",
    "script": "script",
    "codes_script": "codes_script",
    "reauth_password": "reauth_password",
    "two_factor": "two_factor",
    "enrol": "two_factor_enrol",
    "confirm": "two_factor_confirm",
    "verify": "two_factor_verify",
    "recovery_codes": "recovery_codes",
    "remove": "two_factor_remove",
    "done": "two_factor",
    "passkeys": "passkeys",
    "passkey_register_begin": "passkey_register_begin",
    "passkey_register_finish": "passkey_register_finish",
    "reauth_passkey_begin": "reauth_passkey_begin",
    "reauth_passkey_finish": "reauth_passkey_finish",
    "sign_in_passkey_begin": "sign_in_passkey_begin",
    "sign_in_passkey_finish": "sign_in_passkey_finish",
    "passkey_script": "passkey_script",
    "device_add": "device_add",
    "device_confirm": "device_confirm",
}


def _override_dirs() -> tuple[str, ...]:
    """Where the project's own ``stepup/*.html`` may be: every backend's ``DIRS``, then
    the installed apps' template folders (for the backends with ``APP_DIRS``)."""
    dirs: list[str] = []
    for backend in settings.TEMPLATES:
        dirs += [str(d) for d in backend.get("DIRS", ())]
    for backend in settings.TEMPLATES:
        if backend.get("APP_DIRS"):
            sub = "jinja2" if "jinja2" in str(backend.get("BACKEND", "")).lower() else "templates"
            for app in apps.get_app_configs():
                folder = Path(app.path) / sub
                if folder.is_dir():
                    dirs.append(str(folder))
    return tuple(dict.fromkeys(dirs))


@lru_cache(maxsize=8)
def _environment(dirs: tuple[str, ...]) -> jinja2.Environment:
    return environment(jinja2.FileSystemLoader(list(dirs)))


def override_problems() -> list[str]:
    """The project's ``stepup/*.html`` overrides that Jinja2 cannot read (typically a
    page still written in the Django template language), each as ``path: reason``."""
    problems: list[str] = []
    env = _environment(_override_dirs())
    for folder in _override_dirs():
        for path in sorted((Path(folder) / "stepup").glob("*.html")):
            try:
                env.parse(path.read_text(encoding="utf-8"), path.name, str(path))
            except (jinja2.TemplateSyntaxError, UnicodeDecodeError, OSError) as exc:
                problems.append(f"{path}: {exc}")
    return problems


def locale_of(request: HttpRequest) -> str:
    """The locale of this request's pages (and JSON answers):
    :meth:`~stepup.integrations.django._request.RequestStepup.locale`."""
    return stepup_for(request).locale()


def render_page(
    request: HttpRequest, template: str, status: int = 200, **context: Any
) -> HttpResponse:
    """A page: never cached (recovery codes and QR codes are shown once) and never framed
    (a "Remove" button must not be clickjacked)."""
    services = stepup_for(request).services
    urls = {name: reverse(services.url_name(view)) for name, view in _URLS.items()}
    for name in ("passkey_rename", "passkey_remove"):
        urls[name] = reverse(services.url_name(name), kwargs={"credential_id": "__ID__"})
    for name in ("device_rename", "device_remove"):
        urls[name] = reverse(services.url_name(name), kwargs={"device_id": "__ID__"})
    page = context.get("page")
    if isinstance(page, ReauthPage) and page.sso:
        urls["sso_start"] = reverse(services.url_name(f"{page.sso}_start"))
    token = get_token(request)

    def csrf_field() -> Markup:
        return Markup('<input type="hidden" name="csrfmiddlewaretoken" value="{}">').format(token)

    flashed = [str(m) for m in messages.get_messages(request)]
    values = page_context(
        locale=locale_of(request),
        app_catalog=services.app_catalog,
        urls=urls,
        csrf_field=csrf_field,
        messages=flashed,
        request=request,
        **context,
    )
    body = _environment(_override_dirs()).get_template(template).render(values)
    response = HttpResponse(body, status=status, content_type="text/html; charset=utf-8")
    for header, value in page_headers(status, context.get("page")).items():
        response[header] = value
    return response
