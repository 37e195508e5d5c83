"""One address for a demo on this machine.

``stepup demo`` on 127.0.0.1, ::1 or every address is at ``http://localhost:<port>``:
the name passkeys need (WebAuthn refuses an IP address), and the one its SSO redirect
URIs are built on. The same server also answers ``http://127.0.0.1:<port>``, which a
browser treats as another site, with cookies of its own: a single sign-on started there
would come back to localhost, where that browser's session is not, and sign nobody in.
So a request that names the demo by a loopback IP address is sent to the same path at
localhost (``303`` for ``GET`` and ``HEAD``); any other request is refused with a page
that says where the demo is, since what it would change belongs to the other address's
session (its cookies, its CSRF token).
"""

from __future__ import annotations

import ipaddress
from typing import Final
from urllib.parse import quote, urlsplit

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ..integrations.http import Client, client_kind
from ..integrations.starlette._util import request_info
from .web import Demo

__all__ = ["OneAddressMiddleware"]

#: Methods that only read: the browser may simply be sent to the other address.
_SAFE: Final = frozenset({"GET", "HEAD"})


def _by_loopback_ip(host: str | None) -> bool:
    """Does a ``Host`` header name this machine by a loopback IP address (``127.0.0.1:8000``,
    ``[::1]:8000``)? A name (``localhost``), another address or a malformed header: no."""
    if not host:
        return False
    try:
        hostname = urlsplit(f"//{host}").hostname
        return hostname is not None and ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


class OneAddressMiddleware:
    """Installed when the demo is at localhost (:attr:`DemoSettings.at_localhost`): a
    request under a loopback IP address goes to the same path and query at localhost."""

    def __init__(self, app: ASGIApp, demo: Demo) -> None:
        self.app = app
        self.demo = demo

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _by_loopback_ip(Headers(scope=scope).get("host")):
            await self.app(scope, receive, send)
            return
        response = self.elsewhere(Request(scope, receive))
        await response(scope, receive, send)

    def elsewhere(self, request: Request) -> Response:
        base = self.demo.settings.base_url
        # The decoded path, quoted again: a raw request-target need not start with "/"
        # ("@evil.example/x", an absolute form), and glued to the base it would name
        # another host.
        path = quote(request.scope["path"], safe="/%:@!$&'()*+,;=-._~")
        if not path.startswith("/"):
            path = "/" + path
        query = request.scope.get("query_string", b"")
        target = base + path + (f"?{query.decode('latin-1')}" if query else "")
        if request.method in _SAFE:
            return RedirectResponse(target, status_code=303)
        text = (
            f"This demo is at {base}/. This request was sent to {request.url.netloc}, which"
            " your browser keeps other cookies for, so it was not carried out. Open the"
            " demo at its address and do it again there."
        )
        if client_kind(request_info(request)) is not Client.BROWSER:
            return PlainTextResponse(text, status_code=400)
        return self.demo.render(
            request,
            "message.html",
            status=400,
            title="Open the demo at its address",
            text=text,
            back=f"{base}/",
            back_text=f"Go to {base}/",
        )
