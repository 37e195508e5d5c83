"""The shared pieces of the browser binding of kept forms (stepup.integrations.resume)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from stepup.integrations.resume import (
    binding_cookie,
    browser_binding,
    note_resume_after_sso,
    presented_binding,
    take_resume_after_sso,
)

TOKEN = "t" * 32


@given(st.one_of(st.none(), st.integers(), st.text(max_size=80)))
def test_only_a_value_of_stepups_making_is_presented(cookie: object) -> None:
    presented = presented_binding(cookie)
    assert presented in ("", cookie)
    if presented:
        assert isinstance(cookie, str)
        assert 32 <= len(cookie) <= 64


def test_a_browser_keeps_its_binding_and_a_new_one_gets_a_random_value() -> None:
    kept = "k" * 43
    assert browser_binding(kept) == kept
    fresh = {browser_binding(value) for value in (None, "", "short", "x" * 65, "bad value" * 5)}
    assert len(fresh) == 5
    assert all(presented_binding(value) == value for value in fresh)


def test_the_cookie_covers_the_apps_path() -> None:
    assert binding_cookie("v" * 43, root="", secure=False).path == "/"
    cookie = binding_cookie("v" * 43, root="/app", secure=True, ttl=600)
    assert (cookie.path, cookie.secure, cookie.max_age) == ("/app", True, 600)
    assert (cookie.httponly, cookie.samesite) == (True, "Lax")
    assert "v" * 43 not in repr(cookie)


@given(age=st.floats(min_value=-10, max_value=1200, allow_nan=False))
def test_a_note_after_sso_is_taken_once_by_the_same_session_while_fresh(age: float) -> None:
    session: dict[str, object] = {}
    note_resume_after_sso(session, "sid-2", TOKEN, "user.update", 1000.0)
    now = 1000.0 + age
    taken = take_resume_after_sso(session, "sid-2", now, ttl=600)
    assert taken == ((TOKEN, "user.update") if 0 <= now - 1000.0 < 600 else None)
    assert take_resume_after_sso(session, "sid-2", 1000.0, ttl=600) is None  # used up


def test_a_note_for_another_session_id_is_not_taken() -> None:
    session: dict[str, object] = {}
    note_resume_after_sso(session, "sid-2", TOKEN, "user.update", 1000.0)
    assert take_resume_after_sso(session, "sid-3", 1000.0) is None
    assert session == {}
