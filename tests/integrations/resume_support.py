"""Reading stepup's resume page (the form a re-authentication sends again) in tests."""

from __future__ import annotations

import html
import re
from typing import Any

_FORM = re.compile(r'<form method="post" action="([^"]*)" id="stepup-resume">(.*?)</form>', re.S)
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]*)" value="([^"]*)">')


def resume_form(body: str) -> tuple[str, list[tuple[str, str]]]:
    """The resume page's target and fields (in order, repeated names kept)."""
    found = _FORM.search(body)
    assert found is not None, "not a resume page"
    fields = [(html.unescape(n), html.unescape(v)) for n, v in _HIDDEN.findall(found.group(2))]
    return html.unescape(found.group(1)), fields


def as_multidict(fields: list[tuple[str, str]]) -> dict[str, Any]:
    """``{name: value or [values]}`` for test clients that take lists for repeated names."""
    data: dict[str, Any] = {}
    for name, value in fields:
        if name in data:
            previous = data[name]
            data[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            data[name] = value
    return data


_TRY_AGAIN = re.compile(r'<a class="stepup-button" href="([^"]*)">')


def try_again_link(body: str) -> str:
    """The "Try again" link of stepup's message page."""
    found = _TRY_AGAIN.search(body)
    assert found is not None, "no Try again link"
    return html.unescape(found.group(1))
