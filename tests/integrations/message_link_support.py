"""The message pages that leave nothing to try again (an expired sign-in, an unknown
action) say where to go next and carry titles of their own, in every framework and
language: what the three frameworks' tests read off such a page."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from stepup.i18n import translate
from stepup.integrations.views import TEXT

_LANG = re.compile(r'<html lang="([^"]*)"')
_TITLE = re.compile(r"<title>(.*?)</title>", re.S)
_H1 = re.compile(r"<h1>(.*?)</h1>", re.S)
_LINK = re.compile(r'<a class="stepup-button" href="([^"]*)">(.*?)</a>', re.S)

#: What each message page says (the msgids), in the order text, title, link label.
SIGN_IN_EXPIRED = (TEXT["sign_in_expired"], "Sign-in expired", "Sign in again")
UNKNOWN_ACTION = (TEXT["unknown_action"], "Unknown action", "Back to the start page")


@dataclass(frozen=True)
class MessageSeen:
    lang: str
    title: str
    heading: str
    links: list[tuple[str, str]]  # (href, label)
    body: str


def read_message(page: str) -> MessageSeen:
    lang, title, heading = _LANG.search(page), _TITLE.search(page), _H1.search(page)
    assert lang is not None, page
    assert title is not None, page
    assert heading is not None, page
    links = [
        (html.unescape(href), html.unescape(label.strip())) for href, label in _LINK.findall(page)
    ]
    return MessageSeen(
        lang.group(1),
        html.unescape(title.group(1).strip()),
        html.unescape(heading.group(1).strip()),
        links,
        html.unescape(page),
    )


def assert_message(page: str, which: tuple[str, str, str], href: str, locale: str) -> None:
    """``page`` is the message page ``which`` in ``locale``: its text, its own title
    (the <title> and the heading) and one link, to ``href``, with its label."""
    text, title, label = (translate(msgid, locale) for msgid in which)
    seen = read_message(page)
    assert seen.lang == locale
    assert text in seen.body
    assert (seen.title, seen.heading) == (title, title)
    assert seen.links == [(href, label)], seen.links
