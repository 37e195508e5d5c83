"""Without a ``LOCALE_SELECTOR``, stepup's pages and JSON titles follow the language
Django's ``LocaleMiddleware`` activated for the request (an ``i18n_patterns`` prefix, the
language cookie, then ``Accept-Language``), as the project's own pages do: a person on
``/de/...`` reads German, whatever the browser's first language."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from integrations.django.django_support import Site
from stepup.integrations.django._request import attach


@pytest.mark.parametrize(
    ("activated", "accept_language", "locale"),
    [
        ("de", "en", "de"),  # the /de/ prefix wins over the browser
        ("en", "de", "en"),  # the language cookie chose English
        ("de-at", "en", "de"),  # a region Django activated, stepup's German
        ("fr", "de", "de"),  # a language stepup has no catalog for: the browser's
        (None, "de", "de"),  # no LocaleMiddleware: the browser's
    ],
)
def test_the_pages_follow_the_language_django_activated(
    site: Site, activated: str | None, accept_language: str, locale: str
) -> None:
    request = RequestFactory().get("/", HTTP_ACCEPT_LANGUAGE=accept_language)
    if activated is not None:
        request.LANGUAGE_CODE = activated  # what LocaleMiddleware sets
    assert attach(request).locale() == locale
