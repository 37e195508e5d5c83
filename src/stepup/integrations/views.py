"""What the ready-made pages show and keep, the same in every framework.

These are view models and the small rules around them: plain data built from what
the core already decided, so a Flask, Django or Starlette view renders the same page
from the same facts and answers with the same status. Nothing here allows or refuses
anything on its own: the statuses follow the core's typed results, the JSON:API
helpers turn the core's typed tenant errors into response bodies, and the session
helpers keep what a framework's session must carry between two requests (the session
id grants are bound to, how the user signed in, a code proved before an SSO trip).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import math
import re
import secrets
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Final, Literal, Protocol
from urllib.parse import urlsplit, urlunsplit

from .._flow import Flow
from ..errors import (
    ConfigurationError,
    DeviceLimitError,
    InvalidAccountNameError,
    InvalidDeviceNameError,
    MalformedInputError,
    ManagedByConfigFileError,
    NotEnrolledError,
    PermissionDeniedError,
    StoreUnavailableError,
    UnknownDeviceError,
)
from ..events import EventBus, ReauthFailed
from ..i18n import N_, Message, Nn_, PluralMessage, translate
from ..policy import (
    RECOVERY_REGENERATE,
    SENSITIVE,
    Policy,
    with_recovery_rule,
    with_tenant_settings_rule,
)
from ..reauth import GRANT_METHODS, Decision, Offer, required_methods
from ..records import Challenge, Passkey, Tenant, TotpDeviceInfo
from ..redirects import UnsafeRedirectError, safe_return_path, safe_return_path_or_default
from ..resume import is_resume_token
from ..signin import SecondFactors
from ..subject import Identity, LoginMethod, Subject
from ..tenants import (
    JSONAPI_MEDIA_TYPE,
    TenantNotFoundError,
    TenantPatchError,
    tenant_document,
)
from ..twofactor import Channel, DeviceList, Enrolment
from ..verifier import VerifyReason, VerifyResult
from .http import HttpResponse, RequestInfo, decision_response, retry_later, with_challenge

__all__ = [
    "CANCEL_SIGN_IN",
    "EARLIER_IDS",
    "ENROLLING",
    "ENROLMENT_TTL",
    "FEW_RECOVERY_CODES",
    "FORM_MAX_BYTES",
    "OTP_PROOF",
    "RECOVERY_CODES_FILE",
    "RECOVERY_REGENERATE",
    "REPEATED",
    "SAML_FORM_MAX_BYTES",
    "SESSION_ID",
    "SIGNED_IN_WITH",
    "SSO_LEVEL_NOT_MET",
    "SSO_NOT_CONFIRMED",
    "TENANT_CONTENT_TYPES",
    "TEXT",
    "TRANSACTION_EXPIRED",
    "WAITING_SIGN_IN_PREFIX",
    "DeviceNameMessage",
    "DeviceRow",
    "EnrolmentPage",
    "ErrorField",
    "FirstStep",
    "FormStep",
    "KeptTransaction",
    "MessagePage",
    "PasskeyMessage",
    "PasskeyRow",
    "PasskeysPage",
    "ProviderOutcome",
    "ReauthPage",
    "RecoveryCodeMessage",
    "RecoveryCodesPage",
    "RepeatedField",
    "SSOAnswer",
    "TwoFactorPage",
    "VerifyPage",
    "abandon_waiting_sign_in",
    "app_root",
    "cancel_path",
    "code_refusal",
    "declared_positional",
    "default_policy",
    "device_name_refusal",
    "device_refusal",
    "earlier_session_ids",
    "enrolment_page",
    "form_code",
    "full_access_arguments",
    "held_sign_in_next",
    "held_user",
    "hold_waiting_sign_in",
    "hook_says_yes",
    "is_fresh",
    "jsonapi_error",
    "jsonapi_refusal",
    "kept_user_id",
    "manual_key",
    "note_renewal",
    "note_sign_in",
    "note_sso_trip",
    "oidc_callback_params",
    "password_error_field",
    "password_message",
    "password_step",
    "posted_name",
    "posted_value",
    "provider_for",
    "reauth_page",
    "refusal_status",
    "renew_session_id",
    "renewed_subject",
    "report_code_failure",
    "report_sso_refusal",
    "session_id",
    "session_identity",
    "sso_answer",
    "sso_level_request",
    "sso_otp_proved",
    "sso_otp_request",
    "sso_refusal_message",
    "sso_resume",
    "sso_resume_request",
    "sso_retry_query",
    "sso_transaction",
    "sso_transaction_request",
    "take_sso_trip",
    "take_waiting_sign_in",
    "tenant_accept_ok",
    "tenant_content_type_ok",
    "tenant_decision_response",
    "tenant_error_response",
    "tenant_method_not_allowed",
    "tenant_query_refusal",
    "tenant_request_refusal",
    "tenant_response",
    "throttled_message",
    "two_factor_message",
    "wants_cancel",
]

#: Refused SSO re-authentications are noted here (INFO; the reason, no secret).
logger = logging.getLogger("stepup.integrations")

#: Media types the tenant ``PATCH`` endpoint accepts (without parameters).
TENANT_CONTENT_TYPES: Final = frozenset({JSONAPI_MEDIA_TYPE, "application/json"})
#: An RFC 9110 token (a media type, a parameter name or an unquoted value).
_HTTP_TOKEN: Final = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"  # noqa: S105 (a pattern, no secret)
#: A media type and its parameters; an empty one (``;;``, a ``;`` at the end) is allowed,
#: as RFC 9110 section 5.6.6 allows it (``*( OWS ";" OWS [ parameter ] )``). Each ``;``
#: starts one repetition and spaces are matched once, so a failing match backtracks in
#: linear time.
_MEDIA_TYPE: Final = re.compile(
    rf"\s*({_HTTP_TOKEN}/{_HTTP_TOKEN})\s*((?:;\s*(?:{_HTTP_TOKEN}\s*=\s*(?:{_HTTP_TOKEN}|\"(?:[^\"\\]|\\.)*\")\s*)?)*)"
)
_PARAMETER: Final = re.compile(rf";\s*({_HTTP_TOKEN})\s*=\s*({_HTTP_TOKEN}|\"(?:[^\"\\]|\\.)*\")")
#: One element of a comma-separated header list (RFC 9110 section 5.6.1): a comma inside
#: a quoted string (section 5.6.4), e.g. in a ``profile`` URI list, does not end it. A
#: quote left open runs to the end of the header: matched once, never rescanned from
#: each later quote (which made the time grow with the square of the header's length).
_LIST_ELEMENT: Final = re.compile(r'(?:[^,"]|"(?:[^"\\]|\\.)*(?:"|\\?\Z))+')
#: A weight of zero (RFC 9110 section 12.4.2: ``qvalue = ( "0" [ "." 0*3DIGIT ] ) / ...``).
_ZERO_WEIGHT: Final = re.compile(r"0(?:\.0{0,3})?")
#: The longest ``Accept`` header read; servers cap whole headers lower (8 KiB is common).
_MAX_ACCEPT: Final = 8192


def default_policy() -> Policy:
    """The seed's catalog plus the actions the ready-made views guard."""
    return with_tenant_settings_rule(with_recovery_rule(Policy.default()))


def hook_says_yes(answer: object) -> bool:
    """Did an app's yes/no hook (``is_tenant_admin``, ``has_full_access``) say yes? Only
    ``True`` does: ``"false"``, ``"0"``, ``1`` or a user object must never grant a right."""
    return answer is True


def declared_positional(hook: Callable[..., object]) -> int:
    """How many positional parameters ``hook`` names (with or without a default), so a
    hook is called with what it declared it takes: a decorator's bare ``*args`` wrapper
    names none beyond its own, and is never called with more than the documented
    minimum. ``0`` when it has no signature to read (some builtins)."""
    try:
        parameters = inspect.signature(hook).parameters.values()
    except (TypeError, ValueError):
        return 0
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(1 for p in parameters if p.kind in positional)


def full_access_arguments(
    hook: Callable[..., object], subject: Any, user_id: str
) -> tuple[Any, ...]:
    """What the app's ``has_full_access`` hook is called with when an admin acts on
    ``user_id``'s two-factor: ``(subject, user_id)`` when it names a second positional
    parameter (``user_id=None`` too: a hook that checks the user's tenant must be told
    it), so a multi-tenant app can answer for this user only (an admin of one tenant is
    no admin of another's users); ``(subject,)`` otherwise (full access is then access
    to every user, as the seed has it). A decorator's bare ``*args`` wrapper names no
    second parameter and gets the one-argument form it was written around."""
    return (subject, user_id) if declared_positional(hook) >= 2 else (subject,)


#: Every text the ready-made views show outside a template, as msgids (translated when
#: shown, see :mod:`stepup.i18n`). The same key gives the same words in every framework.
TEXT: Final = {
    "unknown_action": N_("This page was called for an unknown action."),
    "csrf": N_("This form has expired. Go back, reload the page and try again."),
    "unavailable": N_("This cannot be done right now. Try again in a moment."),
    "in_config_file": N_("Two-factor authentication is set in the configuration file."),
    "account_name": N_(
        "Your account name cannot be put into an authenticator app: it is too long or holds"
        " characters an app cannot show. Ask the site's administrator."
    ),
    "sign_in_expired": N_("Your sign-in has expired. Please sign in again."),
    "already_on": N_("Two-factor authentication is already on."),
    "turned_off": N_("Two-factor authentication is off."),
    "removed": N_("Two-factor authentication was removed."),
    "admin_only": N_("Only an administrator with full access may do this."),
    "user_not_enrolled": N_("This user has no two-factor authentication."),
    "needs_enrolment": N_("This action needs two-factor authentication: turn it on first."),
    "use_provider": N_("Confirm with your sign-in provider instead."),
    "sso_unavailable": N_("Single sign-on is not available for this account."),
    "sso_other_provider": N_("Your session did not sign in through this provider."),
    "sso_unreachable": N_("Your identity provider cannot be reached right now."),
    "enrolment_expired": N_(
        "The set-up was not finished in time, or was replaced. Start again with a new key."
    ),
    "transaction_expired": N_(
        "This confirmation has expired or was already used. Go back and try the action again."
    ),
    "device_added": N_("The authenticator app was added."),
    "device_renamed": N_("The authenticator app was renamed."),
    "device_removed": N_("The authenticator app was removed."),
    "device_not_found": N_("That authenticator app is not on your account."),
    "device_limit": N_("You have as many authenticator apps as allowed. Remove one first."),
    "device_name": N_("Give the app a name of 1 to 64 characters, without control characters."),
    # A recovery code posted at sign-in for a user whose secret is in the configuration
    # file, which holds no recovery codes.
    "no_recovery_codes": N_(
        "This account has no recovery codes. Enter the code from your authenticator app."
    ),
}

#: How long a started enrolment (its secret, sealed in the store) is shown again after
#: a wrong code or a reload, before a new secret replaces it.
ENROLMENT_TTL: Final = 600.0
#: The session key holding the id of the TOTP enrolment this session began: only this
#: session is shown its pending secret again; signing out forgets it.
ENROLLING: Final = "_stepup_enrolling"
#: The blanks a paste or an autofill may leave around a code: ASCII space, tab, CR, LF.
_FORM_BLANKS: Final = " \t\r\n"


#: The most a form posted to stepup's own views may carry: its forms are a few short
#: fields (a password, a code, a CSRF token, a passkey's answer of a few KiB). Starlette
#: reads no field past it; Flask refuses a body past it before its form is read whole.
FORM_MAX_BYTES: Final = 64 * 1024
#: The most a SAML answer posted to the ACS may carry: a signed response with its
#: certificates and attributes can be far larger than stepup's own forms.
SAML_FORM_MAX_BYTES: Final = 1024 * 1024


class RepeatedField:
    """What a field of stepup's own forms reads as when it was sent more than once: none
    of its values, and not text, so the core refuses it as it refuses any malformed
    value (a password, a code, a recovery code, a CSRF token), with that field's error.
    Werkzeug's form reads the first of repeated values, Django's and Starlette's the
    last: picking either would let one framework accept a form another refuses. It is
    true, as a value that was sent: a recovery code sent twice is still a recovery code
    tried (and refused), not a form without one."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "RepeatedField()"


#: The one :class:`RepeatedField`.
REPEATED: Final = RepeatedField()


def posted_value(values: Sequence[object], default: object = "") -> object:
    """A form field's one value, from every value the form carries for it (``getlist``
    in every framework): ``default`` when absent, :data:`REPEATED` when it came more
    than once."""
    if not values:
        return default
    if len(values) > 1:
        return REPEATED
    return values[0]


def posted_name(values: Sequence[object]) -> str:
    """A name field (a device's) as text: sent more than once (or not as text), it is no
    name, which the core refuses as an empty one, and the field shows nothing back."""
    value = posted_value(values)
    return value if isinstance(value, str) else ""


def form_code(value: object) -> object:
    """A code field as posted, without the blanks around it (a pasted ``" 123456"``,
    ``"123456\\n"``), which the core rightly refuses as malformed input; anything inside
    is left to the core's check. A value that is not text (absent, an upload) is
    returned as it is, for the core to refuse."""
    return value.strip(_FORM_BLANKS) if isinstance(value, str) else value


def throttled_message(retry_at: float | None) -> Message:
    """Attempts are paused: say so, and until when when the core said."""
    if retry_at is None:
        return Message(N_("Too many attempts. Wait a while and try again."))
    return Message(N_("Too many attempts: trying again is paused until %(time)s."), retry_at)


def password_message(result: Any) -> Message:
    """What to tell the person about a password (a ``PasswordResult``): one text for
    every failure, naming the password and the way out (the person is already signed
    in: saying it was the password tells nothing about an account), except that a pause
    says so and until when (the pause is theirs, not a guess at an account), and that a
    password that could not be checked (the store is down) is not called wrong."""
    if result.ok:
        return Message("")
    reason = str(result.reason)
    if reason == "throttled":
        return throttled_message(result.retry_at)
    if reason == "unavailable":
        return Message(TEXT["unavailable"])
    return Message(N_("That password is not right. Check it and try again."))


def password_error_field(result: Any) -> ErrorField:
    """The field :func:`password_message` is about: the password, unless it could not
    be checked at all (nothing the person typed was wrong)."""
    return "" if str(result.reason) == "unavailable" else "password"


#: Which field of the re-authentication form an error is about (``""``: none, e.g.
#: "confirm with your provider instead"): the page marks and focuses only that one.
ErrorField = Literal["password", "code", ""]


@dataclass(frozen=True, slots=True)
class ReauthPage:
    """The re-authentication page for one subject and action.

    ``methods`` are the core's :func:`stepup.reauth.required_methods`; the page shows a
    password field for ``pwd``, a code field for ``otp`` and a button to the provider for
    ``oidc`` / ``saml``; ``otp`` alone (a rule that accepts TOTP alone) is the code field
    alone (:attr:`code_alone`). ``next`` is already a safe same-origin path; so is ``cancel``,
    where the Cancel link goes (see :func:`cancel_path`). ``description`` is the policy's
    msgid (translated on the page); ``needs_enrolment``: the rule asks for a code and the
    user has no second factor yet.
    """

    action: str
    description: str
    next: str
    methods: tuple[str, ...]
    provider: str = ""
    error: Message | str = ""
    cancel: str = "/"
    needs_enrolment: bool = False
    #: The token of a form POST suspended for this re-authentication (see
    #: :mod:`stepup.integrations.resume`); carried as a hidden field.
    resume: str = field(default="", repr=False)
    #: The rule accepts only a passkey and the user has none: add one first.
    needs_passkey: bool = False
    #: Nothing this session could prove reaches the rule's level (the core's
    #: ``Offer.unreachable``): the page says so instead of offering a method that would
    #: only ask again.
    unreachable: bool = False
    #: The minimum level of assurance the rule asks for (``""``: none); the SSO start
    #: asks the provider for it (see :func:`sso_level_request`).
    level: str = ""
    #: For a rule bound to one transaction: its digest (carried as a hidden field, and
    #: only ever one the session kept, see :mod:`stepup.integrations.transaction`) and
    #: what is being confirmed ("Delete workspace prod-eu"), shown escaped.
    transaction: str = ""
    confirming: Message | str = ""
    #: The account the password is for (the app's ``account_name`` hook, Django's
    #: username, else the user id): a hidden, read-only ``autocomplete="username"``
    #: field beside the password, so a password manager picks the right saved account.
    #: The server ignores it; ``""`` renders no such field.
    account: str = ""
    #: The field ``error`` is about: only it is marked invalid and takes the focus (a
    #: wrong code must not mark, nor send the focus back to, the right password).
    error_field: ErrorField = ""

    @property
    def password(self) -> bool:
        return "pwd" in self.methods

    @property
    def passkey(self) -> bool:
        """Offer "Use a passkey": the offered alternative is proved by a passkey alone."""
        return bool(self.methods) and set(self.methods) <= _PASSKEY_METHODS

    @property
    def totp(self) -> bool:
        return "otp" in self.methods

    @property
    def code_alone(self) -> bool:
        """The offered alternative is a TOTP code alone (``("otp",)``): the form is the
        code field alone, posted where the password form posts, and records ``otp``."""
        return self.totp and not self.password and not self.sso and not self.passkey

    @property
    def sso(self) -> str:
        """``"oidc"``, ``"saml"`` or ``""``: which provider start view the button calls."""
        for method in ("oidc", "saml"):
            if method in self.methods:
                return method
        return ""

    def with_error(self, error: Message | str, about: ErrorField = "") -> ReauthPage:
        """The same page, shown again with ``error`` about the field ``about`` (``""``:
        about no one field)."""
        return replace(self, error=error, error_field=about)


_PASSKEY_METHODS: Final = frozenset({"phr", "hwk", "swk", "user"})


def reauth_page(
    policy: Policy,
    subject: Subject,
    action: str,
    next_value: object,
    *,
    error: Message | str = "",
    cancel: str | None = None,
    needs_enrolment: bool = False,
    offer: Offer | None = None,
    home: str = "/",
) -> ReauthPage:
    """The page for ``action`` (``""``: no action named, ask as for a sensitive one).
    ``home``: where a missing or unsafe ``next`` (and ``cancel``) goes, the app's own
    root (:func:`app_root`).

    ``offer`` is the core's :meth:`stepup.reauth.Reauth.offer`: the page asks for the
    strongest way the user has (a passkey, the sign-in method with TOTP, ...); without
    it, the sign-in method (and TOTP when the rule asks). An unknown action raises
    :class:`stepup.errors.UnknownActionError` (the caller answers 400): the query
    string is attacker-chosen and must not pick a weaker rule.
    """
    rule = policy.rule_for(action) if action else SENSITIVE
    methods = offer.methods if offer is not None else required_methods(subject, rule)
    unreachable = offer is not None and offer.unreachable
    needs_passkey = (
        not unreachable
        and offer is not None
        and offer.needs_enrolment
        and bool(set(methods) & _PASSKEY_METHODS)
    )
    return ReauthPage(
        action=action,
        description=rule.description,
        next=safe_return_path_or_default(next_value, home),
        needs_passkey=needs_passkey,
        unreachable=unreachable,
        methods=methods,
        provider=subject.identity.provider,
        error=error,
        cancel=safe_return_path_or_default(cancel, home),
        needs_enrolment=needs_enrolment,
        level=rule.level or "",
    )


@dataclass(frozen=True, slots=True)
class PasskeyRow:
    """One passkey on the passkeys page: what a person recognises it by, no key material."""

    credential_id: str
    name: str
    created_at: float
    last_used_at: float | None
    synced: bool

    @classmethod
    def of(cls, passkey: Passkey) -> PasskeyRow:
        return cls(
            passkey.credential_id,
            passkey.name,
            passkey.created_at,
            passkey.last_used_at,
            passkey.backup_eligible,
        )

    @property
    def added(self) -> Message:
        return Message(N_("Added %(time)s"), self.created_at)

    @property
    def last_used(self) -> Message:
        if self.last_used_at is None:
            return Message(N_("Never used"))
        return Message(N_("Last used %(time)s"), self.last_used_at)


@dataclass(frozen=True, slots=True)
class PasskeysPage:
    """The passkeys page: the user's passkeys and the form to add one (its name).
    ``at_limit``: the user has ``max_passkeys_per_user``; the page says so instead of
    offering the form (a registration would be refused before any ceremony)."""

    passkeys: tuple[PasskeyRow, ...]
    error: Message | str = ""
    at_limit: bool = False

    @classmethod
    def of(
        cls, passkeys: Iterable[Passkey], error: Message | str = "", *, limit: int | None = None
    ) -> PasskeysPage:
        rows = tuple(PasskeyRow.of(p) for p in passkeys)
        return cls(rows, error, at_limit=limit is not None and len(rows) >= limit)


def _path_of(value: str) -> str:
    return value.split("?", 1)[0].split("#", 1)[0].rstrip("/") or "/"


def app_root(mounted_at: str) -> str:
    """The path of the app's own root, where a missing or unsafe return location goes:
    the prefix the app is served under (Django's script prefix, Flask's
    ``request.script_root``, Starlette's ``root_path``) with a ``/`` after it, so an app
    at ``/sub`` never sends anyone to ``/``, outside it; ``/`` when it has none, or one
    that is no safe path."""
    return safe_return_path_or_default(mounted_at.rstrip("/") + "/")


def cancel_path(
    *,
    next_path: str,
    reauth_path: str,
    configured: str | None = None,
    posted: object = None,
    referer: str = "",
    origin: str = "",
    home: str = "/",
) -> str:
    """Where the re-auth page's Cancel link goes: never back to the guarded page
    (``next_path``), which would only send the person to the prompt again, nor to the
    re-auth page itself.

    In order: the app's ``configured`` place; the value the form carried (``posted``,
    when the page is shown again after a wrong password); the page the person came from
    (``referer``) when it is on this ``origin`` (``scheme://host``); else ``home`` (the
    app's root, :func:`app_root`).
    Each candidate must pass :func:`stepup.redirects.safe_return_path`.
    """
    refused = {_path_of(next_path), _path_of(reauth_path)}

    def usable(value: object) -> str | None:
        try:
            path = safe_return_path(value)
        except UnsafeRedirectError:
            return None
        return None if _path_of(path) in refused else path

    if configured is not None:
        return safe_return_path_or_default(configured, home)
    candidates: list[object] = [posted]
    if referer and origin:
        try:
            parts = urlsplit(referer)
        except ValueError:  # a malformed header (``https://host[``): not a place to go
            parts = urlsplit("")
        if parts.netloc and f"{parts.scheme}://{parts.netloc}".lower() == origin.lower():
            candidates.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    for candidate in candidates:
        found = usable(candidate) if candidate else None
        if found is not None:
            return found
    return safe_return_path_or_default(home)


def manual_key(secret: str) -> str:
    """The secret in groups of four, for typing into an app that cannot scan."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


@dataclass(frozen=True, slots=True)
class EnrolmentPage:
    """Shown while enrolling, and again after a wrong code: the QR code (an ``<svg>``
    element), the same secret for manual entry, and the settings an app needs when
    typing it in (the device's own: ``algorithm`` is worth saying when not SHA1, which
    manual entry assumes)."""

    account: str
    issuer: str
    digits: int
    period: int
    qr_svg: str = field(repr=False)
    manual_key: str = field(repr=False)
    uri: str = field(repr=False)
    error: Message | str = ""
    #: Adding another device (its name), not turning two-factor on.
    adding: bool = False
    name: str = ""
    algorithm: str = "SHA1"

    def with_error(self, error: Message | str) -> EnrolmentPage:
        return replace(self, error=error)


def enrolment_page(
    enrolment: Enrolment,
    *,
    account: str,
    issuer: str,
    error: Message | str = "",
    adding: bool = False,
) -> EnrolmentPage:
    """The page for ``enrolment``, with the settings of its own device, as its Key URI."""
    return EnrolmentPage(
        account=account,
        issuer=issuer,
        digits=enrolment.digits,
        period=enrolment.period,
        qr_svg=enrolment.qr_svg(),
        manual_key=manual_key(enrolment.secret),
        uri=enrolment.uri,
        error=error,
        adding=adding,
        name=enrolment.name if adding else "",
        algorithm=enrolment.algorithm,
    )


#: The name of the file the recovery codes page's Download saves.
RECOVERY_CODES_FILE: Final = "recovery-codes.txt"


@dataclass(frozen=True, slots=True)
class RecoveryCodesPage:
    """Ten single-use codes, shown this once (send it with ``Cache-Control: no-store``),
    with the ways to keep them: Download, Copy and Print (``stepup-codes.js``, from
    :meth:`file_text`; without JavaScript a person prints or writes them down). ``issuer``, the
    site the codes are for, and ``made_at``, when they were made, head the file, so a
    person with codes of several sites, or an old set, can tell them apart."""

    codes: tuple[str, ...] = field(repr=False)
    issuer: str = ""
    made_at: float | None = None

    @property
    def file_name(self) -> str:
        """The name of the file Download saves."""
        return RECOVERY_CODES_FILE

    @property
    def made(self) -> Message | str:
        """ "Made <time>", in the page's locale (``t(page.made)``), or nothing."""
        return "" if self.made_at is None else Message(N_("Made %(time)s"), self.made_at)

    def file_text(self, *lines: str) -> str:
        """The text Download saves and Copy copies: ``lines`` (the template's heading,
        translated) first, the codes after a blank line, one a line. The page already
        holds the codes (the server keeps none in the clear), and the script saves it
        through a ``blob:`` URL: a ``data:`` URL holding them would stay in the
        browser's download history, the codes readable there long after the file is
        gone."""
        return "\n".join([*(line for line in lines if line), "", *self.codes, ""])


@dataclass(frozen=True, slots=True)
class VerifyPage:
    """The sign-in's second step, with the error of the last try: the code form when
    the user has TOTP, "Use a passkey" when they have a passkey, and the recovery code
    form when they have recovery codes (:meth:`of` the core's answer)."""

    error: Message | str = ""
    totp: bool = True
    passkey: bool = False
    recovery: bool = True

    @classmethod
    def of(cls, factors: SecondFactors, error: Message | str = "") -> VerifyPage:
        return cls(error, factors.totp, factors.passkeys > 0, factors.recovery)

    @property
    def recovery_error(self) -> bool:
        """The error is about a recovery code: the page opens the recovery code form
        and marks its field, not the authenticator app's."""
        return isinstance(self.error, RecoveryCodeMessage)

    @property
    def passkey_error(self) -> bool:
        """The error is about a passkey: no field is marked, the passkey's button has
        the focus."""
        return isinstance(self.error, PasskeyMessage)

    @property
    def code_error(self) -> bool:
        """The error is about the authenticator app's code (its field is marked)."""
        return bool(self.error) and not (self.recovery_error or self.passkey_error)


@dataclass(frozen=True, slots=True)
class DeviceRow:
    """One TOTP device on the two-factor page: its name and times, never its secret.
    A device from before devices had names shows as "Authenticator app"."""

    device_id: str
    name: Message | str
    created_at: float
    last_used_at: float | None

    @classmethod
    def of(cls, device: TotpDeviceInfo) -> DeviceRow:
        name: Message | str = device.name or Message(N_("Authenticator app"))
        return cls(device.device_id, name, device.created_at, device.last_used_at)

    @property
    def added(self) -> Message:
        return Message(N_("Added %(time)s"), self.created_at)

    @property
    def last_used(self) -> Message:
        if self.last_used_at is None:
            return Message(N_("Never used"))
        return Message(N_("Last used %(time)s"), self.last_used_at)


#: At most this many recovery codes left, the two-factor page warns and says to make new
#: ones (of the ten a set has).
FEW_RECOVERY_CODES: Final = 3
_CODES_LEFT: Final = Nn_("%(num)d recovery code left.", "%(num)d recovery codes left.")


@dataclass(frozen=True, slots=True)
class TwoFactorPage:
    """The two-factor settings page: on (with the user's devices and how many recovery
    codes they have left), off, or set in the configuration file."""

    enrolled: bool
    managed_by_file: bool = False
    devices: tuple[DeviceRow, ...] = ()
    error: Message | str = ""
    #: ``None``: not known (the page then says nothing about them).
    recovery_codes_left: int | None = None

    @classmethod
    def of(
        cls,
        devices: Iterable[TotpDeviceInfo],
        *,
        managed_by_file: bool = False,
        error: Message | str = "",
    ) -> TwoFactorPage:
        """The page for the devices :meth:`~stepup.twofactor.TwoFactor.devices` listed,
        with the count of recovery codes the same read found."""
        rows = tuple(DeviceRow.of(d) for d in devices)
        left = devices.recovery_codes_left if isinstance(devices, DeviceList) else None
        return cls(bool(rows), managed_by_file, rows, error, left if rows else None)

    @property
    def recovery_codes(self) -> Message | str:
        """How many recovery codes are left ("3 recovery codes left."), in the plural
        form of the page's locale; nothing when not known."""
        left = self.recovery_codes_left
        if left is None:
            return ""
        if left <= 0:
            return Message(N_("No recovery codes left."))
        return PluralMessage.of(_CODES_LEFT, left)

    @property
    def few_recovery_codes(self) -> bool:
        """Few codes are left, or none: the page warns, beside "Make new recovery codes"."""
        left = self.recovery_codes_left
        return left is not None and left <= FEW_RECOVERY_CODES

    @property
    def recovery_codes_warning(self) -> Message | str:
        """What to do when few codes are left, or none; nothing otherwise."""
        if not self.few_recovery_codes:
            return ""
        if self.recovery_codes_left == 0:
            return Message(
                N_(
                    "Make new ones now, so you can still sign in if you lose your"
                    " authenticator app."
                )
            )
        return Message(N_("Make new ones before they run out: each code signs you in only once."))

    def typed_name(self, device_id: str | None) -> str | None:
        """What the person typed into the name field the error is about, shown there
        again: the rename field of ``device_id``, or the new app's name field for
        ``None``. ``None`` for every other field, which the page leaves unmarked."""
        error = self.error
        if isinstance(error, DeviceNameMessage) and error.device_id == device_id:
            return error.typed
        return None


@dataclass(frozen=True, slots=True)
class DeviceNameMessage(Message):
    """A name the core refused for an authenticator app (:func:`device_name_refusal`):
    the two-factor page marks the one field it was typed in (the rename field of
    ``device_id``, the new app's name field when ``device_id`` is ``None``) and shows
    ``typed`` there again."""

    device_id: str | None = None
    typed: str = ""


def device_name_refusal(
    exc: Exception, typed: object, device_id: str | None = None
) -> DeviceNameMessage | None:
    """The message for a device name the core refused (:class:`InvalidDeviceNameError`),
    at the field ``typed`` came from: ``device_id``'s rename field, or the new app's name
    field (``None``). ``None`` for any other error (:func:`device_refusal` names those).
    A lone surrogate becomes "?", so the page can be sent as UTF-8."""
    if not isinstance(exc, InvalidDeviceNameError):
        return None
    shown = typed.encode("utf-8", "replace").decode("utf-8") if isinstance(typed, str) else ""
    return DeviceNameMessage(TEXT["device_name"], device_id=device_id, typed=shown)


def device_refusal(exc: Exception) -> tuple[int, str] | None:
    """The status and message (a :data:`TEXT` key) for an error of a device operation
    (add, confirm, rename, remove); ``None`` for any other exception (let it propagate).
    The core decided; this only names it."""
    if isinstance(exc, InvalidDeviceNameError):
        return 400, "device_name"
    if isinstance(exc, InvalidAccountNameError):
        return 400, "account_name"
    if isinstance(exc, UnknownDeviceError):
        return 404, "device_not_found"
    if isinstance(exc, DeviceLimitError):
        return 409, "device_limit"
    if isinstance(exc, ManagedByConfigFileError):
        return 409, "in_config_file"
    if isinstance(exc, NotEnrolledError):
        return 400, "enrolment_expired"
    if isinstance(exc, StoreUnavailableError):
        return 503, "unavailable"
    return None


#: The title of a page that says one thing.
SECURITY_CHECK: Final = N_("Security check")


@dataclass(frozen=True, slots=True)
class MessagePage:
    """A short page that says one thing (``text``, a msgid), with an optional link
    (``link``, labelled ``link_label``, a msgid: "Try again" unless told)."""

    text: Message | str
    title: Message | str = SECURITY_CHECK
    link: str = ""
    link_label: Message | str = N_("Try again")  # noqa: RUF009 (N_ returns its argument)

    @classmethod
    def about(cls, text: str, *, link: str = "", sign_in: str = "", home: str = "") -> MessagePage:
        """The page for ``text`` (a :data:`TEXT` msgid). The texts that leave nothing to
        try again have a title of their own (a page told apart by its title, WCAG 2.4.2)
        and a way on: an expired sign-in links to the app's sign-in page (``sign_in``),
        an unknown action back to the app's root (``home``). Any other text is titled
        "Security check", with ``link`` ("Try again") when there is one."""
        if text == TEXT["sign_in_expired"]:
            return cls(text, N_("Sign-in expired"), sign_in, N_("Sign in again"))
        if text == TEXT["unknown_action"]:
            return cls(text, N_("Unknown action"), home, N_("Back to the start page"))
        return cls(text, link=link)


_TWO_FACTOR_MESSAGES: Final = {
    VerifyReason.OK: "",
    VerifyReason.INVALID: N_("That code is not right. Check your authenticator app and try again."),
    # The seed: a code can be used once; wait for the next one.
    VerifyReason.REPLAYED: N_("That code was already used. Wait for the next code and try again."),
    VerifyReason.MALFORMED: N_("Enter the code from your authenticator app (digits only)."),
    VerifyReason.UNAVAILABLE: N_("Codes cannot be checked right now. Try again in a moment."),
}


_RECOVERY_INVALID: Final = N_(
    "That recovery code is not right, or it was already used. Check it and try again."
)
_RECOVERY_MESSAGES: Final = {
    VerifyReason.OK: "",
    VerifyReason.INVALID: _RECOVERY_INVALID,
    VerifyReason.REPLAYED: _RECOVERY_INVALID,  # a used recovery code is not right any more
    VerifyReason.MALFORMED: N_(
        "That is not a recovery code. Enter one of the codes you saved when you turned on"
        " two-factor authentication."
    ),
    VerifyReason.UNAVAILABLE: _TWO_FACTOR_MESSAGES[VerifyReason.UNAVAILABLE],
}


@dataclass(frozen=True, slots=True)
class RecoveryCodeMessage(Message):
    """What to tell the end user about a recovery code (see :func:`two_factor_message`):
    the sign-in page shows it at the recovery code field."""


@dataclass(frozen=True, slots=True)
class PasskeyMessage(Message):
    """What to tell the end user about a passkey at the sign-in's second step: the page
    marks no field (the person typed nothing) and focuses "Use a passkey"."""


def two_factor_message(result: VerifyResult, *, recovery: bool = False) -> Message:
    """What to tell the end user about a code (``recovery``: a recovery code, answered
    as a :class:`RecoveryCodeMessage`); empty when it was accepted. A pause says until
    when (``retry_at``)."""
    if result.reason is VerifyReason.THROTTLED:
        message = throttled_message(result.retry_at)
    elif recovery:
        message = Message(_RECOVERY_MESSAGES[result.reason])
    else:
        message = Message(_TWO_FACTOR_MESSAGES[result.reason])
    if recovery:
        return RecoveryCodeMessage(message.msgid, message.retry_at)
    return message


_STATUS_BY_REASON: Final[Mapping[str, int]] = {"throttled": 429, "unavailable": 503}


def refusal_status(reason: str) -> int:
    """The status of a page that refuses a code, a password or a provider's answer,
    from the core's or the adapter's reason: 429 while throttled, 503 when it could not
    be checked (the store or the provider is down: fail closed), else 400."""
    return _STATUS_BY_REASON.get(reason, 400)


# The password re-authentication form's steps (sync frameworks) --------------------


@dataclass(frozen=True)
class FormStep:
    """Where a re-authentication form's POST ends: ``methods`` proved (record them), or
    ``page`` shown again with ``status``."""

    methods: tuple[str, ...] = ()
    page: ReauthPage | None = None
    status: int = 200


def code_refusal(
    page: ReauthPage,
    verify: Callable[[], VerifyResult],
    *,
    failed: Callable[[VerifyResult], object] | None = None,
) -> FormStep | None:
    """The page again when the form's second-factor code does not verify (``verify``
    runs the check; ``failed`` is told the refused result, once); ``None`` when it did.
    Not enrolled: the page again, 400."""
    try:
        result = verify()
    except NotEnrolledError:
        return FormStep(page=page, status=400)
    if result.ok:
        return None
    if failed is not None:
        failed(result)
    error = page.with_error(two_factor_message(result), "code")
    return FormStep(page=error, status=refusal_status(result.reason))


def password_step(
    page: ReauthPage,
    subject: Subject,
    password: object,
    *,
    passwords: Any,
    load_hash: Callable[[str], str | None] | None,
    save_rehash: Callable[[str, str], object] | None,
    verify_code: Callable[[], VerifyResult],
    missing_loader: str,
) -> FormStep:
    """The password form's sequence, as Flask's and Django's views run it: the password
    (a rehash saved when the hasher asks), then the code when the rule asks for one. A
    page that offers the code alone (:attr:`ReauthPage.code_alone`) checks the code
    alone, through the same verification and throttle, and proves ``otp``; any other
    page without a password field (a provider's, a passkey's) is the page again, 400.
    ``missing_loader`` is the ``ConfigurationError`` message naming the framework's
    setting when no hash loader is configured."""

    def failed(result: VerifyResult) -> None:
        events, clock = getattr(passwords, "events", None), getattr(passwords, "clock", None)
        report_code_failure(events, clock, subject.user_id, result)

    if page.code_alone:
        return code_refusal(page, verify_code, failed=failed) or FormStep(methods=("otp",))
    if not page.password:
        return FormStep(page=page, status=400)
    if load_hash is None:
        raise ConfigurationError(missing_loader)
    result = passwords.verify(subject, password, load_hash(subject.user_id))
    if result.new_hash is not None and save_rehash is not None:
        save_rehash(subject.user_id, result.new_hash)
    if not result.ok:
        error = page.with_error(password_message(result), password_error_field(result))
        return FormStep(page=error, status=refusal_status(result.reason))
    if not page.totp:
        return FormStep(methods=("pwd",))
    return code_refusal(page, verify_code, failed=failed) or FormStep(methods=("pwd", "otp"))


def report_code_failure(events: object, clock: object, user_id: str, result: VerifyResult) -> None:
    """A code refused at a re-authentication (the password form, or before an SSO trip)
    is a failed re-authentication, as its success is a ReauthSucceeded: ReauthFailed with
    method ``otp``, on the app's bus and clock, once per attempt, in every framework."""
    if isinstance(events, EventBus) and callable(clock):
        events.emit(ReauthFailed(at=clock(), user_id=user_id, method="otp", reason=result.reason))


# The tenant settings endpoint (JSON:API) -------------------------------------------


def _jsonapi(status: int, document: dict[str, Any], locale: str | None = None) -> HttpResponse:
    """The document as the response body, each error's ``title`` in ``locale``."""
    errors = document.get("errors")
    if locale is not None and isinstance(errors, list):
        errors = [
            {**e, "title": translate(e["title"], locale)}
            if isinstance(e, dict) and isinstance(e.get("title"), str)
            else e
            for e in errors
        ]
        document = {**document, "errors": errors}
    body = json.dumps(document, separators=(",", ":")).encode()
    headers = {"Content-Type": JSONAPI_MEDIA_TYPE, "Cache-Control": "no-store"}
    return HttpResponse(status, with_challenge(status, headers), body)


def jsonapi_error(
    status: int,
    code: str,
    title: str,
    locale: str | None = None,
    *,
    source: Mapping[str, str] | None = None,
) -> HttpResponse:
    """A JSON:API error document with one error (``title`` a msgid, shown in ``locale``;
    ``source`` what in the request it is about, e.g. ``{"parameter": name}``)."""
    error: dict[str, Any] = {"status": str(status), "code": code, "title": title}
    if source is not None:
        error["source"] = dict(source)
    return _jsonapi(status, {"errors": [error]}, locale)


def tenant_content_type_ok(content_type: str) -> bool:
    """Is this ``Content-Type`` one the ``PATCH`` endpoint reads?

    ``application/vnd.api+json`` as JSON:API 1.1 has it: no parameter but ``profile``
    (``ext`` names an extension, and this server supports none; ``charset`` or any
    other parameter is a 415 by the spec). ``application/json`` with no parameter but
    ``charset=utf-8`` (the body is read as UTF-8, nothing else). A header that does not
    parse as a media type is refused too."""
    found = _MEDIA_TYPE.fullmatch(content_type)
    if found is None:
        return False
    media_type = found.group(1).lower()
    if media_type not in TENANT_CONTENT_TYPES:
        return False
    for name, raw in _PARAMETER.findall(found.group(2)):
        name = name.lower()
        value = raw[1:-1] if raw.startswith('"') else raw
        if media_type == JSONAPI_MEDIA_TYPE:
            if name != "profile":
                return False
        elif name != "charset" or value.lower() != "utf-8":
            return False
    return True


def tenant_accept_ok(accept: str | None) -> bool:
    """Can the endpoint answer a client that sent this ``Accept``? JSON:API 1.1: when
    it names ``application/vnd.api+json`` and every instance of it carries a media type
    parameter other than ``profile`` (``ext`` names an extension, and none is
    supported), the answer is a 406. No ``Accept``, or one without the JSON:API media
    type, is fine (the answer is JSON:API anyway)."""
    if not accept:
        return True
    if len(accept) > _MAX_ACCEPT:
        return False  # no client needs that much to ask for JSON:API: a 406
    instances = 0
    for media_range in _LIST_ELEMENT.findall(accept):
        found = _MEDIA_TYPE.fullmatch(media_range)
        if found is None:
            if media_range.split(";", 1)[0].strip().lower() == JSONAPI_MEDIA_TYPE:
                instances += 1  # named, with parameters that do not parse
            continue
        if found.group(1).lower() != JSONAPI_MEDIA_TYPE:
            continue
        instances += 1
        names = []
        refused = False
        for name, value in _PARAMETER.findall(found.group(2)):
            if name.lower() == "q":  # the weight ends the media type's own parameters
                # RFC 9110 section 12.4.2: a weight of 0 means "not acceptable".
                refused = _ZERO_WEIGHT.fullmatch(value.strip('"')) is not None
                break
            names.append(name.lower())
        if not refused and all(name == "profile" for name in names):
            return True
    return instances == 0


def tenant_request_refusal(
    signed_in: bool,
    content_type: str,
    locale: str | None = None,
    accept: str | None = None,
    query: Iterable[str] = (),
) -> HttpResponse | None:
    """Why the ``PATCH`` cannot be read at all (401 nobody signed in, 415 a body that is
    not JSON, 406 an ``Accept`` that rules out every JSON:API answer, see
    :func:`tenant_accept_ok`, 400 a query parameter, see :func:`tenant_query_refusal`),
    or ``None`` to go ahead. The 415 is also the CSRF defence: a cross-site form cannot
    send a JSON media type. Titles are in ``locale`` (English by default); ``query`` is
    the names of the request's query parameters, as the framework parsed them."""
    if not signed_in:
        return jsonapi_error(401, "unauthenticated", N_("Sign in first"), locale)
    if not tenant_content_type_ok(content_type):
        title = N_("Send application/vnd.api+json or application/json")
        return jsonapi_error(415, "unsupported_media_type", title, locale)
    if not tenant_accept_ok(accept):
        title = N_("Accept application/vnd.api+json without parameters other than profile")
        return jsonapi_error(406, "not_acceptable", title, locale)
    return tenant_query_refusal(query, locale)


def tenant_query_refusal(query: Iterable[str], locale: str | None = None) -> HttpResponse | None:
    """400 ``invalid_query_parameter`` naming the first query parameter
    (``source.parameter``), or ``None`` when there is none. The endpoint knows no query
    parameter, and JSON:API 1.1 has a server refuse one it does not know how to process
    (``include``, ``sort``, ``fields[...]``, ``page[...]``, ``filter[...]`` and the
    app's own alike) rather than ignore it: a client that asked for a narrower or wider
    answer, or meant another request, is told instead of having the change applied."""
    name = next(iter(query), None)
    if name is None:
        return None
    title = N_("The tenant settings endpoint takes no query parameters")
    source = {"parameter": name}
    return jsonapi_error(400, "invalid_query_parameter", title, locale, source=source)


def tenant_response(tenant: Tenant) -> HttpResponse:
    """200 with the tenant's resource document."""
    return _jsonapi(200, tenant_document(tenant))


#: The title of the tenant endpoint's 503 (``unavailable``), whichever store read or
#: write could not answer: the grant read of the re-authentication check, or the write.
_TENANT_UNAVAILABLE: Final = N_("Tenant settings cannot be changed right now")


def tenant_error_response(exc: Exception, locale: str | None = None) -> HttpResponse | None:
    """The JSON:API response for an error of ``TenantSettings.patch``; ``None`` for any
    other exception (let it propagate). Titles are in ``locale`` (English by default)."""
    if isinstance(exc, TenantPatchError | TenantNotFoundError):
        return _jsonapi(exc.status, exc.document, locale)
    if isinstance(exc, PermissionDeniedError):
        title = N_("Only a tenant admin may change tenant settings")
        return jsonapi_error(403, "forbidden", title, locale)
    if isinstance(exc, StoreUnavailableError):
        return retry_later(jsonapi_error(503, "unavailable", _TENANT_UNAVAILABLE, locale))
    return None


def tenant_method_not_allowed(locale: str | None = None) -> HttpResponse:
    """405 for every method but ``PATCH`` on the tenant resource (``OPTIONS`` and
    ``HEAD`` included): ``Allow: PATCH`` and a JSON:API error document
    (``method_not_allowed``), as every other refusal of the endpoint."""
    title = N_("Tenant settings can only be changed with PATCH")
    refused = jsonapi_error(405, "method_not_allowed", title, locale)
    return HttpResponse(405, {**refused.headers, "Allow": "PATCH"}, refused.body)


def tenant_decision_response(
    decision: Decision, request: RequestInfo, *, reauth_url: str
) -> HttpResponse | None:
    """The tenant endpoint's answer to the core's decision on ``tenant.settings.update``:
    ``None`` when it allows the ``PATCH``, else the answer every guarded JSON endpoint
    gives (:func:`stepup.integrations.http.decision_response`, which decides its status
    and headers) as a JSON:API error document (:func:`jsonapi_refusal`)."""
    generic = decision_response(decision, request, reauth_url=reauth_url)
    return None if generic is None else jsonapi_refusal(generic, request.locale)


def jsonapi_refusal(generic: HttpResponse, locale: str | None = None) -> HttpResponse:
    """A guarded JSON endpoint's refusal (``401 reauth_required``, ``403
    reauth_unreachable``, ``503 reauth_unavailable``) as a JSON:API 1.1 error document:
    one error object with ``status`` (a string), ``code`` (the JSON body's ``error``),
    the ``title`` it carries (already in the client's language), ``links.about`` (the
    re-auth page, when there is one) and ``meta`` (every other field of the JSON body,
    ``reauth_url`` included). The status and every header stay (``WWW-Authenticate``,
    ``Retry-After``, ``Cache-Control: no-store``); the ``Content-Type`` becomes
    ``application/vnd.api+json``. A store outage is the tenant endpoint's one 503
    (``unavailable``, as when the write fails, titled in ``locale``). Nothing is
    decided here. An answer that is no JSON error (a browser's 303 to the re-auth page:
    the endpoint reads only JSON media types, so none comes here) is returned as it is."""
    if generic.headers.get("Content-Type") != "application/json":
        return generic
    meta = json.loads(generic.body)
    code, title = meta.pop("error"), meta.pop("title")
    if generic.status == 503:
        code, title = "unavailable", translate(_TENANT_UNAVAILABLE, locale)
    error: dict[str, Any] = {"status": str(generic.status), "code": code, "title": title}
    if isinstance(meta.get("reauth_url"), str):
        error["links"] = {"about": meta["reauth_url"]}
    if meta:
        error["meta"] = meta
    body = json.dumps({"errors": [error]}, separators=(",", ":")).encode()
    headers = {**generic.headers, "Content-Type": JSONAPI_MEDIA_TYPE, "Cache-Control": "no-store"}
    return HttpResponse(generic.status, headers, body)


def provider_for(providers: Mapping[str, Any], subject: Subject) -> Any:
    """The SSO adapter for the provider the session signed in with, or the only one
    configured when the session's identity names none; ``None`` if there is none."""
    found = providers.get(subject.identity.provider)
    if found is None and not subject.identity.provider and len(providers) == 1:
        found = next(iter(providers.values()))
    return found


# Re-authentication at an OIDC or SAML provider ---------------------------------------

#: Shown when the provider's answer does not prove a fresh login of this user.
SSO_NOT_CONFIRMED: Final = N_("Your identity provider did not confirm it is you. Please try again.")
#: Shown when the provider confirmed the user, but at a lower level of assurance than
#: the action needs (the adapters' ``acr_not_met`` / ``authn_context_not_met``).
SSO_LEVEL_NOT_MET: Final = N_(
    "Your identity provider confirmed it is you, but not as strongly as this action needs"
    " (for example without a second factor). Please try again and use the stronger sign-in."
)
#: The adapters' refusals for a level lower than asked for.
_LEVEL_NOT_MET: Final = frozenset({"acr_not_met", "authn_context_not_met"})
#: The trip took longer than the challenge's lifetime (``expired``).
SSO_EXPIRED: Final = N_(
    "You took too long to sign in at your identity provider. Please start again."
)
#: The user cancelled at the provider (OIDC ``access_denied``).
SSO_CANCELLED: Final = N_(
    "The sign-in was cancelled at your identity provider. Start again to continue."
)
#: The provider answered with an error of its own (an OIDC error other than
#: ``access_denied``, a SAML error status): nothing was signed in there.
SSO_PROVIDER_REFUSED: Final = N_(
    "Your identity provider did not sign you in: the sign-in was cancelled or failed"
    " there. Please try again."
)
#: The provider confirmed another account than the one this session signed in with.
SSO_OTHER_ACCOUNT: Final = N_(
    "You signed in at your identity provider as a different account than the one you"
    " are signed in with here. Please try again with the same account."
)
#: The provider answered from an earlier login instead of asking the user again.
SSO_NOT_ASKED_AGAIN: Final = N_(
    "Your identity provider did not ask you to sign in again, so it could not confirm"
    " it is you just now. Please try again; if this keeps happening, sign out at your"
    " identity provider first."
)
#: What each refusal of the OIDC and SAML adapters tells the person (the adapters'
#: ``OIDCReason`` and ``SAMLReason`` values; ``provider_error`` depends on the provider's
#: error code, see :func:`sso_refusal_message`). Forged, replayed or broken answers
#: keep the generic text: a person can do nothing about them but try again, and an
#: attacker learns nothing from it.
_SSO_MESSAGES: Final[Mapping[str, str]] = {
    "expired": SSO_EXPIRED,
    "wrong_subject": SSO_OTHER_ACCOUNT,
    "unavailable": TEXT["unavailable"],
    "missing_auth_time": SSO_NOT_ASKED_AGAIN,
    "stale_auth_time": SSO_NOT_ASKED_AGAIN,
    "stale_authn_instant": SSO_NOT_ASKED_AGAIN,
    "acr_not_met": SSO_LEVEL_NOT_MET,
    "authn_context_not_met": SSO_LEVEL_NOT_MET,
    "provider_error": SSO_PROVIDER_REFUSED,
    "idp_error": SSO_PROVIDER_REFUSED,
    # Tampered, replayed, forged or unreadable: the generic text.
    "unknown_state": SSO_NOT_CONFIRMED,
    "unknown_request": SSO_NOT_CONFIRMED,
    "token_error": SSO_NOT_CONFIRMED,
    "invalid_token": SSO_NOT_CONFIRMED,
    "invalid_signature": SSO_NOT_CONFIRMED,
    "unsigned": SSO_NOT_CONFIRMED,
    "malformed": SSO_NOT_CONFIRMED,
    "invalid_conditions": SSO_NOT_CONFIRMED,
}
#: The provider error codes of RFC 6749 and OpenID Connect Core that may appear in a
#: log line: the provider's ``error`` is attacker-reachable text, so another value is
#: logged as ``other``, and ``error_description`` never is.
_PROVIDER_ERROR_CODES: Final = frozenset(
    {
        "access_denied",
        "account_selection_required",
        "consent_required",
        "interaction_required",
        "invalid_client",
        "invalid_grant",
        "invalid_request",
        "invalid_request_object",
        "invalid_request_uri",
        "invalid_scope",
        "login_required",
        "registration_not_supported",
        "request_not_supported",
        "request_uri_not_supported",
        "server_error",
        "temporarily_unavailable",
        "unauthorized_client",
        "unsupported_grant_type",
        "unsupported_response_type",
    }
)


class ProviderOutcome(Protocol):
    """What the OIDC and SAML adapters' outcomes both offer."""

    @property
    def ok(self) -> bool: ...

    @property
    def reason(self) -> str: ...

    @property
    def method(self) -> str: ...

    @property
    def return_to(self) -> str | None: ...


def sso_level_request(policy: Policy, page: ReauthPage, kind: str) -> dict[str, Any]:
    """What the SSO start asks the provider for, as keyword arguments of the adapter's
    ``start``: the ``acr_values`` (OIDC) or ``authn_context`` class references (SAML)
    that reach the level the page's rule needs, strongest first (each protocol's order
    of preference); nothing when
    the rule asks for no level or the level names no value for this protocol (the
    provider's configured default then applies)."""
    levels = policy.levels
    if not page.level or levels is None or page.level not in levels:
        return {}
    if kind == "oidc":
        acr_values = levels.acr_values(page.level)
        return {"acr_values": list(acr_values)} if acr_values else {}
    if kind == "saml":
        class_refs = levels.saml_class_refs(page.level)
        return {"authn_context": list(class_refs)} if class_refs else {}
    return {}


def sso_transaction_request(page: ReauthPage) -> dict[str, Any]:
    """The transaction the SSO trip confirms, as a keyword argument of the adapter's
    ``start``: it is stored with the trip's own single-use state (two trips in one
    session never swap theirs). Passed only for a transaction-bound page, so that an
    app's own adapter without the keyword keeps working for every other rule."""
    return {"transaction": page.transaction} if page.transaction else {}


def sso_resume_request(page: ReauthPage) -> dict[str, Any]:
    """The suspended form the SSO trip resumes (the page's ``resume`` token), as a
    keyword argument of the adapter's ``start``: it is stored with the trip's own
    single-use state, so two trips started in two tabs each send their own form again.
    Passed only when the page carries one (an app's own adapter takes ``**kwargs``)."""
    return {"resume": page.resume} if is_resume_token(page.resume) else {}


def sso_otp_request(proved: bool) -> dict[str, Any]:
    """That a TOTP code was proved at the SSO start view, as a keyword argument of the
    adapter's ``start``: it is stored with the trip's own single-use state and comes
    back on the outcome of that trip alone (:func:`sso_otp_proved`), so no other answer
    (a forged callback, a replayed one) can use it up. Passed only when a code was
    proved, so that an app's own adapter without the keyword keeps working for every
    rule that asks for none."""
    return {"otp_proved": True} if proved else {}


#: The parameters of an OIDC redirect back that the adapter reads (RFC 6749 4.1.2 and
#: 4.1.2.1, RFC 9207): each "MUST NOT be included more than once".
_OIDC_CALLBACK_PARAMS: Final = frozenset({"state", "code", "iss", "error", "error_description"})


def oidc_callback_params(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The OIDC callback's query, one value per name, the same in every framework (Flask
    would read the first of a repeated name, Django and Starlette the last). When one of
    the protocol's parameters comes more than once the answer is malformed: its
    ``state`` is left out, so the adapter refuses it as an unknown trip before the store
    is asked, and no pending trip is used up."""
    params: dict[str, str] = {}
    repeated = False
    for name, value in pairs:
        repeated = repeated or (name in params and name in _OIDC_CALLBACK_PARAMS)
        params[name] = value
    if repeated:
        params.pop("state", None)
    return params


def held_user(
    login_id: str, subject: Subject | None, factors_of: Callable[[str], SecondFactors]
) -> tuple[str, SecondFactors]:
    """Whom a sign-in that skipped stepup's second step is held for, and their second
    factors (Django's ``hold_sign_in``, Flask's ``hold_login``). ``login_id`` is the
    framework's id of the user just signed in (``str(user.pk)``, Flask-Login's
    ``get_id()``), ``subject`` what the app's subject loader answers now. The app may
    know the user by another id (a username; Flask-Security-Too apps the primary key,
    since its ``get_id()`` changes at every password change): a web subject's id comes
    first, and a second factor under either id holds the sign-in. A subject the loader
    answers for an API key or a bearer token on the request is never believed alone."""
    ids = [login_id]
    if subject is not None and subject.channel is Channel.WEB:
        ids.insert(0, subject.user_id)
    needed = SecondFactors()
    for candidate in dict.fromkeys(ids):
        needed = factors_of(candidate)
        if needed:
            return candidate, needed
    return ids[0], needed


def held_sign_in_next(
    status: int, location: str | None, method: str, asked: str | None, scheme: str, host: str | None
) -> str | None:
    """Where the second step of a sign-in held during this request sends the user (before
    the safe-path check): the view's own redirect (``status``, ``location``), else after
    a ``GET`` answered with a page the page it asked for (``asked``; ``None`` on stepup's
    own second-step pages), else ``None`` (the pending sign-in's default). An absolute
    URL of this very site (``scheme``, ``host``; ``None`` when the host is unknown)
    counts as its path."""
    if not 300 <= status < 400:
        location = None
    if location is None and method == "GET":
        location = asked
    if not location:
        return None
    parts = urlsplit(location)
    if host is not None and parts.scheme == scheme and parts.netloc == host:
        return urlunsplit(("", "", parts.path or "/", parts.query, ""))
    return location


def sso_otp_proved(outcome: object) -> bool:
    """Does this outcome say that a code was proved for its very trip before leaving
    (``otp`` then joins the grant)? Only an ``ok`` outcome of a trip the adapter matched
    says so; anything but ``True`` there is no proof."""
    return getattr(outcome, "ok", False) is True and getattr(outcome, "otp_proved", False) is True


def sso_resume(outcome: object) -> str | None:
    """The suspended form's token the adapter handed back for this very trip (``None``
    for none); the store gives it back only to this user, session and action, once."""
    token = getattr(outcome, "resume", "")
    return token if isinstance(token, str) and is_resume_token(token) else None


def sso_retry_query(next_path: str, outcome: object) -> dict[str, str]:
    """The re-auth page's query for another try after a refused SSO answer: ``next``,
    and what this very trip carried (its action, so the rule and level stay the same;
    the suspended form's token, which is only taken after a success; the transaction),
    so a cancelled or refused trip loses none of them."""
    query = {"next": next_path}
    action = getattr(outcome, "action", "")
    if isinstance(action, str) and action:
        query["action"] = action
    token = sso_resume(outcome)
    if token is not None:
        query["resume"] = token
    transaction = sso_transaction(outcome)
    if transaction:
        query["transaction"] = transaction
    return query


def sso_transaction(outcome: object) -> str:
    """The digest the adapter handed back for this very trip ("" for none); the
    integration accepts it only while the session's guard still keeps it."""
    transaction = getattr(outcome, "transaction", "")
    return transaction if isinstance(transaction, str) else ""


#: The reason of an answer the provider confirmed but stepup refuses: the transaction
#: its trip confirms no longer waits in this session (see :func:`sso_answer`).
TRANSACTION_EXPIRED: Final = "transaction_expired"


class KeptTransaction(Protocol):
    """What the session's guard still keeps of a transaction (the integrations'
    ``PendingTransaction``): its digest."""

    @property
    def digest(self) -> str: ...


@dataclass(frozen=True, slots=True)
class SSOAnswer:
    """What a provider's answer comes to. ``ok``: record a grant with ``methods`` at
    ``authenticated_at`` and ``level`` (the level the verified ``acr`` or
    ``AuthnContextClassRef`` proves, ``None``: none declared), bound to ``transaction``
    (the digest of the one action it confirms: a single-use proof; ``None``: the
    session's grant), then go to ``next``. Otherwise show ``message`` with ``status``,
    with a link to the re-auth page for ``next`` when ``retry`` (nothing is worth trying
    again there when the transaction expired), and report ``reason``: the adapter's, or
    stepup's own (``transaction_expired``)."""

    ok: bool
    next: str
    status: int = 303
    methods: tuple[str, ...] = ()
    authenticated_at: float | None = None
    level: str | None = None
    message: str = SSO_NOT_CONFIRMED
    reason: str = ""
    transaction: str | None = None
    retry: bool = True


def sso_answer(
    outcome: ProviderOutcome,
    proved_code: bool,
    policy: Policy | None = None,
    *,
    home: str = "/",
    kept: KeptTransaction | None = None,
) -> SSOAnswer:
    """Only an ``ok`` outcome grants anything; ``otp`` joins the provider's method when
    ``proved_code``: the outcome says a code was proved for its very trip before
    leaving (:func:`sso_otp_proved`). With ``policy``'s
    levels, the grant keeps the level the provider's signed answer proves; a provider
    that answered at a lower level than asked is refused with its own message.
    ``home``: where a missing or unsafe ``return_to`` goes (:func:`app_root`).

    A trip that confirms one transaction (:func:`sso_transaction`) grants only a
    single-use proof for it, and only while this session's guard still keeps it:
    ``kept`` is what the integration's ``pending_transaction`` finds for the trip's
    action and digest now. When it no longer waits (it expired, or another tab
    confirmed it, while the person was at the provider) the answer is refused as the
    password form refuses it (400 ``transaction_expired``) and nothing is recorded: never
    the session's grant in its place (the person confirmed that one action, nothing
    else)."""
    next_path = safe_return_path_or_default(outcome.return_to, home)
    if not outcome.ok:
        reason = str(outcome.reason)
        message = sso_refusal_message(reason, _provider_error(outcome))
        return SSOAnswer(False, next_path, refusal_status(reason), message=message, reason=reason)
    confirms = sso_transaction(outcome)
    if confirms and (kept is None or kept.digest != confirms):
        return SSOAnswer(
            False,
            next_path,
            refusal_status(TRANSACTION_EXPIRED),
            message=TEXT[TRANSACTION_EXPIRED],
            reason=TRANSACTION_EXPIRED,
            retry=False,
        )
    methods = (outcome.method, "otp") if proved_code else (outcome.method,)
    return SSOAnswer(
        True,
        next_path,
        methods=methods,
        authenticated_at=_login_time(outcome),
        level=_proved_level(outcome, policy),
        transaction=confirms or None,
    )


def sso_refusal_message(reason: str, provider_error: str | None = None) -> str:
    """What a person is told when the adapter refused the provider's answer for
    ``reason`` (``provider_error``: the provider's OAuth error code, if any). A reason
    no adapter of stepup gives (an app's own adapter) gets the generic text."""
    if reason == "provider_error" and provider_error == "access_denied":
        return SSO_CANCELLED
    return _SSO_MESSAGES.get(reason, SSO_NOT_CONFIRMED)


#: Refusals of an answer that matched no re-authentication this session began: forged,
#: replayed from elsewhere, or unreadable before it could be matched.
_UNMATCHED: Final = frozenset({"unknown_state", "unknown_request", "malformed"})
#: SAML refusals the adapter gives before it matches the answer to a request (its
#: signature is checked first): they may be anyone's forgery, so they count as this
#: user's failure only while this session has a SAML trip they can belong to.
_SAML_BEFORE_MATCHING: Final = frozenset({"unsigned", "invalid_signature", "idp_error"})


def report_sso_refusal(
    events: EventBus,
    user_id: str,
    outcome: ProviderOutcome,
    at: float,
    *,
    trip_began: bool,
    reason: str | None = None,
) -> None:
    """Note a refused SSO re-authentication as a password refusal is noted: a
    :class:`~stepup.events.ReauthFailed` event with the provider's method and the
    adapter's reason, and one INFO line on the ``stepup.integrations`` logger. Neither
    holds the answer's token, code, NameID or the provider's own text (only a known
    OAuth error code is logged), nor the user id (an app's may be an e-mail address).
    An answer that matched no re-authentication of this session (``unknown_state``,
    ``unknown_request``, ``malformed``) is only a DEBUG line: anyone's page can send a
    browser there. So is a SAML answer refused before it could be matched (``unsigned``,
    ``invalid_signature``, ``idp_error``) unless ``trip_began``: this session has a
    pending SAML trip it can belong to (see :func:`take_sso_trip`). A store failure
    (``unavailable``) and an answer naming another issuer (``invalid_token`` with
    ``detail="iss_parameter"``, RFC 9207) are logged, not events. ``reason``: the
    answer's (:attr:`SSOAnswer.reason`; ``None``: the outcome's). stepup's own refusal of
    an answer the provider confirmed (``transaction_expired``: the person did prove who
    they are) is logged, not an event either, as the password form's is none."""
    reason = str(outcome.reason) if reason is None else reason
    method = str(outcome.method)
    error = _provider_error(outcome)
    logged_error = error if error is None or error in _PROVIDER_ERROR_CODES else "other"
    unmatched = method == "saml" and reason in _SAML_BEFORE_MATCHING and not trip_began
    if reason in _UNMATCHED or unmatched:
        # No trip this session started: a cross-site page can send anyone's browser
        # here, so it is no failure of this user's (no event an audit or lockout counts).
        logger.debug("%s answer matching no re-authentication of this session: %s", method, reason)
        return
    # Another issuer's answer (RFC 9207 mix-up): the provider's or an attacker's doing,
    # not a failed login of this user's, so it is logged but counted nowhere.
    mixed_up = reason == "invalid_token" and getattr(outcome, "detail", "") == "iss_parameter"
    # unavailable: stepup's store failed; transaction_expired: the provider confirmed her
    stepups_own = reason in ("unavailable", TRANSACTION_EXPIRED)
    if not stepups_own and not mixed_up:
        events.emit(ReauthFailed(at=at, user_id=user_id, method=method, reason=reason))
    logger.info(
        "%s re-authentication refused: %s%s",
        method if method in ("oidc", "saml") else "sso",
        reason if reason in _SSO_MESSAGES or reason == TRANSACTION_EXPIRED else "other",
        f" (provider error {logged_error})" if logged_error else "",
    )


def _provider_error(outcome: object) -> str | None:
    """The provider's OAuth error code on an OIDC refusal (``None``: none)."""
    error = getattr(outcome, "error", None)
    return error if isinstance(error, str) and error else None


def _proved_level(outcome: object, policy: Policy | None) -> str | None:
    """The level the provider's verified ``acr`` (OIDC) or ``AuthnContextClassRef``
    (SAML) proves under the policy's levels (``None``: no levels, or not declared)."""
    levels = policy.levels if policy is not None else None
    if levels is None:
        return None
    acr = getattr(outcome, "acr", None)
    if acr is not None:
        return levels.for_acr(acr)
    return levels.for_saml(getattr(outcome, "authn_context", None))


def _login_time(outcome: object) -> float | None:
    """The provider's verified login time: OIDC's ``auth_time``, SAML's ``authn_instant``."""
    for name in ("authenticated_at", "auth_time", "authn_instant"):
        value = getattr(outcome, name, None)
        if value is not None:
            return float(value)
    return None


# What stepup keeps in the framework's session ------------------------------------------

#: Session keys (Django and Flask; Starlette's app keeps its own session id).
SESSION_ID: Final = "_stepup_sid"
SIGNED_IN_WITH: Final = "_stepup_identity"
OTP_PROOF: Final = "_stepup_otp_proof"  # an earlier version's code proof: dropped at sign-out
SSO_TRIP: Final = "_stepup_sso_trip"


def is_fresh(at: object, now: float, ttl: float) -> bool:
    """Is ``at``, a time kept in the session, less than ``ttl`` seconds old (and not in
    the future)? The core's rule for every lifetime: ``0 <= now - at < ttl``, so
    something exactly ``ttl`` old has expired."""
    return isinstance(at, int | float) and not isinstance(at, bool) and 0 <= now - at < ttl


def session_id(session: MutableMapping[str, Any]) -> str:
    """A random id for this browser session, renewed at every sign-in: grants are bound
    to it, so another session never benefits from this one's re-authentication. (Not
    the framework's session key: that is a bearer secret, and stores should not hold it.)"""
    sid = session.get(SESSION_ID)
    if not isinstance(sid, str):
        sid = secrets.token_urlsafe(18)
        session[SESSION_ID] = sid
    return sid


def session_identity(session: Mapping[str, Any]) -> Identity:
    """How the user of this session signed in (a password, unless noted otherwise)."""
    saved = session.get(SIGNED_IN_WITH)
    if not isinstance(saved, dict):
        return Identity(LoginMethod.PASSWORD)
    return Identity(
        LoginMethod(saved["method"]),
        issuer=str(saved.get("issuer", "")),
        subject=str(saved.get("subject", "")),
        provider=str(saved.get("provider", "")),
    )


def note_sign_in(session: MutableMapping[str, Any], signed_in_with: Identity | None) -> None:
    """A new session id (no earlier grant carries over) and how the user signed in."""
    session[SESSION_ID] = secrets.token_urlsafe(18)
    session.pop(SIGNED_IN_WITH, None)
    session.pop(EARLIER_IDS, None)
    if signed_in_with is not None:
        session[SIGNED_IN_WITH] = _identity_record(signed_in_with)


def _identity_record(identity: Identity) -> dict[str, str]:
    """How a session keeps an identity (plain strings: every framework's session holds them)."""
    return {
        "method": identity.method.value,
        "issuer": identity.issuer,
        "subject": identity.subject,
        "provider": identity.provider,
    }


def _identity_from(saved: object) -> Identity:
    """An identity kept by :func:`_identity_record`; anything else raises."""
    if not isinstance(saved, dict) or not all(isinstance(v, str) for v in saved.values()):
        raise MalformedInputError("not a kept identity")
    try:
        method = LoginMethod(saved["method"])
    except (KeyError, ValueError):
        raise MalformedInputError("not a kept identity") from None
    issuer, subject = saved.get("issuer", ""), saved.get("subject", "")
    return Identity(method, issuer=issuer, subject=subject, provider=saved.get("provider", ""))


# A sign-in waiting for stepup's second step --------------------------------------------

#: What each way of signing in proves (the core's rule for ``record_sign_in``).
_PROVED_BY: Final = MappingProxyType(
    {LoginMethod.PASSWORD: "pwd", LoginMethod.OIDC: "oidc", LoginMethod.SAML: "saml"}
)


@dataclass(frozen=True, slots=True)
class FirstStep:
    """What the app's own sign-in proved before stepup's second step (a code, a
    recovery code or a passkey): how the user signed in (``identity``: ``None`` for a
    password, else the OIDC or SAML identity their re-authentications go back to), what
    it proved and when (the provider's ``auth_time`` or ``AuthnInstant``).

    Built by :meth:`checked` from the app's own arguments when the second step begins,
    kept with the pending sign-in in the session and read back with :meth:`kept`, never
    from the request. Everything the completion relies on is checked before anything
    is kept, so the second step cannot fail on it after the user is signed in."""

    identity: Identity | None
    proved: tuple[str, ...]
    authenticated_at: float | None = None

    @classmethod
    def checked(
        cls, identity: object = None, proved: object = None, authenticated_at: object = None
    ) -> FirstStep:
        """The app's arguments, or :class:`~stepup.errors.MalformedInputError` naming
        what does not fit. ``proved`` defaults to what ``identity`` proves (``("pwd",)``,
        ``("oidc",)``, ``("saml",)``). An OIDC or SAML proof needs the identity: the
        method alone cannot say which issuer and subject a re-authentication must match."""
        if identity is not None and not isinstance(identity, Identity):
            raise MalformedInputError(
                "identity must be a stepup.subject.Identity (None for a password sign-in)"
            )
        login = LoginMethod.PASSWORD if identity is None else identity.method
        if identity is not None and login is not LoginMethod.PASSWORD:
            if not (_text(identity.issuer) and _text(identity.subject)):
                raise MalformedInputError(
                    f"a sign-in through {login.value} needs the identity's issuer and subject:"
                    " a re-authentication must come back with exactly these"
                )
            if not isinstance(identity.provider, str):
                raise MalformedInputError("the identity's provider must be text")
        primary = _PROVED_BY[login]
        methods = (primary,) if proved is None else proved
        if (
            not isinstance(methods, tuple | list)
            or not methods
            or not all(isinstance(m, str) and m in GRANT_METHODS for m in methods)
        ):
            raise MalformedInputError(f"proved must be some of {sorted(GRANT_METHODS)}")
        for federated in ("oidc", "saml"):
            if federated in methods and federated != primary:
                raise MalformedInputError(
                    f"a sign-in that proved {federated!r} needs identity="
                    f"Identity(LoginMethod.{federated.upper()}, issuer=..., subject=...,"
                    " provider=...): the user re-authenticates at that provider"
                )
        if primary not in methods:
            raise MalformedInputError(f"a sign-in through {login.value} proves {primary!r}")
        return cls(identity, tuple(dict.fromkeys(methods)), _unix_seconds(authenticated_at))

    @property
    def signed_in_with(self) -> Identity:
        """How the session signed in: the grant for this sign-in is recorded for it."""
        return self.identity if self.identity is not None else Identity(LoginMethod.PASSWORD)

    def record(self) -> dict[str, Any]:
        """The session's copy, kept with the pending sign-in."""
        identity = None if self.identity is None else _identity_record(self.identity)
        return {
            "proved": list(self.proved),
            "authenticated_at": self.authenticated_at,
            "identity": identity,
        }

    @classmethod
    def kept(cls, saved: Mapping[str, Any]) -> FirstStep | None:
        """The first step kept by :meth:`record`, checked again; ``None`` when it does
        not hold together (the sign-in has to start again)."""
        proved = saved.get("proved")
        try:
            identity = None if saved.get("identity") is None else _identity_from(saved["identity"])
            return cls.checked(identity, proved, saved.get("authenticated_at"))
        except MalformedInputError:
            return None


#: The id prefix of a waiting sign-in's record in the store (:func:`hold_waiting_sign_in`),
#: its own: no passkey's, OIDC's, SAML's or kept form's challenge shares it.
WAITING_SIGN_IN_PREFIX: Final = "signin:"


def _waiting_sign_in_id(nonce: str) -> str:
    """The store's id of the waiting sign-in ``nonce``: a digest, so the store never
    holds the nonce the sign-in's CSRF tokens and passkey challenges are bound to."""
    return WAITING_SIGN_IN_PREFIX + hashlib.sha256(nonce.encode()).hexdigest()


def hold_waiting_sign_in(user_id: str, nonce: str, now: float, ttl: float) -> Flow[None]:
    """Keep the waiting sign-in ``nonce`` of ``user_id`` in the store for its lifetime
    (``ttl``), so that it completes once: a session kept in a cookie can be copied,
    and a copy must not finish it again. Called before the session keeps it: a store
    failure raises and nothing waits (fail closed)."""
    record_id = _waiting_sign_in_id(nonce)
    yield ("put_challenge", (Challenge(record_id, user_id, record_id, now, now + ttl),))


def take_waiting_sign_in(user_id: str, nonce: str, now: float) -> Flow[bool]:
    """Spend the waiting sign-in ``nonce`` of ``user_id`` once its second factor passed
    (never before: a wrong code leaves it waiting). ``False`` when the store no longer
    holds it for that user (completed already, from a copy of the session or another
    tab; expired; never kept): answered as an expired sign-in, nobody signed in. A
    store failure raises (fail closed)."""
    if not nonce:
        return False  # kept by a version before the nonce: never held in the store
    taken: Challenge | None = yield ("take_challenge", (_waiting_sign_in_id(nonce), now))
    return taken is not None and taken.user_id == user_id


def kept_user_id(saved: Mapping[str, Any]) -> object:
    """A waiting sign-in's user id as the store keeps it: text, an ``int`` an app gave
    the sign-in as it is (Flask's ``begin_two_factor``, Django's primary key) turned into
    text; anything else as it was kept."""
    user_id = saved.get("user_id")
    if isinstance(user_id, int) and not isinstance(user_id, bool):
        return str(user_id)
    return user_id


def abandon_waiting_sign_in(saved: object, now: float) -> Flow[None]:
    """Spend the waiting sign-in a session kept (``saved``, as it was kept, already taken
    off the session) that nobody will finish: signed out, or replaced by a new sign-in,
    so a copy of the session cookie cannot finish it later. A store outage never stops
    the sign-out or the new sign-in: the record ends at its lifetime (the outage is
    logged)."""
    if not isinstance(saved, Mapping):
        return
    user_id, nonce = kept_user_id(saved), saved.get("nonce")
    if isinstance(user_id, str) and isinstance(nonce, str) and nonce:
        with suppress(StoreUnavailableError):
            yield from take_waiting_sign_in(user_id, nonce, now)


#: The field of the sign-in's second step that abandons the waiting sign-in ("Sign in as
#: someone else"), sent by its own button, to the step's own address with its CSRF token.
CANCEL_SIGN_IN: Final = "cancel"


def wants_cancel(values: Sequence[object]) -> bool:
    """The second step's form asks to abandon the waiting sign-in (its
    :data:`CANCEL_SIGN_IN` field's values, as posted): the view then spends it with
    :func:`abandon_waiting_sign_in` and goes to the app's sign-in page, nobody signed in."""
    return any(isinstance(value, str) and value for value in values)


def _text(value: object) -> bool:
    return isinstance(value, str) and bool(value)


def _unix_seconds(value: object) -> float | None:
    """``value`` as a finite float, ``None`` kept; anything else raises."""
    if value is None:
        return None
    if not isinstance(value, bool) and isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:  # an int no float holds
            pass
        else:
            if math.isfinite(seconds):
                return seconds
    raise MalformedInputError("authenticated_at must be Unix seconds")


def renew_session_id(session: MutableMapping[str, Any]) -> str:
    """A new session id at a successful re-authentication, as at sign-in (OWASP ASVS 5.0
    section 7.2.4), keeping how the user signed in; see :func:`renewed_subject` for whom
    the grant is then recorded."""
    new = secrets.token_urlsafe(18)
    session[SESSION_ID] = new
    return new


#: The ids this session had before its re-authentications renewed them (see
#: :func:`note_renewal`).
EARLIER_IDS: Final = "_stepup_earlier_sids"
#: How many earlier ids a session remembers: more re-authentications than this within a
#: suspended form's 10 minutes let the oldest form go.
_EARLIER_KEPT: Final = 8


def note_renewal(session: MutableMapping[str, Any], new_id: str, old_id: str) -> None:
    """Remember that this session's id ``old_id`` was renewed to ``new_id``: a form
    suspended under an earlier id of this very session (another tab, before this tab's
    re-authentication) still resumes (:func:`earlier_session_ids`)."""
    earlier = [old_id, *earlier_session_ids(session, old_id)][:_EARLIER_KEPT]
    session[EARLIER_IDS] = {"sid": new_id, "earlier": earlier}


def earlier_session_ids(session: MutableMapping[str, Any], current_id: str) -> tuple[str, ...]:
    """The ids this session had before ``current_id``, newest first; none when the
    session's id changed another way since (a sign-in starts over)."""
    kept = session.get(EARLIER_IDS)
    if not isinstance(kept, dict) or kept.get("sid") != current_id or not current_id:
        return ()
    earlier = kept.get("earlier")
    if not isinstance(earlier, list):
        return ()
    return tuple(i for i in earlier[:_EARLIER_KEPT] if isinstance(i, str) and i)


def renewed_subject(before: Subject, after: Subject | None) -> tuple[Subject, str | None]:
    """After the session id was renewed: whom to record the grant for (``after``, the
    subject loaded again) and the id it was renewed from (``renewed_from`` of
    ``Reauth.record``). A subject loader that builds its own session id (not stepup's)
    keeps it: the grant goes to that id and nothing was renewed."""
    if after is None or after.user_id != before.user_id:
        return before, None
    if after.session_id == before.session_id:
        return after, None
    return after, before.session_id


def note_sso_trip(
    session: MutableMapping[str, Any],
    session_id: str,
    kind: str,
    now: float,
    *,
    key: str = SSO_TRIP,
) -> None:
    """An SSO start view sent this session to its provider (``kind``: ``oidc`` or
    ``saml``): keep that fact and when (nothing of the provider's request) until an
    answer comes back. A later trip replaces it."""
    session[key] = {"session": session_id, "kind": kind, "at": now}


def take_sso_trip(
    session: MutableMapping[str, Any],
    session_id: str,
    kind: str,
    now: float,
    ttl: float,
    *,
    key: str = SSO_TRIP,
) -> bool:
    """Did this stepup session leave for a ``kind`` provider less than ``ttl`` seconds
    ago, so that an answer can belong to its trip? Used up by whichever answer comes
    first, so forged answers sent while a trip is pending count at most once for it."""
    trip = session.pop(key, None)
    return (
        isinstance(trip, dict)
        and trip.get("session") == session_id
        and trip.get("kind") == kind
        and is_fresh(trip.get("at"), now, ttl)
    )
