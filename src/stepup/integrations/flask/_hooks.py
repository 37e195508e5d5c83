"""What the app tells stepup: who is asking, in which tenant, with which password.

The names are the same in every framework integration. Flask hooks read the request
from Flask's context themselves, so they take only the facts they are about.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

from flask import Request

from ...reauth import Decision
from ...subject import Subject
from ..transaction import Transaction

__all__ = [
    "ContextFunction",
    "Hooks",
    "ResponseHandler",
    "ReturnTo",
    "TransactionFunction",
]

#: ``() -> Subject | None``: the signed-in user of this request, or ``None``.
SubjectLoader: TypeAlias = Callable[[], Subject | None]
#: ``(subject) -> tenant id | None`` (``None``: ``STEPUP_DEFAULT_TENANT``).
TenantLoader: TypeAlias = Callable[[Subject], str | None]
#: ``(user_id) -> stored hash | None`` (argon2, bcrypt, Werkzeug, Django's formats;
#: ``None``: no such user or no password).
PasswordHashLoader: TypeAlias = Callable[[str], str | None]
#: ``(user_id, new_hash)``: store a hash made with current parameters.
PasswordRehashSaver: TypeAlias = Callable[[str, str], None]
#: ``(subject, tenant_id) -> bool``: may this user change this tenant's settings?
TenantAdminCheck: TypeAlias = Callable[[Subject, str], bool]
#: ``(subject) -> bool``: may this user remove anyone's two-factor authentication?
#: ``(subject) -> bool``, or ``(subject, user_id) -> bool`` to answer for one user
#: (a multi-tenant app: an admin of one tenant is no admin of another's users).
FullAccessCheck: TypeAlias = Callable[[Subject], bool] | Callable[[Subject, str], bool]
#: ``(user_id) -> name | None``: how an authenticator app or a passkey names the account
#: (an e-mail address or username; ``None``: the user id).
AccountNamer: TypeAlias = Callable[[str], str | None]
#: ``(user_id, remember)``: finish a sign-in once the second factor passed.
LoginCompleter: TypeAlias = Callable[[str, bool], None]
#: ``(decision, request) -> response | None``: replace the 303/401/503 (``None``: keep it).
ResponseHandler: TypeAlias = Callable[[Decision, Request], Any]
#: ``() -> locale or None`` for stepup's pages (``None``: the request's Accept-Language).
LocaleSelector: TypeAlias = Callable[[], str | None]
#: ``(request) -> context`` for rules with a condition (e.g. production workspaces).
ContextFunction: TypeAlias = Callable[[Request], dict[str, Any]]
#: ``(request) -> Transaction``: what a transaction-bound view is about to do (the
#: parameters naming its target, e.g. ``request.view_args``, and a description).
TransactionFunction: TypeAlias = Callable[[Request], Transaction]
#: Where to come back after re-authenticating from a non-GET request.
ReturnTo: TypeAlias = str | Callable[[Request], str]


@dataclass(slots=True)
class Hooks:
    subject_loader: SubjectLoader | None = None
    tenant_loader: TenantLoader | None = None
    password_hash_loader: PasswordHashLoader | None = None
    password_rehash_saver: PasswordRehashSaver | None = None
    is_tenant_admin: TenantAdminCheck | None = None
    has_full_access: FullAccessCheck | None = None
    login_completer: LoginCompleter | None = None
    response_handler: ResponseHandler | None = None
    locale_selector: LocaleSelector | None = None
    account_name: AccountNamer | None = None
