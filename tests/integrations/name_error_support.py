"""Shared by the three frameworks' tests of a refused authenticator-app name: the
page's text fields and the check that only the field the name was typed in is marked."""

from __future__ import annotations

import re
from html.parser import HTMLParser

KEY = re.compile(r'id="stepup-manual-key">([^<]+)</code>')
REFUSED = "Give the app a name of 1 to 64 characters, without control characters."
BAD_NAMES = ["   ", "x" * 65, "Phone\x1b[31m", '<b>"Tablet"</b>&' + "y" * 60]


class _Inputs(HTMLParser):
    """Each text ``<input>`` of a page, by id, with its attributes (values unescaped)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: dict[str, dict[str, str | None]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "input" and named.get("type") == "text":
            self.found[str(named["id"])] = named


def inputs(html: str) -> dict[str, dict[str, str | None]]:
    parser = _Inputs()
    parser.feed(html)
    return parser.found


def assert_only_marked(html: str, marked: str, typed: str) -> None:
    """``marked`` holds ``typed``, is invalid, points at the error and has the focus;
    the error is there once, and no other field is marked."""
    assert html.count('id="stepup-error"') == 1
    assert REFUSED in html
    fields = inputs(html)
    assert fields[marked]["value"] == typed
    assert fields[marked]["aria-invalid"] == "true"
    assert fields[marked]["aria-describedby"] == "stepup-error"
    assert "autofocus" in fields[marked]
    for other, attrs in fields.items():
        if other != marked:
            assert not {"aria-invalid", "aria-describedby", "autofocus"} & attrs.keys(), other
