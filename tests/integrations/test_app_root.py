"""``views.app_root``: the fallback of every return location is the app's own root, the
prefix it is served under (Django's script prefix, Flask's ``script_root``, Starlette's
``root_path``) with one ``/`` after it; a prefix that is no safe path falls back to
``/``."""

from __future__ import annotations

import pytest

from stepup.integrations.views import app_root, cancel_path, reauth_page
from stepup.policy import Policy
from stepup.subject import Subject


@pytest.mark.parametrize(
    ("mounted_at", "root"),
    [
        ("", "/"),
        ("/", "/"),
        ("/sub", "/sub/"),
        ("/sub/", "/sub/"),
        ("/a/b", "/a/b/"),
        ("//evil.example", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example", "/"),
    ],
)
def test_app_root(mounted_at: str, root: str) -> None:
    assert app_root(mounted_at) == root


def test_the_reauth_page_falls_back_to_home() -> None:
    page = reauth_page(Policy.default(), Subject("u", "s"), "api_key.read", None, home="/sub/")
    assert (page.next, page.cancel) == ("/sub/", "/sub/")
    unsafe = reauth_page(Policy.default(), Subject("u", "s"), "", "//evil.example", home="/sub/")
    assert unsafe.next == "/sub/"
    assert cancel_path(next_path="/sub/x", reauth_path="/sub/stepup/reauth", home="/sub/") == (
        "/sub/"
    )
