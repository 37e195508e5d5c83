"""Transaction-bound guards in the framework integrations, the same in every framework.

For a rule with ``bind_transaction`` (see :mod:`stepup.transactions`), the app tells the
guard what the request is about to do: a :class:`Transaction`, the parameters that name
the target (``{"workspace": "prod-eu"}``) and a description for the person
(``"Delete workspace %(workspace)s"``). The guard hashes them with the action
(:func:`stepup.transactions.transaction_digest`), asks the core with that digest and,
when a re-authentication is needed, keeps the transaction in the session: the re-auth
page shows what is being confirmed from there (never from the query string), and the
grant recorded after the re-authentication is bound to that digest. The core decides;
this module only carries the digest and its description between two requests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field, replace
from datetime import UTC, tzinfo
from typing import Any, Final, Protocol, TypeVar

from ..errors import ConfigurationError, MalformedInputError, StepupError
from ..i18n import AppCatalog, Message, lookup
from ..policy import Policy
from ..subject import Subject
from ..transactions import is_transaction_digest, transaction_digest
from .views import ReauthPage, note_renewal, renewed_subject

__all__ = [
    "PENDING_TRANSACTIONS",
    "Confirmation",
    "ConfirmedReauth",
    "InvalidTransactionError",
    "PendingTransaction",
    "Transaction",
    "TransactionExpiredError",
    "TransactionFunction",
    "confirming_page",
    "forget_transaction",
    "guard_transaction",
    "note_transaction",
    "pending_transaction",
]

R = TypeVar("R")
T_co = TypeVar("T_co", covariant=True)

#: The session key under which pending transactions wait for their re-authentication.
PENDING_TRANSACTIONS: Final = "_stepup_transactions"
#: How many different transactions a session keeps waiting at once (the oldest goes).
MAX_PENDING: Final = 4
#: How long a transaction waits for its re-authentication (seconds).
PENDING_TTL: Final = 900.0


@dataclass(frozen=True, slots=True)
class Transaction:
    """What one guarded request is about to do.

    ``params`` are the JSON values that name the target (``{"workspace": "prod-eu"}``):
    the grant is bound to the action and exactly these. ``description`` is what the
    re-auth page shows the person, a msgid whose ``%(name)s`` placeholders are filled
    from ``params`` (``"Delete workspace %(workspace)s"``); it is plain text, escaped
    on the page, translated with stepup's catalog when it has it (an app may pass a
    text its own gettext already translated).
    """

    params: Mapping[str, Any]
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.description, str):
            raise TypeError("a transaction's description must be a string")
        # A str subclass (markupsafe.Markup) would reach the page unescaped.
        object.__setattr__(self, "description", str.__str__(self.description))

    def digest(self, action: str, tenant_id: str | None = None) -> str:
        """:func:`stepup.transactions.transaction_digest` of ``action`` and ``params`` in
        ``tenant_id`` (the guards pass theirs: another tenant's ``prod-eu`` is another
        target). Raises
        :class:`InvalidTransactionError` when the parameters (usually taken from the
        request) cannot be hashed: the guards answer 400 ``invalid_transaction``."""
        try:
            return transaction_digest(action, self.params, tenant_id=tenant_id)
        except MalformedInputError as exc:
            raise InvalidTransactionError(str(exc)) from None


class InvalidTransactionError(MalformedInputError):
    """A guarded request's transaction parameters cannot be hashed (too large, nested too
    deeply, not JSON values; see :func:`stepup.transactions.transaction_digest`). The
    request is malformed: the guards answer 400 ``invalid_transaction`` and nothing is
    checked, spent or kept."""


#: ``(request) -> Transaction``: what a guarded request is about to do.
TransactionFunction = Callable[[R], Transaction]


def guard_transaction(policy: Policy, action: str, transaction: object) -> None:
    """At start-up: a rule bound to one transaction needs the guard to say which one
    (``transaction=``), and a ``transaction`` must be callable."""
    if transaction is not None and not callable(transaction):
        raise ConfigurationError("transaction= must be a function of the request")
    if transaction is None and policy.rule_for(action).bind_transaction:
        raise ConfigurationError(
            f"{action!r} is bound to one transaction: pass transaction=, a function of the"
            " request returning stepup.integrations.transaction.Transaction"
        )


@dataclass(frozen=True, slots=True)
class Confirmation(Message):
    """What the re-auth page says is being confirmed: the description in the page's
    locale with the parameters filled in (as text; the page escapes it)."""

    values: tuple[tuple[str, str], ...] = field(default=())

    def translate(
        self, locale: str | None, tz: tzinfo = UTC, catalog: AppCatalog | None = None
    ) -> str:
        if not self.msgid:  # no description: the parameters themselves
            return ", ".join(f"{name}: {value}" for name, value in self.values)
        text = lookup(self.msgid, locale, catalog)  # the app's own text: its catalog
        try:
            return text % dict(self.values)
        except (KeyError, ValueError, TypeError):  # a placeholder the params do not name
            return text

    def __bool__(self) -> bool:
        return bool(self.msgid or self.values)


@dataclass(frozen=True, slots=True)
class PendingTransaction:
    """A transaction waiting in the session for its re-authentication."""

    action: str
    digest: str
    confirmation: Confirmation


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def note_transaction(
    session: MutableMapping[str, Any],
    session_id: str,
    action: str,
    transaction: Transaction,
    digest: str,
    now: float,
) -> None:
    """Keep the transaction a refused request named, for the re-auth page and the grant
    recorded after it (bound to this stepup session id)."""
    saved = session.get(PENDING_TRANSACTIONS)
    pending = dict(saved) if isinstance(saved, dict) else {}
    pending.pop(digest, None)
    pending[digest] = {
        "session": session_id,
        "action": action,
        "at": now,
        "description": transaction.description,
        "values": {str(k): _shown(v) for k, v in transaction.params.items()},
    }
    while len(pending) > MAX_PENDING:
        # The oldest by its time, not by order: a session serialised with sorted keys
        # (Flask's cookie session) gives them back in the digests' order.
        del pending[min(pending, key=lambda key: _kept_at(pending[key]))]
    session[PENDING_TRANSACTIONS] = pending


def _kept_at(entry: object) -> float:
    """When a kept transaction was kept; an unreadable entry counts as the oldest."""
    at = entry.get("at") if isinstance(entry, dict) else None
    return float(at) if isinstance(at, int | float) and not isinstance(at, bool) else -1.0


def pending_transaction(
    session: Mapping[str, Any],
    session_id: str,
    action: str,
    digest: object,
    now: float,
    ttl: float = PENDING_TTL,
) -> PendingTransaction | None:
    """The transaction ``digest`` names when this session's guard kept it for ``action``
    less than ``ttl`` seconds ago; ``None`` otherwise (a digest from the query string
    or a form only picks among what the server kept)."""
    saved = session.get(PENDING_TRANSACTIONS)
    if not is_transaction_digest(digest) or not isinstance(saved, dict):
        return None
    assert isinstance(digest, str)
    entry = saved.get(digest)
    if (
        not isinstance(entry, dict)
        or entry.get("session") != session_id
        or entry.get("action") != action
    ):
        return None
    at = entry.get("at")
    if not isinstance(at, int | float) or isinstance(at, bool) or not 0 <= now - at < ttl:
        return None
    values = entry.get("values")
    pairs = tuple((str(k), str(v)) for k, v in (values.items() if isinstance(values, dict) else ()))
    description = entry.get("description")
    text = description if isinstance(description, str) else ""
    return PendingTransaction(action, digest, Confirmation(text, values=pairs))


def forget_transaction(session: MutableMapping[str, Any], digest: str) -> None:
    """The transaction was confirmed (or given up): it waits no longer."""
    saved = session.get(PENDING_TRANSACTIONS)
    if isinstance(saved, dict) and digest in saved:
        pending = dict(saved)
        del pending[digest]
        session[PENDING_TRANSACTIONS] = pending


class _Records(Protocol[T_co]):
    """``Reauth`` (answers the grant) or ``AsyncReauth`` (answers a coroutine)."""

    def record(
        self,
        subject: Subject,
        methods: Iterable[str],
        *,
        authenticated_at: float | None = ...,
        renewed_from: str | None = ...,
        level: str | None = ...,
        transaction: str | None = ...,
        signed: str | None = ...,
    ) -> T_co: ...


@dataclass(frozen=True, slots=True)
class ConfirmedReauth:
    """A successful re-authentication, to record once the integration renewed the
    session id (OWASP ASVS 5.0 section 7.2.4). Every framework ends a re-authentication
    the same way: :meth:`after_renewal`, ``record`` (awaited when async), ``done``.

    ``level``: what a provider's signed answer proved; ``transaction``: the digest of
    the one action this re-authentication confirmed; ``signed``: the transaction a
    passkey signed (``PasskeyResult.transaction``)."""

    subject: Subject  # the grant's subject, under the renewed id
    renewed_from: str | None  # the id it was renewed from (``None``: nothing renewed)
    methods: tuple[str, ...]
    at: float | None = None
    level: str | None = None
    transaction: str | None = None
    signed: str | None = None

    @classmethod
    def after_renewal(
        cls,
        before: Subject,
        after: Subject | None,
        methods: Iterable[str],
        *,
        at: float | None = None,
        level: str | None = None,
        transaction: str | None = None,
        signed: str | None = None,
    ) -> ConfirmedReauth:
        """``before``: the subject that re-authenticated; ``after``: the subject loaded
        again after the renewal (see :func:`~stepup.integrations.views.renewed_subject`)."""
        subject, renewed_from = renewed_subject(before, after)
        return cls(subject, renewed_from, tuple(methods), at, level, transaction, signed)

    def record(self, reauth: _Records[R]) -> R:
        """Record the grant: ``reauth.record`` with these values (await the answer of an
        ``AsyncReauth``)."""
        return reauth.record(
            self.subject,
            self.methods,
            authenticated_at=self.at,
            renewed_from=self.renewed_from,
            level=self.level,
            transaction=self.transaction,
            signed=self.signed,
        )

    def done(self, session: MutableMapping[str, Any] | None) -> tuple[Subject, str | None]:
        """After the grant was recorded: the confirmed transaction waits no longer in
        ``session`` (``None``: the app has no session), and the session remembers its old
        id, so a form another tab suspended under it still resumes. Answers the subject
        under the new id and the old id."""
        if self.transaction is not None and session is not None:
            forget_transaction(session, self.transaction)
        if self.renewed_from is not None and session is not None:
            note_renewal(session, self.subject.session_id, self.renewed_from)
        return self.subject, self.renewed_from


class TransactionExpiredError(StepupError):
    """The re-auth page was opened for a transaction-bound action, but this session keeps
    no such transaction: it expired, was already confirmed, or was never asked for (the
    views answer 400 with ``TEXT["transaction_expired"]``)."""


def confirming_page(
    policy: Policy, page: ReauthPage, pending: PendingTransaction | None
) -> ReauthPage:
    """The re-auth page showing what it confirms. Raises :class:`TransactionExpiredError`
    when the action's rule is bound to one transaction and the session keeps none for
    it (the page would record a grant nothing can spend)."""
    if pending is not None and pending.action == page.action:
        return replace(page, transaction=pending.digest, confirming=pending.confirmation)
    if page.action and policy.rule_for(page.action).bind_transaction:
        raise TransactionExpiredError("no transaction of this session waits for this action")
    return page
