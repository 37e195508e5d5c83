"""Nothing lost to a re-authentication: a form POST kept while the user proves it is them.

A browser form that a re-authentication interrupts is suspended in the store (its
method, path and fields, never files, never more than :data:`MAX_BYTES`), bound to
the user, the session and the action, for :data:`TTL` seconds. After the
re-authentication the integration takes it back, once, and has the browser send it
again as a new POST, so the app's own CSRF check (and the guard, now satisfied) runs on
it as on any request. The replay carries a fresh CSRF token only when the integration
checked the kept request's own (``csrf_checked``): a forged form, which had none, is
sent again without one and refused as it would have been, never laundered by the
detour.

A kept form is also bound to the browser that sent it (``browser``: a random value
the integration keeps in a cookie of that browser; the store holds only its digest).
Someone holding a copy of the session cookie can make the guard keep a form, but not
make the owner's browser present their cookie: when the owner re-authenticates on the
link, the form is not resumed (:attr:`SuspendReason.OTHER_BROWSER`) and is gone.

The suspended request is a :class:`~stepup.records.Challenge` under the id prefix
:data:`PREFIX`: the store's ``take_challenge`` gives single use and expiry atomically.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import re
import secrets
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar, Final, TypeAlias

from ._flow import Flow, run, run_async
from .adapters.storage.base import AsyncStore, Store
from .clock import Clock, system_clock
from .errors import ConfigurationError, StoreUnavailableError
from .records import Challenge
from .redirects import UnsafeRedirectError, safe_return_path
from .subject import Subject

__all__ = [
    "MAX_BYTES",
    "PREFIX",
    "TTL",
    "AsyncSuspensions",
    "NotResumed",
    "NotSuspended",
    "Resumed",
    "SuspendReason",
    "Suspended",
    "SuspendedRequest",
    "Suspensions",
    "browser_digest",
    "is_resume_token",
    "is_secret_field",
    "secret_field_names",
]

#: The challenge id prefix of suspended requests (no other challenge uses it).
PREFIX: Final = "resume:"
#: How long a suspended request waits for its re-authentication.
TTL: Final = 600.0
#: The most a suspended request may hold: names and values, UTF-8, added up.
MAX_BYTES: Final = 64 * 1024
#: Field names whose values are never kept in the store (a password form is not
#: suspended: the user sends it again after re-authenticating). A name is read as words
#: (``newPassword``, ``new_password``, ``new-password``, ``NEW_PASSWORD`` alike, see
#: :func:`is_secret_field`), accents dropped (``contraseña`` is ``contrasena``); these are
#: found anywhere in its words written together, also inside a word (``mot_de_passe``,
#: ``neuesPasswort``). Besides English: German, French, Spanish, Dutch, Finnish, Swedish.
_SECRET_PARTS: Final = (
    "password", "passwd", "passphrase", "passcode", "secret", "mnemonic", "privkey",
    "passwort", "kennwort", "motdepasse", "contrasena", "wachtwoord", "salasana",
    "losenord", "creditcard", "debitcard", "kreditkarte", "kartennummer", "kortnummer",
    "kaartnummer", "numerotarjeta", "numerodecarte", "numerodicarta", "numerocartao",
)  # fmt: skip
#: Words that name a secret, a one-time code or card, bank or identity data on their own
#: (``senha``, ``haslo``, ``parola``: "password" in Portuguese, Polish, Italian/Turkish;
#: ``mdp``: French for one).
_SECRET_WORDS: Final = frozenset(
    {
        "pwd", "pw", "psw", "pswd", "pword", "pass", "mdp", "senha", "haslo", "hasło",
        "parola", "otp", "totp", "hotp", "tan", "pin", "code", "token", "jwt", "bearer",
        "recovery", "cvv", "cvc", "csc", "ssn", "pan", "iban", "apikey", "privatekey",
        "accesskey", "signingkey", "encryptionkey", "masterkey", "mfa", "ccnum",
        "ccnumber", "cardnum", "cardnumber", "accountnumber", "accountnum", "acctnum",
        "acctnumber", "passportnumber", "seedphrase", "ccv", "ccno", "cardno",
    }
)  # fmt: skip
#: Word endings that make a one-word compound secret (``otpcode``, ``newpin``, ``smsotp``,
#: ``authtoken``, ``newpwd``, ``oldpw``, ``newpass``).
_SECRET_ENDINGS: Final = ("code", "pin", "otp", "token", "pwd", "pw", "pass")
#: Words ending in ``pass`` that name no password (``compass``, ``encompass``, ``bypass``).
_PUBLIC_PASSES: Final = ("compass", "bypass", "overpass", "underpass", "trespass", "surpass")
#: Two words in a row that name a secret together.
_SECRET_PAIRS: Final = frozenset(
    {("api", "key"), ("private", "key"), ("access", "key"), ("card", "number"),
     ("card", "num"), ("cc", "number"), ("cc", "num"), ("credit", "card"),
     ("security", "answer"), ("social", "security"), ("seed", "phrase"), ("2", "fa"),
     ("signing", "key"), ("encryption", "key"), ("master", "key"), ("account", "number"),
     ("account", "num"), ("acct", "number"), ("acct", "num"), ("passport", "number"),
     ("card", "no"), ("cc", "no"), ("debit", "card")}
)  # fmt: skip
#: What a ``code`` may be besides a secret: with one of these just before it (``zip_code``,
#: ``postalCode``, ``countrycode``), it is an ordinary field.
_PUBLIC_CODES: Final = frozenset(
    {
        "zip", "postal", "post", "country", "currency", "language", "lang", "locale",
        "region", "area", "dial", "calling", "promo", "coupon", "discount", "referral",
        "product", "item", "sku", "bar", "color", "colour", "tax", "vat", "airport",
        "iata", "icao", "iso", "error", "status", "source", "cost", "department",
    }
)  # fmt: skip
#: Words that make a ``token`` an anti-forgery token, which the replay replaces anyway.
_FORGERY_WORDS: Final = frozenset({"csrf", "xsrf", "csrfmiddlewaretoken", "csrftoken"})


class SuspendReason(StrEnum):
    """Why a request was not suspended, or not resumed."""

    NOT_A_FORM = "not_a_form"  # not a POST of a urlencoded or multipart form
    FILES = "files"  # a file upload: never kept
    TOO_LARGE = "too_large"  # more than MAX_BYTES
    SECRET_FIELD = "secret_field"  # noqa: S105 (a reason, not a secret): a password or code field
    UNSAFE_PATH = "unsafe_path"  # not a path on this site
    UNAVAILABLE = "unavailable"  # the store failed
    UNKNOWN = "unknown"  # no such request: never kept, already resumed, or expired
    OTHER_USER = "other_user"  # kept for another user
    OTHER_SESSION = "other_session"  # kept for another session
    OTHER_ACTION = "other_action"  # kept for another action
    OTHER_BROWSER = "other_browser"  # sent by another browser (a copy of the session)


@dataclass(frozen=True, slots=True)
class SuspendedRequest:
    """A form POST waiting for its re-authentication (values kept out of reprs)."""

    method: str
    path: str
    fields: tuple[tuple[str, str], ...]
    action: str
    user_id: str
    session_id: str
    #: The kept request passed the app's CSRF check: its replay may carry a fresh token.
    csrf_checked: bool = False

    def __repr__(self) -> str:
        names = ", ".join(name for name, _ in self.fields)
        return f"SuspendedRequest({self.method} {self.path!r}, action={self.action!r}, [{names}])"


@dataclass(frozen=True, slots=True)
class Suspended:
    """Kept: ``token`` names it in the re-authentication's URL and form."""

    token: str

    ok: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class NotSuspended:
    reason: SuspendReason

    ok: ClassVar[bool] = False


@dataclass(frozen=True, slots=True)
class Resumed:
    request: SuspendedRequest

    ok: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class NotResumed:
    reason: SuspendReason

    ok: ClassVar[bool] = False


SuspendOutcome: TypeAlias = Suspended | NotSuspended
ResumeOutcome: TypeAlias = Resumed | NotResumed


def is_secret_field(name: str, *, also: Iterable[str] = ()) -> bool:
    """Is this a field whose value stepup never keeps (a password, a one-time or
    recovery code, a PIN, a token, card, bank or identity data)? The name is read as
    words however it is written (camelCase, snake_case, kebab-case, dotted, bracketed), so
    ``otpCode``, ``newPin`` and ``recovery-code`` are as secret as ``otp_code``. ``also``:
    the app's own secret names, read the same way: a name holding one's words written
    together, also inside a word, is secret, however either is written
    (``also=["kontonummer"]``: ``neue_kontonummer``, ``kontoNummer``, ``user[Konto-Nummer]``;
    ``also=["konto_nummer"]`` the same)."""
    return _is_secret(_words(name), secret_field_names(also))


def secret_field_names(names: Iterable[str]) -> tuple[str, ...]:
    """An app's own secret field names, their words written together, as
    :func:`is_secret_field` and :class:`Suspensions` read them (a setting is checked
    with it at start-up). A bare string (its letters would each be a name) or a name
    without a letter or digit in it is a :class:`~stepup.errors.ConfigurationError`: it
    would protect nothing, silently."""
    if isinstance(names, str | bytes) or not isinstance(names, Iterable):
        raise ConfigurationError("secret field names must be a list of names")
    joined: list[str] = []
    for name in names:
        words = _words(name) if isinstance(name, str) else []
        if not words:
            raise ConfigurationError(f"not a field name: {name!r}")
        joined.append("".join(words))
    return tuple(joined)


#: Plurals read as their word (``backup_codes``, ``api_tokens``, ``pins``).
_PLURALS: Final = ("codes", "tokens", "pins", "otps", "tans", "keys", "numbers", "passwords")


def _is_secret(words: list[str], also: tuple[str, ...]) -> bool:
    """Do these words (a field name's) name a secret, built in or the app's own?"""
    words = [word[:-1] if word.endswith(_PLURALS) else word for word in words]
    joined = "".join(words)
    if any(part in joined for part in _SECRET_PARTS):
        return True
    if any(pair in _SECRET_PAIRS for pair in itertools.pairwise(words)):
        return True
    if "security" in words and "answer" in words[words.index("security") :]:
        return True  # security_question_answer: the answer, whatever stands between
    if any(name in joined for name in also):
        return True
    return any(_secret_word(word, words[:i]) for i, word in enumerate(words))


def _secret_word(word: str, before: list[str]) -> bool:
    """Is ``word`` (after the words ``before`` it) a secret's name?"""
    if word == "token" or word.endswith("token"):
        return not _FORGERY_WORDS.intersection([*before, word.removesuffix("token")])
    if word == "code":
        return not (before and before[-1] in _PUBLIC_CODES)
    if word.endswith("code"):
        return word.removesuffix("code") not in _PUBLIC_CODES
    if word.endswith(_PUBLIC_PASSES):
        return False
    return word in _SECRET_WORDS or word.endswith(_SECRET_ENDINGS)


def _words(name: str) -> list[str]:
    """``name`` as casefolded words without accents: split at anything not a letter or
    digit, between a lower-case and an upper-case letter, before the last capital of a
    run followed by a lower-case letter (``OTPCode``: ``otp``, ``code``) and between
    letters and digits."""
    words: list[str] = []
    for chunk in re.split(r"[\W_]+", name):
        start = 0
        for i in range(1, len(chunk)):
            before, here = chunk[i - 1], chunk[i]
            after = chunk[i + 1] if i + 1 < len(chunk) else ""
            if (
                (before.islower() and here.isupper())
                or (before.isupper() and here.isupper() and after.islower())
                or (before.isdigit() != here.isdigit())
            ):
                words.append(chunk[start:i])
                start = i
        words.append(chunk[start:])
    plain = (_unaccented(word.casefold()) for word in words)
    return [word for word in plain if word]


def _unaccented(word: str) -> str:
    """``word`` without its accents (``contraseña``: ``contrasena``, ``lösenord``:
    ``losenord``); a letter that is not an accented one (``ł``) stays."""
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def browser_digest(binding: str) -> str:
    """What the store keeps of a browser's binding value: a digest, so nobody who reads
    the store can present the value itself."""
    data = f"stepup.resume.browser:{binding}".encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()


def _same_browser(kept: object, presented: str | None) -> bool:
    """Does the browser resuming a form present the binding it was kept with? A caller
    that binds nothing (``None``) resumes only forms kept without a binding; one that
    binds never resumes a form kept without one, nor with an empty value."""
    if presented is None:
        return kept is None
    if not presented or not isinstance(kept, str):
        return False
    return hmac.compare_digest(kept, browser_digest(presented))


def _size(fields: Iterable[tuple[str, str]]) -> int:
    return sum(
        len(n.encode("utf-8", "surrogatepass")) + len(v.encode("utf-8", "surrogatepass"))
        for n, v in fields
    )


_TOKEN: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")


def is_resume_token(value: object) -> bool:
    """Has ``value`` the shape of a suspended request's token (URL-safe, at most 64
    characters)? Whether one is kept is for :meth:`Suspensions.resume` to find out."""
    return isinstance(value, str) and _TOKEN.fullmatch(value) is not None


def _session_ids(
    subject: Subject, renewed_from: str | None, earlier: Iterable[str]
) -> tuple[str, ...]:
    """The ids of this one session a kept request may be bound to (never an empty one)."""
    ids = (subject.session_id, renewed_from, *earlier)
    return tuple(i for i in ids if isinstance(i, str) and i)


class _Flows:
    def __init__(
        self,
        store: object,
        *,
        clock: Clock = system_clock,
        ttl: float = TTL,
        max_bytes: int = MAX_BYTES,
        secret_fields: Iterable[str] = (),
    ) -> None:
        self.store = store
        self.clock = clock
        self.ttl = float(ttl)
        self.max_bytes = int(max_bytes)
        #: The app's own secret field names (``secret_fields``), words joined: a form
        #: with one is never kept, as with the names :func:`is_secret_field` knows.
        self.secret_fields = secret_field_names(secret_fields)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(ttl={self.ttl:g}s, max_bytes={self.max_bytes})"

    def _suspend(
        self,
        subject: Subject,
        action: str,
        method: str,
        path: str,
        fields: Iterable[tuple[str, str]],
        *,
        has_files: bool,
        is_form: bool,
        drop: frozenset[str],
        csrf_checked: bool,
        browser: str | None,
    ) -> Flow[SuspendOutcome]:
        if method.upper() != "POST" or not is_form:
            return NotSuspended(SuspendReason.NOT_A_FORM)
        if has_files:
            return NotSuspended(SuspendReason.FILES)
        try:
            safe = safe_return_path(path)
        except UnsafeRedirectError:
            return NotSuspended(SuspendReason.UNSAFE_PATH)
        kept: list[tuple[str, str]] = []
        budget = self.max_bytes
        for name, value in fields:
            if name in drop:
                continue
            if _is_secret(_words(name), self.secret_fields):
                return NotSuspended(SuspendReason.SECRET_FIELD)
            budget -= _size([(name, value)])
            if budget < 0:
                return NotSuspended(SuspendReason.TOO_LARGE)
            kept.append((name, value))
        now = self.clock()
        token = secrets.token_urlsafe(24)
        data: dict[str, object] = {
            "method": "POST",
            "path": safe,
            "action": action,
            "fields": [list(f) for f in kept],
        }
        if csrf_checked:
            data["csrf"] = True
        if browser is not None:
            data["browser"] = browser_digest(browser)
        challenge = Challenge(
            PREFIX + token, subject.user_id, subject.session_id, now, now + self.ttl, data
        )
        try:
            yield ("put_challenge", (challenge,))
        except StoreUnavailableError:
            return NotSuspended(SuspendReason.UNAVAILABLE)
        return Suspended(token)

    def _resume(
        self,
        subject: Subject,
        token: object,
        action: str,
        session_ids: tuple[str, ...],
        browser: str | None,
    ) -> Flow[ResumeOutcome]:
        if not is_resume_token(token):
            return NotResumed(SuspendReason.UNKNOWN)
        assert isinstance(token, str)
        try:
            found: Challenge | None = yield ("take_challenge", (PREFIX + token, self.clock()))
        except StoreUnavailableError:
            return NotResumed(SuspendReason.UNAVAILABLE)
        if found is None:
            return NotResumed(SuspendReason.UNKNOWN)
        # Taken either way: a request shown to the wrong user or session is gone for good.
        if found.user_id != subject.user_id:
            return NotResumed(SuspendReason.OTHER_USER)
        if found.session_id not in session_ids:
            return NotResumed(SuspendReason.OTHER_SESSION)
        data = found.data
        if not _same_browser(data.get("browser"), browser):
            return NotResumed(SuspendReason.OTHER_BROWSER)
        if data.get("action") != action:
            return NotResumed(SuspendReason.OTHER_ACTION)
        fields = data.get("fields")
        path = data.get("path")
        if not isinstance(fields, list) or not isinstance(path, str):
            return NotResumed(SuspendReason.UNKNOWN)
        pairs = tuple((str(f[0]), str(f[1])) for f in fields if isinstance(f, list) and len(f) == 2)
        checked = data.get("csrf") is True  # kept before this existed: not checked
        return Resumed(
            SuspendedRequest("POST", path, pairs, action, found.user_id, found.session_id, checked)
        )


class Suspensions(_Flows):
    """Suspended requests in a sync store. ``secret_fields``: the app's own names of
    secret fields (``["kontonummer"]``), never kept, besides those stepup knows."""

    def suspend(
        self,
        subject: Subject,
        action: str,
        method: str,
        path: str,
        fields: Iterable[tuple[str, str]],
        *,
        has_files: bool = False,
        is_form: bool = True,
        drop: Iterable[str] = (),
        csrf_checked: bool = False,
        browser: str | None = None,
    ) -> SuspendOutcome:
        """Keep this request for ``subject`` and ``action``. ``path`` is where it was
        sent (path and query), ``fields`` its form fields in order, ``drop`` the names
        never kept (the CSRF field). ``csrf_checked``: the request carried a CSRF token
        that held for this session, so its replay may carry a fresh one; leave it
        ``False`` unless the check really ran. ``browser``: the random value that binds
        the form to the browser that sent it (kept as a digest); only a browser that
        presents it again resumes the form."""
        flow = self._suspend(
            subject,
            action,
            method,
            path,
            fields,
            has_files=has_files,
            is_form=is_form,
            drop=frozenset(drop),
            csrf_checked=csrf_checked,
            browser=browser,
        )
        return run(flow, self.store)

    def resume(
        self,
        subject: Subject,
        token: object,
        action: str,
        *,
        renewed_from: str | None = None,
        earlier: Iterable[str] = (),
        browser: str | None = None,
    ) -> ResumeOutcome:
        """Take the request ``token`` names, once: only for the same user, the same session
        (``renewed_from``: the id the session had before the re-authentication renewed
        it; ``earlier``: the ids this same session had before earlier renewals, so a form
        another tab suspended before this tab's re-authentication still resumes), the
        same browser (``browser``: the binding value this browser presents, ``""`` for
        none; a form kept with a binding never resumes without it) and the same action."""
        ids = _session_ids(subject, renewed_from, earlier)
        return run(self._resume(subject, token, action, ids, browser), self.store)


class AsyncSuspensions(_Flows):
    """Suspended requests in an async store (a sync one works too)."""

    def __init__(
        self,
        store: AsyncStore | Store,
        *,
        clock: Clock = system_clock,
        ttl: float = TTL,
        max_bytes: int = MAX_BYTES,
        secret_fields: Iterable[str] = (),
    ) -> None:
        super().__init__(
            store, clock=clock, ttl=ttl, max_bytes=max_bytes, secret_fields=secret_fields
        )

    async def suspend(
        self,
        subject: Subject,
        action: str,
        method: str,
        path: str,
        fields: Iterable[tuple[str, str]],
        *,
        has_files: bool = False,
        is_form: bool = True,
        drop: Iterable[str] = (),
        csrf_checked: bool = False,
        browser: str | None = None,
    ) -> SuspendOutcome:
        """See :meth:`Suspensions.suspend`."""
        flow = self._suspend(
            subject,
            action,
            method,
            path,
            fields,
            has_files=has_files,
            is_form=is_form,
            drop=frozenset(drop),
            csrf_checked=csrf_checked,
            browser=browser,
        )
        return await run_async(flow, self.store)

    async def resume(
        self,
        subject: Subject,
        token: object,
        action: str,
        *,
        renewed_from: str | None = None,
        earlier: Iterable[str] = (),
        browser: str | None = None,
    ) -> ResumeOutcome:
        """See :meth:`Suspensions.resume`."""
        ids = _session_ids(subject, renewed_from, earlier)
        return await run_async(self._resume(subject, token, action, ids, browser), self.store)
