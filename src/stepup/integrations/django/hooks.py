"""Ready-made hooks for projects that use ``django.contrib.auth``.

``SUBJECT_LOADER`` and ``COMPLETE_SIGN_IN`` default to the first two.
:func:`django_password_hash` is for projects whose users sign in with
``django.contrib.auth``: it returns Django's stored hash, whatever hasher made it, and
stepup checks it with Django's own ``check_password``. Use no
``PASSWORD_REHASH_SAVER`` with it: Django rehashes at its own sign-in; a rehash saved
from here would change the session auth hash and sign the user out of every session.
"""

from __future__ import annotations

from typing import Any, Final

from django.core.exceptions import PermissionDenied, ValidationError

from ...subject import Subject
from ...twofactor import Channel
from ..views import session_id, session_identity

__all__ = [
    "django_auth_subject",
    "django_password_hash",
    "django_sign_in",
]


def django_auth_subject(request: Any) -> Subject | None:
    """``request.user`` in this browser session (``None`` when not signed in)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    session = request.session
    return Subject(str(user.pk), session_id(session), session_identity(session), Channel.WEB)


#: Set on the request while stepup's second step signs the user in: the authentication
#: backend the held sign-in was made with (``None``: unknown), for :func:`django_sign_in`.
SIGN_IN_BACKEND: Final = "_stepup_sign_in_backend"


def django_sign_in(request: Any, user_id: str) -> None:
    """Sign the user in with ``django.contrib.auth.login`` once the second factor passed:
    with the backend the held sign-in was made with, else (several
    ``AUTHENTICATION_BACKENDS``) the first that knows the user, as Django finds the user
    of a session."""
    from django.contrib.auth import login

    user = _user(user_id)
    if user is None or not getattr(user, "is_active", True):
        raise PermissionDenied("this account cannot sign in")
    login(request, user, backend=_backend(request, user))


def _backend(request: Any, user: Any) -> str | None:
    """The dotted path ``login()`` needs when several backends are configured."""
    from django.conf import settings
    from django.contrib.auth import load_backend

    paths = list(settings.AUTHENTICATION_BACKENDS)
    kept = getattr(request, SIGN_IN_BACKEND, None)
    if kept in paths:
        return str(kept)
    if len(paths) < 2:
        return None  # login() picks the only one
    for path in paths:
        get_user = getattr(load_backend(path), "get_user", None)
        if get_user is not None and get_user(user.pk) is not None:
            return str(path)
    return None  # login() then says that it cannot choose


def django_password_hash(user_id: str) -> str | None:
    """The user's hash from Django's password field, as Django stores it (``None`` when
    the user is unknown or has no usable password)."""
    from django.contrib.auth.hashers import is_password_usable

    user = _user(user_id)
    encoded = getattr(user, "password", None)
    if not isinstance(encoded, str) or not is_password_usable(encoded):
        return None
    return encoded


def _user(user_id: str) -> Any:
    from django.contrib.auth import get_user_model

    model = get_user_model()
    try:
        return model._default_manager.get(pk=model._meta.pk.to_python(user_id))
    except (model.DoesNotExist, ValidationError, ValueError, TypeError):
        return None
