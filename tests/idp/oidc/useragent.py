"""The test's browser: follows the provider's redirects and fills in its login form over
HTTP, keeping the provider's cookies like a real user agent would."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import httpx

_FORM = re.compile(r'<form method="post" action="([^"]+)"')
_ABORT = re.compile(r'<a href="([^"]+/abort)"')
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')


def edit_query(url: str, *, strip: Iterable[str] = (), put: Mapping[str, str] | None = None) -> str:
    """``url`` with some query parameters removed or replaced (what a tampering agent does)."""
    parts = urlsplit(url)
    drop = set(strip) | set(put or {})
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in drop]
    query += list((put or {}).items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def query_of(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


class UserAgent:
    """One browser profile: its cookies are its sessions at the provider."""

    def __init__(self, redirect_uri: str) -> None:
        self.redirect_uri = redirect_uri
        self.http = httpx.Client(follow_redirects=False, timeout=10.0)
        #: How many times the provider showed its login form to this agent.
        self.login_forms = 0

    def close(self) -> None:
        self.http.close()

    def authorize(
        self,
        url: str,
        *,
        login: str | None = None,
        password: str | None = None,
        otp: str | None = None,
        cancel: bool = False,
        extra: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        """Open ``url``; sign in if the provider asks (or cancel); return the query the
        provider sends back to the redirect URI."""
        for _ in range(20):
            if url.startswith(self.redirect_uri):
                return query_of(url)
            response = self.http.get(url)
            if response.is_redirect:
                url = urljoin(url, response.headers["location"])
                continue
            form = _FORM.search(response.text)
            if response.status_code != 200 or form is None:
                raise AssertionError(
                    f"unexpected page {response.status_code}: {response.text[:300]}"
                )
            action = urljoin(url, html.unescape(form.group(1)))
            if 'name="login"' not in response.text:
                # A page that submits itself with JavaScript (e.g. the provider logging out
                # the previous account before another signs in): do what a browser does.
                hidden = {k: html.unescape(v) for k, v in _HIDDEN.findall(response.text)}
                posted = self.http.post(action, data=hidden)
            else:
                self.login_forms += 1
                if cancel:
                    abort = _ABORT.search(response.text)
                    assert abort is not None
                    url = urljoin(url, abort.group(1))
                    continue
                if login is None:
                    raise AssertionError("the provider asked for a login; this test gave none")
                fields = {"login": login, "password": password or "", "otp": otp or ""}
                fields.update(extra or {})
                posted = self.http.post(action, data=fields)
            if not posted.is_redirect:
                raise AssertionError(f"form refused: {posted.status_code} {posted.text[:300]}")
            url = urljoin(url, posted.headers["location"])
        raise AssertionError("too many redirects")
