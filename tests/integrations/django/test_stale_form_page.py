"""A browser's form with a stale or missing token is refused the same way in Flask,
Django and Starlette: 403 and stepup's own "this form has expired" page in the
request's language (Flask answered 400; Django answered its ``CSRF_FAILURE_VIEW``, an
English page of its own). Django's check itself stays Django's, and so does its log.
(This module lives under django/ because Django is configured once per process there.)
"""

from __future__ import annotations

import logging

import pytest

from integrations.django.test_pages_everywhere import (
    LANGUAGES,
    NEXT,
    Driver,
    Page,
    _same,
    drivers,  # noqa: F401 (the fixture)
    hidden,
)

#: Where each framework's re-authentication form posts its password.
_PASSWORD_POST = {
    "flask": "/stepup/reauth/password",
    "django": "/stepup/reauth/password/",
}
_EXPIRED = {
    "en": "This form has expired. Go back, reload the page and try again.",
    "de": "Dieses Formular ist abgelaufen. Gehen Sie zurück, laden Sie die Seite neu und"
    " versuchen Sie es noch einmal.",
}


def _post_with_token(driver: Driver, token: str | None, headers: dict[str, str]) -> Page:
    """The re-authentication form, sent with ``token`` in place of the page's own
    (``None``: without one)."""
    url = driver.reauth_url("api_key.read", NEXT)
    fields = hidden(driver.get(url, headers)[1])
    for name in ("csrf_token", "csrfmiddlewaretoken"):
        fields.pop(name, None)
        if token is not None:
            fields[name] = token
    answer = driver.bob.client.post(  # type: ignore[attr-defined]
        _PASSWORD_POST.get(driver.name, url), data={**fields, "password": "secret"}, headers=headers
    )
    body = answer.get_data(as_text=True) if driver.name == "flask" else answer.content.decode()
    return answer.status_code, body


@pytest.mark.parametrize("token", ["x" * 64, None], ids=["stale", "missing"])
@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_a_stale_form_reads_the_same_everywhere(
    drivers: list[Driver],  # noqa: F811 (the fixture)
    language: str,
    token: str | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    headers = LANGUAGES[language]
    with caplog.at_level(logging.WARNING, "django.security.csrf"):
        pages = {d.name: _post_with_token(d, token, headers) for d in drivers}
    lang, text, _ = _same(pages)
    assert {status for status, _ in pages.values()} == {403}
    assert lang == language
    assert _EXPIRED[language] in text
    # Django's check decided, and logged the refusal where Django logs its own
    reason = "CSRF token missing." if token is None else "CSRF token from POST incorrect."
    logged = [r.getMessage() for r in caplog.records if r.name == "django.security.csrf"]
    assert logged == [f"Forbidden ({reason}): /stepup/reauth/password/"]
