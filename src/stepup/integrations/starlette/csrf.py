"""CSRF for the stepup forms: a double-submit token, signed and bound to the session.

Starlette has no CSRF protection of its own. The browser holds a random value in a
cookie; every form carries a token that signs (that value, the session it was issued
for) with itsdangerous. A POST passes only when the token's signature, age, cookie
value and session all match, so a token cannot be forged, replayed from another
browser, or carried over to another session.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Final

from itsdangerous import BadData, TimestampSigner, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from ...clock import Clock

__all__ = ["COOKIE_NAME", "FIELD_NAME", "CsrfProtection"]

COOKIE_NAME: Final = "stepup_csrf"
FIELD_NAME: Final = "csrf_token"
_MAX_TOKEN: Final = 1024


class CsrfProtection:
    def __init__(self, secret_key: str | bytes, *, clock: Clock, max_age: float = 8 * 3600) -> None:
        class _Signer(TimestampSigner):
            # Token age is measured on the injected clock, like every other age in stepup.
            def get_timestamp(self) -> int:
                return int(clock())

        self._serializer = URLSafeTimedSerializer(secret_key, salt="stepup.csrf", signer=_Signer)
        self.max_age = max_age

    def __repr__(self) -> str:
        return f"CsrfProtection(max_age={self.max_age:g}s)"

    def issue(self, request: Request, binding: str) -> tuple[str, str | None]:
        """A token for a form; the second item is a new cookie value to set, if needed."""
        cookie = request.cookies.get(COOKIE_NAME, "")
        fresh = None
        if not 32 <= len(cookie) <= 64 or not cookie.isascii():
            cookie = fresh = secrets.token_urlsafe(32)
        return self._serializer.dumps([cookie, binding]), fresh

    def verify(self, request: Request, token: object, binding: str) -> bool:
        cookie = request.cookies.get(COOKIE_NAME, "")
        if not cookie or not isinstance(token, str) or len(token) > _MAX_TOKEN:
            return False
        try:
            value = self._serializer.loads(token, max_age=int(self.max_age))
        except BadData:
            return False
        if not (
            isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)
        ):
            return False
        same_cookie = hmac.compare_digest(value[0].encode(), cookie.encode())
        same_session = hmac.compare_digest(value[1].encode(), binding.encode())
        return same_cookie and same_session

    @staticmethod
    def set_cookie(request: Request, response: Response, value: str) -> None:
        response.set_cookie(
            COOKIE_NAME,
            value,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
            path="/",
        )
