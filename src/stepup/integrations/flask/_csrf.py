"""CSRF tokens for the ready-made forms: the app's Flask-WTF when it has one, else stepup's.

Flask has no CSRF protection built in. When the app registered Flask-WTF's
``CSRFProtect`` (``app.extensions["csrf"]``), stepup's forms carry Flask-WTF's token in
Flask-WTF's field (``WTF_CSRF_FIELD_NAME``) and are checked by Flask-WTF: the app keeps
one token, one session key and one check for its forms and stepup's, and a form that
stepup replays after a re-authentication passes the app's own check. Otherwise (the
fallback) a random value lives in the (signed) session; forms carry it signed with
itsdangerous under the extension's key and a purpose salt. A POST is accepted only
when the form's token verifies and matches this session's value, so a token from
another session, another app or another purpose is worthless.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any, Final

from flask import current_app, g, request, session
from itsdangerous import BadSignature, URLSafeSerializer

__all__ = ["FIELD", "HEADERS", "CsrfTokens", "flask_wtf_of"]

#: The form field carrying stepup's own token (Flask-WTF's may be renamed).
FIELD: Final = "csrf_token"
#: The headers scripts may send the token in (``X-CSRF-Token``; Flask-WTF's default
#: ``X-CSRFToken`` too).
HEADERS: Final = ("X-CSRF-Token", "X-CSRFToken")
_SESSION_KEY: Final = "_stepup_csrf"
_MAX_TOKEN: Final = 512


def flask_wtf_of(app: Any) -> Any | None:
    """The app's Flask-WTF ``CSRFProtect``, when it registered one."""
    found = app.extensions.get("csrf")
    return found if type(found).__module__.startswith("flask_wtf") else None


class CsrfTokens:
    def __init__(self, secret_key: str | bytes) -> None:
        self._signer = URLSafeSerializer(secret_key, salt="stepup.csrf")

    def __repr__(self) -> str:
        return "CsrfTokens()"

    @staticmethod
    def _flask_wtf() -> bool:
        return flask_wtf_of(current_app) is not None

    @property
    def field(self) -> str:
        """The form field the token travels in."""
        if self._flask_wtf():
            return str(current_app.config.get("WTF_CSRF_FIELD_NAME", FIELD))
        return FIELD

    def token(self) -> str:
        """The token for forms of this session (made on first use)."""
        if self._flask_wtf():
            from flask_wtf.csrf import generate_csrf

            return str(generate_csrf())
        raw = session.get(_SESSION_KEY)
        if not isinstance(raw, str):
            raw = secrets.token_urlsafe(32)
            session[_SESSION_KEY] = raw
        return self._signer.dumps(raw)

    def submitted(self) -> str | None:
        """The token this request carries: the form field, else a header."""
        found = request.form.get(self.field)
        for header in HEADERS:
            found = found or request.headers.get(header)
        return found

    def valid(self, token: object) -> bool:
        if not isinstance(token, str) or len(token) > _MAX_TOKEN:
            return False
        if self._flask_wtf():
            from flask_wtf.csrf import validate_csrf
            from wtforms import ValidationError

            try:
                validate_csrf(token)
            except ValidationError:
                return False
            return True
        raw = session.get(_SESSION_KEY)
        if not isinstance(raw, str):
            return False
        try:
            value = self._signer.loads(token)
        except BadSignature:
            return False
        return isinstance(value, str) and hmac.compare_digest(value, raw)

    def kept(self) -> dict[str, Any]:
        """This session's value(s), as :meth:`restore` puts them back: for a sign-in
        undone in the same request (``AppState.hold_login``), which then keeps the
        session's token as if nobody had signed in."""
        keys = [_SESSION_KEY, self.field] if self._flask_wtf() else [_SESSION_KEY]
        return {key: session[key] for key in keys if key in session}

    def restore(self, kept: dict[str, Any]) -> None:
        self.rotate()
        session.update(kept)

    def rotate(self) -> None:
        """Forget this session's value (at sign-in, re-authentication and sign-out): the
        next form gets a new token. With Flask-WTF, its value is renewed the same way."""
        session.pop(_SESSION_KEY, None)
        if self._flask_wtf():
            field = self.field
            session.pop(field, None)
            g.pop(field, None)  # where generate_csrf keeps this request's token
