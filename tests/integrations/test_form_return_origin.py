"""Where a refused form comes back to after re-authenticating (``form_return_path``):
the page its ``Referer`` names only when that page is on the request's own origin
(scheme, host and port), else the app's root. A form on another site (``Referer:
https://evil.example/x``) never chooses the page a person lands on."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stepup.integrations.http import form_return_path, same_origin_page

ORIGIN = "https://app.example"


@dataclass
class _Request:
    next_page: str


@pytest.mark.parametrize(
    ("referer", "expected"),
    [
        (f"{ORIGIN}/settings?tab=2", "/settings?tab=2"),
        (f"{ORIGIN}:443/settings", "/settings"),  # the scheme's own port, named
        ("HTTPS://APP.EXAMPLE/settings", "/settings"),
        (ORIGIN, "/"),
        ("/settings", "/settings"),  # RFC 9110's partial-URI: resolved on this origin
        ("https://evil.example/settings", "/home/"),
        ("http://app.example/settings", "/home/"),  # same host, another scheme
        ("https://app.example:8443/settings", "/home/"),  # another port
        ("https://app.example.evil.example/settings", "/home/"),
        ("https://app.example@evil.example/settings", "/home/"),
        ("https://user:pw@app.example/settings", "/home/"),  # browsers never send these
        ("//evil.example/settings", "/home/"),
        ("settings", "/home/"),  # relative to a page this does not know
        ("https://app.example[/x", "/home/"),  # does not parse
        ("https://app.example:99999/x", "/home/"),
        ("", "/home/"),
    ],
)
def test_only_a_referer_on_this_origin_is_followed(referer: str, expected: str) -> None:
    back = form_return_path("POST", referer, None, _Request("/r"), origin=ORIGIN, home="/home/")
    assert back == expected


def test_without_an_origin_no_referer_is_followed() -> None:
    assert form_return_path("POST", f"{ORIGIN}/settings", None, _Request("/r")) == "/"


def test_return_to_and_get_are_unchanged() -> None:
    request = _Request("/from-request")
    evil = "https://evil.example/x"
    assert form_return_path("GET", evil, None, request, origin=ORIGIN) is None
    assert form_return_path("POST", evil, "/elsewhere", request, origin=ORIGIN) == "/elsewhere"
    back = form_return_path("POST", evil, lambda r: r.next_page, request, origin=ORIGIN)
    assert back == "/from-request"


@given(
    host=st.sampled_from(
        ["evil.example", "app.example.evil.example", "app.example:444", "evil.example:443"]
    ),
    path=st.text(max_size=40).map(lambda t: "/" + t),
)
def test_a_page_on_another_origin_is_never_followed(host: str, path: str) -> None:
    assert same_origin_page(f"https://{host}{path}", ORIGIN) is None
    back = form_return_path("POST", f"https://{host}{path}", None, None, origin=ORIGIN)
    assert back == "/"
