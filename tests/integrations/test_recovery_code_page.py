"""The shared pieces of the sign-in code page's answer to a refused recovery code: its
own message (not the authenticator app's), and the one template showing it at the
recovery code field. Each framework's view is driven through its test client in
tests/integrations/django/test_recovery_code_errors.py."""

from __future__ import annotations

import re
from collections import defaultdict

import pytest
from markupsafe import Markup

from stepup.i18n import Message
from stepup.integrations.pages import environment, page_context
from stepup.integrations.passkey_endpoint import passkey_error
from stepup.integrations.views import (
    RecoveryCodeMessage,
    VerifyPage,
    two_factor_message,
)
from stepup.passkeys import PasskeyReason, PasskeyResult
from stepup.verifier import VerifyReason, VerifyResult


def _render(page: VerifyPage, locale: str = "en") -> str:
    context = page_context(
        locale=locale, urls=defaultdict(str), csrf_field=lambda: Markup(""), page=page
    )
    return environment().get_template("stepup/two_factor_verify.html").render(context)


def _field(html: str, name: str) -> str:
    found = re.search(rf'<input[^>]*name="{name}"[^>]*>', html)
    assert found, name
    return found.group(0)


@pytest.mark.parametrize(
    ("reason", "said"),
    [
        (VerifyReason.INVALID, "That recovery code is not right, or it was already used."),
        (VerifyReason.MALFORMED, "That is not a recovery code."),
        (VerifyReason.UNAVAILABLE, "Codes cannot be checked right now."),
    ],
)
def test_a_recovery_code_has_its_own_message(reason: VerifyReason, said: str) -> None:
    message = two_factor_message(VerifyResult(reason), recovery=True)
    assert isinstance(message, RecoveryCodeMessage)
    assert said in str(message)
    assert "authenticator app" not in str(message)


def test_a_paused_recovery_code_says_until_when() -> None:
    message = two_factor_message(VerifyResult(VerifyReason.THROTTLED, retry_at=60.0), recovery=True)
    assert isinstance(message, RecoveryCodeMessage)
    assert message.retry_at == 60.0
    assert "paused until" in str(message)


def test_an_authenticator_code_keeps_its_message() -> None:
    message = two_factor_message(VerifyResult(VerifyReason.INVALID))
    assert type(message) is Message
    assert "Check your authenticator app" in str(message)


def test_the_page_opens_and_marks_the_recovery_field() -> None:
    error = two_factor_message(VerifyResult(VerifyReason.INVALID), recovery=True)
    html = _render(VerifyPage(error, totp=True, passkey=True, recovery=True), "de")
    assert "Dieser Wiederherstellungscode ist nicht richtig" in html
    assert '<details class="stepup-recovery" open>' in html
    recovery = _field(html, "recovery_code")
    assert 'aria-invalid="true"' in recovery
    assert 'aria-describedby="stepup-error"' in recovery
    assert "autofocus" in recovery
    code = _field(html, "code")
    assert "aria-invalid" not in code
    assert "autofocus" not in code
    assert html.count("autofocus") == 1  # not the passkey button either


def test_a_wrong_authenticator_code_marks_the_code_field() -> None:
    error = two_factor_message(VerifyResult(VerifyReason.INVALID))
    html = _render(VerifyPage(error, totp=True, recovery=True))
    assert '<details class="stepup-recovery">' in html
    assert 'aria-invalid="true"' in _field(html, "code")
    assert "aria-invalid" not in _field(html, "recovery_code")


@pytest.mark.parametrize(
    "result",
    [
        PasskeyResult(PasskeyReason.COUNTER),
        PasskeyResult(PasskeyReason.MALFORMED),
        PasskeyResult(PasskeyReason.THROTTLED, retry_at=60.0),
    ],
)
def test_a_refused_passkey_marks_no_field_and_focuses_its_button(result: PasskeyResult) -> None:
    """The person typed nothing: no field is marked invalid or described by the error,
    and "Use a passkey" has the focus (WCAG 3.3.1, 2.4.3)."""
    error = passkey_error(result)
    html = _render(VerifyPage(error, totp=True, passkey=True, recovery=True))
    assert str(error) in html
    for name in ("code", "recovery_code"):
        field = _field(html, name)
        assert "aria-invalid" not in field, field
        assert "autofocus" not in field, field
    button = re.search(r"<button[^>]*>Use a passkey</button>", html)
    assert button is not None
    assert "autofocus" in button.group(0)


@pytest.mark.parametrize(
    ("totp", "title"),
    [
        (True, "Enter your authentication code"),
        (False, "Confirm it is you with your passkey"),
    ],
)
def test_the_sign_in_step_is_titled_by_what_it_asks(totp: bool, title: str) -> None:
    """WCAG 2.4.2: the second step's title said "Two-factor authentication", the title
    of the settings page too; it now says what the page asks, as its heading does."""
    html = _render(VerifyPage("", totp=totp, passkey=not totp, recovery=True))
    assert re.search(r"<title>([^<]*)</title>", html).group(1) == title  # type: ignore[union-attr]
    assert f"<h1>{title}</h1>" in html
    german = _render(VerifyPage("", totp=totp, passkey=not totp, recovery=True), "de")
    assert "Zwei-Faktor" not in re.search(r"<title>([^<]*)</title>", german).group(1)  # type: ignore[union-attr]
