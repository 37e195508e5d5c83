"""``MessagePage.about``: the two messages that leave nothing to try again get a title
and a way on of their own; every other message keeps "Security check" and "Try again"."""

from __future__ import annotations

from stepup.integrations.views import SECURITY_CHECK, TEXT, MessagePage


def test_other_messages_keep_security_check_and_try_again() -> None:
    page = MessagePage.about(TEXT["unavailable"], link="/again", sign_in="/login", home="/")
    assert (page.title, page.link, page.link_label) == (SECURITY_CHECK, "/again", "Try again")
    assert MessagePage.about(TEXT["csrf"]).link == ""


def test_the_two_dead_ends_have_their_own_title_and_link() -> None:
    expired = MessagePage.about(TEXT["sign_in_expired"], link="/x", sign_in="/login", home="/")
    assert (expired.title, expired.link, expired.link_label) == (
        "Sign-in expired",
        "/login",
        "Sign in again",
    )
    unknown = MessagePage.about(TEXT["unknown_action"], sign_in="/login", home="/sub/")
    assert (unknown.title, unknown.link, unknown.link_label) == (
        "Unknown action",
        "/sub/",
        "Back to the start page",
    )
