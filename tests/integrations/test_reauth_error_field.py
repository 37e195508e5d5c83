"""The re-authentication page marks and focuses only the field a refusal was about (a
wrong code never marks the right password, nor sends the focus back to it); a wrong
password says what to do; a code pasted with blanks around it is the code. The shared
pieces, with the real password re-authentication and TOTP verifier on a real store;
each framework's views are driven in its own test_reauth_marks_and_pasted_codes.py."""

from __future__ import annotations

import re
from collections import defaultdict

import pytest
from argon2 import PasswordHasher
from hypothesis import given
from hypothesis import strategies as st
from markupsafe import Markup

from stepup import TOTP, TOTPVerifier, generate_secret
from stepup.adapters.idp.password import CHEAPEST, PasswordReauth, hash_password
from stepup.adapters.storage.memory import MemoryStore
from stepup.integrations.pages import environment, page_context
from stepup.integrations.views import (
    ErrorField,
    FormStep,
    ReauthPage,
    form_code,
    password_message,
    password_step,
)
from stepup.subject import Subject
from stepup.testing import SettableClock

CHEAP = PasswordHasher.from_parameters(CHEAPEST)
PASSWORD = "right password"
WRONG_CODE = "That code is not right."
WRONG_PASSWORD = "That password is not right. Check it and try again."


def _render(page: ReauthPage) -> str:
    context = page_context(
        locale="en", urls=defaultdict(str), csrf_field=lambda: Markup(""), page=page
    )
    return environment().get_template("stepup/reauth.html").render(context)


def field(html: str, name: str) -> str:
    """The ``<input>`` named ``name`` on the page."""
    found = re.search(rf'<input[^>]*name="{name}"[^>]*>', html)
    assert found, name
    return found.group(0)


def assert_marked(html: str, marked: str, unmarked: str) -> None:
    """Only ``marked`` is invalid, points at the error and takes the focus."""
    assert 'aria-invalid="true"' in field(html, marked)
    assert 'aria-describedby="stepup-error"' in field(html, marked)
    assert "autofocus" in field(html, marked)
    assert "aria-invalid" not in field(html, unmarked)
    assert "aria-describedby" not in field(html, unmarked)
    assert "autofocus" not in field(html, unmarked)


def _page(methods: tuple[str, ...] = ("pwd", "otp")) -> ReauthPage:
    return ReauthPage(
        action="api_key.regenerate",
        description="Regenerating user API keys",
        next="/k",
        methods=methods,
        account="alice",
    )


def _step(password: str, code: str) -> FormStep:
    clock = SettableClock()
    store = MemoryStore()
    totp = TOTP(generate_secret())
    verifier = TOTPVerifier(store, clock=clock)
    stored = hash_password(PASSWORD, hasher=CHEAP)
    return password_step(
        _page(),
        Subject("alice", "s1"),
        password,
        passwords=PasswordReauth(store, hasher=CHEAP, clock=clock),
        load_hash=lambda user_id: stored,
        save_rehash=None,
        verify_code=lambda: verifier.verify("alice-totp", totp, code),
        missing_loader="register a password hash loader",
    )


def test_a_wrong_code_after_the_right_password_marks_only_the_code() -> None:
    step = _step(PASSWORD, "000000")
    assert step.status == 400
    assert step.page is not None
    assert step.page.error_field == "code"
    html = _render(step.page)
    assert WRONG_CODE in html
    assert_marked(html, "code", "password")


def test_a_wrong_password_marks_only_the_password() -> None:
    step = _step("not my password", "000000")
    assert step.status == 400
    assert step.page is not None
    assert step.page.error_field == "password"
    html = _render(step.page)
    assert WRONG_PASSWORD in html
    assert_marked(html, "password", "code")


@pytest.mark.parametrize("about", ["password", "code", ""])
def test_only_the_named_field_is_marked(about: ErrorField) -> None:
    html = _render(_page().with_error("Something was wrong.", about))
    marked = [name for name in ("password", "code") if "aria-invalid" in field(html, name)]
    focused = [name for name in ("password", "code") if "autofocus" in field(html, name)]
    assert marked == ([about] if about else [])
    assert focused == ["code" if about == "code" else "password"]
    assert html.count("autofocus") == 1


def test_a_new_error_about_no_field_clears_the_mark() -> None:
    page = _page().with_error("That code is not right.", "code").with_error("Use your provider.")
    assert page.error_field == ""
    assert "aria-invalid" not in _render(page)


def test_without_an_error_the_password_has_the_focus_and_nothing_is_marked() -> None:
    html = _render(_page())
    assert "aria-invalid" not in html
    assert "autofocus" in field(html, "password")
    assert "autofocus" not in field(html, "code")


def test_a_code_only_page_focuses_the_code() -> None:
    html = _render(_page(("oidc", "otp")).with_error("That code is not right.", "code"))
    assert "autofocus" in field(html, "code")
    assert 'aria-invalid="true"' in field(html, "code")


def test_a_wrong_password_names_the_password_and_the_way_out() -> None:
    refused = type("Result", (), {"ok": False, "reason": "invalid", "retry_at": None})()
    message = password_message(refused)
    assert str(message) == WRONG_PASSWORD
    assert message.translate("en") == WRONG_PASSWORD
    paused = type("Result", (), {"ok": False, "reason": "throttled", "retry_at": None})()
    assert str(password_message(paused)) == "Too many attempts. Wait a while and try again."


_BLANKS = st.text(st.sampled_from(" \t\r\n"), max_size=4)


@given(code=st.text(st.sampled_from("0123456789"), min_size=6, max_size=8), before=_BLANKS,
       after=_BLANKS)  # fmt: skip
def test_the_blanks_around_a_code_are_dropped(code: str, before: str, after: str) -> None:
    assert form_code(before + code + after) == code


@given(inner=st.text(max_size=12).filter(lambda s: s == s.strip(" \t\r\n")))
def test_what_is_inside_is_left_to_the_core(inner: str) -> None:
    assert form_code(inner) == inner
    assert form_code(f" {inner}\n") == inner


@pytest.mark.parametrize("other", [None, 123456, b" 123456", ["123456"]])
def test_what_is_not_text_is_handed_on_unchanged(other: object) -> None:
    assert form_code(other) is other


@pytest.mark.parametrize("kept", ["\u00a0123456", "123456\u2003", "\v123456", "123456\f"])
def test_only_ascii_blanks_are_dropped(kept: str) -> None:
    assert form_code(kept) == kept


def test_a_password_that_could_not_be_checked_is_not_called_wrong() -> None:
    """The store is down (a Redis where nothing listens): the right password cannot be
    checked. The page says so, marks no field and answers 503; it never says "That
    password is not right", which sends people to reset a password that is fine."""
    from stepup.adapters.storage.redis import RedisStore

    clock = SettableClock()
    down = RedisStore("redis://127.0.0.1:1/0")
    stored = hash_password(PASSWORD, hasher=CHEAP)
    step = password_step(
        _page(("pwd",)),
        Subject("alice", "s1"),
        PASSWORD,
        passwords=PasswordReauth(down, hasher=CHEAP, clock=clock),
        load_hash=lambda user_id: stored,
        save_rehash=None,
        verify_code=lambda: pytest.fail("no code is checked after an unchecked password"),
        missing_loader="register a password hash loader",
    )
    assert step.status == 503
    assert step.page is not None
    html = _render(step.page)
    assert "This cannot be done right now. Try again in a moment." in html
    assert WRONG_PASSWORD not in html
    assert "aria-invalid" not in field(html, "password")
