"""CSRF tokens for the ready-made forms: Flask has none built in.

A random value lives in the (signed) session; forms carry it signed with
itsdangerous under the extension's key and a purpose salt. A POST is accepted only
when the form's token verifies and matches this session's value, so a token from
another session, another app or another purpose is worthless.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Final

from flask import session
from itsdangerous import BadSignature, URLSafeSerializer

__all__ = ["FIELD", "CsrfTokens"]

#: The form field (and, for scripts, the ``X-CSRF-Token`` header) carrying the token.
FIELD: Final = "csrf_token"
_SESSION_KEY: Final = "_stepup_csrf"


class CsrfTokens:
    def __init__(self, secret_key: str | bytes) -> None:
        self._signer = URLSafeSerializer(secret_key, salt="stepup.csrf")

    def __repr__(self) -> str:
        return "CsrfTokens()"

    def token(self) -> str:
        """The token for forms of this session (made on first use)."""
        raw = session.get(_SESSION_KEY)
        if not isinstance(raw, str):
            raw = secrets.token_urlsafe(32)
            session[_SESSION_KEY] = raw
        return self._signer.dumps(raw)

    def valid(self, token: object) -> bool:
        raw = session.get(_SESSION_KEY)
        if not isinstance(raw, str) or not isinstance(token, str) or len(token) > 512:
            return False
        try:
            value = self._signer.loads(token)
        except BadSignature:
            return False
        return isinstance(value, str) and hmac.compare_digest(value, raw)

    @staticmethod
    def rotate() -> None:
        """Forget this session's value (at sign-in and sign-out)."""
        session.pop(_SESSION_KEY, None)
