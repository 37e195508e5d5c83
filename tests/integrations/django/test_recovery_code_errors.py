"""A refused recovery code on the sign-in code page says what went wrong with the
recovery code (not the authenticator app), and the page comes back with the recovery
code form open, its field focused and marked invalid; in Flask, Django and Starlette,
each through its own test client, in English and in German.

(This module lives under django/ because Django is configured once per process there.)
"""

from __future__ import annotations

import re

import pytest

from integrations.django.test_pages_everywhere import (
    LANGUAGES,
    DjangoDriver,
    Driver,
    FlaskDriver,
    Headers,
    Page,
    StarletteDriver,
    driver,
    drivers,
    read,
)

__all__ = ["driver", "drivers"]  # the fixtures, used by name

#: Well-formed (24 base32 letters) and not one of bob's codes.
WRONG_RECOVERY_CODE = "abcd-efgh-ijkl-mnop-qrst-uvwx"
SAID = {
    "en": {
        "recovery": "That recovery code is not right, or it was already used.",
        "malformed": "That is not a recovery code.",
        "app": "Check your authenticator app",
    },
    "de": {
        "recovery": "Dieser Wiederherstellungscode ist nicht richtig oder wurde schon verwendet.",
        "malformed": "Das ist kein Wiederherstellungscode.",
        "app": "Prüfen Sie Ihre Authenticator-App",
    },
}


def _post(driver: Driver, data: dict[str, str], headers: Headers) -> Page:
    """Sign bob in again and post ``data`` on the sign-in code page."""
    if isinstance(driver, FlaskDriver):
        other = driver.app.client()
        other.login("bob")
        token = other.csrf("/stepup/2fa/verify")
        r = other.client.post(
            "/stepup/2fa/verify", data={**data, "csrf_token": token}, headers=headers
        )
        return r.status_code, r.get_data(as_text=True)
    if isinstance(driver, DjangoDriver):
        browser = driver.site.browser()
        browser.login("bob")
        r = browser.form("/stepup/2fa/verify/", data, page="/stepup/2fa/verify/", headers=headers)
        return r.status_code, r.content.decode()
    assert isinstance(driver, StarletteDriver)
    browser = driver.browser()
    browser.login("bob")
    page = browser.get("/stepup/2fa/verify")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    r = browser.post(
        "/stepup/2fa/verify", data={**data, "csrf_token": token.group(1)}, headers=headers
    )
    return r.status_code, r.text


def _field(page: str, name: str) -> str:
    found = re.search(rf'<input[^>]*name="{name}"[^>]*>', page)
    assert found, f"no {name} field"
    return found.group(0)


def _recovery_open(page: str) -> bool:
    details = re.search(r'<details class="stepup-recovery"[^>]*>', page)
    assert details, "no recovery code section"
    return " open" in details.group(0)


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_a_wrong_recovery_code_is_named_and_its_field_marked(driver: Driver, language: str) -> None:
    headers = LANGUAGES[language]
    assert driver.verify_page()[0] == 200  # bob has 2FA and recovery codes
    status, page = _post(driver, {"recovery_code": WRONG_RECOVERY_CODE}, headers)
    assert status == 400
    text = read(page)[1]
    assert SAID[language]["recovery"] in text
    assert SAID[language]["app"] not in text
    assert _recovery_open(page)
    recovery = _field(page, "recovery_code")
    assert 'aria-invalid="true"' in recovery
    assert 'aria-describedby="stepup-error"' in recovery
    assert "autofocus" in recovery
    code = _field(page, "code")  # the authenticator app's field is not the one at fault
    assert "aria-invalid" not in code
    assert "autofocus" not in code


def test_a_malformed_recovery_code_says_it_is_not_one(driver: Driver) -> None:
    assert driver.verify_page()[0] == 200
    status, page = _post(driver, {"recovery_code": "123456"}, {})
    assert status == 400
    assert SAID["en"]["malformed"] in read(page)[1]
    assert _recovery_open(page)
    assert 'aria-invalid="true"' in _field(page, "recovery_code")


def test_a_wrong_authenticator_code_still_marks_the_code_field(driver: Driver) -> None:
    assert driver.verify_page()[0] == 200
    status, page = _post(driver, {"code": "000000"}, {})
    assert status == 400
    assert SAID["en"]["app"] in read(page)[1]
    assert not _recovery_open(page)
    code = _field(page, "code")
    assert 'aria-invalid="true"' in code
    assert "autofocus" in code
    recovery = _field(page, "recovery_code")
    assert "aria-invalid" not in recovery
    assert "autofocus" not in recovery
